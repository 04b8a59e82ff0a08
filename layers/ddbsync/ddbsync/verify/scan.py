"""The table side of a verify: a parallel, strongly consistent Scan, spilled to sorted runs.

:func:`parallel_scan` runs one thread per segment (``Segment``/``TotalSegments``); pages
travel through a bounded queue, so at most ``2 * segments`` pages (one queued and one
being read per segment) are held whatever the table's size. ``ConsistentRead`` makes each
page reflect every write made before it was requested, which the repair's version rule
relies on (:mod:`ddbsync.verify.fix`).

:class:`SortedRuns` keeps memory flat: entries are buffered up to ``run_size``, sorted by
document id and written to a temporary file (a *run*); :meth:`SortedRuns.merged` reads all
runs back in id order with a k-way merge, one line per run in memory.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.errors import VerifyError
from ddbsync.verify.compare import TableEntry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["PAGE_ITEMS", "RUN_SIZE", "SortedRuns", "parallel_scan"]

PAGE_ITEMS = 1000
RUN_SIZE = 50_000
_DONE = object()


def _scan_segment(
    ddb: DynamoDBClient, table: str, segment: int, segments: int, pages: queue.Queue[object],
    stop: threading.Event, page_items: int,
) -> None:  # fmt: skip
    request: dict[str, Any] = {
        "TableName": table, "Segment": segment, "TotalSegments": segments,
        "ConsistentRead": True, "Limit": page_items,
    }  # fmt: skip
    try:
        while not stop.is_set():
            page = ddb.scan(**request)
            pages.put(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
    except (ClientError, BotoCoreError) as e:
        pages.put(VerifyError(f"cannot scan table {table!r} (segment {segment}): {e}"))
    finally:
        pages.put(_DONE)


def parallel_scan(
    ddb: DynamoDBClient, table: str, segments: int, page_items: int = PAGE_ITEMS
) -> Iterator[list[dict[str, Any]]]:
    """Yield the table's items page by page, ``segments`` Scan segments read in parallel."""
    pages: queue.Queue[object] = queue.Queue(maxsize=segments)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_scan_segment,
            args=(ddb, table, s, segments, pages, stop, page_items),
            name=f"verify-scan-{s}",
            daemon=True,
        )
        for s in range(segments)
    ]
    for thread in threads:
        thread.start()
    running = segments
    try:
        while running:
            page = pages.get()
            if page is _DONE:
                running -= 1
            elif isinstance(page, VerifyError):
                raise page
            else:
                yield page  # type: ignore[misc]
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock threads waiting on a full queue
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.05)
        for thread in threads:
            thread.join()


class SortedRuns:
    """Table entries spilled to id-sorted temporary files, read back merged in id order."""

    def __init__(self, directory: str | None = None, run_size: int = RUN_SIZE) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ddbsync-verify-", dir=directory)
        self._run_size = run_size
        self._buffer: list[tuple[str, bytes]] = []
        self._runs: list[str] = []
        self.count = 0

    def add(self, entry: TableEntry) -> None:
        self._buffer.append((entry.doc_id, entry.line()))
        self.count += 1
        if len(self._buffer) >= self._run_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort(key=lambda pair: pair[0])
        path = os.path.join(self._dir.name, f"run-{len(self._runs):05d}")
        with open(path, "wb") as f:
            f.writelines(line + b"\n" for _, line in self._buffer)
        self._runs.append(path)
        self._buffer = []

    def merged(self) -> Iterator[TableEntry]:
        """Every entry added, in id order (the runs are closed when the iterator ends)."""
        self._flush()
        files: list[IO[bytes]] = [open(path, "rb", buffering=64 * 1024) for path in self._runs]  # noqa: SIM115
        try:
            streams = [map(TableEntry.of_line, f) for f in files]
            yield from heapq.merge(*streams, key=lambda e: e.doc_id)
        finally:
            for f in files:
                f.close()

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> SortedRuns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
