"""``ddbsync rebuild --from-archive``: replay the archive's stream records into an index.

Two modes:

* ``into="new"`` (default): a new index ``<alias>-<stamp>`` with ``<alias>-next`` is created
  (:func:`~ddbsync.opensearch.indices.create_backfill_index`), so the live stream indexers
  start writing every new change to it too; the rebuild then waits ``settle_seconds`` (the
  delivery stream holds a record up to its buffer interval, at most 900 s, before the
  object lands in S3; the default 960 adds a minute for NEXT_ALIAS_CHECK_SECONDS and the
  archiver), lists the archive, indexes every object, and swaps the live alias to the new
  index (:func:`~ddbsync.opensearch.indices.finalize_backfill`). On failure the new index is
  dropped (:func:`~ddbsync.opensearch.indices.abort_backfill`) and the live alias never
  moved, unless ``keep_on_failure``.

  The new index has **no snapshot floor**. A backfill's floor exists because an export
  holds no tombstones: an item deleted before the export leaves nothing in the new index,
  and a late change of it would bring it back. The archive holds every delete as a REMOVE
  record, which the rebuild writes as a versioned tombstone, so external versions alone
  decide every document whatever order the objects and late replays arrive in
  (docs/versioning.md, rules 1 to 3).

* ``into="live"``: the records are written through the live alias (and ``<alias>-next``
  while a backfill runs), the view read again before every chunk and after writing, as
  repair does: the floor rule applies (an archived index write older than a backfilled
  index's floor is stale; tombstones always go).

Objects are read ``parallel`` at a time (a thread each; no more objects are in flight).
Each object is indexed by :func:`ddbsync.rebuild.files.index_object` in calls of at most
:data:`CALL_BUDGET_S`, resumed from its checkpoint; an object that makes no progress fails.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.errors import DdbsyncError, RebuildError
from ddbsync.opensearch.indices import abort_backfill, create_backfill_index, finalize_backfill, read_view
from ddbsync.opensearch.transport import OpenSearchTransport
from ddbsync.rebuild.files import MAX_POISON_KEPT, ArchiveProgress, ViewSource, index_object
from ddbsync.rebuild.locations import ArchiveLocation, ArchiveObject, list_archive
from ddbsync.rebuild.progress import Progress
from ddbsync.rebuild.summary import RebuildSummary, lines_of, print_summary

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

__all__ = ["CALL_BUDGET_S", "MAX_IDS_COUNTED", "SETTLE_SECONDS", "RebuildSummary", "print_summary", "rebuild"]

CALL_BUDGET_S = 300.0
SETTLE_SECONDS = 960  # Firehose's longest buffer interval (900 s) + 60 s
MAX_IDS_COUNTED = 100_000
Into = Literal["new", "live"]


class _DocIds:
    """Distinct ids of documents the rebuild wrote or found newer, counted exactly up to a cap.

    Nothing ever removes a document from the new index (a delete is a tombstone document),
    so it must hold at least this many: the lower bound finalize checks before the swap.
    """

    def __init__(self, cap: int = MAX_IDS_COUNTED) -> None:
        self.ids: set[str] = set()
        self.cap = cap
        self._lock = threading.Lock()

    def add(self, doc_id: str) -> None:
        if len(self.ids) < self.cap:
            with self._lock:
                self.ids.add(doc_id)


@dataclass(slots=True)
class _Job:
    settings: Settings
    s3: S3Client
    bucket: str
    since: float | None
    until: float | None
    target: str
    transport: OpenSearchTransport
    view: ViewSource | None
    skip_poison: bool
    progress: Progress
    ids: _DocIds

    def run(self, obj: ArchiveObject) -> ArchiveProgress:
        """Index one object to its end, resuming from the checkpoint; the sum of every call."""
        total = ArchiveProgress(False, 0, 0, 0, 0, 0, ())
        while True:
            seen = [0]

            def on_chunk(p: ArchiveProgress, seen: list[int] = seen) -> None:
                self.progress.add(lines=lines_of(p) - seen[0])
                seen[0] = lines_of(p)

            deadline = Deadline.within(CALL_BUDGET_S)
            p = index_object(
                self.s3, self.bucket, obj.key, start_line=total.checkpoint, since=self.since,
                until=self.until, target=self.target, settings=self.settings, transport=self.transport,
                deadline=deadline, view=self.view, skip_poison=self.skip_poison, on_chunk=on_chunk,
                on_written=self.ids.add,
            )  # fmt: skip
            self.progress.add(lines=lines_of(p) - seen[0])
            kept = (total.first_poison + p.first_poison)[:MAX_POISON_KEPT]
            progress = total.checkpoint != p.checkpoint
            total = ArchiveProgress(
                p.done, p.checkpoint, total.applied + p.applied, total.stale + p.stale,
                total.skipped + p.skipped, total.poison + p.poison, kept, total.outside + p.outside,
            )  # fmt: skip
            if p.done:
                return total
            if not progress:
                raise RebuildError(
                    f"s3://{self.bucket}/{obj.key}: OpenSearch did not take the writes after line "
                    f"{p.checkpoint}; nothing after it was counted (rerun)"
                )


def _index_all(job: _Job, objects: list[ArchiveObject], parallel: int, summary: RebuildSummary) -> None:
    """Run ``job`` on every object, ``parallel`` at a time; stop starting new ones after a failure."""
    pending = iter(objects)
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="ddbsync-rebuild") as pool:
        running: dict[Future[ArchiveProgress], ArchiveObject] = {}
        while True:
            while len(running) < parallel and not summary.failed:
                obj = next(pending, None)
                if obj is None:
                    break
                running[pool.submit(job.run, obj)] = obj
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                obj = running.pop(future)
                try:
                    summary.add(future.result())
                except DdbsyncError as e:
                    summary.failed.append(str(e))
                summary.objects += 1
                job.progress.add(objects=1)


def _window_text(since: float | None, until: float | None) -> str:
    def text(t: float | None, unbounded: str) -> str:
        if t is None:
            return unbounded
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    return "" if since is None and until is None else f" [{text(since, '-inf')}, {text(until, '+inf')})"


def rebuild(
    settings: Settings,
    location: ArchiveLocation,
    *,
    client: OpenSearch,
    s3: S3Client,
    since: float | None = None,
    until: float | None = None,
    into: Into = "new",
    parallel: int = 4,
    settle_seconds: float = SETTLE_SECONDS,
    skip_poison: bool = False,
    keep_on_failure: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> RebuildSummary:
    """Rebuild from the archive at ``location`` (see the module doc); RebuildError for a usage mistake."""
    out, err = out or sys.stdout, err or sys.stderr
    started = time.monotonic()
    window = _window_text(since, until)
    if since is not None and until is not None and since >= until:
        raise RebuildError(f"--since must be before --until (got{window})", usage=True)
    if into == "new" and (since is not None or until is not None):
        raise RebuildError(
            "--since/--until need --into live: a new index built from part of the archive would "
            "lack every item last changed outside the window",
            usage=True,
        )
    listing = list_archive(s3, location, since, until)
    if not listing.objects:
        skipped = f" ({listing.errors_skipped} errors/ objects skipped)" if listing.errors_skipped else ""
        raise RebuildError(f"no archive objects under {location}{window}{skipped}", usage=True)
    alias = settings.index_alias
    summary = RebuildSummary(str(location) + window, into)
    transport = OpenSearchTransport(client)
    job = _Job(settings, s3, location.bucket, since, until, alias, transport, None, skip_poison,
               Progress(0, err), _DocIds())  # fmt: skip
    if into == "live":
        if read_view(client, alias).live.index is None:
            raise RebuildError(f"the live alias {alias!r} does not exist: use --into new", usage=True)
        job.view = lambda: read_view(client, alias)
        print(f"rebuild {summary.location} -> live alias {alias}", file=out, flush=True)
        _run(job, listing.objects, listing.errors_skipped, parallel, summary)
    else:
        _into_new(job, client, location, parallel, settle_seconds, keep_on_failure, summary, out, sleep, now)
    summary.seconds = time.monotonic() - started
    print_summary(summary, out)
    return summary


def _run(
    job: _Job, objects: list[ArchiveObject], errors: int, parallel: int, summary: RebuildSummary
) -> None:
    summary.objects_total, summary.errors_skipped = len(objects), errors
    job.progress = Progress(len(objects), job.progress.out)
    try:
        _index_all(job, objects, parallel, summary)
    finally:
        job.progress.finish()


def _into_new(
    job: _Job, client: OpenSearch, location: ArchiveLocation, parallel: int, settle_seconds: float,
    keep_on_failure: bool, summary: RebuildSummary, out: TextIO, sleep: Callable[[float], None],
    now: Callable[[], dt.datetime],
) -> None:  # fmt: skip
    s, alias = job.settings, job.settings.index_alias
    created = create_backfill_index(client, alias, s.index_template, now().strftime("%Y%m%d%H%M%S"))
    summary.new_index, job.target = str(created["new_index"]), str(created["next_alias"])
    print(f"rebuild {summary.location} -> new index {summary.new_index} (then swap {alias})", file=out)
    try:
        print(
            f"   waiting {settle_seconds:g} s (--settle-seconds) so that the archive holds every change made "
            f"before the stream indexers began writing to {job.target} (Firehose buffers up to 900 s)",
            file=out, flush=True,
        )  # fmt: skip
        sleep(settle_seconds)
        listing = list_archive(job.s3, location)
        _run(job, listing.objects, listing.errors_skipped, parallel, summary)
        if not summary.failed:
            finalize_backfill(client, alias, summary.new_index, len(job.ids.ids), s.index_template)
            summary.swapped = True
    except DdbsyncError as e:
        summary.failed.append(str(e))
    except BaseException:
        _drop(client, alias, summary.new_index, keep_on_failure, out)
        raise
    if not summary.swapped:
        _drop(client, alias, summary.new_index, keep_on_failure, out)


def _drop(client: OpenSearch, alias: str, new_index: str, keep: bool, out: TextIO) -> None:
    """After a failure: drop the new index (the live alias never moved), or keep it if asked."""
    if keep:
        print(f"   kept {new_index} (--keep-on-failure); {alias} was not swapped", file=out)
        return
    abort_backfill(client, alias, new_index)
    print(f"   dropped {new_index}; {alias} was not swapped", file=out)
