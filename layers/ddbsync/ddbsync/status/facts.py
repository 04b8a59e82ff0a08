"""What ``ddbsync status`` found: one small frozen record per source, nothing judged yet.

A source that could not be read is an :class:`Unknown` with its reason; a source nobody
named (no flag, no stack output) is a :class:`Skipped`. Everything else is a plain record
of what AWS or OpenSearch answered, so :mod:`ddbsync.status.judge` can be a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, TypeVar

__all__ = [
    "AliasState",
    "ArchiveState",
    "Counts",
    "Execution",
    "Facts",
    "Mapping",
    "MetricReading",
    "QueueDepth",
    "QueueFacts",
    "ReaderFacts",
    "Skipped",
    "Unknown",
    "Value",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Unknown:
    """A source that failed to answer; ``reason`` is one line (an AWS error code and message)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A source not checked because nothing names it (``reason`` says which flag or output)."""

    reason: str


# What a source gives: its record, or why there is none.
Value: TypeAlias = T | Unknown | Skipped


@dataclass(frozen=True, slots=True)
class Mapping:
    """A Lambda event source mapping, as GetEventSourceMapping answers it."""

    uuid: str
    function: str
    state: str
    last_result: str | None
    batch_size: int | None


@dataclass(frozen=True, slots=True)
class MetricReading:
    """A CloudWatch metric's Maximum over a window: the largest and the newest datapoint.

    Both are None when the window has no datapoint (the metric is not published, or the
    resource was idle).
    """

    maximum: float | None
    latest: float | None
    window_s: int


@dataclass(frozen=True, slots=True)
class ReaderFacts:
    """One reader of the table's stream (``indexer`` or ``archiver``)."""

    role: str
    mapping: Value[Mapping]
    # IteratorAge (milliseconds), Maximum over the window.
    iterator_age: Value[MetricReading]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """SQS's approximate counts: waiting, received but not deleted, delayed."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """A queue of the stack: ``role`` is ``record-dlq``, ``on-failure`` or ``archive-on-failure``."""

    role: str
    url: str | None
    depth: Value[QueueDepth]
    # ApproximateAgeOfOldestMessage (seconds), Maximum over the window.
    oldest_age: Value[MetricReading]


@dataclass(frozen=True, slots=True)
class AliasState:
    """Where the live alias and ``<alias>-next`` point (None: nowhere)."""

    alias: str
    live_index: str | None
    next_alias: str
    next_index: str | None
    # The live index's snapshot floor (epoch seconds): set by the backfill that built it.
    floor: int | None


@dataclass(frozen=True, slots=True)
class Execution:
    """The newest execution of the backfill state machine (epoch seconds)."""

    name: str
    arn: str
    status: str
    started: float
    stopped: float | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Documents through the alias (tombstones hidden), the table's ItemCount, tombstones."""

    documents: Value[int]
    # DescribeTable's ItemCount: an estimate DynamoDB updates about every six hours.
    items: Value[int]
    # Documents with ``_ddbsync.deleted: true`` in the live index (counted on the index:
    # the alias's filter hides them).
    tombstones: Value[int]


@dataclass(frozen=True, slots=True)
class ArchiveState:
    """The archive bucket's newest ``table=<t>/dt=<d>/hour=<h>/`` partition, and its error prefix."""

    bucket: str
    prefix: str
    newest: str | None
    # Epoch seconds of the start of the newest partition's hour (UTC).
    newest_hour: float | None
    has_errors: bool


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything gathered, at ``now`` (epoch seconds)."""

    now: float
    readers: tuple[ReaderFacts, ...] = ()
    queues: tuple[QueueFacts, ...] = ()
    alias: Value[AliasState] = Skipped("no alias")
    execution: Value[Execution | None] = Skipped("no state machine")
    counts: Counts = Counts(Skipped("no alias"), Skipped("no table"), Skipped("no alias"))
    archive: Value[ArchiveState] = Skipped("no archive bucket")
