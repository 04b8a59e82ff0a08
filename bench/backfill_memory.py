"""Peak memory of indexing ONE export data file, in fresh processes, against an import-only floor.

Two kinds of gzip ``DYNAMODB_JSON`` data file are generated once into a temporary directory
(one distinct key per line, written with ``local.exporter.json_line``):

* small items, from the item mix of ``_common.make_records`` (about 860 bytes a line): one
  file of ``--size-mb`` MiB of lines (default 1024) and one of a quarter of that, to show
  that memory is flat in the file size;
* large items (``--large-kb``, default 400: DynamoDB's item size limit), ``--large-items``
  lines each (default 2000): the same mix plus a list of small maps (``events``, many small
  Python objects once parsed) and a long string (``notes``), half of the line each. These
  show that memory is bounded by bytes, not only by the number of items per chunk.
  ``--large-kb`` may be given more than once (e.g. ``--large-kb 122 --large-kb 400``).

Each measurement runs in a fresh ``python`` subprocess (this file with ``--child``):

* ``floor``: imports the modules the backfill's ``index_file`` uses, builds the settings,
  the opensearch-py client and its transport, and makes one request (``info``);
* ``index``: the same, then creates a fresh backfill index
  (``index_admin.create_backfill_index``: no replicas, ``refresh_interval: -1``) and
  streams the file through ``open(path, "rb")`` → ``iter_export_items`` →
  ``index_items`` into it (the code ``Backfill.index_file`` runs on the S3 body), checks
  that every line is indexed, then deletes the index.

The child reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak RSS, KiB on Linux).
Rounds alternate the order of the runs. With ``--null`` the index runs use a
transport that answers success without sending (``NullTransport``): our side's memory
only, no OpenSearch needed. The settings are the defaults (``BULK_MAX_BYTES`` 5 MiB, or
``--bulk-max-bytes``).

Usage (from the repository root, with OpenSearch running: scripts/opensearch.sh start)::

    PYTHONPATH=layers/ddbsync:. python bench/backfill_memory.py [--quick] [--size-mb 1024] [--null]
        [--large-kb 400 ...] [--large-items 2000] [--rounds 2] [--bulk-max-bytes 5242880]

Honours OPENSEARCH_URL. Targets: peak RSS of the full-size small-item run under 256 MiB,
flat in file size: peak(full) - peak(quarter) under 16 MiB, and every large-item run under
300 MiB (the backfill function has 1,024 MB). Exits 1 when any is missed.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

TARGET_PEAK_MIB = 256
TARGET_FLAT_MIB = 16
TARGET_LARGE_MIB = 300
EXPORT_TIME = 1_800_000_000.25


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- the child: what is measured ------------------------------------------------------------


def child(mode: str, path: str, null: bool, bulk_max_bytes: int | None) -> dict[str, object]:
    """Run in a fresh interpreter; everything imported here counts towards the peak."""
    from _common import ddb, index_name

    api = ddb()  # ddbsync's names, imported here (they count towards the peak)
    index_items, Deadline, Settings = api.index_items, api.Deadline, api.Settings
    iter_export_items, create_backfill_index = api.iter_export_items, api.create_backfill_index
    build_client, OpenSearchTransport = api.build_client, api.OpenSearchTransport
    BulkItemResult = api.BulkItemResult

    class NullTransport:
        """A Transport that sends nothing and answers 201 for every action."""

        def bulk(self, body: bytes, timeout_s: float) -> list[Any]:
            return [BulkItemResult(201)] * (body.count(b"\n") // 2)

        def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[Any]:
            raise AssertionError("a fresh index has no version conflicts")

    url = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200").rstrip("/")
    env = {
        "OPENSEARCH_ENDPOINT": url,
        "OPENSEARCH_SERVICE": "none",
        "INDEX_ALIAS": index_name("mem"),
        "PARTITION_KEY": "pk",
        "SORT_KEY": "sk",
        "TIMEOUT_MARGIN_MS": "0",
        "AWS_REGION": "eu-west-1",
    }
    if bulk_max_bytes is not None:
        env["BULK_MAX_BYTES"] = str(bulk_max_bytes)
    settings = Settings.from_env(env, require_dlq=False)
    client = build_client(settings)
    transport = NullTransport() if null else OpenSearchTransport(client)
    if not null:
        client.info()
    floor = _peak_kib()
    if mode == "floor":
        return {"mode": mode, "peak_kib": floor}
    index = None
    target = "null"
    if not null:
        prepared = create_backfill_index(
            client, settings.index_alias, settings.index_template, "20261122000000"
        )
        index, target = str(prepared["new_index"]), str(prepared["next_alias"])
    try:
        start = time.perf_counter()
        with open(path, "rb") as body:
            progress = index_items(
                iter_export_items(body, "DYNAMODB_JSON", Path(path).name),
                key=Path(path).name,
                start_line=0,
                export_time=EXPORT_TIME,
                target=target,
                settings=settings,
                transport=transport,
                deadline=Deadline(lambda: 3_600_000, 0),
            )
        seconds = time.perf_counter() - start
        peak = _peak_kib()
        assert progress.done and progress.stale == 0, progress
        count = None
        if index is not None:
            client.indices.refresh(index=index)
            count = int(client.count(index=index)["count"])
            assert count == progress.checkpoint, f"indexed {count} of {progress.checkpoint} lines"
    finally:
        if index is not None:
            client.indices.delete(index=index, ignore_unavailable=True)
    return {
        "mode": mode,
        "peak_kib": peak,
        "floor_in_child_kib": floor,
        "lines": progress.checkpoint,
        "documents": count,
        "seconds": seconds,
    }


# --- the parent: files, rounds, verdict --------------------------------------------------------


def generate(path: Path, size_bytes: int, seed: int = 11) -> tuple[int, int]:
    """A gzip DYNAMODB_JSON data file of at least ``size_bytes`` of lines; returns (lines, bytes)."""
    # The item mix of make_records, generated one item at a time.
    from _common import _image, ddb

    json_line = ddb().json_line

    rng = random.Random(seed)
    written = lines = 0
    with gzip.open(path, "wb", compresslevel=6) as gz:
        while written < size_bytes:
            item = {"pk": {"S": f"tenant-{lines % 50}"}, "sk": {"S": f"item-{lines:08d}"}}
            item.update(_image(rng, lines))
            line = json_line(item)
            gz.write(line)
            written += len(line)
            lines += 1
    return lines, written


def large_item(rng: random.Random, i: int, line_bytes: int, sentences: Sequence[str]) -> dict[str, Any]:
    """One item whose export line is about ``line_bytes``: the small mix, events and notes.

    About half of the line is ``events``, a list of small maps (each value parses to a few
    Python objects), the rest ``notes``, one long string.
    """
    from _common import _WORDS, _image, ddb

    json_line = ddb().json_line

    item: dict[str, Any] = {"pk": {"S": f"tenant-{i % 50}"}, "sk": {"S": f"item-{i:08d}"}}
    item.update(_image(rng, i))
    base = len(json_line(item))
    events: list[dict[str, Any]] = []
    size = 0
    while base + size < line_bytes // 2:
        event = {
            "M": {
                "ts": {"N": str(1_750_000_000 + rng.randint(0, 10_000_000))},
                "status": {"S": rng.choice(["created", "priced", "shipped", "returned"])},
                "by": {"S": f"user-{rng.randint(1, 999)}"},
                "qty": {"N": str(rng.randint(1, 50))},
                "note": {"S": " ".join(rng.choices(_WORDS, k=4))},
            }
        }
        events.append(event)
        size += len(orjson.dumps(event)) + 1
    item["events"] = {"L": events}
    left = line_bytes - len(json_line(item)) - len(',"notes":{"S":""}')
    text = ""
    while len(text) < left:
        text += " ".join(rng.choices(sentences, k=64)) + " "
    item["notes"] = {"S": text.encode("utf-8")[: max(0, left)].decode("utf-8", "ignore")}
    return item


def _large(path: Path, *, size: int, items: int) -> tuple[int, int]:
    return generate_large(path, size, items)


def generate_large(path: Path, line_bytes: int, count: int, seed: int = 13) -> tuple[int, int]:
    """A gzip DYNAMODB_JSON data file of ``count`` lines of about ``line_bytes``; (lines, bytes)."""
    from _common import _WORDS, ddb

    json_line = ddb().json_line

    rng = random.Random(seed)
    sentences = [" ".join(rng.choices(_WORDS, k=rng.randint(6, 14))) + "." for _ in range(500)]
    written = 0
    with gzip.open(path, "wb", compresslevel=1) as gz:
        for i in range(count):
            line = json_line(large_item(rng, i, line_bytes, sentences))
            gz.write(line)
            written += len(line)
    return count, written


def run_child(mode: str, path: Path | None, null: bool, bulk_max_bytes: int | None) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", mode, "--file", str(path or "")]
    if null:
        cmd.append("--null")
    if bulk_max_bytes is not None:
        cmd += ["--bulk-max-bytes", str(bulk_max_bytes)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def mib(kib: object) -> float:
    return float(kib) / 1024  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="--size-mb 64, 1 round")
    parser.add_argument("--size-mb", type=int, default=None, help="MiB of lines in the big file (1024)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2)")
    parser.add_argument("--null", action="store_true", help="a transport that answers without sending")
    parser.add_argument(
        "--large-kb",
        type=int,
        action="append",
        default=None,
        help="KiB per line of a large-item file (repeatable; default 400)",
    )
    parser.add_argument("--large-items", type=int, default=2000, help="lines per large-item file (2000)")
    parser.add_argument(
        "--bulk-max-bytes", type=int, default=None, help="BULK_MAX_BYTES for the backfill (default 5 MiB)"
    )
    parser.add_argument("--child", choices=("floor", "index"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.file, args.null, args.bulk_max_bytes)))
        return 0

    from _common import machine, median

    size_mb = args.size_mb or (64 if args.quick else 1024)
    rounds = args.rounds or (1 if args.quick else 2)
    large_kb: list[int] = args.large_kb or [400]
    print(f"machine: {machine()}")
    target = (
        "NullTransport (nothing sent)"
        if args.null
        else os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200")
    )
    print(f"indexing into: {target}, BULK_MAX_BYTES {args.bulk_max_bytes or 5 * 2**20:,}")
    with tempfile.TemporaryDirectory(prefix="ddbsync-bench-mem-") as tmp:
        files: dict[str, Path] = {}
        jobs: list[tuple[str, Callable[[Path], tuple[int, int]]]] = [
            ("quarter", lambda p: generate(p, size_mb // 4 * 2**20)),
            ("full", lambda p: generate(p, size_mb * 2**20)),
        ]
        for kb in large_kb:
            jobs.append((f"{kb}KB", functools.partial(_large, size=kb * 1024, items=args.large_items)))
        for name, make in jobs:
            path = Path(tmp) / f"{name}.json.gz"
            start = time.perf_counter()
            lines, raw = make(path)
            print(
                f"generated {name}: {lines:,} lines, {raw / 2**20:,.0f} MiB of lines "
                f"({raw / lines / 1024:,.1f} KiB a line), {path.stat().st_size / 2**20:,.0f} MiB gzip "
                f"in {time.perf_counter() - start:.0f} s"
            )
            files[name] = path
        names = ["floor", "quarter", "full", *(f"{kb}KB" for kb in large_kb)]
        peaks: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            order = list(names)
            if r % 2:
                order.reverse()
            for name in order:
                mode = "floor" if name == "floor" else "index"
                result = run_child(mode, files.get(name), args.null, args.bulk_max_bytes)
                peaks[name].append(mib(result["peak_kib"]))
                extra = ""
                if name != "floor":
                    lines, seconds = int(str(result["lines"])), float(str(result["seconds"]))
                    extra = (
                        f"  {lines:,} lines in {seconds:.0f} s ({lines / seconds:,.0f} items/s), "
                        f"floor inside this child {mib(result['floor_in_child_kib']):.1f} MiB"
                    )
                print(f"round {r + 1} {name:>7}: peak RSS {mib(result['peak_kib']):6.1f} MiB{extra}")
    medians = {name: median(values) for name, values in peaks.items()}
    floor, quarter, full = medians["floor"], medians["quarter"], medians["full"]
    growth = full - quarter
    peak_ok = full < TARGET_PEAK_MIB
    flat_ok = growth < TARGET_FLAT_MIB
    print(f"median peak RSS over {rounds} round(s), and above the floor ({floor:.1f} MiB):")
    print(f"  {size_mb // 4} MiB file of small items: {quarter:6.1f} MiB  (+{quarter - floor:.1f})")
    print(f"  {size_mb} MiB file of small items: {full:6.1f} MiB  (+{full - floor:.1f})")
    large_ok = True
    for kb in large_kb:
        peak = medians[f"{kb}KB"]
        ok = peak < TARGET_LARGE_MIB
        large_ok = large_ok and ok
        print(f"  {args.large_items:,} lines of {kb} KiB: {peak:6.1f} MiB  (+{peak - floor:.1f}), "
              f"< {TARGET_LARGE_MIB} MiB: {'MET' if ok else 'MISSED'}")  # fmt: skip
    print(f"peak {full:.1f} MiB < {TARGET_PEAK_MIB} MiB: {'MET' if peak_ok else 'MISSED'}")
    print(f"flat: peak(full) - peak(quarter) = {growth:+.1f} MiB < {TARGET_FLAT_MIB} MiB: "
          f"{'MET' if flat_ok else 'MISSED'}")  # fmt: skip
    return 0 if peak_ok and flat_ok and large_ok else 1


if __name__ == "__main__":
    sys.exit(main())
