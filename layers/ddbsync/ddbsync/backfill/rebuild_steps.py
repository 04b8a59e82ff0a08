"""The state machine's archive branch: rebuild a new index from the archive.

Execution input ``{"source": {"type": "archive", "uri": "s3://bucket/prefix"}}`` (the whole
prefix: a window is refused, see :func:`parse_source`). Two actions:

* ``prepare_rebuild``: check the source and create the new index and ``<alias>-next``
  with *no* snapshot floor (the archive holds every change, so every change may land);
* ``index_archive_objects``: one child of the archive Map, a batch of archive objects
  (as ``s3:listObjectsV2`` lists them: ``{"Key", "Size", ...}``), replayed object by object
  from a checkpoint ``{"item": i, "line": n}`` until done or near the Lambda timeout.

Objects under ``errors/`` (Firehose's ErrorOutputPrefix: records it could not partition)
and "folder" keys are skipped: they are not archive lines. Replaying one object is
:func:`ddbsync.rebuild.files.index_archive_object` (the rebuild's reader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ddbsync.deadline import Deadline
from ddbsync.errors import BackfillError, RebuildError
from ddbsync.opensearch.indices import create_backfill_index
from ddbsync.opensearch.transport import OpenSearchTransport
from ddbsync.rebuild import files as archive_files
from ddbsync.rebuild.locations import is_archive_object, parse_archive_uri

if TYPE_CHECKING:
    from ddbsync.backfill.steps import Backfill

__all__ = ["index_archive_objects", "is_archive_object", "parse_source", "prepare_rebuild"]

State = dict[str, Any]
_COUNTS = ("applied", "stale", "skipped", "poison")


def parse_source(source: object) -> State:
    """Check an archive source; return it with its ``bucket`` and ``prefix``.

    A window (``since``/``until``) is refused: a new index rebuilt from part of the archive
    would miss every item last changed outside it. A window is re-applied into the live
    alias with ``ddbsync rebuild --into live`` (docs/archive.md).
    """
    if not isinstance(source, Mapping) or source.get("type") != "archive":
        raise BackfillError(f"not an archive source: {source!r}")
    if source.get("since") is not None or source.get("until") is not None:
        raise BackfillError(
            "source.since/until: a new index rebuilt from part of the archive would miss every item "
            "last changed outside the window; rebuild the whole prefix, or re-apply a window into the "
            "live alias with `ddbsync rebuild --from-archive URI --into live --since T1 --until T2`"
        )
    uri = source.get("uri")
    try:
        location = parse_archive_uri(uri if isinstance(uri, str) else repr(uri))
    except RebuildError as e:
        raise BackfillError(f"source.uri: {e}") from e
    return {"type": "archive", "uri": str(location), "bucket": location.bucket, "prefix": location.prefix}


def prepare_rebuild(backfill: Backfill, event: Mapping[str, Any]) -> State:
    """Check the source, then create the new index and ``<alias>-next`` without a floor."""
    raw = event.get("backfill")
    state: State = dict(raw) if isinstance(raw, Mapping) else {}
    state["source"] = parse_source(state.get("source"))
    settings = backfill.settings
    stamp = backfill.now().strftime("%Y%m%d%H%M%S")
    state.update(create_backfill_index(backfill.client, settings.index_alias, settings.index_template, stamp))
    state["floor"] = None
    return state


def _checkpoint(event: Mapping[str, Any], count: int) -> tuple[int, int]:
    checkpoint = event.get("checkpoint") or {}
    item, line = checkpoint.get("item", 0), checkpoint.get("line", 0)
    if not (isinstance(item, int) and isinstance(line, int) and 0 <= item <= count and line >= 0):
        raise BackfillError(f"index_archive_objects: bad checkpoint {checkpoint!r}")
    return item, line


def index_archive_objects(
    backfill: Backfill, event: Mapping[str, Any], remaining_ms: Callable[[], int]
) -> State:
    """Replay a batch of archive objects from its checkpoint; the child's next iteration state."""
    raw = event.get("backfill")
    state: State = dict(raw) if isinstance(raw, Mapping) else {}
    items = event.get("items")
    if not isinstance(items, list) or not all(isinstance(i, Mapping) and "Key" in i for i in items):
        raise BackfillError(f"index_archive_objects needs items [{{Key, ...}}], got {items!r}"[:300])
    source = parse_source(state.get("source"))
    item, line = _checkpoint(event, len(items))
    deadline = Deadline(remaining_ms, backfill.settings.timeout_margin_ms)
    transport = OpenSearchTransport(backfill.client)
    counts = dict.fromkeys(_COUNTS, 0)
    while item < len(items):
        key = str(items[item]["Key"])
        if not is_archive_object(key):
            item, line = item + 1, 0
            continue
        if deadline.expired():
            break
        progress = archive_files.index_archive_object(
            backfill.s3, source["bucket"], key,
            start_line=line, since=None, until=None, target=str(state["next_alias"]),
            settings=backfill.settings, transport=transport, deadline=deadline,
        )  # fmt: skip
        for name in _COUNTS:
            counts[name] += int(getattr(progress, name))
        if progress.poison:
            raise BackfillError(f"s3://{source['bucket']}/{key}: {progress.first_poison}")
        if not progress.done:
            if progress.checkpoint == line and not deadline.expired():
                raise BackfillError(f"{key}: no progress from line {line} (OpenSearch refuses writes?)")
            line = int(progress.checkpoint)
            break
        item, line = item + 1, 0
    return {
        "items": list(items),
        "backfill": state,
        "checkpoint": {"item": item, "line": line},
        "done": item >= len(items),
        **counts,
    }
