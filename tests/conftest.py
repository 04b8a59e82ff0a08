"""Shared fixtures. Integration tests need a real OpenSearch: scripts/opensearch.sh start
(or OPENSEARCH_URL pointing at one). They fail, not skip, when it is missing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from opensearchpy import OpenSearch

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ddbsync")
os.environ.setdefault("POWERTOOLS_DEV", "false")

from tests.support import OPENSEARCH_URL, base_env

__all__ = ["OPENSEARCH_URL", "base_env", "dlq_messages"]


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region so nothing can ever talk to real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


@pytest.fixture(scope="session")
def os_client() -> OpenSearch:
    client = OpenSearch(hosts=[OPENSEARCH_URL], timeout=30)
    try:
        client.cluster.health(wait_for_status="yellow")
    except Exception as e:  # pragma: no cover - environment problem, say so clearly
        pytest.fail(
            f"integration tests need a real OpenSearch at {OPENSEARCH_URL}: run "
            f"`scripts/opensearch.sh start` or set OPENSEARCH_URL ({e})"
        )
    return client


@pytest.fixture
def alias(os_client: OpenSearch) -> Iterator[str]:
    """A fresh alias name; every index behind it is deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    os_client.indices.delete(index=f"{name}-*", ignore_unavailable=True)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def dlq_url(aws: None) -> str:
    # 256 KiB, the limit of the stack's record DLQ (moto's own default is 1 MiB).
    return boto3.client("sqs", region_name="eu-west-1").create_queue(
        QueueName="record-dlq", Attributes={"MaximumMessageSize": "262144"}
    )["QueueUrl"]


@pytest.fixture
def letter_bucket(aws: None) -> str:
    """The DEAD_LETTER_BUCKET (moto S3) for dead letters too big for SQS."""
    name = "ddbsync-dead-letters"
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return name


def dlq_messages(url: str) -> list[dict[str, Any]]:
    import json

    sqs = boto3.client("sqs", region_name="eu-west-1")
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = got.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
