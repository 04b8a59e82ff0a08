"""A DynamoDB stream -> OpenSearch Lambda written the usual way: the peer of bench/peer.py.

What the AWS blog posts and most hand-written sync functions do: boto3's
``TypeDeserializer`` turns each image into Python values, opensearch-py's
``helpers.bulk`` sends them, and the external version is the record's
``ApproximateCreationDateTime`` (``version_type=external``), so that a late
delivery cannot overwrite a newer document. A version conflict (409) is taken to
mean "the index already has a newer change" and ignored (``raise_on_error=False``);
any other error fails the invocation, so that Lambda retries the batch.

Two things such functions must add to run at all on stream events, done here the
cheapest way: B/BS values arrive as base64 text, which boto3's ``Binary`` refuses,
so they are kept as text; and the JSON serializer is taught Decimal (to int or
float) and sets (to sorted lists).

Not part of ddbsync; nothing imports it but the bench.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from opensearchpy import OpenSearch, RequestsHttpConnection, helpers
from opensearchpy.serializer import JSONSerializer
from requests_aws4auth import AWS4Auth

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class StreamDeserializer(TypeDeserializer):
    """TypeDeserializer for stream events: B/BS stay base64 text (boto3's Binary wants bytes)."""

    def _deserialize_b(self, value: Any) -> Any:
        return value

    def _deserialize_bs(self, value: Any) -> Any:
        return set(value)


class Serializer(JSONSerializer):
    """opensearch-py's serializer, plus DynamoDB's Decimal and sets."""

    def default(self, data: Any) -> Any:
        if isinstance(data, Decimal):
            return int(data) if data == data.to_integral_value() else float(data)
        if isinstance(data, set | frozenset):
            return sorted(data)
        return super().default(data)


def make_client(endpoint: str, region: str, *, signing: bool = True) -> OpenSearch:
    """The client of the AWS documentation's example: SigV4 through requests, no compression."""
    if not signing:
        return OpenSearch(hosts=[endpoint], serializer=Serializer(), timeout=30)
    credentials = boto3.Session().get_credentials()
    assert credentials is not None, "no AWS credentials (the bench sets fake ones)"
    auth = AWS4Auth(credentials.access_key, credentials.secret_key, region, "es",
                    session_token=credentials.token)  # fmt: skip
    return OpenSearch(
        hosts=[endpoint],
        http_auth=auth,
        use_ssl=endpoint.startswith("https://"),
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        serializer=Serializer(),
        timeout=30,
    )


deserializer = StreamDeserializer()


def make_handler(client: OpenSearch, index: str, partition_key: str = "pk", sort_key: str = "sk") -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        actions: list[dict[str, Any]] = []
        for record in event["Records"]:
            ddb = record["dynamodb"]
            keys = {k: deserializer.deserialize(v) for k, v in ddb["Keys"].items()}
            doc_id = f"{keys[partition_key]}|{keys[sort_key]}"
            version = int(ddb["ApproximateCreationDateTime"])
            if record["eventName"] == "REMOVE":
                actions.append({"_op_type": "delete", "_index": index, "_id": doc_id,
                                "version": version, "version_type": "external"})  # fmt: skip
            else:
                doc = {k: deserializer.deserialize(v) for k, v in ddb["NewImage"].items()}
                actions.append({"_op_type": "index", "_index": index, "_id": doc_id, "_source": doc,
                                "version": version, "version_type": "external"})  # fmt: skip
        indexed, errors = helpers.bulk(client, actions, raise_on_error=False)
        errors = errors if isinstance(errors, list) else []
        conflicts = sum(1 for e in errors if next(iter(e.values())).get("status") == 409)
        if len(errors) > conflicts:
            logger.error("bulk errors: %s", errors[:5])
            raise RuntimeError(f"{len(errors) - conflicts} documents failed")
        logger.info("indexed %d documents, %d version conflicts skipped", indexed, conflicts)
        return {"indexed": int(indexed), "conflicts": conflicts}

    return handler


if "PEER_INDEX" in os.environ:  # as deployed: configured from the environment
    handler = make_handler(
        make_client(os.environ["OPENSEARCH_ENDPOINT"], os.environ["AWS_REGION"]), os.environ["PEER_INDEX"]
    )
