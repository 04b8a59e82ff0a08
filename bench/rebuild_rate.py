"""Rebuild rate: archive objects through ``index_archive_object`` vs a raw ``_bulk`` of the same documents.

The records are ``_common.make_stream`` (INSERT, MODIFY with ``OldImage``, REMOVE: a
NEW_AND_OLD_IMAGES stream; keys distinct within every 1,000 records, an item's changes in
different seconds), written once, outside any timed region, as archive objects the way the
delivery stream writes them (``archive.lines.archive_line`` + "\\n", gzip) into a temporary
directory, ``--per-object`` records each. A stand-in S3 client opens them from disk (the
rebuild's ``get_object(...)["Body"]``), so neither side pays for S3.

* candidate: for each object, ``index_archive_object`` (gunzip, parse, ``map_records``,
  ``collapse``, ``materialize_newest``, ``make_writes``, ``sending.send``, accounting, the
  checkpoint), one object after the other; and the same with 4 objects at a time (threads,
  as ``ddbsync rebuild --parallel 4``) reported beside it; and with 2 and 4 objects at a time
  in worker processes (spawned, each with its own OpenSearch client; the pool's start, about
  a second of imports per worker, is timed), the experiment of a rebuild that the GIL does
  not serialise; and "CLI runner": the objects through ``rebuild.run._index_all``, 4 threads,
  exactly what ``ddbsync rebuild --parallel 4`` runs per object (``_Job.run`` over
  ``index_object``: the progress callbacks, the id counter, the collector as it leaves it);
* baseline: ``client.bulk(body=bytes, params={"filter_path": <the transport's>,
  "request_timeout": 30})`` (the same client settings and filter_path as bench/e2e_indexing.py's
  raw side) of the NDJSON the rebuild sends (``map_records`` ... ``Write.lines()``, built
  outside the timed region), one request per 1,000 records, one after the other;
* ceiling: the raw side's requests, each chunk of 1,000 lines first gunzipped, parsed
  (``orjson.loads``) and given to ``_common.least_documents`` (images to JSON, no checks,
  ids or accounting), the next chunk made in a thread while a request is in flight, as
  the rebuild does: what a Python rebuild with one request in flight cannot beat here;
* floor: the same with ``least_documents(strict=True)`` (ddbsync's strict decoder and
  ``_ddbsync`` builder; still no ids, versions, collapse or accounting).

All sides write through ``<alias>-next`` of a fresh index made by ``create_backfill_index``
(no replicas, no refresh), the ``--into new`` target, created and green before timing; each
is checked to leave the same number of documents. Rounds rotate which side goes first
after one untimed warm-up of each; medians are reported. ``--no-processes`` skips the
worker-processes experiment.

Usage (from the repository root, OpenSearch running: scripts/opensearch.sh start)::

    PYTHONPATH=layers/ddbsync:. python bench/rebuild_rate.py [--quick] [--records N]

Honours OPENSEARCH_URL. Exits 1 when the one-at-a-time ratio (rebuild / raw) is below 0.8.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from _common import (
    OPENSEARCH_URL,
    build_info,
    ddb,
    fake_aws_env,
    index_name,
    least_documents,
    machine,
    make_stream,
    median,
    rotate,
)

os.environ.update(fake_aws_env())

_api = ddb()  # ddbsync's names, from wherever this version keeps them
archive_line, index_archive_object = _api.archive_line, _api.index_archive_object
map_records, collapse, materialize_newest = _api.map_records, _api.collapse, _api.materialize_newest
make_writes, Settings, Deadline = _api.make_writes, _api.Settings, _api.Deadline
build_client, create_backfill_index = _api.build_client, _api.create_backfill_index
OpenSearchTransport, BulkItemResult = _api.OpenSearchTransport, _api.BulkItemResult
BULK_FILTER = _api.BULK_FILTER

TARGET = 0.8
PER_REQUEST = 1_000  # BULK_MAX_ACTIONS' default: the rebuild's chunk, and the raw side's request
_PLACEHOLDER = "@@target@@"


class DiskS3:
    """``get_object`` from a directory: the body is the open file (read as S3's stream is)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": open(self.directory / Key, "rb")}


def write_objects(records: list[dict[str, Any]], per_object: int, directory: Path) -> list[str]:
    keys = []
    for n, start in enumerate(range(0, len(records), per_object)):
        key = f"part-{n:04d}.gz"
        lines = b"".join(archive_line(r) + b"\n" for r in records[start : start + per_object])
        (directory / key).write_bytes(gzip.compress(lines, compresslevel=6))
        keys.append(key)
    return keys


def raw_bodies(records: list[dict[str, Any]], settings: Any) -> tuple[list[bytes], int]:
    """The NDJSON the rebuild sends, one body per ``PER_REQUEST`` records; and the document count."""
    bodies, docs = [], 0
    for i in range(0, len(records), PER_REQUEST):
        changes, poison = map_records(records[i : i + PER_REQUEST], "pk", "sk", decode=False)
        assert not poison
        alive = [c if c.op != "index" else materialize_newest(c, poison) for c in collapse(changes)]
        writes = make_writes([c for c in alive if c is not None], [_PLACEHOLDER])
        bodies.append(b"".join(w.lines() for w in writes))
        docs += len(writes)
    return bodies, docs


class NullTransport:
    def bulk(self, body: bytes, timeout_s: float) -> list[Any]:
        return [BulkItemResult(201)] * (body.count(b"\n") // 2)

    def mget(self, index: str, ids: Any, timeout_s: float) -> list[Any]:
        raise AssertionError("a fresh index has no version conflicts")


class Bench:
    def __init__(self, directory: Path, keys: list[str], bodies: list[bytes], records: int) -> None:
        self.s3, self.keys, self.bodies, self.records = DiskS3(directory), keys, bodies, records
        env = {"OPENSEARCH_ENDPOINT": OPENSEARCH_URL, "OPENSEARCH_SERVICE": "none",
               "INDEX_ALIAS": "bench-rebuild", "PARTITION_KEY": "pk", "SORT_KEY": "sk",
               "TIMEOUT_MARGIN_MS": "0"}  # fmt: skip
        self.settings = Settings.from_env(env, require_dlq=False)
        self.client = build_client(self.settings)  # the rebuild's client serves the raw side too
        self.transport = OpenSearchTransport(self.client)
        self.docs = -1

    def fresh(self) -> tuple[str, str]:
        alias = index_name("rb")
        made = create_backfill_index(self.client, alias, self.settings.index_template, "20270101000000")
        index = str(made["new_index"])
        self.client.cluster.health(index=index, wait_for_status="green")
        return index, str(made["next_alias"])

    def finish(self, index: str, elapsed: float) -> float:
        self.client.indices.refresh(index=index)
        count = int(self.client.count(index=index)["count"])
        self.client.indices.delete(index=index)
        assert self.docs in (-1, count), f"{count} documents, the other side left {self.docs}"
        self.docs = count
        return self.records / elapsed

    def one(self, key: str, target: str) -> int:
        p = index_archive_object(
            self.s3, "bench", key, start_line=0, since=None, until=None, target=target,
            settings=self.settings, transport=self.transport, deadline=Deadline(lambda: 900_000, 0),
        )  # fmt: skip
        # One object at a time writes every change in order (stale 0); objects read in
        # parallel may meet a newer change written first by another (stale, as designed).
        assert p.done and p.poison == 0 and p.applied + p.stale == p.checkpoint, p
        return int(p.checkpoint)

    def run_rebuild(self, parallel: int = 1) -> float:
        index, target = self.fresh()
        start = time.perf_counter()
        if parallel == 1:
            lines = sum(self.one(key, target) for key in self.keys)
        else:
            with ThreadPoolExecutor(parallel) as pool:
                lines = sum(pool.map(lambda key: self.one(key, target), self.keys))
        elapsed = time.perf_counter() - start
        assert lines == self.records, f"rebuild applied {lines} of {self.records} lines"
        return self.finish(index, elapsed)

    def run_processes(self, parallel: int) -> float:
        """The objects ``parallel`` at a time in spawned worker processes, each with its own clients."""
        index, target = self.fresh()
        context = multiprocessing.get_context("spawn")
        start = time.perf_counter()
        with ProcessPoolExecutor(parallel, mp_context=context, initializer=_start_worker,
                                 initargs=(str(self.s3.directory),)) as pool:  # fmt: skip
            lines = sum(pool.map(_worker_one, self.keys, [target] * len(self.keys)))
        elapsed = time.perf_counter() - start
        assert lines == self.records, f"rebuild applied {lines} of {self.records} lines"
        return self.finish(index, elapsed)

    def run_runner(self, parallel: int) -> float:
        """The objects through the CLI's runner (``run._index_all`` and ``_Job``), ``parallel`` threads."""
        from ddbsync.rebuild import run
        from ddbsync.rebuild.locations import ArchiveObject
        from ddbsync.rebuild.progress import Progress

        index, target = self.fresh()
        job = run._Job(self.settings, cast(Any, self.s3), "bench", None, None, target, self.transport, None,
                       False, Progress(0, io.StringIO()), run._DocIds())  # fmt: skip
        summary = run.RebuildSummary("bench", "new")
        start = time.perf_counter()
        run._index_all(job, [ArchiveObject(key, 0) for key in self.keys], parallel, summary)
        elapsed = time.perf_counter() - start
        assert not summary.failed and summary.lines == self.records, (summary.failed, summary.lines)
        return self.finish(index, elapsed)

    def our_side_us(self) -> float:
        """The objects through a transport that answers at once: our CPU-bound time per record."""
        real, self.transport = self.transport, cast(Any, NullTransport())
        try:
            gc.collect()
            start = time.perf_counter()
            lines = sum(self.one(key, "null") for key in self.keys)
            return (time.perf_counter() - start) / lines * 1e6
        finally:
            self.transport = real

    def run_floor(self) -> float:
        return self.run_ceiling(strict=True)

    def run_ceiling(self, *, strict: bool = False) -> float:
        """The least a Python rebuild does (gunzip, parse, ``least_documents``) before each raw request.

        The next chunk is made while a request is in flight, in a thread (ddbsync.prefetch), as
        ``index_archive_object`` does.
        """
        import orjson

        index, target = self.fresh()
        quoted = b'"%b"' % target.encode()
        bodies = iter([b.replace(b'"%b"' % _PLACEHOLDER.encode(), quoted) for b in self.bodies])
        params = {"filter_path": BULK_FILTER, "request_timeout": 30}
        errors = False
        start = time.perf_counter()
        for key in self.keys:
            with _api.paused_gc(), self.s3.get_object(Bucket="bench", Key=key)["Body"] as body:
                lines = gzip.decompress(body.read()).splitlines()
                made = (
                    least_documents([orjson.loads(x) for x in lines[i : i + PER_REQUEST]], strict=strict)
                    for i in range(0, len(lines), PER_REQUEST)
                )
                with _api.prefetched(made) as ahead:  # as the rebuild does: the next chunk while one is sent
                    for _ in ahead:
                        errors |= bool(self.client.bulk(body=next(bodies), params=params)["errors"])
        elapsed = time.perf_counter() - start
        assert not errors, "raw bulk reported item errors"
        return self.finish(index, elapsed)

    def run_raw(self) -> float:
        index, target = self.fresh()
        quoted = b'"%b"' % target.encode()
        bodies = [b.replace(b'"%b"' % _PLACEHOLDER.encode(), quoted) for b in self.bodies]
        params = {"filter_path": BULK_FILTER, "request_timeout": 30}
        errors = False
        start = time.perf_counter()
        for body in bodies:
            errors |= bool(self.client.bulk(body=body, params=params)["errors"])
        elapsed = time.perf_counter() - start
        assert not errors, "raw bulk reported item errors"
        return self.finish(index, elapsed)


_worker: Bench | None = None  # a worker process's own Bench (settings, OpenSearch client, transport)


def _start_worker(directory: str) -> None:
    global _worker
    _worker = Bench(Path(directory), [], [], 0)


def _worker_one(key: str, target: str) -> int:
    assert _worker is not None
    return _worker.one(key, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None, help="stream records (default 40,000)")
    parser.add_argument("--per-object", type=int, default=5_000, help="records per archive object")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--processes", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the worker-processes experiment (2 and 4; default on)")  # fmt: skip
    args = parser.parse_args()
    count = args.records or (10_000 if args.quick else 40_000)
    rounds = args.rounds or (3 if args.quick else 5)
    print(f"machine: {machine()}")
    print(f"build: {build_info()}")
    with tempfile.TemporaryDirectory(prefix="ddbsync-bench-") as tmp:
        records = make_stream(count)
        keys = write_objects(records, args.per_object, Path(tmp))
        settings = Settings.from_env({"OPENSEARCH_ENDPOINT": OPENSEARCH_URL, "OPENSEARCH_SERVICE": "none",
                                      "INDEX_ALIAS": "x", "PARTITION_KEY": "pk", "SORT_KEY": "sk"},
                                     require_dlq=False)  # fmt: skip
        bodies, docs = raw_bodies(records, settings)
        kinds = {k: sum(r["eventName"] == k for r in records) for k in ("INSERT", "MODIFY", "REMOVE")}
        line_bytes = sum(len(archive_line(r)) + 1 for r in records)
        del records
        gc.collect()
        size = sum((Path(tmp) / k).stat().st_size for k in keys)
        bench = Bench(Path(tmp), keys, bodies, count)
        print(f"opensearch: {bench.client.info()['version']['number']} at {OPENSEARCH_URL}")
        print(f"records: {count} ({kinds}), {docs} writes; {len(keys)} objects, {line_bytes / 2**20:.1f} MiB "
              f"of lines, {size / 2**20:.1f} MiB gzip; {PER_REQUEST} per _bulk; {rounds} alternating rounds "
              "after one warm-up of each side")  # fmt: skip
        bench.run_raw()
        bench.run_rebuild()
        bench.run_ceiling()
        bench.run_floor()
        contenders = {
            "raw": bench.run_raw,
            "rebuild": bench.run_rebuild,
            "ceiling": bench.run_ceiling,
            "floor": bench.run_floor,
        }
        sides = rotate(rounds, contenders)
        raw, rebuild, ceiling, floor = sides["raw"], sides["rebuild"], sides["ceiling"], sides["floor"]
        parallel = [bench.run_rebuild(4) for _ in range(rounds)]
        runner = [bench.run_runner(4) for _ in range(rounds)]
        experiment = (2, 4) if args.processes else ()
        processes = {n: [bench.run_processes(n) for _ in range(rounds)] for n in experiment}
        alone = median([bench.our_side_us() for _ in range(3)])
    ratio = median(rebuild) / median(raw)
    print(f"raw _bulk            {median(raw):9,.0f} records/s  rounds={[round(x) for x in raw]}")
    print(f"rebuild, 1 at a time {median(rebuild):9,.0f} records/s  rounds={[round(x) for x in rebuild]}")
    print(f"ceiling              {median(ceiling):9,.0f} records/s  rounds={[round(x) for x in ceiling]}  "
          f"ratio {median(ceiling) / median(raw):.2f} (gunzip, parse, least_documents ahead of "
          "raw: the most a Python rebuild with one request in flight reaches)")  # fmt: skip
    print(f"floor                {median(floor):9,.0f} records/s  rounds={[round(x) for x in floor]}  "
          f"ratio {median(floor) / median(raw):.2f} (the ceiling with ddbsync's strict decoder)")  # fmt: skip
    print(f"rebuild, 4 at a time {median(parallel):9,.0f} records/s  rounds={[round(x) for x in parallel]}")
    print(f"CLI runner, 4 threads {median(runner):9,.0f} records/s  rounds={[round(x) for x in runner]}  "
          f"ratio {median(runner) / median(raw):.2f}")  # fmt: skip
    for n, rates in processes.items():
        print(f"rebuild, {n} processes  {median(rates):9,.0f} records/s  rounds={[round(x) for x in rates]}  "
              f"ratio {median(rates) / median(raw):.2f}")  # fmt: skip
    print(f"our side alone (a transport that answers at once, no OpenSearch): {alone:.1f} us/record")
    met = ratio >= TARGET
    print(f"ratio rebuild/raw {ratio:.2f} (4 at a time: {median(parallel) / median(raw):.2f})  "
          f"target >= {TARGET}: {'MET' if met else 'MISSED'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
