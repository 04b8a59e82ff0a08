"""``ddbsync repair --from T1 --to T2``: re-apply a lost stream window into the live alias
from a DynamoDB incremental export of that window.

* ``window``: ``--from``/``--to`` parsed, widened to whole seconds, checked against
  DynamoDB's rules (15 minutes to 24 hours, in the past);
* ``exports``: the incremental export: request, start, describe, wait;
* ``changes``: what one export record writes (the version is ``versioning.repair_version``);
* ``run``: the flow: export, read the manifests and data files, write chunk by chunk.

The command line is :mod:`ddbsync.cli.repair`.
"""

from ddbsync.repair.changes import SOURCE, repair_change
from ddbsync.repair.exports import AwsIncrementalExports, IncrementalExports, export_request, wait_for_export
from ddbsync.repair.run import RepairSummary, run_repair
from ddbsync.repair.window import MAX_WINDOW_S, MIN_WINDOW_S, Window, parse_time

__all__ = [
    "MAX_WINDOW_S",
    "MIN_WINDOW_S",
    "SOURCE",
    "AwsIncrementalExports",
    "IncrementalExports",
    "RepairSummary",
    "Window",
    "export_request",
    "parse_time",
    "repair_change",
    "run_repair",
    "wait_for_export",
]
