"""The archiver: one batch of stream records in, each record archived, dead-lettered or failed, once.

Flow: each record -> its archive line (``archive/lines.py``); a record that cannot be a
line, or whose line is over Firehose's 1,000 KiB record limit, goes whole to the record DLQ
with its reason (``dlq.py``: SQS, or S3 behind a pointer over 256 KiB) -> the lines to
Firehose (``archive/sender.py``) -> whatever is unsent when time is up, or refused by the
DLQ, becomes ``batchItemFailures`` (:class:`~ddbsync.accounting.BatchLedger`, as in the indexer).
A record counts as handled only once Firehose accepted its line or it is safely in the DLQ.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ddbsync.accounting import BatchLedger, Disposition, dead_letter
from ddbsync.archive.lines import MAX_RECORD_BYTES, archive_line
from ddbsync.archive.sender import Entry, FirehoseClient, send_lines
from ddbsync.archive.settings import ArchiveSettings
from ddbsync.deadline import Deadline
from ddbsync.dlq import DeadLetter, DeadLetterSink, SqsDeadLetters
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.errors import RecordError
from ddbsync.mapping import sequence_number_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["TOO_LARGE", "ArchiveResult", "Archiver"]

TOO_LARGE = "ArchiveLineTooLarge"  # a dead letter's error_type for a line over the record limit


@dataclass(slots=True)
class ArchiveResult(BatchLedger):
    """What one batch did: one :class:`Disposition` per record (APPLIED means archived)."""

    @property
    def archived(self) -> int:
        return self.count(Disposition.APPLIED)

    @property
    def dead_lettered(self) -> int:
        return self.count(Disposition.DEAD_LETTERED)

    @property
    def unsent(self) -> int:
        return self.count(Disposition.FAILED)


@dataclass(slots=True)
class _Letters:
    letters: list[DeadLetter] = field(default_factory=list)
    members: list[tuple[int]] = field(default_factory=list)  # each letter's batch position

    def add(self, position: int, record: object, reason: str, error_type: str) -> None:
        self.letters.append(DeadLetter(record, reason, error_type, sequence_number_of(record)))
        self.members.append((position,))


class Archiver:
    """Holds the clients; :meth:`process` archives one batch. Reused across invocations."""

    def __init__(
        self,
        settings: ArchiveSettings,
        firehose: FirehoseClient,
        sqs: SQSClient,
        *,
        dead_letters: DeadLetterSink | None = None,
        s3: S3Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.firehose = firehose
        self.dead_letters = dead_letters or SqsDeadLetters.configured(
            sqs, settings.record_dlq_url, settings.dead_letter_bucket, settings.dead_letter_kms_key_id,
            s3=s3, region=settings.region,
        )  # fmt: skip
        self.sleep = sleep
        self.rng = rng

    def process(self, records: Sequence[RawRecord], remaining_ms: Callable[[], int]) -> ArchiveResult:
        result = ArchiveResult(received=len(records), dispositions=[None] * len(records))
        entries: list[Entry] = []
        letters = _Letters()
        for position, record in enumerate(records):
            try:
                line = archive_line(record)
            except RecordError as e:
                letters.add(position, record, str(e), type(e).__name__)
                continue
            if len(line) > MAX_RECORD_BYTES:
                reason = f"archive line of {len(line)} bytes is over Firehose's 1,000 KiB record limit"
                letters.add(position, record, reason, TOO_LARGE)
            else:
                entries.append(Entry(position, line))
        s = self.settings
        deadline = Deadline(remaining_ms, s.timeout_margin_ms)
        outcome = send_lines(
            self.firehose, s.archive_stream_name, entries, deadline,
            retry_base_ms=s.retry_base_ms, retry_max_ms=s.retry_max_ms, sleep=self.sleep, rng=self.rng,
        )  # fmt: skip
        result.retries = outcome.retries
        result.settle((e.position for e in outcome.sent), Disposition.APPLIED)
        result.settle((e.position for e in outcome.unsent), Disposition.FAILED)
        dead_letter(result, self.dead_letters, letters.letters, letters.members, "record not archived")
        result.finish(records)
        return result
