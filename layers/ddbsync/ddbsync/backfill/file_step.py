"""The backfill's ``index_file`` action: one export data file, resumable from a checkpoint.

A child execution of the export Map calls it with ``{"file": {"key", "item_count"},
"backfill", "checkpoint"}`` until it returns ``done``; each call indexes from the
checkpoint (the last acknowledged line) until the file ends or the Lambda's time runs
short (:func:`ddbsync.backfill.files.index_items`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ddbsync.backfill.files import index_items
from ddbsync.deadline import Deadline
from ddbsync.dynamodb.export_format import iter_export_items
from ddbsync.errors import BackfillError
from ddbsync.opensearch.transport import OpenSearchTransport

if TYPE_CHECKING:
    from ddbsync.backfill.steps import Backfill

__all__ = ["index_file"]

State = dict[str, Any]


def index_file(backfill: Backfill, event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> State:
    """Index one export data file from its checkpoint; the Map child's next iteration state."""
    raw = event.get("backfill")
    state: State = dict(raw) if isinstance(raw, Mapping) else {}
    file = event.get("file")
    if not isinstance(file, Mapping) or not isinstance(file.get("key"), str):
        raise BackfillError(f"index_file needs a file {{key, item_count}}, got {file!r}")
    key = str(file["key"])
    start = int(event.get("checkpoint") or 0)
    try:
        body = backfill.s3.get_object(Bucket=backfill.bs.export_bucket, Key=key)["Body"]
    except ClientError as e:
        raise BackfillError(f"{key}: cannot read the data file listed in the manifest: {e}") from e
    deadline = Deadline(remaining_ms, backfill.settings.timeout_margin_ms)
    fmt = str(state.get("output_format") or backfill.bs.export_format)
    progress = index_items(
        iter_export_items(body, fmt, key, start_line=start),
        key=key,
        start_line=start,
        export_time=float(state["export_time"]),
        target=str(state["next_alias"]),
        settings=backfill.settings,
        transport=OpenSearchTransport(backfill.client),
        deadline=deadline,
    )
    body.close()
    expected = file.get("item_count")
    # More lines than the manifest lists is as wrong as fewer: the file is not the one
    # the export wrote (and finalize's count check cannot see extra documents).
    if progress.done and isinstance(expected, int) and progress.checkpoint != expected:
        raise BackfillError(
            f"{key}: the file holds {progress.checkpoint} lines but the manifest says {expected} items"
        )
    if not progress.done and progress.checkpoint == start and not deadline.expired():
        raise BackfillError(f"{key}: no progress from line {start} (OpenSearch refuses writes?)")
    return {
        "file": dict(file),
        "backfill": state,
        "checkpoint": progress.checkpoint,
        "done": progress.done,
        "indexed": progress.indexed + progress.stale,
        "lines": progress.checkpoint,
    }
