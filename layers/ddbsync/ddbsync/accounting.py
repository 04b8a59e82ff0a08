"""Where each record ends: one outcome per record, settled once, the same way for every writer.

The stream indexer, replay, the backfill's file indexing and repair all turn items into
document writes (:class:`~ddbsync.opensearch.bulk.Write`) and send them. What a write's
outcome means for the records behind it is decided here, once:

* a change's writes (one per target alias while a backfill runs) combine to the worst
  outcome: not sent > rejected (poison) > applied > stale;
* applied -> :attr:`Disposition.APPLIED`, stale -> :attr:`Disposition.STALE`,
  not sent -> :attr:`Disposition.FAILED` (delivered or read again later);
* a rejected write is returned to the writer, which settles it its own way: the stream
  indexer sends the record to the DLQ, the backfill stops on the file's line, repair
  lists it.

A :class:`Ledger` holds one slot per record (batch position or line); a record given
two outcomes is a bug and raises :class:`~ddbsync.errors.AccountingError`. The Lambdas on
the stream (the indexer and the archiver) keep a :class:`BatchLedger`: records the DLQ took
are settled by :func:`dead_letter`, and :meth:`BatchLedger.finish` turns what failed into
``batchItemFailures``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ddbsync.dlq import DeadLetter, DeadLetterSink
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.errors import AccountingError, DeadLetterError
from ddbsync.mapping import Change, sequence_number_of
from ddbsync.observability import logger
from ddbsync.opensearch.bulk import Outcome, Write, WriteResult

__all__ = [
    "BatchLedger",
    "ChangeOutcome",
    "Disposition",
    "Ledger",
    "batch_item_failures",
    "change_outcomes",
    "dead_letter",
    "settle_writes",
]


class Disposition(enum.Enum):
    """Where one record ended: exactly one of these, once."""

    APPLIED = "applied"  # its change (or a newer change of its key) was written
    STALE = "stale"  # the index already held a newer or equal change
    SKIPPED = "skipped"  # skipped by configuration (TTL_REMOVES=keep)
    DEAD_LETTERED = "dead_lettered"  # whole in the record DLQ, with the reason
    FAILED = "failed"  # not handled now: delivered (or read) again later


@dataclass(slots=True)
class Ledger:
    """One outcome slot per record; :meth:`settle` fills a slot once."""

    dispositions: list[Disposition | None] = field(default_factory=list)

    @classmethod
    def of(cls, size: int) -> Ledger:
        return cls([None] * size)

    def settle(self, members: Iterable[int], disposition: Disposition) -> None:
        """Give each record in ``members`` its outcome; a record settled twice is a bug."""
        for position in members:
            if self.dispositions[position] is not None:
                raise AccountingError(
                    f"record {position} ended both {self.dispositions[position]} and {disposition}"
                )
            self.dispositions[position] = disposition

    def count(self, disposition: Disposition) -> int:
        return sum(1 for d in self.dispositions if d is disposition)

    def gaps(self) -> list[int]:
        """Records without an outcome yet."""
        return [i for i, d in enumerate(self.dispositions) if d is None]

    def positions(self, disposition: Disposition) -> list[int]:
        return [i for i, d in enumerate(self.dispositions) if d is disposition]


@dataclass(slots=True)
class BatchLedger(Ledger):
    """The ledger of one Lambda batch of stream records; ``failed_sequence_numbers`` are reported."""

    received: int = 0
    retries: int = 0
    failed_sequence_numbers: list[str] = field(default_factory=list)

    def finish(self, records: Sequence[RawRecord]) -> None:
        """Fail what has no outcome (a bug: Lambda delivers it again), and name every failed record."""
        gaps = self.gaps()
        if gaps:
            logger.error("records without an outcome; reported as failures", extra={"positions": gaps})
            self.settle(gaps, Disposition.FAILED)
        self.failed_sequence_numbers = [
            sequence_number_of(records[i]) for i in self.positions(Disposition.FAILED)
        ]

    def response(self) -> dict[str, list[dict[str, str]]]:
        return batch_item_failures(self.failed_sequence_numbers)


def batch_item_failures(sequence_numbers: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The ReportBatchItemFailures response naming ``sequence_numbers``."""
    failed = set(sequence_numbers)
    if any(not (s.isascii() and s.isdigit()) for s in failed):
        # A failed record without a usable SequenceNumber (a hand-made or corrupt event)
        # cannot be named. AWS Lambda, "Configuring partial batch response with DynamoDB
        # and Lambda": an empty-string or null itemIdentifier makes Lambda treat the
        # invocation as a complete failure and retry the whole batch per the retry policy
        # (and send its pointer to the on-failure destination at the end). Naming another
        # record would checkpoint past the unnamed one and lose it.
        return {"batchItemFailures": [{"itemIdentifier": ""}]}
    return {"batchItemFailures": [{"itemIdentifier": s} for s in sorted(failed, key=int)]}


def dead_letter(
    ledger: Ledger,
    sink: DeadLetterSink,
    letters: Sequence[DeadLetter],
    members: Sequence[Iterable[int]],
    what: str,
) -> None:
    """Send ``letters`` to the DLQ; settle each one's records DEAD_LETTERED, or FAILED if refused.

    ``what`` names the letters in the log ("poison record"...): one warning line per letter,
    with its sequence number and error type, never the item.
    """
    if not letters:
        return
    refused: set[str] = set()
    try:
        sink.send(letters)
    except DeadLetterError as e:
        logger.error(f"record DLQ refused letters ({what}); they stay unhandled", extra={"reason": e.reason})
        refused = set(e.failed_ids)
    for letter, positions in zip(letters, members, strict=True):
        accepted = letter.sequence_number not in refused
        ledger.settle(positions, Disposition.DEAD_LETTERED if accepted else Disposition.FAILED)
        logger.warning(
            what,
            extra={"sequence_number": letter.sequence_number, "error_type": letter.error_type,
                   "status": letter.status, "dead_lettered": accepted},
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """The combined outcome of one change's writes, with the worst write's details."""

    change: Change
    outcome: Outcome
    status: int | None
    error_type: str | None
    reason: str | None


_RANK = {Outcome.UNSENT: 3, Outcome.POISON: 2, Outcome.APPLIED: 1, Outcome.STALE: 0}


def change_outcomes(writes: Sequence[Write]) -> list[ChangeOutcome]:
    """Combine the outcomes of each change's writes (one per target alias): the worst wins."""
    worst: dict[int, ChangeOutcome] = {}
    for write in writes:
        if write.result is None:  # the sender gives every write a result; be safe anyway
            write.result = WriteResult(Outcome.UNSENT, None, "no_result", "no result recorded")
        key = id(write.change)
        current = worst.get(key)
        r = write.result
        if current is None or _RANK[r.outcome] > _RANK[current.outcome]:
            worst[key] = ChangeOutcome(write.change, r.outcome, r.status, r.error_type, r.reason)
    return list(worst.values())


def settle_writes(ledger: Ledger, writes: Sequence[Write]) -> list[ChangeOutcome]:
    """Settle the records behind ``writes`` (each change's ``members``); return every change's outcome.

    Every change's records end applied, stale or failed (not sent) here; the records of
    a change OpenSearch rejected (poison) stay unsettled, for the writer.
    """
    outcomes = change_outcomes(writes)
    for done in outcomes:
        if done.outcome is Outcome.POISON:
            continue
        if done.outcome is Outcome.UNSENT:
            ledger.settle(done.change.members, Disposition.FAILED)
        elif done.outcome is Outcome.STALE:
            ledger.settle(done.change.members, Disposition.STALE)
        else:
            ledger.settle(done.change.members, Disposition.APPLIED)
    return outcomes
