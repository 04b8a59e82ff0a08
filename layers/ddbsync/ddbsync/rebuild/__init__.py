"""Rebuild an index from the archive (``ddbsync rebuild --from-archive s3://bucket/prefix``).

* :mod:`~ddbsync.rebuild.locations`: the ``s3://`` URI, and the archive's objects listed
  for a window (only the ``dt=``/``hour=`` partitions that overlap it; ``errors/`` left out).
* :mod:`~ddbsync.rebuild.chunks`: an object's lines cut into chunks, mapped as the stream
  indexer maps a batch, the window applied.
* :mod:`~ddbsync.rebuild.files`: one archive object indexed chunk by chunk, resumable from a
  checkpoint (the Step Functions action calls it).
* :mod:`~ddbsync.rebuild.run`: the runner: objects in parallel, into a new index then the
  alias swap, or into the live alias.
* :mod:`~ddbsync.rebuild.summary`: what a rebuild counted, and its end lines.
* :mod:`~ddbsync.rebuild.progress`: the progress bar on stderr.

The command line is :mod:`ddbsync.cli.rebuild`.
"""

from ddbsync.rebuild.files import ArchiveProgress, PoisonLine, index_archive_object
from ddbsync.rebuild.locations import ArchiveListing, ArchiveLocation, list_archive, parse_archive_uri
from ddbsync.rebuild.run import SETTLE_SECONDS, RebuildSummary, rebuild

__all__ = [
    "SETTLE_SECONDS",
    "ArchiveListing",
    "ArchiveLocation",
    "ArchiveProgress",
    "PoisonLine",
    "RebuildSummary",
    "index_archive_object",
    "list_archive",
    "parse_archive_uri",
    "rebuild",
]
