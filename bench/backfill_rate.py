"""Backfill rate: export data files through the real file path vs a raw ``_bulk`` of the same documents.

Items are the ``NewImage`` of ``_common.make_records`` (keys ``pk``/``sk`` included),
written once, outside any timed region, as gzip export data files in AWS's line
format with ``ddbsync.local.exporter.json_line`` (``DYNAMODB_JSON``) or ``ion_line``
(``ION``) into a temporary directory. Both sides write the same documents (same ids,
same export version, same sources) through the same opensearch-py client, in the same
chunks (``backfill_files.CHUNK_ITEMS`` items per ``_bulk``):

* candidate: for each file, ``open(path, "rb")`` →
  ``export_format.iter_export_items`` → ``backfill_files.index_items`` with an
  ``OpenSearchTransport`` (the code ``Backfill.index_file`` runs on the S3 body);
* baseline: ``client.bulk(body=bytes)`` of NDJSON built outside the timed region with
  ``export_change`` + ``Write.lines()`` (what ``index_items`` sends), one request per chunk.

Each side and round gets its own fresh index made by ``index_admin.create_backfill_index``
(no replicas, ``refresh_interval: -1``, written through ``<alias>-next``), created and
green before timing. Both sides are checked to have indexed every item. Rounds
alternate which side goes first, after one untimed warm-up of each; medians are reported.

Usage (from the repository root, with OpenSearch running: scripts/opensearch.sh start)::

    PYTHONPATH=layers/ddbsync:. python bench/backfill_rate.py [--quick] [--format DYNAMODB_JSON --format ION]

Honours OPENSEARCH_URL. The 0.8 target applies to DYNAMODB_JSON (the default export
format); ION, when measured, is reported without a target. Exits 1 when the
DYNAMODB_JSON ratio (backfill rate / raw rate) is below 0.8.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import (
    OPENSEARCH_URL,
    alternate,
    build_info,
    ddb,
    fake_aws_env,
    index_name,
    machine,
    make_records,
    median,
)

os.environ.update(fake_aws_env())

_api = ddb()  # ddbsync's names, from wherever this version keeps them
CHUNK_ITEMS, export_change, index_items = _api.CHUNK_ITEMS, _api.export_change, _api.index_items
Deadline, Write, source_of = _api.Deadline, _api.Write, _api.source_of
Settings, build_client, create_backfill_index = _api.Settings, _api.build_client, _api.create_backfill_index
iter_export_items, ion_line, json_line = _api.iter_export_items, _api.ion_line, _api.json_line
BulkItemResult, StoredMeta = _api.BulkItemResult, _api.StoredMeta
OpenSearchTransport = _api.OpenSearchTransport

TARGET = 0.8
TARGET_FORMAT = "DYNAMODB_JSON"
EXPORT_TIME = 1_800_000_000.25
_LINE: dict[str, Callable[[Mapping[str, Any]], bytes]] = {"DYNAMODB_JSON": json_line, "ION": ion_line}
_SUFFIX = {"DYNAMODB_JSON": ".json.gz", "ION": ".ion.gz"}


def write_files(items: list[dict[str, Any]], fmt: str, per_file: int, directory: Path) -> list[Path]:
    """gzip data files of ``per_file`` items each, as an export writes them."""
    paths = []
    to_line = _LINE[fmt]
    for n, start in enumerate(range(0, len(items), per_file)):
        path = directory / f"{fmt.lower()}-{n:04d}{_SUFFIX[fmt]}"
        with gzip.open(path, "wb", compresslevel=6) as gz:
            gz.writelines(to_line(item) for item in items[start : start + per_file])
        paths.append(path)
    return paths


_TARGET = "@@target@@"


class NullTransport:
    """A :class:`ddbsync.transport.Transport` that sends nothing and answers 201 for every action."""

    def bulk(self, body: bytes, timeout_s: float) -> list[Any]:
        return [BulkItemResult(201)] * (body.count(b"\n") // 2)

    def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[Any]:
        raise AssertionError("a fresh index has no version conflicts")


def raw_bodies(items: list[dict[str, Any]]) -> list[bytes]:
    """What ``index_items`` sends, one NDJSON body per chunk, with a placeholder target alias."""
    bodies = []
    for i in range(0, len(items), CHUNK_ITEMS):
        changes = [export_change(item, "pk", "sk", EXPORT_TIME) for item in items[i : i + CHUNK_ITEMS]]
        bodies.append(b"".join(Write(_TARGET, c, source_of(c)).lines() for c in changes))
    return bodies


class Bench:
    """Holds only bytes and paths between runs: the items themselves are dropped once written.

    A process that keeps tens of thousands of decoded items alive makes every full
    garbage collection during the candidate's run walk them (measured: 87 to 115 us
    per item with the items and their decoded documents held, 55 to 65 us without,
    with a transport that answers at once), a cost the Lambda does not have.
    """

    def __init__(self, count: int, files: list[Path], bodies: list[bytes], fmt: str) -> None:
        self.expected = count
        self.files = files
        self.bodies = bodies
        self.fmt = fmt
        env = {
            "OPENSEARCH_ENDPOINT": OPENSEARCH_URL,
            "OPENSEARCH_SERVICE": "none",
            "INDEX_ALIAS": "bench-backfill",
            "PARTITION_KEY": "pk",
            "SORT_KEY": "sk",
            "TIMEOUT_MARGIN_MS": "0",
        }
        self.settings = Settings.from_env(env, require_dlq=False)
        # The backfill function's own client serves the raw side too ("same client").
        self.client = build_client(self.settings)
        self.transport = OpenSearchTransport(self.client)
        self.indices: list[str] = []

    def fresh_target(self) -> tuple[str, str]:
        """A new backfill index (``<alias>-<stamp>``) and its ``<alias>-next`` alias."""
        alias = index_name("bf")
        prepared = create_backfill_index(self.client, alias, self.settings.index_template, "20261122000000")
        index, target = str(prepared["new_index"]), str(prepared["next_alias"])
        self.indices.append(index)
        self.client.cluster.health(index=index, wait_for_status="green")
        return index, target

    def count(self, index: str) -> int:
        self.client.indices.refresh(index=index)
        return int(self.client.count(index=index)["count"])

    def run_backfill(self) -> float:
        index, target = self.fresh_target()
        deadline = Deadline(lambda: 900_000, 0)
        lines = 0
        start = time.perf_counter()
        for path in self.files:
            with open(path, "rb") as body:
                progress = index_items(
                    iter_export_items(body, self.fmt, path.name),
                    key=path.name,
                    start_line=0,
                    export_time=EXPORT_TIME,
                    target=target,
                    settings=self.settings,
                    transport=self.transport,
                    deadline=deadline,
                )
            assert progress.done and progress.stale == 0, progress
            lines += progress.checkpoint
        elapsed = time.perf_counter() - start
        assert lines == self.expected, f"backfill read {lines} of {self.expected} lines"
        got = self.count(index)
        assert got == self.expected, f"backfill indexed {got} of {self.expected}"
        self.drop(index)
        return self.expected / elapsed

    def run_raw(self) -> float:
        index, target = self.fresh_target()
        quoted = b'"%b"' % target.encode()
        bodies = [body.replace(b'"' + _TARGET.encode() + b'"', quoted) for body in self.bodies]
        errors = False
        start = time.perf_counter()
        for body in bodies:
            errors |= bool(self.client.bulk(body=body)["errors"])
        elapsed = time.perf_counter() - start
        assert not errors, "raw bulk reported item errors"
        got = self.count(index)
        assert got == self.expected, f"raw bulk indexed {got} of {self.expected}"
        self.drop(index)
        return self.expected / elapsed

    def cpu_us_per_item(self) -> float:
        """The file path with a transport that answers at once: our CPU per item."""
        gc.collect()
        deadline = Deadline(lambda: 900_000, 0)
        start = time.perf_counter()
        for path in self.files:
            with open(path, "rb") as body:
                index_items(
                    iter_export_items(body, self.fmt, path.name),
                    key=path.name,
                    start_line=0,
                    export_time=EXPORT_TIME,
                    target="null",
                    settings=self.settings,
                    transport=NullTransport(),
                    deadline=deadline,
                )
        return (time.perf_counter() - start) / self.expected * 1e6

    def drop(self, index: str) -> None:
        self.client.indices.delete(index=index, ignore_unavailable=True)
        self.indices.remove(index)

    def cleanup(self) -> None:
        for index in list(self.indices):
            self.drop(index)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="4,000 items, 3 rounds")
    parser.add_argument("--items", type=int, default=None, help="items in the export (default 20,000)")
    parser.add_argument("--items-per-file", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--format", action="append", choices=tuple(_LINE), help="export format (repeatable; default both)"
    )
    args = parser.parse_args()
    count = args.items or (4_000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 5)
    formats = args.format or ["DYNAMODB_JSON", "ION"]

    print(f"machine: {machine()}")
    print(f"build: {build_info()}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="ddbsync-bench-") as tmp:
        items = [r["dynamodb"]["NewImage"] for r in make_records(count)]
        prepared = {}
        for fmt in formats:
            files = write_files(items, fmt, args.items_per_file, Path(tmp))
            raw_size = sum(len(_LINE[fmt](item)) for item in items)
            prepared[fmt] = (files, raw_size)
        bodies = raw_bodies(items)
        del items
        gc.collect()
        for fmt in formats:
            files, raw_size = prepared[fmt]
            size = sum(p.stat().st_size for p in files)
            bench = Bench(count, files, bodies, fmt)
            if fmt == formats[0]:
                info = bench.client.info()
                print(f"opensearch: {info['version']['number']} at {OPENSEARCH_URL}")
                print(
                    f"items: {count} distinct keys, {CHUNK_ITEMS} per _bulk; "
                    f"{rounds} alternating rounds after one warm-up of each side"
                )
            print(
                f"{fmt}: {len(files)} files, {raw_size / 2**20:.1f} MiB of lines, "
                f"{size / 2**20:.1f} MiB gzip ({raw_size / count:,.0f} bytes/line)"
            )
            try:
                bench.run_raw()
                bench.run_backfill()
                raw, backfill = alternate(rounds, bench.run_raw, bench.run_backfill)
            finally:
                bench.cleanup()
            ratio = median(backfill) / median(raw)
            print(f"{fmt:>13}: raw _bulk {median(raw):9,.0f} items/s  rounds={[round(x) for x in raw]}")
            print(
                f"{fmt:>13}: backfill  {median(backfill):9,.0f} items/s  "
                f"rounds={[round(x) for x in backfill]}"
            )
            if fmt == TARGET_FORMAT:
                met = ratio >= TARGET
                ok = ok and met
                verdict = f"target >= {TARGET}: {'MET' if met else 'MISSED'}"
            else:
                verdict = "(no target for this format)"
            print(f"{fmt:>13}: ratio backfill/raw {ratio:.2f}  {verdict}")
            cpu = median([bench.cpu_us_per_item() for _ in range(3)])
            print(f"{fmt:>13}: our side alone (NullTransport, no OpenSearch): {cpu:.1f} us/item")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
