"""``ddbsync verify``: compare the table with the live index, report drift, optionally repair it.

The flow, in flat memory whatever the table's size:

1. T = now; ``newest = export_version(T)`` (:mod:`ddbsync.verify.compare` says what is
   judged, :mod:`ddbsync.verify.fix` why repairs use that version);
2. a parallel, strongly consistent Scan (``segments`` threads) turns each item into an
   entry (id, body digest, key), spilled to id-sorted runs on disk
   (:mod:`ddbsync.verify.scan`);
3. the runs, merged, are joined with a walk of the live alias's index in ``_id`` order
   (:mod:`ddbsync.verify.walk`); each id is classified, and drift goes to a spool file;
4. the spool is read back in chunks: each candidate is judged again against the
   document as it is *now* (real-time ``mget``), so a change that reached the index
   during the walk is not reported; with ``repair`` the confirmed chunk is fixed.

Only ids appear in the report and the logs, never item data.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, TYPE_CHECKING, Any, TextIO

import orjson

from ddbsync.config import Settings
from ddbsync.errors import DdbsyncError, IndexAdminError, VerifyError
from ddbsync.opensearch.indices import read_view
from ddbsync.verify.compare import Drift, TableEntry, classify, join, table_entry, unreadable_entry
from ddbsync.verify.fix import Candidate, FixCounts, repair_drift
from ddbsync.verify.scan import PAGE_ITEMS, RUN_SIZE, SortedRuns, parallel_scan
from ddbsync.verify.walk import fetch_entries, walk_index
from ddbsync.versioning import export_version

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from opensearchpy import OpenSearch

__all__ = ["CONFIRM_CHUNK", "Progress", "VerifySummary", "default_progress", "run_verify", "table_name"]

CONFIRM_CHUNK = 500


class Progress:
    """A one-line progress bar on a terminal (``stream``), redrawn at most 5 times a second."""

    def __init__(self, stream: TextIO | None, total: int | None = None) -> None:
        self.stream, self.total, self._last = stream, total, 0.0

    def show(self, phase: str, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.stream is None or (not force and now - self._last < 0.2):
            return
        self._last = now
        if self.total:
            filled = min(30, 30 * done // max(1, self.total))
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done:,}/~{self.total:,}"
        else:
            bar = f"{done:,}"
        self.stream.write(f"\r{phase:<6} {bar}\x1b[K")
        self.stream.flush()

    def end(self) -> None:
        if self.stream is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@dataclass(slots=True)
class VerifySummary:
    """What a verify found (and repaired). ``recent``: documents changed after it started."""

    table: str
    alias: str
    index: str = ""
    segments: int = 0
    started: float = 0.0
    items: int = 0
    documents: int = 0
    tombstones: int = 0
    recent: int = 0
    settled: int = 0  # found by the walk, in step by the time they were looked at again
    unreadable: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {d.value: 0 for d in Drift})
    examples: dict[str, list[str]] = field(default_factory=lambda: {d.value: [] for d in Drift})
    unreadable_examples: list[str] = field(default_factory=list)
    repaired: FixCounts | None = None
    duration_s: float = 0.0

    @property
    def drift(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "table": self.table, "alias": self.alias, "index": self.index,
            "segments": self.segments, "started": self.started, "items": self.items,
            "documents": self.documents, "tombstones": self.tombstones, "recent": self.recent,
            "settled": self.settled, "unreadable": self.unreadable, "drift": self.drift,
            "counts": self.counts, "examples": self.examples,
            "unreadable_examples": self.unreadable_examples,
            "repaired": None, "duration_s": round(self.duration_s, 3),
        }  # fmt: skip
        if self.repaired is not None:
            r = self.repaired
            out["repaired"] = {"written": r.written, "newer_kept": r.newer_kept, "gone": r.gone,
                               "rejected": r.rejected, "unsent": r.unsent}  # fmt: skip
        return out


class _Spool:
    """Drift candidates on disk: (kind, id, table digest, key) per line."""

    def __init__(self, directory: str | None) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115

    def add(self, kind: Drift, doc_id: str, table: TableEntry | None) -> None:
        row = [kind.value, doc_id, table.digest if table else None, table.key if table else None]
        self._file.write(orjson.dumps(row) + b"\n")

    def chunks(self, size: int) -> Iterator[list[tuple[str, TableEntry | None]]]:
        self._file.seek(0)
        rows = (orjson.loads(line) for line in self._file)
        while chunk := list(islice(rows, size)):
            yield [(r[1], TableEntry(r[1], r[2], r[3]) if r[2] is not None else None) for r in chunk]

    def close(self) -> None:
        self._file.close()


def _scan(
    summary: VerifySummary, runs: SortedRuns, ddb: DynamoDBClient, settings: Settings,
    progress: Progress, examples: int, page_items: int,
) -> None:  # fmt: skip
    for page in parallel_scan(ddb, summary.table, summary.segments, page_items):
        summary.items += len(page)
        for item in page:
            try:
                runs.add(table_entry(item, settings.partition_key, settings.sort_key))
            except DdbsyncError as e:  # an item no writer can index: reported, not judged
                summary.unreadable += 1
                if len(summary.unreadable_examples) < examples:
                    summary.unreadable_examples.append(type(e).__name__)
                entry = unreadable_entry(item, settings.partition_key, settings.sort_key)
                if entry is not None:  # its id is known: a document under it is not "extra"
                    runs.add(entry)
        progress.show("scan", summary.items)


def _walk(summary: VerifySummary, runs: SortedRuns, client: OpenSearch, spool: _Spool, newest: int,
          progress: Progress) -> None:  # fmt: skip
    for table, doc in join(runs.merged(), walk_index(client, summary.index)):
        if doc is not None:
            summary.documents += 1
            summary.tombstones += doc.deleted
            if doc.version >= newest:
                summary.recent += 1
            if summary.documents % 1000 == 0:
                progress.show("index", summary.documents)
        kind = classify(table, doc, newest)
        if kind is not None:
            assert table is not None or doc is not None
            spool.add(kind, table.doc_id if table else doc.doc_id, table)  # type: ignore[union-attr]


def _confirm(
    chunk: list[tuple[str, TableEntry | None]], client: OpenSearch, summary: VerifySummary, newest: int,
    examples: int,
) -> list[Candidate]:  # fmt: skip
    fresh = fetch_entries(client, summary.index, [doc_id for doc_id, _ in chunk])
    confirmed = []
    for doc_id, table in chunk:
        kind = classify(table, fresh.get(doc_id), newest)
        if kind is None:
            summary.settled += 1
            continue
        summary.counts[kind.value] += 1
        if len(summary.examples[kind.value]) < examples:
            summary.examples[kind.value].append(doc_id)
        confirmed.append(Candidate(kind, doc_id, table.key if table else None))
    return confirmed


def _add(total: FixCounts, more: FixCounts) -> None:
    for name in ("written", "newer_kept", "gone", "rejected", "unsent"):
        setattr(total, name, getattr(total, name) + getattr(more, name))


def run_verify(
    settings: Settings, table: str, *, ddb: DynamoDBClient, client: OpenSearch, segments: int = 4,
    repair: bool = False, workdir: str | None = None, progress: Progress | None = None,
    examples: int = 10, run_size: int = RUN_SIZE, page_items: int = PAGE_ITEMS,
    clock: Callable[[], float] = time.time,
    before_repair: Callable[[Sequence[Candidate]], None] | None = None,
) -> VerifySummary:  # fmt: skip
    """Compare ``table`` with the index behind ``settings.index_alias``; raise VerifyError if it cannot.

    ``before_repair`` (tests) runs after a chunk is confirmed and before it is repaired.
    """
    progress = progress or Progress(None)
    summary = VerifySummary(table, settings.index_alias, segments=segments)
    began = time.monotonic()
    try:
        view = read_view(client, settings.index_alias)
    except IndexAdminError as e:
        raise VerifyError(str(e)) from e
    if view.live.index is None:
        raise VerifyError(f"the alias {settings.index_alias!r} does not exist (run a backfill)")
    summary.index = view.live.index
    summary.started = clock()
    newest = export_version(summary.started)
    if repair:
        summary.repaired = FixCounts()
    spool = _Spool(workdir)
    try:
        with SortedRuns(workdir, run_size) as runs:
            _scan(summary, runs, ddb, settings, progress, examples, page_items)
            _walk(summary, runs, client, spool, newest, progress)
        for chunk in spool.chunks(CONFIRM_CHUNK):
            confirmed = _confirm(chunk, client, summary, newest, examples)
            if summary.repaired is not None and confirmed:
                if before_repair is not None:
                    before_repair(confirmed)
                fixed = repair_drift(confirmed, settings=settings, table=table, ddb=ddb, client=client,
                                     started=summary.started)  # fmt: skip
                _add(summary.repaired, fixed)
    finally:
        spool.close()
        progress.end()
    summary.duration_s = time.monotonic() - began
    return summary


def table_name(explicit: str | None, env: Mapping[str, str]) -> str | None:
    """``explicit`` (``--table``), else TABLE_NAME, else the name in TABLE_ARN; None when none is set."""
    if explicit and explicit.strip():
        return explicit.strip()
    if env.get("TABLE_NAME", "").strip():
        return env["TABLE_NAME"].strip()
    arn = env.get("TABLE_ARN", "").strip()
    if ":table/" in arn:
        return arn.split(":table/", 1)[1].split("/", 1)[0] or None
    return None


def default_progress(enabled: bool | None, total: int | None = None) -> Progress:
    """A progress bar on stderr: always when ``enabled``, never when False, on a terminal when None."""
    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)())
    return Progress(sys.stderr if enabled else None, total)
