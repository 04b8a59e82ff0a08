"""The archiver's Lambda handler: the event in, ``batchItemFailures`` out, metrics and a log line.

``functions/archiver/app.py`` calls :func:`make_handler` at import, so settings are read and
checked at cold start; the batch itself is :class:`~ddbsync.archive.archiver.Archiver`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from ddbsync.archive.archiver import Archiver, ArchiveResult
from ddbsync.archive.sender import FirehoseClient, firehose_client
from ddbsync.archive.settings import ArchiveSettings
from ddbsync.aws import lazy_sqs_client
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.errors import RecordError
from ddbsync.indexer import LambdaContextLike
from ddbsync.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["Handler", "make_handler"]

Handler = Callable[[RawRecord, LambdaContextLike], dict[str, list[dict[str, str]]]]


def _emit(result: ArchiveResult) -> None:
    metrics.add_metric(name="RecordsArchived", unit=MetricUnit.Count, value=result.archived)
    metrics.add_metric(name="ArchiveDeadLettered", unit=MetricUnit.Count, value=result.dead_lettered)
    metrics.add_metric(name="ArchiveUnsent", unit=MetricUnit.Count, value=result.unsent)
    metrics.add_metric(name="ArchiveRetries", unit=MetricUnit.Count, value=result.retries)


def records_of(event: object) -> list[RawRecord]:
    """The event's Records; RecordError when it is not a stream event (not an object, no list)."""
    if not isinstance(event, Mapping):
        raise RecordError(f"event must be an object with a Records list, got {type(event).__name__}")
    raw = event.get("Records")
    if not isinstance(raw, list):
        raise RecordError(f"event has no Records list (got {type(raw).__name__})")
    return list(raw)


def make_handler(
    settings: ArchiveSettings | None = None,
    *,
    firehose: FirehoseClient | None = None,
    sqs: SQSClient | None = None,
    s3: S3Client | None = None,
) -> Handler:
    """Build the Lambda handler. Settings come from the environment unless given."""
    settings = settings or ArchiveSettings.from_env()
    archiver = Archiver(
        settings, firehose or firehose_client(settings.region), sqs or lazy_sqs_client(settings.region), s3=s3
    )

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: RawRecord, context: LambdaContextLike) -> dict[str, list[dict[str, str]]]:
        result = archiver.process(records_of(event), context.get_remaining_time_in_millis)
        _emit(result)
        logger.info(
            "archive batch done",
            extra={"received": result.received, "archived": result.archived,
                   "dead_lettered": result.dead_lettered, "unsent": result.unsent,
                   "retries": result.retries},
        )  # fmt: skip
        response = result.response()
        if response["batchItemFailures"] == [{"itemIdentifier": ""}]:
            logger.error("an unhandled record has no SequenceNumber; the whole batch is reported failed")
        return response

    handler.archiver = archiver
    return handler  # type: ignore[no-any-return]
