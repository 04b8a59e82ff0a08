"""``ddbsync replay --dry-run``: what the queue holds (counts and reasons), nothing sent or deleted.

Needs no OpenSearch (nor archive) settings. Every message read is made visible again at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ddbsync.redact import short_reason
from ddbsync.replay.messages import BatchPointer, Kind, Message, RecordLetter, StoredLetter, classify
from ddbsync.replay.queue import make_visible, receive
from ddbsync.replay.report import EXIT_OK

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["dry_run"]

# DynamoDB streams keep records for 24 hours.
STREAM_RETENTION_S = 24 * 3600
# How long a message read by the dry run stays hidden if making it visible again fails.
_VISIBILITY_TIMEOUT_S = 60


@dataclass(slots=True)
class _Seen:
    """What the dry run read, by kind of message."""

    received: int = 0
    kinds: Counter[Kind] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    in_s3: Counter[str] = field(default_factory=Counter)  # bucket -> letters stored there
    records_in_ranges: int = 0
    aged: int = 0

    def add(self, message: Message) -> None:
        self.kinds[message.kind] += 1
        if isinstance(message, RecordLetter | StoredLetter):
            self.reasons[short_reason(f"{message.error_type}: {message.reason}")] += 1
            if isinstance(message, StoredLetter):
                self.in_s3[str(message.bucket)] += 1
        elif isinstance(message, BatchPointer):
            self.records_in_ranges += message.batch_size or 0
            if _older_than_retention(message.first_arrival):
                self.aged += 1
            self.reasons[f"batch pointer: {message.condition}"] += 1


def dry_run(
    sqs: SQSClient,
    queue_url: str,
    pointers_only: bool,
    max_messages: int | None,
    echo: Callable[[str], None],
    *,
    archive: bool = False,
) -> int:
    """Read up to ``max_messages`` (all by default), print what they are; return the exit code."""
    seen = _Seen()
    receipts: list[str] = []
    for batch in receive(sqs, queue_url, max_messages, _VISIBILITY_TIMEOUT_S):
        seen.received += len(batch)
        for sqs_message in batch:
            receipts.append(sqs_message["ReceiptHandle"])
            seen.add(classify(sqs_message.get("Body", "")))
    make_visible(sqs, queue_url, receipts, echo)
    _print(seen, pointers_only, archive, echo)
    return EXIT_OK


def _print(seen: _Seen, pointers_only: bool, archive: bool, echo: Callable[[str], None]) -> None:
    echo(f"dry run: {seen.received} message(s) read, nothing sent or deleted")
    option = "--archive-on-failure-queue" if archive else "--on-failure-queue"
    for kind, count in seen.kinds.items():
        suffix = ""
        if kind is Kind.RECORD and (pointers_only or archive):
            suffix = f" (would be kept: {option} expects batch pointers)"
        if kind is Kind.UNKNOWN:
            suffix = " (would be kept)"
        echo(f"  {count} {kind.value}(s){suffix}")
    for reason, count in seen.reasons.most_common():
        echo(f"    {count} x {reason}")
    for bucket, count in seen.in_s3.items():
        echo(f"    {count} of the record-DLQ messages point at a dead letter stored whole in "
             f"s3://{bucket}/ (too big for SQS): replay reads it from there")  # fmt: skip
    _print_pointers(seen, archive, echo)
    if seen.kinds[Kind.RECORD] and not (pointers_only or archive):
        echo(f"  would replay {seen.kinds[Kind.RECORD]} record(s) through the indexer and delete each "
             "message once its record is indexed or found stale")  # fmt: skip


def _print_pointers(seen: _Seen, archive: bool, echo: Callable[[str], None]) -> None:
    if seen.kinds[Kind.POINTER]:
        then = ("put each record's archive line to Firehose (a range partly archived before gets "
                "some lines twice: harmless)") if archive else "index them"  # fmt: skip
        echo(f"  batch pointers cover {seen.records_in_ranges} stream records; would re-read them "
             f"from the stream and {then}")  # fmt: skip
    if seen.aged:
        way_out = "those need `ddbsync repair` over their window"
        if archive:
            way_out = "the archive has a gap there: rebuild from a backfill, or accept the gap"
        echo(f"  {seen.aged} pointer(s) start more than 24 h ago: the stream has probably trimmed "
             f"them; {way_out} (docs/runbook.md)")  # fmt: skip


def _older_than_retention(iso: str | None) -> bool:
    if iso is None:
        return False
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.now(UTC) - when).total_seconds() > STREAM_RETENTION_S
