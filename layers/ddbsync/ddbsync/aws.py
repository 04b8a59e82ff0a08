"""AWS in one place: the boto3 clients (boto3 honours AWS_ENDPOINT_URL for moto), an AWS
error as one line of text, the region in an AWS address.

boto3 is imported when a client is built, not with this module: the stream indexer's
cold start builds none (its SQS client is lazy, and the OpenSearch signer takes its
credentials from botocore), and importing boto3 (with s3transfer) costs tens of ms there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.errors import StackError

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "LazyS3",
    "aws_error",
    "client_config",
    "cloudformation_client",
    "error_code",
    "lazy_sqs_client",
    "region_of_arn",
    "region_of_queue_url",
    "s3_client",
    "sqs_client",
    "stack_outputs",
    "stepfunctions_client",
    "streams_client",
]


def client_config() -> Config:
    """Bounded retries and timeouts for every client (botocore.config loads with the first client)."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)


def sqs_client(region: str | None = None) -> SQSClient:
    """An SQS client with bounded retries and timeouts."""
    import boto3

    return boto3.client("sqs", region_name=region, config=client_config())


def streams_client(region: str | None = None) -> DynamoDBStreamsClient:
    """A DynamoDB Streams client with bounded retries and timeouts."""
    import boto3

    return boto3.client("dynamodbstreams", region_name=region, config=client_config())


def s3_client(region: str | None = None) -> S3Client:
    """An S3 client with bounded retries and timeouts (dead letters too big for SQS)."""
    import boto3

    return boto3.client("s3", region_name=region, config=client_config())


def stepfunctions_client(region: str | None = None) -> Any:
    """A Step Functions client with bounded retries and timeouts (``ddbsync backfill --stack``)."""
    import boto3

    return boto3.client("stepfunctions", region_name=region, config=client_config())


def cloudformation_client(region: str | None = None) -> Any:
    """A CloudFormation client with bounded retries and timeouts (a stack's outputs)."""
    import boto3

    return boto3.client("cloudformation", region_name=region, config=client_config())


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The outputs of ``stack`` as {OutputKey: OutputValue}; StackError if it cannot be read."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as e:
        raise StackError(f"cannot read stack {stack!r}: {aws_error(e)}") from e
    if not stacks:
        raise StackError(f"stack {stack!r} not found")
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stacks[0].get("Outputs", [])}


class _Lazy:
    """Stands for a client, built by ``build`` on the first attribute looked up."""

    def __init__(self, build: Callable[[], object]) -> None:
        self._build = build
        self._client: object | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._build()
        return getattr(self._client, name)


def lazy_sqs_client(region: str | None = None) -> SQSClient:
    """:func:`sqs_client`, built on first use: the stream indexer sends to its DLQ only
    for poison records, and building the client takes tens of ms of its cold start."""
    return cast("SQSClient", _Lazy(lambda: sqs_client(region)))


class LazyS3:
    """An S3 client given, or built on first use: most invocations never touch S3."""

    def __init__(self, s3: S3Client | None = None, region: str | None = None) -> None:
        self._s3 = s3
        self._region = region

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = s3_client(self._region)
        return self._s3


def error_code(e: ClientError) -> str:
    """The error code AWS answered (``NoSuchKey``, ``TrimmedDataAccessException``...), or ''."""
    return str(e.response.get("Error", {}).get("Code", ""))


def aws_error(e: BotoCoreError | ClientError) -> str:
    """One line for a person: ``Code: Message`` of an AWS answer, or botocore's own text."""
    if isinstance(e, ClientError):
        error = e.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(e)


def region_of_queue_url(url: str) -> str | None:
    """The region in an SQS queue URL (``https://sqs.<region>.amazonaws.com/...``), if any."""
    match = re.match(r"https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", url)
    return match.group(1) if match else None


def region_of_arn(arn: str) -> str | None:
    """The region field of an ARN, if it has one."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None
