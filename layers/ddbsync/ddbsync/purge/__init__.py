"""``ddbsync purge-tombstones``: drop the tombstones older than the replay window.

* ``window``: durations (``36h``, ``7d``, ``2w``) and the replay window they must cover
  (the stream's 24 h plus the record DLQ's retention);
* ``run``: raise the purge floor, wait for the writers, delete-by-query on the physical
  indices, with progress;
* ``handler``: the purge from settings, shared by the command and the scheduled Lambda.

Why a purged tombstone is safe: docs/versioning.md, "Purging tombstones". The command line
is :mod:`ddbsync.cli.purge`.
"""

from ddbsync.purge.handler import IN_FLIGHT_S, make_handler, run_purge, settle_seconds
from ddbsync.purge.run import IndexPurge, PurgeSummary, purge_tombstones, raise_purge_floor, tombstone_query
from ddbsync.purge.window import (
    SQS_MAX_RETENTION_S,
    STREAM_RETENTION_S,
    ReplayWindow,
    check_window,
    format_duration,
    parse_duration,
    replay_window,
)

__all__ = [
    "IN_FLIGHT_S",
    "SQS_MAX_RETENTION_S",
    "STREAM_RETENTION_S",
    "IndexPurge",
    "PurgeSummary",
    "ReplayWindow",
    "check_window",
    "format_duration",
    "make_handler",
    "parse_duration",
    "purge_tombstones",
    "raise_purge_floor",
    "replay_window",
    "run_purge",
    "settle_seconds",
    "tombstone_query",
]
