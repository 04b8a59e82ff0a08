"""What one table item and one index document say about drift: entries, digests, the rule.

**How "stale" is decided.** The table keeps no version, so a document's version cannot be
compared with the item's. Instead the item is turned into the document the export would
write, with the same builder (:func:`ddbsync.mapping.image_body`, which
``backfill.files.export_change`` uses), and its body is compared with the indexed
``_source``, both without ``_ddbsync``. Both sides are compared as the OpenSearch client
reads JSON (``json.loads`` of the serialized document: the very bytes the writers send),
then hashed with sorted keys (BLAKE2b, 128 bits), so only a digest per item is kept.

**What is drift** (:func:`classify`), with ``newest`` the export version of the verify's
start time T (``versioning.export_version(T)``):

* a document whose version is ``newest`` or above was written by a change of second
  ``floor(T)`` or later: it changed while the verify ran and is not judged (*recent*);
* missing: the item is in the table, the index has no document or only a tombstone;
* extra: a live document whose key is not in the table (this includes an item brought
  back after a backfill, "resurrected");
* stale: both exist and the bodies differ.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import orjson

from ddbsync.dynamodb.decode import dumps_bytes
from ddbsync.dynamodb.keys import document_id
from ddbsync.errors import DdbsyncError, VerifyError
from ddbsync.mapping import META_FIELD, image_body

__all__ = [
    "UNREADABLE",
    "Drift",
    "IndexEntry",
    "TableEntry",
    "body_digest",
    "classify",
    "index_entry",
    "join",
    "table_entry",
    "unreadable_entry",
]


# The digest of an item whose key makes an id but whose body cannot be a document.
UNREADABLE = "-"


class Drift(enum.Enum):
    """The kinds of drift a verify reports."""

    MISSING = "missing"
    EXTRA = "extra"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One table item as the verify keeps it: its document id, body digest and key."""

    doc_id: str
    digest: str
    key: dict[str, Any]  # DynamoDB JSON, for the repair's GetItem

    def line(self) -> bytes:
        return orjson.dumps([self.doc_id, self.digest, self.key])

    @classmethod
    def of_line(cls, line: bytes) -> TableEntry:
        doc_id, digest, key = orjson.loads(line)
        return cls(doc_id, digest, key)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One stored document: id, external version, tombstone or not, body digest."""

    doc_id: str
    version: int
    deleted: bool
    digest: str


def body_digest(body: Mapping[str, object]) -> str:
    """Digest of a document as read back from JSON, without ``_ddbsync``, keys sorted."""
    plain = {k: v for k, v in body.items() if k != META_FIELD}
    try:
        data = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits: the stdlib writes it exactly
        data = json.dumps(plain, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return blake2b(data, digest_size=16).hexdigest()


def table_entry(item: Mapping[str, Any], partition_key: str, sort_key: str | None) -> TableEntry:
    """The entry of a scanned item (DynamoDB JSON); DecodeError/RecordError if it cannot be a document."""
    doc_id = document_id(item, partition_key, sort_key)
    document = json.loads(dumps_bytes(image_body(item, {})))
    key = {partition_key: item[partition_key]}
    if sort_key is not None:
        key[sort_key] = item[sort_key]
    return TableEntry(doc_id, body_digest(document), key)


def unreadable_entry(item: Mapping[str, Any], partition_key: str, sort_key: str | None) -> TableEntry | None:
    """The entry of an item whose body cannot be a document, or None when its key cannot be an id."""
    try:
        doc_id = document_id(item, partition_key, sort_key)
    except DdbsyncError:
        return None
    return TableEntry(doc_id, UNREADABLE, {})


def index_entry(hit: Mapping[str, Any]) -> IndexEntry:
    """The entry of a search or mget hit (with ``_version`` and ``_source``)."""
    source = hit.get("_source") or {}
    meta = source.get(META_FIELD)
    deleted = isinstance(meta, Mapping) and meta.get("deleted") is True
    return IndexEntry(str(hit["_id"]), int(hit["_version"]), deleted, body_digest(source))


def classify(table: TableEntry | None, doc: IndexEntry | None, newest: int) -> Drift | None:
    """The drift one id shows, or None (in step, absent from both, or changed since the start)."""
    if doc is not None and doc.version >= newest:
        return None  # written by a change made after the verify started: not judged
    if table is not None and table.digest == UNREADABLE:
        return None  # an item no writer can index (it is in the record DLQ): counted apart
    if table is None:
        return Drift.EXTRA if doc is not None and not doc.deleted else None
    if doc is None or doc.deleted:
        return Drift.MISSING
    return Drift.STALE if doc.digest != table.digest else None


def join(
    table: Iterator[TableEntry], index: Iterator[IndexEntry]
) -> Iterator[tuple[TableEntry | None, IndexEntry | None]]:
    """Merge two id-sorted streams into pairs (either side None where an id is on one side only).

    Raises VerifyError when either stream is not strictly increasing (the index's sort
    order must be the code-point order of the ids, which is UTF-8 byte order).
    """
    t, d = next(table, None), next(index, None)
    last_t = last_d = None
    while t is not None or d is not None:
        if t is not None and last_t is not None and t.doc_id <= last_t:
            raise VerifyError(f"table entries out of order at {t.doc_id!r}")
        if d is not None and last_d is not None and d.doc_id <= last_d:
            raise VerifyError(f"the index walk is out of id order at {d.doc_id!r}")
        if d is None or (t is not None and t.doc_id < d.doc_id):
            assert t is not None
            yield t, None
            last_t, t = t.doc_id, next(table, None)
        elif t is None or d.doc_id < t.doc_id:
            yield None, d
            last_d, d = d.doc_id, next(index, None)
        else:
            yield t, d
            last_t, t = t.doc_id, next(table, None)
            last_d, d = d.doc_id, next(index, None)
