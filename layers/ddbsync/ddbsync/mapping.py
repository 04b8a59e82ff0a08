"""Map DynamoDB stream records to document writes.

INSERT/MODIFY index the new image; REMOVE writes a tombstone document (hidden by
the search alias) unless it is a TTL removal and TTL removals are kept. Several
changes to one key in a batch collapse to the newest.

Every change and every poison record names the batch positions of the records it
stands for (``members``), so that the indexer can account for each record exactly
once: a record folded into a newer change of its key shares that change's outcome.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ddbsync.dynamodb.decode import JsonValue, decode_item
from ddbsync.dynamodb.keys import document_id
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.errors import RecordError
from ddbsync.versioning import Ordering, sequence_rank, stream_version

__all__ = [
    "META_FIELD",
    "Change",
    "Poison",
    "Source",
    "collapse",
    "document_meta",
    "image_body",
    "map_record",
    "map_records",
    "tombstone_body",
]

META_FIELD = "_ddbsync"
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


Op = Literal["index", "tombstone", "skip"]
Source = Literal["stream", "export", "repair"]



@dataclass(slots=True)
class Change:
    """One document write derived from one or more stream records of the same key."""

    doc_id: str
    op: Op
    version: int
    ordering: Ordering
    # None until materialize() decodes the new image (decoding is the costly part, so
    # it is done only for the change that survives collapse).
    body: dict[str, JsonValue] | None
    # The stream record it comes from (None for an export or repair item).
    record: RawRecord | None
    # Batch positions of every record this change stands for: its own, and those of the
    # older changes of its key folded into it. Empty outside a stream batch.
    members: tuple[int, ...] = field(default=())
    created_seconds: int = 0
    # Older changes of the same key in the batch, newest first: the fallback when this
    # change's image turns out to be poison.
    older: tuple[Change, ...] = ()


@dataclass(frozen=True, slots=True)
class Poison:
    """A record that cannot be mapped: it goes to the record DLQ with the reason."""

    record: object
    reason: str
    error_type: str
    sequence_number: str
    doc_id: str | None = None
    members: tuple[int, ...] = ()


def document_meta(
    source: Source, second: int, seq: str | None = None, *, deleted: bool = False
) -> dict[str, JsonValue]:
    """The ``_ddbsync`` object of a document: the one builder, for every writer.

    ``source`` is the path that wrote it; ``ts`` the second of the change (the stream's
    ApproximateCreationDateTime, the export time, the repair record's write second);
    ``seq`` the stream SequenceNumber, zero-padded to 40 digits so that it sorts as
    text (None off the stream); ``deleted`` marks a tombstone (docs/versioning.md).
    """
    meta: dict[str, JsonValue] = {"seq": seq.zfill(40) if seq else None, "ts": second, "source": source}
    if deleted:
        meta["deleted"] = True
    return meta


def image_body(image: object, meta: dict[str, JsonValue], seq: str | None = None) -> dict[str, JsonValue]:
    """The document for an item image: the decoded attributes plus ``_ddbsync``.

    Raises DecodeError for a value DynamoDB cannot hold and RecordError for an item
    with an attribute named ``_ddbsync`` (reserved): both are poison.
    """
    body = decode_item(image)
    if META_FIELD in body:
        raise RecordError(f"item has an attribute named {META_FIELD!r}, reserved by ddbsync", seq)
    body[META_FIELD] = meta
    return body


def tombstone_body(meta: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The document a delete leaves: only ``_ddbsync``, with ``deleted`` (hidden by the alias)."""
    return {META_FIELD: meta}


def _is_ttl_removal(record: RawRecord) -> bool:
    identity = record.get("userIdentity")
    return (
        isinstance(identity, Mapping)
        and identity.get("type") == "Service"
        and identity.get("principalId") == TTL_PRINCIPAL
    )


def _envelope(record: object) -> tuple[Mapping[str, Any], str, int]:
    """The record's ``dynamodb`` object, SequenceNumber and whole second; RecordError if broken."""
    if record.__class__ is not dict and not isinstance(record, Mapping):
        raise RecordError(f"record must be an object, got {type(record).__name__}")
    ddb = record.get("dynamodb")
    if ddb.__class__ is not dict and not isinstance(ddb, Mapping):
        raise RecordError("record has no 'dynamodb' object")
    seq = ddb.get("SequenceNumber")
    if not isinstance(seq, str) or not (seq.isascii() and seq.isdigit()):
        raise RecordError(f"record has no valid SequenceNumber: {seq!r}")
    created: Any = ddb.get("ApproximateCreationDateTime")
    kind = created.__class__
    if (
        (kind is not int and kind is not float and (kind is bool or not isinstance(created, int | float)))
        or not math.isfinite(created)
        or created < 0
    ):
        raise RecordError("record has no valid ApproximateCreationDateTime", seq)
    return ddb, seq, int(created)


def map_record(
    record: RawRecord,
    partition_key: str,
    sort_key: str | None,
    ttl_removes: str = "delete",
    *,
    decode: bool = True,
) -> Change:
    """Map one Lambda DynamoDB-stream record; raise RecordError/DecodeError for a poison record.

    With ``decode=False`` only the cheap part is done (envelope, id, version) and
    the new image is decoded later by :func:`materialize`.
    """
    ddb, seq, created_s = _envelope(record)
    keys = ddb.get("Keys")
    if keys.__class__ is not dict and not isinstance(keys, Mapping):
        raise RecordError("record has no Keys", seq)
    doc_id = document_id(keys, partition_key, sort_key)
    try:
        version = stream_version(created_s)
    except ValueError as e:  # a time no 63-bit version can hold
        raise RecordError(str(e), seq) from None
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
        change = Change(doc_id, "index", version, ordering, None, record, (), created_s)
        if decode:
            materialize(change)
        return change
    if name == "REMOVE":
        op: Op = "skip" if ttl_removes == "keep" and _is_ttl_removal(record) else "tombstone"
        body = tombstone_body(document_meta("stream", created_s, seq, deleted=True))
        return Change(doc_id, op, version, ordering, body, record, (), created_s)
    raise RecordError(f"unknown eventName {name!r}", seq)




def materialize(change: Change) -> None:
    """Decode the change's new image into its body (no-op when already done or a tombstone)."""
    if change.body is not None:
        return
    assert change.record is not None  # only stream changes are decoded late
    ddb: Any = change.record["dynamodb"]  # checked by map_record
    image = ddb["NewImage"]
    seq = ddb["SequenceNumber"]
    change.body = image_body(image, document_meta("stream", change.created_seconds, seq), seq)


def sequence_number_of(record: object) -> str:
    """The record's SequenceNumber as text, or "" when the record is too broken to have one."""
    ddb = record.get("dynamodb") if isinstance(record, Mapping) else None
    seq = ddb.get("SequenceNumber") if isinstance(ddb, Mapping) else None
    return str(seq) if seq is not None else ""


def poison_of(record: object, error: Exception, members: tuple[int, ...] = ()) -> Poison:
    """A Poison for a record that failed with ``error``, standing for the records ``members``."""
    return Poison(
        record,
        str(error), type(error).__name__, sequence_number_of(record), members=members,
    )


def map_records(
    records: Iterable[RawRecord],
    partition_key: str,
    sort_key: str | None,
    ttl_removes: str = "delete",
    *,
    decode: bool = True,
) -> tuple[list[Change], list[Poison]]:
    """Map a batch; poison records are returned apart, never raised.

    Each change and poison record is a member of the batch at its position.
    """
    changes: list[Change] = []
    poison: list[Poison] = []
    for position, record in enumerate(records):
        try:
            change = map_record(record, partition_key, sort_key, ttl_removes, decode=decode)
        except Exception as e:  # a poison record must never fail the batch: it goes to the DLQ
            poison.append(poison_of(record, e, (position,)))
            continue
        change.members = (position,)
        changes.append(change)
    return changes, poison


def materialize_newest(change: Change, poison: list[Poison]) -> Change | None:
    """The newest change of a key whose image decodes; the ones that do not become poison.

    Returns None when every change of the key is poison. Each poison change goes to
    ``poison`` as its own record; the result stands for every other record folded
    into the key, so none is left without an outcome.
    """
    if change.body is not None:
        return change  # already decoded (or a tombstone)
    older_members = {m for o in change.older for m in o.members}
    dead: set[int] = set()
    for candidate in (change, *change.older):
        if candidate is change:  # the newest carries every folded member: keep its own
            own = tuple(m for m in candidate.members if m not in older_members)
        else:
            own = candidate.members
        try:
            materialize(candidate)
        except Exception as e:  # poison: to the DLQ, and try the next older change
            poison.append(poison_of(candidate.record, e, own))
            dead.update(own)
            continue
        if candidate is change:
            return change
        alive = tuple(m for m in change.members if m not in dead)
        return Change(
            candidate.doc_id, candidate.op, candidate.version, candidate.ordering, candidate.body,
            candidate.record, alive, candidate.created_seconds,
        )
    return None


def collapse(changes: Sequence[Change]) -> list[Change]:
    """Keep the newest written change per document id, folding the older ones into it.

    A change skipped by configuration (a TTL removal with ``TTL_REMOVES=keep``) writes
    nothing, so it never competes: it stays a change of its own (accounted as skipped),
    and the key's newest *written* change is what the document ends with, as if the
    skipped record had come in another batch.
    """
    if len({c.doc_id for c in changes}) == len(changes):
        return list(changes)  # the usual batch: every key once, nothing to fold
    by_key: dict[str, list[Change]] = {}
    out: list[Change] = []
    for change in changes:
        if change.op == "skip":
            out.append(change)
            continue
        group = by_key.get(change.doc_id)
        if group is None:
            by_key[change.doc_id] = [change]
        else:
            group.append(change)
    for group in by_key.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        folded = tuple(m for g in group for m in g.members)  # in record order
        newest_first = sorted(group, key=lambda c: c.ordering, reverse=True)
        c = newest_first[0]
        out.append(
            Change(
                c.doc_id, c.op, c.version, c.ordering, c.body, c.record,
                folded, c.created_seconds, tuple(newest_first[1:]),
            )
        )
    return out
