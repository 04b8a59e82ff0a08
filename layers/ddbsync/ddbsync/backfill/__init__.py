"""The backfill: export the table, index the export's files into a new index, swap the alias.

* :mod:`~ddbsync.backfill.steps`: the backfill Lambda, one action per state of the state
  machine (prepare, start and watch the export, read the manifest, index a file, finalize,
  abort).
* :mod:`~ddbsync.backfill.files`: indexing one export data file in chunks, with a checkpoint.
* :mod:`~ddbsync.prefetch`: reading the next chunk while the current one is sent.

Live changes keep flowing meanwhile: the stream indexer writes to both the live alias and
``<alias>-next`` (docs/backfill.md, docs/versioning.md).
"""

from ddbsync.backfill.files import FileProgress, export_change, index_items
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.backfill.steps import Backfill, handler, make_backfill

__all__ = [
    "Backfill",
    "BackfillSettings",
    "FileProgress",
    "export_change",
    "handler",
    "index_items",
    "make_backfill",
]
