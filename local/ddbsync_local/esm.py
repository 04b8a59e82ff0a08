"""A local Lambda event source mapping (ESM) for a DynamoDB stream.

It reads a stream through the ``dynamodbstreams`` API (moto in-process, a
moto_server via ``AWS_ENDPOINT_URL``, or AWS) and invokes a handler the way the
Lambda ESM does with ``FunctionResponseTypes: [ReportBatchItemFailures]``:

* shards are read parents first; each from ``TRIM_HORIZON`` or after its checkpoint;
* one ``GetRecords`` page of at most ``batch_size`` records is one batch;
* a returned ``batchItemFailures`` list checkpoints just before the lowest failed
  sequence number and redelivers from there (nothing before it is sent again);
  an empty, null or unknown ``itemIdentifier`` fails the whole batch;
* a raised exception (or a timeout) fails the whole batch; with
  ``bisect_on_error`` the batch is split in two halves and each is retried;
* after ``maximum_retry_attempts`` retries the batch pointer goes to the
  on-failure destination (as the real ``OnFailure`` SQS destination receives it)
  and the checkpoint moves past the batch.

See https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
and https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

import boto3

from ddbsync.dynamodb.stream import StreamEvent, StreamRecord, to_lambda_record
from ddbsync_local.context import LocalContext

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_dynamodbstreams.type_defs import ShardTypeDef
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "BatchInfo",
    "EsmConfig",
    "EsmStats",
    "EventSourceMapping",
    "Handler",
    "OnFailure",
    "OnFailureRecord",
    "sqs_on_failure",
]

log = logging.getLogger(__name__)

# The handler under test. Its event is a plain dict (handlers type it as dict[str, Any]) and its
# context is typed loosely on purpose: a handler may annotate it as Powertools' LambdaContext,
# which LocalContext duck-types. The response is validated here, so any object is accepted.
Handler = Callable[[dict[str, Any], Any], object]


class BatchInfo(TypedDict):
    """``DDBStreamBatchInfo`` of an on-failure record: where the discarded batch lies."""

    shardId: str
    startSequenceNumber: str
    endSequenceNumber: str
    approximateArrivalOfFirstRecord: str
    approximateArrivalOfLastRecord: str
    batchSize: int
    streamArn: str


class OnFailureRecord(TypedDict):
    """The message Lambda sends to an on-failure destination for a DynamoDB stream.

    ``requestContext``/``responseContext``/``version``/``timestamp``/``DDBStreamBatchInfo``
    follow the AWS format; ``reason`` is added by this emulator (the last error seen).
    """

    requestContext: dict[str, object]
    responseContext: dict[str, object]
    version: str
    timestamp: str
    DDBStreamBatchInfo: BatchInfo
    reason: str


OnFailure = Callable[[OnFailureRecord], None]


@dataclass(frozen=True, slots=True)
class EsmConfig:
    """The event source mapping settings that matter locally.

    ``maximum_retry_attempts`` is -1 for "until the record expires" as in Lambda, but
    defaults to a small bound so a poison batch cannot loop forever on a laptop.
    """

    batch_size: int = 100
    maximum_retry_attempts: int = 2
    bisect_on_error: bool = False
    timeout_ms: int = 60_000
    function_name: str = "StreamIndexerFunction"

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 1 <= self.batch_size <= 10_000:
            problems.append(f"batch_size must be 1..10000, got {self.batch_size}")
        if not -1 <= self.maximum_retry_attempts <= 10_000:
            problems.append(
                f"maximum_retry_attempts must be -1..10000, got {self.maximum_retry_attempts}"
            )
        if self.timeout_ms <= 0:
            problems.append(f"timeout_ms must be positive, got {self.timeout_ms}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(slots=True)
class EsmStats:
    """What one :meth:`EventSourceMapping.poll` did."""

    invocations: int = 0
    records_delivered: int = 0  # records handed to the handler, redeliveries included
    records_completed: int = 0  # records the checkpoint moved past after success
    retries: int = 0  # redeliveries that count against maximum_retry_attempts
    bisections: int = 0  # batches split in two (do not count as retries, as in Lambda)
    batches_to_on_failure: int = 0
    records_to_on_failure: int = 0
    on_failure: list[OnFailureRecord] = field(default_factory=list)

    def add(self, other: EsmStats) -> None:
        """Accumulate ``other`` into this object."""
        self.invocations += other.invocations
        self.records_delivered += other.records_delivered
        self.records_completed += other.records_completed
        self.retries += other.retries
        self.bisections += other.bisections
        self.batches_to_on_failure += other.batches_to_on_failure
        self.records_to_on_failure += other.records_to_on_failure
        self.on_failure.extend(other.on_failure)


@dataclass(frozen=True, slots=True)
class _Batch:
    records: list[StreamRecord]
    retries: int = 0  # retries already used by these records


@dataclass(frozen=True, slots=True)
class _Outcome:
    """Result of one invocation: ``failed_from`` is None on success, else the index
    of the first record to redeliver; ``function_error`` marks a whole-batch error."""

    failed_from: int | None
    function_error: bool = False
    reason: str = ""


def sqs_on_failure(queue_url: str, client: SQSClient | None = None) -> OnFailure:
    """An on-failure destination that sends each record as JSON to an SQS queue."""
    sqs = client if client is not None else boto3.client("sqs")

    def send(record: OnFailureRecord) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    return send


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventSourceMapping:
    """Deliver a DynamoDB stream to ``handler`` like Lambda's event source mapping.

    Checkpoints live in this object, so successive :meth:`poll` calls continue where the
    previous one stopped.
    """

    def __init__(
        self,
        stream_arn: str,
        handler: Handler,
        config: EsmConfig | None = None,
        *,
        on_failure: OnFailure | None = None,
        client: DynamoDBStreamsClient | None = None,
    ) -> None:
        self.stream_arn = stream_arn
        self.handler = handler
        self.config = config if config is not None else EsmConfig()
        self.on_failure = on_failure
        self.client = client if client is not None else boto3.client("dynamodbstreams")
        self.checkpoints: dict[str, str] = {}
        self.finished_shards: set[str] = set()

    # -- shards -------------------------------------------------------------------------

    def _shards(self) -> list[ShardTypeDef]:
        shards: list[ShardTypeDef] = []
        start: str | None = None
        while True:
            if start is None:
                page = self.client.describe_stream(StreamArn=self.stream_arn)
            else:
                page = self.client.describe_stream(
                    StreamArn=self.stream_arn, ExclusiveStartShardId=start
                )
            description = page["StreamDescription"]
            shards.extend(description.get("Shards", []))
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    def poll(self) -> EsmStats:
        """Deliver every record currently in the stream; return what happened."""
        stats = EsmStats()
        shards = {s["ShardId"]: s for s in self._shards() if "ShardId" in s}
        pending = [sid for sid in shards if sid not in self.finished_shards]
        progress = True
        while pending and progress:
            progress = False
            for shard_id in list(pending):
                parent = shards[shard_id].get("ParentShardId")
                # A child shard waits until its parent is read to the end, so the changes to
                # one item keep their order across a shard split. A parent that is no longer
                # listed has been trimmed (24 h retention) and cannot hold anything back.
                if parent and parent in shards and parent not in self.finished_shards:
                    continue
                pending.remove(shard_id)
                progress = True
                self._drain(shard_id, stats)
        return stats

    def _iterator(self, shard_id: str) -> str | None:
        checkpoint = self.checkpoints.get(shard_id)
        if checkpoint is None:
            response = self.client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )
        else:
            response = self.client.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=checkpoint,
            )
        return response.get("ShardIterator")

    def _drain(self, shard_id: str, stats: EsmStats) -> None:
        iterator = self._iterator(shard_id)
        work: deque[_Batch] = deque()
        while True:
            if not work:
                if iterator is None:
                    self.finished_shards.add(shard_id)  # closed shard read to its end
                    return
                page = self.client.get_records(ShardIterator=iterator, Limit=self.config.batch_size)
                iterator = page.get("NextShardIterator")
                read_at = time.time()
                records = [
                    to_lambda_record(r, self.stream_arn, read_at) for r in page.get("Records", [])
                ]
                if not records:
                    if iterator is None:
                        continue
                    # Caught up with an open shard. (AWS may also return an empty page before
                    # the end; moto never does, and the next poll resumes from the checkpoint.)
                    return
                work.append(_Batch(records))
            self._deliver(shard_id, work, stats)

    # -- one delivery -------------------------------------------------------------------

    def _deliver(self, shard_id: str, work: deque[_Batch], stats: EsmStats) -> None:
        batch = work.popleft()
        outcome = self._invoke(batch.records, stats)
        if outcome.failed_from is None:
            self._checkpoint(shard_id, batch.records)
            stats.records_completed += len(batch.records)
            return
        done, rest = batch.records[: outcome.failed_from], batch.records[outcome.failed_from :]
        if done:
            self._checkpoint(shard_id, done)
            stats.records_completed += len(done)
        limit = self.config.maximum_retry_attempts
        if outcome.function_error and self.config.bisect_on_error and len(rest) > 1:
            # Splitting does not use up a retry (Lambda docs, "Split batch on error").
            half = len(rest) // 2
            work.appendleft(_Batch(rest[half:], batch.retries))
            work.appendleft(_Batch(rest[:half], batch.retries))
            stats.bisections += 1
        elif limit == -1 or batch.retries < limit:
            work.appendleft(_Batch(rest, batch.retries + 1))
            stats.retries += 1
        else:
            self._discard(shard_id, rest, batch.retries + 1, outcome, stats)

    def _invoke(self, records: list[StreamRecord], stats: EsmStats) -> _Outcome:
        event: StreamEvent = {"Records": records}
        context = LocalContext(
            function_name=self.config.function_name,
            timeout_ms=self.config.timeout_ms,
            region=records[0]["awsRegion"],
        )
        stats.invocations += 1
        stats.records_delivered += len(records)
        try:
            # json round trip: the handler gets fresh JSON values, as from Lambda, and cannot
            # alter the records kept here for redelivery.
            response = self.handler(json.loads(json.dumps(event)), context)
        except Exception as e:  # any unhandled error fails the whole batch, as in Lambda
            log.info("handler raised %r on %d records", e, len(records))
            return _Outcome(0, function_error=True, reason=f"Unhandled: {e!r}")
        if context.timed_out():
            return _Outcome(
                0,
                function_error=True,
                reason=f"Task timed out after {self.config.timeout_ms / 1000:.2f} seconds",
            )
        return _classify(response, records)

    def _checkpoint(self, shard_id: str, records: list[StreamRecord]) -> None:
        self.checkpoints[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]

    def _discard(
        self,
        shard_id: str,
        records: list[StreamRecord],
        invoke_count: int,
        outcome: _Outcome,
        stats: EsmStats,
    ) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        response: dict[str, object] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if outcome.function_error:
            response["functionError"] = "Unhandled"
        message: OnFailureRecord = {
            "requestContext": {
                "requestId": "local",
                "functionArn": LocalContext(
                    function_name=self.config.function_name, region=records[0]["awsRegion"]
                ).invoked_function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": _iso(last["ApproximateCreationDateTime"]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
            "reason": outcome.reason,
        }
        log.warning(
            "retries exhausted, %d records to on-failure: %s", len(records), outcome.reason
        )
        if self.on_failure is not None:
            self.on_failure(message)
        # Without a destination Lambda drops the pointer too; either way the stream moves on.
        self._checkpoint(shard_id, records)
        stats.batches_to_on_failure += 1
        stats.records_to_on_failure += len(records)
        stats.on_failure.append(message)


def _classify(response: object, records: list[StreamRecord]) -> _Outcome:
    """Apply the ReportBatchItemFailures rules to a handler's response.

    Success: no response, no ``batchItemFailures`` key, or an empty list. Whole-batch
    failure: an entry whose ``itemIdentifier`` is missing, empty or not in the batch.
    Otherwise redeliver from the lowest failed sequence number.
    """
    if not isinstance(response, dict):
        return _Outcome(None)
    failures = response.get("batchItemFailures")
    if not failures:
        return _Outcome(None)
    positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
    if not isinstance(failures, list):
        return _Outcome(0, reason=f"invalid batchItemFailures {failures!r}")
    lowest = len(records)
    for failure in failures:
        ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(ident, str) or ident not in positions:
            return _Outcome(0, reason=f"invalid itemIdentifier in {failure!r}")
        lowest = min(lowest, positions[ident])
    first_failed = records[lowest]["dynamodb"]["SequenceNumber"]
    return _Outcome(lowest, reason=f"batchItemFailures from {first_failed}")
