"""Index the items of one export data file into the backfill's index, resumably.

Items are read line by line (bounded memory), written in chunks with the export
version (below every stream change after the export time, see
docs/versioning.md), and the checkpoint — the last line whose write OpenSearch
acknowledged — only moves past a chunk once every item in it is applied or
known stale. When the invocation runs short of time the file stops there and the
state machine calls again from the checkpoint: no line is indexed twice needlessly
and none is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from ddbsync.bulk import Deadline, Outcome, Write, make_writes
from ddbsync.config import Settings
from ddbsync.decode import JsonValue, decode_item
from ddbsync.docid import document_id
from ddbsync.errors import DdbsyncError
from ddbsync.gcpause import paused_gc
from ddbsync.mapping import META_FIELD, Change
from ddbsync.prefetch import prefetched
from ddbsync.sending import send
from ddbsync.transport import Transport
from ddbsync.versioning import export_ordering, export_version

__all__ = ["BackfillFileError", "FileProgress", "export_change", "index_items"]

CHUNK_ITEMS = 500


class BackfillFileError(DdbsyncError):
    """An export item that cannot be indexed: the backfill stops, the alias is not swapped."""

    def __init__(self, key: str, line: int, reason: str) -> None:
        self.key = key
        self.line = line
        self.reason = reason
        super().__init__(f"{key}, line {line}: {reason}")


@dataclass(frozen=True, slots=True)
class FileProgress:
    """Where a file stands after one call: ``checkpoint`` is the last acknowledged line."""

    done: bool
    checkpoint: int
    indexed: int
    stale: int


def _export_meta(second: int) -> dict[str, JsonValue]:
    return {"seq": None, "ts": second, "source": "export"}



def export_change(
    item: Mapping[str, object], partition_key: str, sort_key: str | None, export_time: float
) -> Change:
    """The document write for one exported item (DynamoDB JSON)."""
    second = math.floor(export_time)
    if META_FIELD in item:
        raise ValueError(f"item has an attribute named {META_FIELD!r}, reserved by ddbsync")
    body = decode_item(item)
    body[META_FIELD] = _export_meta(second)
    return Change(
        document_id(item, partition_key, sort_key),
        "index",
        export_version(export_time),
        export_ordering(export_time),
        body,
        {},
    )


def _prepared_chunks(
    items: Iterable[tuple[int, Mapping[str, object]]],
    key: str,
    settings: Settings,
    export_time: float,
    target: str,
    chunk_items: int,
) -> Iterator[tuple[list[int], list[Write]]]:
    """Read, decode and serialize the file chunk by chunk: (line numbers, writes) per chunk."""
    iterator = iter(items)
    while True:
        chunk = list(islice(iterator, chunk_items))
        if not chunk:
            return
        changes = []
        for line, item in chunk:
            try:
                changes.append(export_change(item, settings.partition_key, settings.sort_key, export_time))
            except (DdbsyncError, ValueError) as e:
                raise BackfillFileError(key, line, str(e)) from e
        yield [line for line, _ in chunk], make_writes(changes, [target])


@paused_gc()
def index_items(
    items: Iterable[tuple[int, Mapping[str, object]]],
    *,
    key: str,
    start_line: int,
    export_time: float,
    target: str,
    settings: Settings,
    transport: Transport,
    deadline: Deadline,
    chunk_items: int = CHUNK_ITEMS,
) -> FileProgress:
    """Index ``(line, item)`` pairs after ``start_line`` until the file ends or time runs short.

    The next chunk is read and decoded in a background thread while the current one
    is being sent (:mod:`ddbsync.prefetch`); chunks are still sent, acknowledged and
    checkpointed strictly in order, and a chunk read ahead but not sent is simply
    read again by the next call.
    """
    checkpoint, indexed, stale = start_line, 0, 0
    chunks = _prepared_chunks(items, key, settings, export_time, target, chunk_items)
    with prefetched(chunks) as ready:
        while True:
            if deadline.expired():
                return FileProgress(False, checkpoint, indexed, stale)
            prepared = next(ready, None)
            if prepared is None:
                return FileProgress(True, checkpoint, indexed, stale)
            lines, writes = prepared
            report = send(settings, writes, transport, deadline)
            for line, write in zip(lines, report.writes, strict=True):
                result = write.result
                if result is None or result.outcome is Outcome.UNSENT:
                    # Resume from here next time: the checkpoint stays before this line.
                    return FileProgress(False, checkpoint, indexed, stale)
                if result.outcome is Outcome.POISON:
                    raise BackfillFileError(key, line, f"OpenSearch rejected the item: {result.reason}")
                if result.outcome is Outcome.STALE:
                    stale += 1
                else:
                    indexed += 1
                checkpoint = line
