"""A batch pointer's stream range, read again and given to what it was meant for; its verdict.

Both stream readers' on-failure queues hold Lambda's batch pointers (``DDBStreamBatchInfo``):
the indexer's (``--on-failure-queue``) and the archiver's (``--archive-on-failure-queue``).
:func:`replay_range` is the one implementation for both: it checks the pointer, reads its
range with :func:`~ddbsync.dynamodb.stream_range.read_range`, and hands the records to a
:class:`RangeTarget`:

* :class:`IndexRange`: the :class:`~ddbsync.indexer.StreamIndexer` (the range is indexed);
* :class:`ArchiveRange`: the :class:`~ddbsync.archive.archiver.Archiver` (each record is
  put to the archive's Firehose stream as its line, as the archiver Lambda does).

A pointer may be deleted only when every record of its range is handled (for the archive:
accepted by Firehose, or safely in the record DLQ). A range the stream no longer has is
kept, with what its loss means for that target.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import aws_error, region_of_arn, streams_client
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.dynamodb.stream_range import read_range
from ddbsync.errors import RangeUnavailable
from ddbsync.replay.messages import BatchPointer
from ddbsync.replay.report import ReplayReport

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

    from ddbsync.archive.archiver import Archiver
    from ddbsync.indexer import StreamIndexer

__all__ = ["DELETE", "ArchiveRange", "IndexRange", "RangeTarget", "Verdict", "budget", "replay_range"]

# Time given to one indexer or archiver call; both stop retrying before it runs out.
CALL_BUDGET_S = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one message: delete it, or keep it for ``reason``; ``stop`` ends the run
    (the target stopped accepting writes: the rest stays in the queue)."""

    delete: bool
    reason: str = ""
    stop: bool = False


DELETE = Verdict(delete=True)


def budget(timeout_margin_ms: int) -> Callable[[], int]:
    """A ``remaining_ms`` like Lambda's context gives: a fresh budget for one call."""
    deadline = time.monotonic() + CALL_BUDGET_S + timeout_margin_ms / 1000

    def remaining_ms() -> int:
        return max(0, int((deadline - time.monotonic()) * 1000))

    return remaining_ms


class RangeTarget(Protocol):
    """Where a range's records go. ``take`` returns how many records are *not* handled (0: the
    pointer may be deleted) and counts the handled ones in the report."""

    unsent_causes: str  # why records may stay unsent, for the kept reason
    stopped: str  # the run's stop reason when records stay unsent

    def take(self, records: Sequence[RawRecord], report: ReplayReport) -> int: ...

    def gone(self, pointer: BatchPointer) -> str:
        """What a range the stream no longer has means for this target, and what to do."""
        ...


class IndexRange:
    """The indexer's on-failure queue: the range goes through the stream indexer."""

    unsent_causes = "OpenSearch unreachable, throttling, out of time, or the record DLQ refused them"
    stopped = "OpenSearch stopped accepting writes"

    def __init__(self, indexer: StreamIndexer) -> None:
        self.indexer = indexer

    def take(self, records: Sequence[RawRecord], report: ReplayReport) -> int:
        result = self.indexer.process(records, budget(self.indexer.settings.timeout_margin_ms))
        if result.failed_sequence_numbers:
            return len(set(result.failed_sequence_numbers))
        report.add(result)
        report.to_record_dlq += result.poison
        return 0

    def gone(self, pointer: BatchPointer) -> str:
        return "repair that window with `ddbsync repair --from ... --to ...` (docs/runbook.md)"


class ArchiveRange:
    """The archiver's on-failure queue: the range's records go to the archive's Firehose stream."""

    unsent_causes = ("Firehose refused them, throttled, unreachable (a wrong ARCHIVE_STREAM_NAME, "
                     "no firehose:PutRecordBatch) or out of time, or the record DLQ refused them; "
                     "--verbose shows Firehose's error codes")  # fmt: skip
    stopped = "Firehose stopped accepting records"

    def __init__(self, archiver: Archiver) -> None:
        self.archiver = archiver

    def take(self, records: Sequence[RawRecord], report: ReplayReport) -> int:
        result = self.archiver.process(records, budget(self.archiver.settings.timeout_margin_ms))
        if result.unsent:
            return result.unsent
        report.archived += result.archived
        report.to_record_dlq += result.dead_lettered
        return 0

    def gone(self, pointer: BatchPointer) -> str:
        since = f" (changes from about {pointer.first_arrival})" if pointer.first_arrival else ""
        return (f"the archive now has a gap for this window{since}: a later `ddbsync rebuild "
                "--from-archive` would miss these changes. Rebuild the index from a backfill "
                "(`ddbsync backfill`, docs/backfill.md) instead, or accept the gap; then delete "
                "this message by hand (docs/runbook.md)")  # fmt: skip


def replay_range(
    pointer: BatchPointer,
    target: RangeTarget,
    report: ReplayReport,
    streams: DynamoDBStreamsClient | None,
    region: str | None,
) -> Verdict:
    """Read the pointer's range from the stream and give it to ``target``; the message's verdict."""
    arn, shard, start, end = pointer.stream_arn, pointer.shard_id, pointer.start, pointer.end
    if arn is None or shard is None or start is None or end is None:
        return Verdict(False, f"batch pointer without {pointer.missing()}")
    try:
        streams = streams or streams_client(region_of_arn(arn) or region)
        records = read_range(streams, arn, shard, start, end)
    except RangeUnavailable as e:
        return Verdict(False, (f"the stream no longer has this range ({e.reason}). DynamoDB streams "
                               f"keep 24 hours; {target.gone(pointer)}"))  # fmt: skip
    except (BotoCoreError, ClientError) as e:
        return Verdict(False, f"cannot read the stream: {aws_error(e)}")
    expected = pointer.batch_size
    if expected is not None and expected != len(records):
        return Verdict(False, f"the range holds {len(records)} records, the pointer says {expected}")
    unsent = target.take(records, report)
    if unsent:
        return Verdict(False, f"not sent: {unsent} of {len(records)} records ({target.unsent_causes})",
                       stop=True)  # fmt: skip
    return DELETE
