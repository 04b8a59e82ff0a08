"""``ddbsync verify [--repair]``: compare the table with the live index; report and fix drift.

* ``compare``: entries of both sides, the body digest, the drift rule, the sorted join;
* ``scan``: the table side: parallel strongly consistent Scan, spilled to sorted runs;
* ``walk``: the index side: every document in ``_id`` order (point in time, search_after);
* ``fix``: ``--repair``: the writes, at the export version of the verify's start;
* ``run``: the flow and its summary; ``scheduled``: the read-only Lambda and its metric.

The command line is :mod:`ddbsync.cli.verify`.
"""

from ddbsync.verify.compare import (
    Drift,
    IndexEntry,
    TableEntry,
    body_digest,
    classify,
    index_entry,
    join,
    table_entry,
)
from ddbsync.verify.fix import Candidate, FixCounts, repair_drift
from ddbsync.verify.run import Progress, VerifySummary, default_progress, run_verify, table_name
from ddbsync.verify.scan import SortedRuns, parallel_scan
from ddbsync.verify.walk import fetch_entries, walk_index

__all__ = [
    "Candidate",
    "Drift",
    "FixCounts",
    "IndexEntry",
    "Progress",
    "SortedRuns",
    "TableEntry",
    "VerifySummary",
    "body_digest",
    "classify",
    "default_progress",
    "fetch_entries",
    "index_entry",
    "join",
    "parallel_scan",
    "repair_drift",
    "run_verify",
    "table_entry",
    "table_name",
    "walk_index",
]
