"""INDEX_TEMPLATE=s3://bucket/key end to end: the indexer creates its index from the object
(moto S3, the real OpenSearch), as the stack's IndexTemplate parameter sets it."""

from __future__ import annotations

import json

import boto3
from opensearchpy import OpenSearch

from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.handler import make_handler
from tests.conftest import base_env
from tests.support import FakeContext, RecordFactory, event


def test_the_indexer_creates_its_index_from_the_s3_template(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    template = json.loads(DEFAULT_INDEX_TEMPLATE.read_text())
    # Without the template a string maps as text with a keyword sub-field.
    template["mappings"]["properties"]["sku"] = {"type": "keyword"}
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="my-templates", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="my-templates", Key="ddbsync/index.json", Body=json.dumps(template).encode())
    settings = Settings.from_env(
        base_env(alias, dlq_url, INDEX_TEMPLATE="s3://my-templates/ddbsync/index.json")
    )
    handler = make_handler(settings)
    f = RecordFactory()
    assert handler(event([f.record("INSERT", "a", "1", {"sku": "A-1"})]), FakeContext()) == {
        "batchItemFailures": []
    }
    [mapping] = os_client.indices.get_mapping(index=alias).values()
    assert mapping["mappings"]["properties"]["sku"] == {"type": "keyword"}
