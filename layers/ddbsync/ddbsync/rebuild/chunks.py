"""An archive object's lines cut into chunks, each mapped as the stream indexer maps a batch.

A chunk holds at most ``settings.bulk_max_actions`` lines and ``settings.bulk_max_bytes``
bytes of lines (a longer line travels alone; a line is larger than the bulk lines of its
document, which drop the type tags, the keys and the old image). Each line is parsed with
orjson (a line that is not JSON is poison) and the chunk goes through
``mapping.map_records`` (stream versions), the window ``[since, until)`` on
``ApproximateCreationDateTime`` in whole seconds, ``collapse``, ``materialize_newest`` and
``make_writes``. What is left per line is its outcome so far in the chunk's
:class:`~ddbsync.accounting.Ledger` (skipped by configuration or outside the window), its
poison reason, or a write to send; the records themselves are let go once serialized.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from ddbsync.accounting import Disposition, Ledger
from ddbsync.config import Settings
from ddbsync.mapping import Change, Poison, collapse, map_records, materialize_newest
from ddbsync.opensearch.bulk import Write, make_writes

__all__ = ["Chunk", "Window", "chunks", "map_chunk"]


@dataclass(slots=True)
class Chunk:
    """One chunk, mapped and serialized; ``reasons`` are its poison lines (by position)."""

    lines: list[int]
    ledger: Ledger
    writes: list[Write]
    reasons: dict[int, str]
    outside: set[int]


def _second(record: object) -> int | None:
    """The record's ApproximateCreationDateTime in whole seconds, None when it has none."""
    ddb = record.get("dynamodb") if isinstance(record, dict) else None
    created = ddb.get("ApproximateCreationDateTime") if isinstance(ddb, dict) else None
    if isinstance(created, bool) or not isinstance(created, int | float) or not math.isfinite(created):
        return None
    return int(created)


class Window:
    def __init__(self, since: float | None, until: float | None) -> None:
        self.since, self.until = since, until

    def holds(self, second: int) -> bool:
        return (self.since is None or second >= self.since) and (self.until is None or second < self.until)


def _parse(raws: list[tuple[int, bytes]]) -> tuple[list[object], dict[int, str]]:
    """Each line's JSON (None when it is not JSON), and the reasons of the lines that are not."""
    reasons: dict[int, str] = {}
    records: list[object] = []
    for position, (_, raw) in enumerate(raws):
        try:
            records.append(orjson.loads(raw))
        except orjson.JSONDecodeError as e:
            records.append(None)  # map_records makes it poison; the reason is this one
            reasons[position] = f"not a JSON line: {e}"
    return records, reasons


def _in_window(
    records: list[object], settings: Settings, window: Window, chunk: Chunk
) -> list[Change]:
    """Map every record as the indexer does; the changes inside the window (the rest settled)."""
    s = settings
    changes, poison = map_records(records, s.partition_key, s.sort_key, s.ttl_removes, decode=False)  # type: ignore[arg-type]
    for p in poison:
        (position,) = p.members
        second = _second(records[position])
        if position not in chunk.reasons and second is not None and not window.holds(second):
            chunk.outside.add(position)
            chunk.ledger.settle(p.members, Disposition.SKIPPED)
        else:
            chunk.reasons.setdefault(position, p.reason)
    kept: list[Change] = []
    for change in changes:
        if window.holds(change.created_seconds):
            kept.append(change)
        else:
            chunk.outside.update(change.members)
            chunk.ledger.settle(change.members, Disposition.SKIPPED)
    return kept


def map_chunk(
    raws: list[tuple[int, bytes]], settings: Settings, window: Window, target: str
) -> Chunk:
    """Parse, map (as the indexer does), window, collapse, decode and serialize one chunk."""
    records, reasons = _parse(raws)
    chunk = Chunk([line for line, _ in raws], Ledger.of(len(raws)), [], reasons, set())
    del raws
    kept = _in_window(records, settings, window, chunk)
    del records
    late: list[Poison] = []
    alive: list[Change] = []
    for change in collapse(kept):
        if change.op == "skip":
            chunk.ledger.settle(change.members, Disposition.SKIPPED)
            continue
        ready = materialize_newest(change, late) if change.op == "index" else change
        if ready is not None:
            alive.append(ready)
    for p in late:
        for position in p.members:
            chunk.reasons[position] = p.reason
    chunk.writes = make_writes(alive, [target])
    for change in alive:  # only the serialized source is sent: let the records go
        change.record, change.body, change.older = None, None, ()
    return chunk


def chunks(
    raws: Iterator[tuple[int, bytes]], settings: Settings, window: Window, target: str
) -> Iterator[Chunk]:
    batch: list[tuple[int, bytes]] = []
    size = 0
    for line, raw in raws:
        if batch and (len(batch) >= settings.bulk_max_actions or size + len(raw) > settings.bulk_max_bytes):
            yield map_chunk(batch, settings, window, target)
            batch, size = [], 0
        batch.append((line, raw))
        size += len(raw)
    if batch:
        yield map_chunk(batch, settings, window, target)
