"""Backfill Lambda: every step of statemachine/backfill.asl.json (all logic in the ddbsync layer).

The state machine calls it with ``{"action": ..., "backfill": {...}}`` and one action per
task (prepare, start_export, describe_export, read_manifest, index_file, prepare_rebuild,
index_archive_objects, report_map_failures, finalize, abort);
see docs/backfill-contract.md.
"""

from ddbsync.backfill.steps import handler

__all__ = ["handler"]
