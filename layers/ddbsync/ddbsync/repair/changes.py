"""What a repair writes for one incremental-export record, and at which version.

Versions (docs/versioning.md). A record written at ``WriteTimeMicros`` in second
``s`` gets ``version = export_version(s + 1) = ((s + 1) << 20) - 1`` and ranks, in
the conflict resolver, like an export item: ``Ordering(s, EXPORT_RANK)``, above
every stream change of second ``s`` and below every change of second ``s + 1``.
Why *above* the same-second stream changes:

* An incremental export is compacted: one record per changed item, its state at
  the end of the window. So no change of that item happened between the record's
  write and ``T2``; as ``T2`` is a whole second and ``s < T2``, ``s + 1 <= T2`` and
  the record's image is exactly the item as a full export taken at time ``s + 1``
  would have it. It is an export item, with the export item's version, and rule 4
  of docs/versioning.md already proves such items converge.
* Ranking it *below* same-second stream changes (``export_version(s)``) would be
  safe but useless: a change indexed earlier in that same second, before the lost
  one, would keep the document stale.
* A stream change after the window is in second ``T2`` or later (``T2`` whole), so
  its version is above every repair version: the repair never overwrites it, and a
  late replay of a change from inside the window loses to the repair (it is older).

Stored repair documents carry ``_ddbsync.source = "repair"`` and ``seq: null``;
``conflicts.stored_ordering`` ranks them like export documents. (Without that, a
repair document would rank as sequence number 0 of its second, and a late replay
of an older same-second change would win the compare-and-set.)
"""

from __future__ import annotations

from ddbsync.dynamodb.decode import JsonValue, decode_item
from ddbsync.dynamodb.export_format import IncrementalRecord
from ddbsync.dynamodb.keys import document_id
from ddbsync.mapping import META_FIELD, Change
from ddbsync.versioning import Ordering, export_ordering, export_version

__all__ = ["SOURCE", "repair_change", "repair_ordering", "repair_version"]

SOURCE = "repair"


def repair_version(write_time_micros: int) -> int:
    """The version of a record written in second ``s``: ``export_version(s + 1)`` (module doc)."""
    return export_version(write_time_micros // 1_000_000 + 1)


def repair_ordering(write_time_micros: int) -> Ordering:
    """Above every stream change of the record's second, below every later second."""
    return export_ordering(write_time_micros // 1_000_000 + 1)


def repair_change(record: IncrementalRecord, partition_key: str, sort_key: str | None) -> Change:
    """The document write for one incremental-export record: its image, or a tombstone."""
    second = record.write_time_micros // 1_000_000
    meta: dict[str, JsonValue] = {"seq": None, "ts": second, "source": SOURCE}
    doc_id = document_id(record.keys, partition_key, sort_key)
    version, ordering = repair_version(record.write_time_micros), repair_ordering(record.write_time_micros)
    if record.new_image is None:
        meta["deleted"] = True
        return Change(doc_id, "tombstone", version, ordering, {META_FIELD: meta}, {}, (), second)
    body = decode_item(record.new_image)
    if META_FIELD in body:
        raise ValueError(f"item has an attribute named {META_FIELD!r}, reserved by ddbsync")
    body[META_FIELD] = meta
    return Change(doc_id, "index", version, ordering, body, {}, (), second)
