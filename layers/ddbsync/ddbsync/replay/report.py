"""What a replay did, its exit code, and the summary it prints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ddbsync.indexer import BatchResult

__all__ = ["EXIT_KEPT", "EXIT_OK", "EXIT_SETUP", "ReplayReport"]

# 0 everything handled; 1 some messages kept (or the run stopped early); 2 could not start.
EXIT_OK, EXIT_KEPT, EXIT_SETUP = 0, 1, 2


@dataclass(slots=True)
class ReplayReport:
    """What one run did: message counts, and record counts for the records it sent.

    ``archive``: a re-archive (``--archive-on-failure-queue``), whose records are counted as
    ``archived`` (accepted by Firehose) or sent to the record DLQ, never indexed.
    """

    archive: bool = False
    received: int = 0
    deleted: int = 0
    kept: int = 0
    replayed: int = 0  # records indexed, deleted (tombstones) or skipped by configuration
    stale: int = 0  # records older than what the index holds: nothing to do
    superseded: int = 0  # of the stale: still rejected, but the index holds a newer change
    to_record_dlq: int = 0  # poison records of a stream range, now whole in the record DLQ
    archived: int = 0  # records of a stream range whose archive line Firehose accepted
    stopped_early: str | None = None
    kept_reasons: Counter[str] = field(default_factory=Counter)

    def exit_code(self) -> int:
        return EXIT_KEPT if self.kept or self.stopped_early else EXIT_OK

    def add(self, result: BatchResult) -> None:
        """Add the records of one handled message."""
        self.replayed += result.indexed + result.deleted + result.skipped
        self.stale += result.stale
        self.superseded += result.superseded

    def batch_line(self) -> str:
        """The line printed after each batch of messages."""
        if self.archive:
            return (f"  {self.received} received: {self.deleted} deleted, {self.kept} kept "
                    f"({self.archived} records archived, "
                    f"{self.to_record_dlq} to the record DLQ)")  # fmt: skip
        return (f"  {self.received} received: {self.deleted} deleted, {self.kept} kept "
                f"({self.replayed} records replayed, {self.stale} stale, "
                f"{self.to_record_dlq} to the record DLQ)")  # fmt: skip

    def print_summary(self, echo: Callable[[str], None]) -> None:
        """The summary at the end of a run."""
        echo(f"done: {self.received} message(s) received, {self.deleted} deleted, "
             f"{self.kept} kept in the queue")  # fmt: skip
        if self.archive:
            echo(f"  records archived {self.archived}, sent to the record DLQ {self.to_record_dlq}; "
                 f"messages still failing {self.kept}")  # fmt: skip
        else:
            echo(f"  records replayed {self.replayed}, stale {self.stale}, "
                 f"sent to the record DLQ {self.to_record_dlq}, still failing {self.kept}")  # fmt: skip
        if self.superseded:
            echo(f"  stale (superseded): {self.superseded} record(s) OpenSearch still rejects, but the "
                 "index already holds a newer change of the item; their messages were deleted")  # fmt: skip
        for reason, count in self.kept_reasons.most_common():
            echo(f"  still failing: {count} x {reason}")
        if self.kept:
            echo("fix the cause and run the same command again; kept messages were not changed")
