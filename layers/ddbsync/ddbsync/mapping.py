"""Map DynamoDB stream records to document writes.

INSERT/MODIFY index the new image; REMOVE writes a tombstone document (hidden by
the search alias) unless it is a TTL removal and TTL removals are kept. Several
changes to one key in a batch collapse to the newest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ddbsync.decode import JsonValue, decode_item
from ddbsync.docid import document_id
from ddbsync.errors import RecordError
from ddbsync.versioning import EXPORT_RANK, Ordering, sequence_rank, stream_version

__all__ = [
    "META_FIELD",
    "Change",
    "Poison",
    "StreamRecord",
    "collapse",
    "map_record",
    "map_records",
]

META_FIELD = "_ddbsync"
TTL_PRINCIPAL = "dynamodb.amazonaws.com"

StreamRecord = Mapping[str, object]
Op = Literal["index", "tombstone", "skip"]


@dataclass(slots=True)
class Change:
    """One document write derived from one or more stream records of the same key."""

    doc_id: str
    op: Op
    version: int
    ordering: Ordering
    body: dict[str, JsonValue]
    record: StreamRecord
    # Sequence numbers of every record folded into this change (for batchItemFailures).
    sequence_numbers: tuple[str, ...] = field(default=())
    created_seconds: int = 0


@dataclass(frozen=True, slots=True)
class Poison:
    """A record that cannot be mapped: it goes to the record DLQ with the reason."""

    record: StreamRecord
    reason: str
    error_type: str
    sequence_number: str
    doc_id: str | None = None


def _meta(seq: str | None, created: int, deleted: bool, source: str) -> dict[str, JsonValue]:
    meta: dict[str, JsonValue] = {"seq": seq.zfill(40) if seq else None, "ts": created, "source": source}
    if deleted:
        meta["deleted"] = True
    return {META_FIELD: meta}


def _is_ttl_removal(record: StreamRecord) -> bool:
    identity = record.get("userIdentity")
    return (
        isinstance(identity, Mapping)
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )


def map_record(
    record: StreamRecord, partition_key: str, sort_key: str | None, ttl_removes: str = "delete"
) -> Change:
    """Map one Lambda DynamoDB-stream record; raise RecordError/DecodeError for a poison record."""
    if record.__class__ is not dict and not isinstance(record, Mapping):
        raise RecordError(f"record must be an object, got {type(record).__name__}")
    ddb = record.get("dynamodb")
    if ddb.__class__ is not dict and not isinstance(ddb, Mapping):
        raise RecordError("record has no 'dynamodb' object")
    seq = ddb.get("SequenceNumber")
    if not isinstance(seq, str) or not (seq.isascii() and seq.isdigit()):
        raise RecordError(f"record has no valid SequenceNumber: {seq!r}")
    created = ddb.get("ApproximateCreationDateTime")
    if (
        isinstance(created, bool)
        or not isinstance(created, int | float)
        or not math.isfinite(created)
        or created < 0
    ):
        raise RecordError("record has no valid ApproximateCreationDateTime", seq)
    keys = ddb.get("Keys")
    if keys.__class__ is not dict and not isinstance(keys, Mapping):
        raise RecordError("record has no Keys", seq)
    doc_id = document_id(keys, partition_key, sort_key)
    created_s = int(created)
    version = stream_version(created_s)
    ordering = Ordering(created_s, sequence_rank(seq))
    name = record.get("eventName")
    if name in ("INSERT", "MODIFY"):
        image = ddb.get("NewImage")
        if image.__class__ is not dict and not isinstance(image, Mapping):
            raise RecordError(
                f"{name} record has no NewImage (the stream must use NEW_IMAGE or "
                "NEW_AND_OLD_IMAGES)",
                seq,
            )
        body = decode_item(image)
        if META_FIELD in body:
            raise RecordError(f"item has an attribute named {META_FIELD!r}, reserved by ddbsync", seq)
        body.update(_meta(seq, created_s, False, "stream"))
        return Change(doc_id, "index", version, ordering, body, record, (seq,), created_s)
    if name == "REMOVE":
        op: Op = "skip" if ttl_removes == "keep" and _is_ttl_removal(record) else "tombstone"
        body = _meta(seq, created_s, True, "stream")
        return Change(doc_id, op, version, ordering, body, record, (seq,), created_s)
    raise RecordError(f"unknown eventName {name!r}", seq)


def map_records(
    records: Iterable[StreamRecord],
    partition_key: str,
    sort_key: str | None,
    ttl_removes: str = "delete",
) -> tuple[list[Change], list[Poison]]:
    """Map a batch; poison records are returned apart, never raised."""
    changes: list[Change] = []
    poison: list[Poison] = []
    for record in records:
        try:
            changes.append(map_record(record, partition_key, sort_key, ttl_removes))
        except Exception as e:  # a poison record must never fail the batch: it goes to the DLQ
            ddb = record.get("dynamodb") if isinstance(record, Mapping) else None
            seq = ddb.get("SequenceNumber") if isinstance(ddb, Mapping) else None
            poison.append(Poison(record, str(e), type(e).__name__, str(seq or "")))
    return changes, poison


def collapse(changes: Sequence[Change]) -> list[Change]:
    """Keep the newest change per document id; remember every folded record's sequence number."""
    newest: dict[str, Change] = {}
    folded: dict[str, list[str]] = {}
    for change in changes:
        folded.setdefault(change.doc_id, []).extend(change.sequence_numbers)
        current = newest.get(change.doc_id)
        if current is None or change.ordering.newer_than(current.ordering):
            newest[change.doc_id] = change
    return [
        Change(
            c.doc_id, c.op, c.version, c.ordering, c.body, c.record,
            tuple(folded[c.doc_id]), c.created_seconds,
        )
        for c in newest.values()
    ]


def export_ordering(export_second: int) -> Ordering:
    """Ordering of an export item (see versioning.export_version)."""
    return Ordering(export_second - 1, EXPORT_RANK)
