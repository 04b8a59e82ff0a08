"""``ddbsync replay --dry-run``: what the queue holds (counts and reasons), nothing sent or deleted.

Needs no OpenSearch settings. Every message read is made visible again at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ddbsync.redact import short_reason
from ddbsync.replay.messages import BatchPointer, Kind, RecordLetter, StoredLetter, classify
from ddbsync.replay.queue import make_visible, receive
from ddbsync.replay.report import EXIT_OK

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["dry_run"]

# DynamoDB streams keep records for 24 hours.
STREAM_RETENTION_S = 24 * 3600
# How long a message read by the dry run stays hidden if making it visible again fails.
_VISIBILITY_TIMEOUT_S = 60


def dry_run(
    sqs: SQSClient,
    queue_url: str,
    pointers_only: bool,
    max_messages: int | None,
    echo: Callable[[str], None],
) -> int:
    """Read up to ``max_messages`` (all by default), print what they are; return the exit code."""
    received = 0
    kinds: Counter[Kind] = Counter()
    reasons: Counter[str] = Counter()
    in_s3: Counter[str] = Counter()  # bucket -> letters stored there
    records_in_ranges = 0
    aged = 0
    receipts: list[str] = []
    for batch in receive(sqs, queue_url, max_messages, _VISIBILITY_TIMEOUT_S):
        received += len(batch)
        for sqs_message in batch:
            receipts.append(sqs_message["ReceiptHandle"])
            message = classify(sqs_message.get("Body", ""))
            kinds[message.kind] += 1
            if isinstance(message, RecordLetter | StoredLetter):
                reasons[short_reason(f"{message.error_type}: {message.reason}")] += 1
                if isinstance(message, StoredLetter):
                    in_s3[str(message.bucket)] += 1
            elif isinstance(message, BatchPointer):
                records_in_ranges += message.batch_size or 0
                if _older_than_retention(message.first_arrival):
                    aged += 1
                reasons[f"batch pointer: {message.condition}"] += 1
    make_visible(sqs, queue_url, receipts, echo)
    echo(f"dry run: {received} message(s) read, nothing sent or deleted")
    for kind, count in kinds.items():
        suffix = ""
        if kind is Kind.RECORD and pointers_only:
            suffix = " (would be kept: --on-failure-queue expects batch pointers)"
        if kind is Kind.UNKNOWN:
            suffix = " (would be kept)"
        echo(f"  {count} {kind.value}(s){suffix}")
    for reason, count in reasons.most_common():
        echo(f"    {count} x {reason}")
    for bucket, count in in_s3.items():
        echo(f"    {count} of the record-DLQ messages point at a dead letter stored whole in "
             f"s3://{bucket}/ (too big for SQS): replay reads it from there")  # fmt: skip
    if kinds[Kind.POINTER]:
        echo(f"  batch pointers cover {records_in_ranges} stream records; would re-read them "
             "from the stream and index them")  # fmt: skip
    if aged:
        echo(f"  {aged} pointer(s) start more than 24 h ago: the stream has probably trimmed them; "
             "those need `ddbsync repair` over their window (docs/runbook.md)")  # fmt: skip
    if kinds[Kind.RECORD]:
        echo(f"  would replay {kinds[Kind.RECORD]} record(s) through the indexer and delete each "
             "message once its record is indexed or found stale")  # fmt: skip
    return EXIT_OK


def _older_than_retention(iso: str | None) -> bool:
    if iso is None:
        return False
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.now(UTC) - when).total_seconds() > STREAM_RETENTION_S
