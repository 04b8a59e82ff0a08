"""The stream indexer's Lambda handler: the event in, ``batchItemFailures`` out, metrics and a log line.

``functions/stream_indexer/app.py`` calls :func:`make_handler` at import, so settings
are read and checked at cold start; the batch itself is :class:`~ddbsync.indexer.StreamIndexer`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from ddbsync.aws import lazy_sqs_client
from ddbsync.config import Settings
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.errors import RecordError
from ddbsync.indexer import BatchResult, LambdaContextLike, StreamIndexer
from ddbsync.observability import logger, metrics, tracer
from ddbsync.opensearch.client import build_client
from ddbsync.opensearch.transport import OpenSearchTransport, Transport

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from opensearchpy import OpenSearch

__all__ = ["Handler", "make_handler"]


def _emit(result: BatchResult) -> None:
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=result.received)
    metrics.add_metric(name="DocumentsIndexed", unit=MetricUnit.Count, value=result.indexed)
    metrics.add_metric(name="DocumentsDeleted", unit=MetricUnit.Count, value=result.deleted)
    metrics.add_metric(name="StaleConflicts", unit=MetricUnit.Count, value=result.stale)
    metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=result.poison)
    metrics.add_metric(name="Retries", unit=MetricUnit.Count, value=result.retries)
    metrics.add_metric(
        name="UnsentRecords", unit=MetricUnit.Count, value=len(set(result.failed_sequence_numbers))
    )
    if result.max_latency_ms is not None:
        metrics.add_metric(
            name="EndToEndLatencyMs", unit=MetricUnit.Milliseconds, value=result.max_latency_ms
        )


Handler = Callable[[RawRecord, LambdaContextLike], dict[str, list[dict[str, str]]]]


def make_handler(
    settings: Settings | None = None,
    *,
    client: OpenSearch | None = None,
    transport: Transport | None = None,
    sqs: SQSClient | None = None,
    s3: S3Client | None = None,
) -> Handler:
    """Build the Lambda handler. Settings come from the environment unless given.

    Called at module import in ``functions/stream_indexer/app.py``, so a bad
    configuration fails the cold start with every problem named.
    """
    settings = settings or Settings.from_env()
    if transport is None:
        client = client or build_client(settings)
        transport = OpenSearchTransport(client)
    indexer = StreamIndexer(settings, transport, sqs or lazy_sqs_client(settings.region), client, s3=s3)

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(
        event: RawRecord, context: LambdaContextLike
    ) -> dict[str, list[dict[str, str]]]:
        if not isinstance(event, Mapping):
            # JSON that is not an object (a list, a string...): not an event Lambda sends.
            raise RecordError(f"event must be an object with a Records list, got {type(event).__name__}")
        raw = event.get("Records")
        if not isinstance(raw, list):
            # Not a stream event at all (a wrong trigger or a hand-made test event): fail the
            # invocation loudly rather than report an empty batch as done.
            raise RecordError(f"event has no Records list (got {type(raw).__name__})")
        records: list[RawRecord] = list(raw)
        result = indexer.process(records, context.get_remaining_time_in_millis)
        _emit(result)
        logger.info(
            "batch done",
            extra={
                "received": result.received, "indexed": result.indexed, "deleted": result.deleted,
                "stale": result.stale, "superseded": result.superseded, "poison": result.poison,
                "skipped": result.skipped, "retries": result.retries,
                "unsent": len(set(result.failed_sequence_numbers)),
            },
        )
        response = result.response()
        if response["batchItemFailures"] == [{"itemIdentifier": ""}]:
            logger.error("an unhandled record has no SequenceNumber; the whole batch is reported failed")
        return response

    handler.indexer = indexer
    return handler  # type: ignore[no-any-return]
