"""What a repair writes for one incremental-export record, and at which version.

The version comes from :func:`ddbsync.versioning.repair_version`, the document from
:mod:`ddbsync.mapping`'s builders. Why this version (docs/versioning.md): a record
written at ``WriteTimeMicros`` in second ``s`` gets
``version = export_version(s + 1) = ((s + 1) << 20) - 1`` and ranks, in the conflict
resolver, like an export item: ``Ordering(s, EXPORT_RANK)``, above every stream change
of second ``s`` and below every change of second ``s + 1``.
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

from ddbsync.dynamodb.export_format import IncrementalRecord
from ddbsync.dynamodb.keys import document_id
from ddbsync.mapping import Change, Source, document_meta, image_body, tombstone_body
from ddbsync.versioning import repair_ordering, repair_version

__all__ = ["SOURCE", "repair_change"]

SOURCE: Source = "repair"


def repair_change(record: IncrementalRecord, partition_key: str, sort_key: str | None) -> Change:
    """The document write for one incremental-export record: its image, or a tombstone."""
    second = record.write_time_micros // 1_000_000
    doc_id = document_id(record.keys, partition_key, sort_key)
    version, ordering = repair_version(record.write_time_micros), repair_ordering(record.write_time_micros)
    if record.new_image is None:
        body = tombstone_body(document_meta(SOURCE, second, deleted=True))
        return Change(doc_id, "tombstone", version, ordering, body, None, (), second)
    body = image_body(record.new_image, document_meta(SOURCE, second))
    return Change(doc_id, "index", version, ordering, body, None, (), second)
