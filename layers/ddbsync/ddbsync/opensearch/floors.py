"""Snapshot floors: an index built from a snapshot never gets a document from an older change.

A backfill index is filled from a point-in-time export taken at T. The export already
says which items did not exist at T, so a change older than the snapshot must not create
a live document there: it would bring back an item deleted before T. Prepare records the
index's floor F (epoch seconds, F <= T) in its mapping ``_meta.ddbsync.floor``; writers
read the floors of the indices behind their aliases (a :class:`View`) and
:func:`ddbsync.opensearch.sending.send` applies the rule here:

* an *index* write whose version is below ``floor_version(F)`` is never sent (STALE,
  :data:`FLOOR_REASON`); tombstones are always sent (a hidden tombstone brings nothing back);
* after writing, a live document below the floor found under a refused write's id, or
  under a write that went through an alias that moved meanwhile, is turned into a
  tombstone (compare-and-set, so a newer write in between wins).

Why that is enough: docs/versioning.md, "Snapshot floors".

A tombstone purge (:mod:`ddbsync.purge`) records a second kind of floor in the same
``_meta`` object, ``ddbsync.purged``: index writes below it are refused exactly like
writes below a snapshot floor (the two compose: the higher one refuses), but a live
document below it is legitimate (an item nobody changed since), so the after-writing
check never turns it into a tombstone. Why: docs/versioning.md, "Purging tombstones".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from ddbsync.deadline import Deadline
from ddbsync.mapping import META_FIELD
from ddbsync.observability import logger
from ddbsync.opensearch.bulk import Outcome, Write, WriteResult
from ddbsync.opensearch.transport import StoredMeta, Transport, TransportError
from ddbsync.versioning import floor_version, second_of

__all__ = [
    "FLOOR_ERROR",
    "FLOOR_REASON",
    "Target",
    "View",
    "below_floor",
    "check_after_writing",
    "floor_meta",
    "floor_of_mappings",
    "purged_of_mappings",
    "refuse_below_floors",
]

FLOOR_REASON = "older than the index's snapshot floor"
FLOOR_ERROR = "below_floor"  # the error_type of a write the floor refused
_FLOOR_RESULT = WriteResult(Outcome.STALE, None, FLOOR_ERROR, FLOOR_REASON)
_META_KEY = "ddbsync"


@dataclass(frozen=True, slots=True)
class Target:
    """An alias a writer writes to, the index it resolved to, and that index's floor."""

    alias: str
    index: str | None = None  # None: the alias did not resolve when read
    floor: int | None = None  # None: the index has no snapshot floor
    purged: int | None = None  # None: no tombstone purge has raised the index's purge floor

    @property
    def write_floor(self) -> int | None:
        """The floor an index write must reach to be sent: the higher of the two, or None."""
        floors = [f for f in (self.floor, self.purged) if f is not None]
        return max(floors) if floors else None


@dataclass(frozen=True, slots=True)
class View:
    """What the live alias and the backfill's next alias pointed at when they were read."""

    live: Target
    next: Target | None = None

    @property
    def targets(self) -> tuple[Target, ...]:
        return (self.live,) if self.next is None else (self.live, self.next)

    @property
    def aliases(self) -> list[str]:
        """Where every change goes: the live alias, and the next alias while a backfill runs."""
        return [t.alias for t in self.targets]

    def target(self, alias: str) -> Target | None:
        return next((t for t in self.targets if t.alias == alias), None)

    def floor_of(self, alias: str) -> int | None:
        target = self.target(alias)
        return None if target is None else target.floor

    def highest_floor(self) -> int | None:
        """The highest floor (snapshot or purge) an index write must reach on some target."""
        floors = [f for f in (t.write_floor for t in self.targets) if f is not None]
        return max(floors) if floors else None


def floor_meta(floor: int) -> dict[str, object]:
    """The ``_meta`` entry that records an index's floor."""
    return {_META_KEY: {"floor": floor}}


def floor_of_mappings(mappings: object) -> int | None:
    """The snapshot floor recorded in an index's mappings (``_meta.ddbsync.floor``), or None."""
    return _meta_second(mappings, "floor")


def purged_of_mappings(mappings: object) -> int | None:
    """The purge floor recorded in an index's mappings (``_meta.ddbsync.purged``), or None."""
    return _meta_second(mappings, "purged")


def _meta_second(mappings: object, key: str) -> int | None:
    meta = mappings.get("_meta") if isinstance(mappings, Mapping) else None
    ours = meta.get(_META_KEY) if isinstance(meta, Mapping) else None
    value = ours.get(key) if isinstance(ours, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def below_floor(write: Write, floor: int | None) -> bool:
    """Whether ``write`` is an index write that must not land in an index with this floor."""
    return floor is not None and write.change.op == "index" and write.change.version < floor_version(floor)


def refuse_below_floors(writes: list[Write], view: View) -> tuple[list[Write], list[Write]]:
    """Split ``writes`` into (to send, refused); refused writes are STALE and never sent."""
    lowest = {t.alias: floor_version(f) for t in view.targets if (f := t.write_floor) is not None}
    if not lowest:
        return writes, []
    # Live traffic after a backfill passes every floor: one cheap pass finds that out.
    if all(w.change.version >= lowest.get(w.target, 0) or w.change.op != "index" for w in writes):
        return writes, []
    to_send: list[Write] = []
    refused: list[Write] = []
    for write in writes:
        if write.change.op == "index" and write.change.version < lowest.get(write.target, 0):
            write.result = _FLOOR_RESULT
            refused.append(write)
        else:
            to_send.append(write)
    return to_send, refused


def check_after_writing(
    sent: list[Write],
    refused: list[Write],
    before: View,
    after: View,
    transport: Transport,
    deadline: Deadline,
) -> None:
    """Leave no live document below a floor under the ids just written; see the module doc.

    A write that went through an alias now resolving to another index (a swap, or a new
    backfill's next alias, while the request was in flight) and that is below the new
    index's floor becomes STALE. Only snapshot floors are checked here: a write refused
    by a purge floor alone stays STALE, and the live document under its id (an item
    unchanged since before the purge horizon) is left alone. A check that cannot be made
    leaves its writes UNSENT, so they are retried and checked again.
    """
    moved = {t.alias for t in before.targets if (after.target(t.alias) or Target(t.alias)).index != t.index}
    suspects = list(refused)
    for write in sent:
        result = write.result
        landed = write.target in moved and result is not None and result.outcome is Outcome.APPLIED
        if landed and below_floor(write, after.floor_of(write.target)):
            write.result = _FLOOR_RESULT
            suspects.append(write)
    by_target: dict[str, list[Write]] = defaultdict(list)
    for write in suspects:
        if below_floor(write, after.floor_of(write.target)):
            by_target[write.target].append(write)
    for target, writes in by_target.items():
        floor = after.floor_of(target)
        assert floor is not None  # below_floor() said so
        try:
            _tombstone_below_floor(target, writes, floor, transport, deadline)
        except TransportError as e:
            for write in writes:
                write.result = WriteResult(Outcome.UNSENT, e.status, "floor_check_failed", e.reason)


def _tombstone_below_floor(
    target: str, writes: list[Write], floor: int, transport: Transport, deadline: Deadline
) -> None:
    ids = sorted({w.change.doc_id for w in writes})
    metas = transport.mget(target, ids, deadline.request_timeout_s())
    if len(metas) != len(ids):
        raise TransportError("mget answered with a different number of documents")
    # The compare-and-set bumps the version by one: it must stay below the floor, where the
    # snapshot's own item (if the export is still being written) will still outrank it.
    lowest = floor_version(floor)
    lines = [
        _cas_tombstone(target, doc_id, meta)
        for doc_id, meta in zip(ids, metas, strict=True)
        if meta.found and not meta.deleted and meta.version + 1 < lowest
    ]
    if not lines:
        return
    results = transport.bulk(b"".join(lines), deadline.request_timeout_s())
    done = sum(r.status in (200, 201) for r in results)
    # A 409 means a write landed in between: it is newer than the document we looked at.
    logger.warning(
        "documents below the index's snapshot floor turned into tombstones",
        extra={"target": target, "floor": floor, "found": len(lines), "tombstoned": done},
    )
    failed = [r for r in results if r.status not in (200, 201, 409)]
    if failed:
        reason = f"cannot tombstone a document below the floor: {failed[0].reason}"
        raise TransportError(reason, failed[0].status)


def _cas_tombstone(target: str, doc_id: str, meta: StoredMeta) -> bytes:
    action = {
        "index": {
            "_index": target,
            "_id": doc_id,
            "if_seq_no": meta.seq_no,
            "if_primary_term": meta.primary_term,
            "require_alias": True,
        }
    }
    tombstone = {"seq": meta.seq, "ts": second_of(meta.version), "source": meta.source, "deleted": True}
    body = {META_FIELD: tombstone}
    return orjson.dumps(action) + b"\n" + orjson.dumps(body) + b"\n"
