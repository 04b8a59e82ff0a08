"""External versions that make every write path converge (see docs/versioning.md).

A version is ``second << 20 | slot``:

* ``second`` is the change's ``ApproximateCreationDateTime`` (whole seconds), so a
  change in a later second always wins, whichever invocation, retry or replay
  delivers it. (A 40-digit ``SequenceNumber`` does not fit a 64-bit version, so
  it is kept in the document as text instead.)
* ``slot`` is 0 for a stream write. Two changes to one item in the *same* second
  get the same version, and OpenSearch answers the second one 409. The
  indexer then compares the full sequence numbers stored in ``_ddbsync.seq``
  and, when the new change is really newer, rewrites the document with
  ``if_seq_no``/``if_primary_term`` (compare-and-set), which bumps the slot by
  one. No per-invocation counter is involved, so nothing restarts at 0.
* An export item (backfill) taken at time T gets ``floor(T) << 20 - 1``: below
  every change in second ``floor(T)`` or later, above every earlier change.
* An index built from a snapshot has a *floor* F (epoch seconds): an index write whose
  version is below :func:`floor_version` (F) may not land there (docs/versioning.md,
  "Snapshot floors").

Deletes are tombstone documents carrying their own version, so the order of a
delete and a late stale write never depends on ``index.gc_deletes``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = [
    "SLOT_BITS",
    "Ordering",
    "export_ordering",
    "export_version",
    "floor_version",
    "repair_ordering",
    "repair_version",
    "second_of",
    "sequence_rank",
    "stream_version",
]

SLOT_BITS = 20
_SLOT_MASK = (1 << SLOT_BITS) - 1
_MAX_VERSION = (1 << 63) - 1
# Ranks an export item above every stream change of the second it sits in (T - 1).
EXPORT_RANK = math.inf


def stream_version(approximate_creation_seconds: int) -> int:
    """Version of a stream change made in the given (whole) second."""
    if approximate_creation_seconds < 0:
        raise ValueError("ApproximateCreationDateTime must not be negative")
    version = approximate_creation_seconds << SLOT_BITS
    if version > _MAX_VERSION:
        raise ValueError("ApproximateCreationDateTime is out of range")
    return version


def export_version(export_time_seconds: float) -> int:
    """Version of an item read from an export taken at ``export_time_seconds``."""
    if not export_time_seconds >= 1:
        raise ValueError("export time must be a positive epoch time")
    return stream_version(math.floor(export_time_seconds)) - 1


def floor_version(floor_seconds: int) -> int:
    """The lowest version an index write may have to land in an index whose floor is ``floor_seconds``.

    It is the version of an export item taken at the floor itself, so the index's own
    export items (taken at T >= F) pass, and so does every change of second F or later;
    every change of an earlier second is below it.
    """
    return export_version(floor_seconds)


def export_ordering(export_time_seconds: float) -> Ordering:
    """Where an export item taken at ``export_time_seconds`` sits: top of the second before it.

    The pair of :func:`export_version`: above every change of an earlier second, below
    every change of second ``floor(T)`` or later (docs/versioning.md, rule 4).
    """
    return Ordering(math.floor(export_time_seconds) - 1, EXPORT_RANK)


def repair_version(write_time_micros: int) -> int:
    """Version of an incremental-export record written in second ``s``: ``export_version(s + 1)``.

    The record is the item as a full export taken at ``s + 1`` would hold it (an
    incremental export is compacted: nothing changed the item after it within the
    window), so it gets that export item's version; docs/versioning.md, "Repair".
    """
    return export_version(write_time_micros // 1_000_000 + 1)


def repair_ordering(write_time_micros: int) -> Ordering:
    """The pair of :func:`repair_version`: above every stream change of ``s``, below every later second."""
    return export_ordering(write_time_micros // 1_000_000 + 1)


def second_of(version: int) -> int:
    """The second a version belongs to."""
    return version >> SLOT_BITS


def sequence_rank(sequence_number: str) -> int:
    """A stream SequenceNumber as an exact integer (21 to 40 digits; compared exactly)."""
    if not (sequence_number.isascii() and sequence_number.isdigit()):
        raise ValueError(f"SequenceNumber must be digits, got {sequence_number!r}")
    return int(sequence_number)


class Ordering(NamedTuple):
    """Where a write sits in an item's history: its second, then its rank in that second."""

    second: int
    rank: float | int

    def newer_than(self, other: Ordering) -> bool:
        return (self.second, self.rank) > (other.second, other.rank)

    @staticmethod
    def can_bump(stored_version: int) -> bool:
        """Whether a compare-and-set write (version + 1) stays in the stored version's second."""
        return (stored_version & _SLOT_MASK) != _SLOT_MASK
