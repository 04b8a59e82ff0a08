"""Index the items of one export data file into the backfill's index, resumably.

Items are read line by line, written in chunks with the export version (below
every stream change after the export time, see docs/versioning.md), and the
checkpoint — the last line whose write OpenSearch acknowledged — only moves past a
chunk once every item in it is applied or known stale. When the invocation runs
short of time the file stops there and the state machine calls again from the
checkpoint: no line is indexed twice needlessly and none is skipped.

Memory is bounded in bytes, not only in items: a chunk ends at ``chunk_items``
items or when the next item's bulk lines would take it past ``BULK_MAX_BYTES``
(an item larger than that travels alone), and of each item a chunk keeps only the
serialized document (the parsed line and the decoded body are dropped once it is
written). So a chunk is one ``_bulk`` request (unless ``BULK_MAX_ACTIONS`` is below
``chunk_items``), and at any time a file holds about one chunk being sent (its
documents, the request body and its pieces), one chunk read ahead
(:mod:`ddbsync.prefetch`) and the item being read: a few times ``BULK_MAX_BYTES``
plus one item, whatever the size of the items or of the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import orjson

from ddbsync.accounting import Disposition, Ledger, settle_writes
from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.dynamodb.keys import document_id
from ddbsync.errors import BackfillFileError, DdbsyncError
from ddbsync.gcpause import paused_gc
from ddbsync.mapping import Change, document_meta, image_body
from ddbsync.opensearch.bulk import Outcome, Write, source_of
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import Transport
from ddbsync.prefetch import prefetched
from ddbsync.versioning import export_ordering, export_version

__all__ = ["BackfillFileError", "FileProgress", "export_change", "index_items"]

CHUNK_ITEMS = 500


@dataclass(frozen=True, slots=True)
class FileProgress:
    """Where a file stands after one call: ``checkpoint`` is the last acknowledged line."""

    done: bool
    checkpoint: int
    indexed: int
    stale: int



def export_change(
    item: Mapping[str, object], partition_key: str, sort_key: str | None, export_time: float
) -> Change:
    """The document write for one exported item (DynamoDB JSON)."""
    body = image_body(item, document_meta("export", math.floor(export_time)))
    return Change(
        document_id(item, partition_key, sort_key),
        "index",
        export_version(export_time),
        export_ordering(export_time),
        body,
        None,
    )


def _prepared_chunks(
    items: Iterable[tuple[int, Mapping[str, object]]],
    key: str,
    settings: Settings,
    export_time: float,
    target: str,
    chunk_items: int,
) -> Iterator[tuple[list[int], list[Write]]]:
    """Read, decode and serialize the file chunk by chunk: (line numbers, writes) per chunk.

    A chunk holds at most ``chunk_items`` writes whose bulk lines add up to at most
    ``settings.bulk_max_bytes``, or a single larger write.
    """
    chunk_bytes = settings.bulk_max_bytes
    quoted_target = len(orjson.dumps(target))
    action_bytes = -1  # the bulk lines of a write beyond its source, id and target
    lines: list[int] = []
    writes: list[Write] = []
    size = 0
    for line, item in items:
        try:
            change = export_change(item, settings.partition_key, settings.sort_key, export_time)
            # orjson hands back its whole output buffer (4 KiB at least, up to about 12
            # times the JSON for a long string); an exact copy lets that go at once.
            source = bytes(memoryview(source_of(change)))
        except DdbsyncError as e:  # DecodeError, RecordError: the item cannot be a document
            raise BackfillFileError(key, line, str(e)) from e
        del item  # the parsed line: not needed any more
        change.body = None  # the decoded copy: only the serialized source is sent
        write = Write(target, change, source)
        quoted_id = len(orjson.dumps(change.doc_id))
        if action_bytes < 0:
            # Same for every write of the file (one target, one export version).
            action_bytes = len(write.lines()) - len(source) - quoted_id - quoted_target
        cost = action_bytes + quoted_target + quoted_id + len(source)
        if writes and (len(writes) >= chunk_items or size + cost > chunk_bytes):
            yield lines, writes
            lines, writes, size = [], [], 0
        change.members = (len(writes),)  # its slot in the chunk's ledger
        lines.append(line)
        writes.append(write)
        size += cost
    if writes:
        yield lines, writes


@dataclass(slots=True)
class _Tally:
    checkpoint: int
    indexed: int = 0
    stale: int = 0

    def progress(self, done: bool) -> FileProgress:
        return FileProgress(done, self.checkpoint, self.indexed, self.stale)


def _send_chunk(
    tally: _Tally,
    lines: list[int],
    writes: list[Write],
    key: str,
    settings: Settings,
    transport: Transport,
    deadline: Deadline,
) -> bool:
    """Send one chunk and count it; False when a write is left unsent (stop the file there).

    The chunk's records are accounted as every writer's are (:mod:`ddbsync.accounting`);
    a backfill then stops at the first line left unsent (the checkpoint stays before it)
    and fails on a line OpenSearch rejected, as nothing may be missing from a new index.
    """
    ledger = Ledger.of(len(writes))
    report = send(settings, writes, transport, deadline)
    rejected = {
        done.change.members[0]: done.reason
        for done in settle_writes(ledger, report.writes)
        if done.outcome is Outcome.POISON
    }
    for position, disposition in enumerate(ledger.dispositions):
        if position in rejected:
            reason = f"OpenSearch rejected the item: {rejected[position]}"
            raise BackfillFileError(key, lines[position], reason)
        if disposition is Disposition.FAILED:
            return False
        if disposition is Disposition.STALE:
            tally.stale += 1
        else:
            tally.indexed += 1
        tally.checkpoint = lines[position]
    return True


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

    Chunks hold at most ``chunk_items`` items and ``settings.bulk_max_bytes`` bytes of
    bulk lines (or one larger item). The next chunk is read and decoded in a
    background thread while the current one is being sent (:mod:`ddbsync.prefetch`);
    chunks are still sent, acknowledged and checkpointed strictly in order, and a chunk
    read ahead but not sent is simply read again by the next call.
    """
    tally = _Tally(start_line)
    chunks = _prepared_chunks(items, key, settings, export_time, target, chunk_items)
    with prefetched(chunks) as ready:
        while True:
            if deadline.expired():
                return tally.progress(False)
            prepared = next(ready, None)
            if prepared is None:
                return tally.progress(True)
            sent = _send_chunk(tally, *prepared, key, settings, transport, deadline)
            prepared = None  # let this chunk go before waiting for the next one
            if not sent:
                return tally.progress(False)
