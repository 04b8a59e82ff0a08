"""End-to-end indexing rate of the stream handler vs a raw ``_bulk`` of the same NDJSON, on a real OpenSearch.

Every side runs in its own worker process (so that two versions of the package, the C
build of 60eeb22 and this one, can be measured in the same run) and times itself; the
parent only alternates rounds: round r starts with side r (mod n), medians are reported.
Workers wait idle while another side runs. Sides:

* ``raw``: ``client.bulk(body=bytes, params={"filter_path": <the handler's>, ...})`` of the
  NDJSON the handler sends, built outside the timed region, one request per batch, with
  the handler's own client (``build_client``, through the entry file);
* ``handler:<build>``: ``functions/stream_indexer/app.py``'s handler (Powertools
  decorators included), called once per Lambda-sized batch with the event freshly parsed
  from its JSON text (``json.loads``, outside the timed region), as Lambda calls it. One
  such side per ``--build``; the default is this checkout's pure-Python package;
* ``ceiling`` (``--ceiling``, default on): the raw side's requests, each preceded by
  ``_common.least_documents`` of that batch's freshly parsed event: the least any handler
  must do (images to JSON, no checks, ids or accounting), so the rate that a handler which
  decodes a batch, then sends it, cannot beat here;
* ``floor`` (``--floor``, default on): the same with ``least_documents(strict=True)``:
  ddbsync's own strict decoder and ``_ddbsync`` builder instead of the unchecked one, and
  still no ids, versions, action lines, collapse or accounting. The rate a handler that
  decodes as strictly as issue #7 asks, in Python, cannot beat here.

Events (``_common.make_stream``): INSERT, MODIFY with OldImage and REMOVE (about 53 / 33 /
14 %), distinct keys within a batch, each item's changes in different seconds; documents
of about 600 bytes. A REMOVE is a tombstone document (an index action) for both sides.

Client as in production (``--signing``, default): SigV4 (service ``es``) with fake
credentials and gzip request bodies, the same client on both sides; the local OpenSearch
is plain http without the security plugin, so the signature is computed and sent, then
ignored (``_common.entry_handler``). Tracing as in Lambda with active tracing
(``--tracing``, default; ``_common.lambda_env``): every invocation sampled, the X-Ray
SDK patching requests/httplib (a subsegment per HTTP request, on the raw side too) and
sending subsegments by UDP to a socket standing for the daemon.

Each side and round writes a fresh index built from ``templates/index.json``
(``refresh_interval`` 1s), created and green before timing; the handler's first batch
still checks the alias and puts the mapping (as on a cold start). Both sides are checked
to have written every document (live items through the alias, tombstones in the index).

Usage (from the repository root, OpenSearch running: scripts/opensearch.sh start)::

    PYTHONPATH=layers/ddbsync:. python bench/e2e_indexing.py [--quick] [--batch 100 --batch 1000]
        [--build c=/tmp/h2-c/layers/ddbsync] [--no-signing] [--no-tracing] [--profile]

Honours OPENSEARCH_URL and BENCH_INDEX_PREFIX. Exits 1 when the first build's handler
rate / raw rate (ratio of the medians) is below 0.7 at batch 1,000 (or the largest batch
measured). The median of the per-round ratios is printed too: steadier on a busy machine.

The local OpenSearch shares the machine's cores with the bench: every microsecond of
client CPU (gzip, decoding) is also taken from the server, which a Lambda does not do
to a managed domain. The ``CPU`` column (``time.process_time`` of the timed calls, per
record) shows each side's own part; ``server CPU`` is OpenSearch's process CPU over the
side's round (``_nodes/stats/process``, per record). Against 1 / rate it tells how many
cores the server keeps busy while it indexes (about 1.1 of 2 in session 8's runs).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from _common import (
    OPENSEARCH_URL,
    REPO,
    FakeContext,
    XraySink,
    build_info,
    ddb,
    describe_stream,
    entry_handler,
    index_name,
    lambda_env,
    least_documents,
    machine,
    make_stream,
    median,
    new_trace_id,
    opensearch_env,
)

TARGET = 0.7
TARGET_BATCH = 1000
_PLACEHOLDER = "@@target@@"


# --- the worker: one side, timed inside its own process ----------------------------------------


# The sides that send the prebuilt NDJSON themselves (the others run a handler).
_RAW_REQUESTS = ("raw", "ceiling", "floor")


class Worker:
    def __init__(self, side: str, count: int, sizes: list[int], start: int, signing: bool) -> None:
        self.side = side
        self.signing = signing
        records = make_stream(count, start=start, window=max(sizes))
        self.count = count
        self.stream = describe_stream(records)
        self.texts = {
            size: [
                json.dumps({"Records": records[i : i + size]}, separators=(",", ":")).encode()
                for i in range(0, count, size)
            ]
            for size in sizes
        }
        self.bodies: dict[int, list[bytes]] = {}
        if side in _RAW_REQUESTS:
            lines = ddb().bulk_lines
            self.bodies = {
                size: [lines(records[i : i + size], _PLACEHOLDER) for i in range(0, count, size)]
                for size in sizes
            }
        del records
        # A handler built once for its client: the raw side sends with it, both create indices with it.
        probe = entry_handler(opensearch_env(index_name("e2e-probe"), signing=signing))
        self.client = probe.indexer.client
        self.template = probe.indexer.settings.index_template

    def info(self) -> dict[str, Any]:
        return {
            "build": build_info(),
            "opensearch": self.client.info()["version"]["number"],
            "stream": self.stream,
        }

    def fresh_alias(self) -> str:
        alias = index_name("e2e")
        ddb().ensure_index(self.client, alias, self.template)
        self.client.cluster.health(index=alias, wait_for_status="green")
        return alias

    def check(self, alias: str) -> None:
        self.client.indices.refresh(index=f"{alias}-*")
        live = int(self.client.count(index=alias)["count"])
        total = int(self.client.count(index=f"{alias}-*")["count"])
        expected = (self.stream["live"], self.stream["keys"])
        assert (live, total) == expected, f"{self.side}: {live} live / {total} documents, expected {expected}"

    def drop(self, alias: str) -> None:
        self.client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)

    def server_cpu_s(self) -> float:
        """OpenSearch's process CPU so far, in seconds (every node; nodes stats, ms resolution)."""
        nodes = self.client.nodes.stats(metric="process")["nodes"].values()
        return sum(int(n["process"]["cpu"]["total_in_millis"]) for n in nodes) / 1000

    def round(self, size: int) -> dict[str, float]:
        alias = self.fresh_alias()
        try:
            server = self.server_cpu_s()
            if self.side == "handler":
                wall, cpu = self.run_handler(size, alias)
            else:
                wall, cpu = self.run_raw(size, alias, least=self.side in ("ceiling", "floor"))
            server = self.server_cpu_s() - server
            self.check(alias)
        finally:
            self.drop(alias)
        per_record = 1e6 / self.count
        return {"rate": self.count / wall, "cpu_us": cpu * per_record, "server_us": server * per_record}

    def run_handler(self, size: int, alias: str) -> tuple[float, float]:
        handler = entry_handler(opensearch_env(alias, signing=self.signing))
        ctx = FakeContext(remaining_ms=300_000)
        failures = 0
        wall = cpu = 0.0
        for text in self.texts[size]:
            event = json.loads(text)  # the runtime's part, not timed
            new_trace_id()
            w, c = time.perf_counter(), time.process_time()
            failures += len(handler(event, ctx)["batchItemFailures"])
            wall += time.perf_counter() - w
            cpu += time.process_time() - c
            del event
        assert failures == 0, f"handler reported {failures} batch item failures"
        return wall, cpu

    def run_raw(self, size: int, alias: str, *, least: bool = False) -> tuple[float, float]:
        """The prebuilt NDJSON, one request a batch; with ``least``, each batch's images are
        first turned into JSON by ``least_documents`` (the event parsed outside the timing)."""
        quoted = json.dumps(alias).encode()
        bodies = [b.replace(json.dumps(_PLACEHOLDER).encode(), quoted) for b in self.bodies[size]]
        params = {"filter_path": ddb().BULK_FILTER, "request_timeout": 30}
        errors = False
        wall = cpu = 0.0
        for body, text in zip(bodies, self.texts[size], strict=True):
            records = json.loads(text)["Records"] if least else None
            new_trace_id()
            w, c = time.perf_counter(), time.process_time()
            if records is not None:
                least_documents(records, strict=self.side == "floor")
            errors |= bool(self.client.bulk(body=body, params=params)["errors"])
            wall += time.perf_counter() - w
            cpu += time.process_time() - c
        assert not errors, "raw bulk reported item errors"
        return wall, cpu

    def profile(self, size: int) -> str:
        prof = cProfile.Profile()
        prof.runcall(self.round, size)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        return buf.getvalue()


def worker_main(args: argparse.Namespace) -> int:
    # Answers go to a copy of stdout; fd 1 itself goes to /dev/null for Powertools' log
    # lines and EMF blobs (their cost stays in the figures).
    proto: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sink = XraySink()
    os.environ.update(lambda_env(tracing=args.tracing, sink=sink))
    worker = Worker(args.worker, args.records, args.batch, args.start, args.signing)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        answer: Any
        if command == "info":
            answer = worker.info()
        elif command == "round":
            answer = worker.round(int(arg))
        elif command == "profile":
            answer = worker.profile(int(arg))
        else:
            break
        proto.write(json.dumps(answer) + "\n")
    return 0


# --- the parent: workers, alternating rounds, verdict --------------------------------------------


class Side:
    def __init__(self, name: str, layer: Path, args: argparse.Namespace, start: int) -> None:
        self.name = name
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(layer), str(REPO)])
        worker = name if name in _RAW_REQUESTS else "handler"
        cmd = [sys.executable, __file__, "--worker", worker,
               "--records", str(args.records), "--start", str(start),
               "--signing" if args.signing else "--no-signing",
               "--tracing" if args.tracing else "--no-tracing"]  # fmt: skip
        for size in args.batch:
            cmd += ["--batch", str(size)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} died (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


_BOUNDS = {
    "ceiling": "the most a Python handler that decodes, then sends, reaches",
    "floor": "the same with ddbsync's strict decoder and _ddbsync, nothing else",
}


def _print_bounds(size: int, results: dict[str, list[dict[str, float]]], raw: float) -> None:
    for name, meaning in _BOUNDS.items():
        if name in results:
            best = [x["rate"] for x in results[name]]
            paired = median([m / x["rate"] for m, x in zip(best, results["raw"], strict=True)])
            print(f"batch {size:5d}: ratio {name}/raw {median(best) / raw:.2f} (median of per-round ratios "
                  f"{paired:.2f}): {meaning}")  # fmt: skip


def run_batch_size(
    size: int, sides: dict[str, Any], builds: dict[str, Path], rounds: int, args: argparse.Namespace
) -> bool:
    """The rounds at one batch size, sides rotating; print rates and ratios; False if the target is missed."""
    for side in sides.values():
        side.ask(f"round {size}")  # warm-up: connections, the server's caches
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            results[name].append(sides[name].ask(f"round {size}"))
    raw = median([x["rate"] for x in results["raw"]])
    for name in names:
        rates = [x["rate"] for x in results[name]]
        cpu = median([x["cpu_us"] for x in results[name]])
        server = median([x["server_us"] for x in results[name]])
        print(f"batch {size:5d}: {name:18s} {median(rates):9,.0f} records/s  CPU {cpu:5.1f} us/record  "
              f"server CPU {server:5.1f} us/record  rounds={[round(x) for x in rates]}")  # fmt: skip
    ok = True
    _print_bounds(size, results, raw)
    for label in builds:
        mine = [x["rate"] for x in results[f"handler:{label}"]]
        ratio = median(mine) / raw
        # Each round's own ratio (the sides of a round run minutes apart at most): steadier
        # than the ratio of medians when the machine's load moves between rounds.
        paired = median([m / x["rate"] for m, x in zip(mine, results["raw"], strict=True)])
        verdict = ""
        judged = size == TARGET_BATCH or (TARGET_BATCH not in args.batch and size == max(args.batch))
        if label == "python" and judged:
            met = ratio >= TARGET
            ok = ok and met
            verdict = f"  target >= {TARGET}: {'MET' if met else 'MISSED'}"
        print(f"batch {size:5d}: ratio handler:{label}/raw {ratio:.2f} (median of per-round ratios "
              f"{paired:.2f}){verdict}")  # fmt: skip
    if args.profile:
        for label in builds:
            text = sides[f"handler:{label}"].ask(f"profile {size}")
            print(f"\ncProfile of one handler:{label} round, batch {size} (by own time):\n{text}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="4,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None, help="records per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 7)")
    parser.add_argument("--batch", type=int, action="append", help="records per invocation (repeatable)")
    parser.add_argument("--build", action="append", default=[], metavar="LABEL=LAYER_DIR",
                        help="another ddbsync build (the directory holding its ddbsync/)")  # fmt: skip
    parser.add_argument("--raw-from", default="python", metavar="LABEL",
                        help="the build whose client the raw side uses (default: python)")  # fmt: skip
    parser.add_argument("--signing", action=argparse.BooleanOptionalAction, default=True,
                        help="SigV4 + gzip bodies, as for a managed domain (default on)")  # fmt: skip
    parser.add_argument("--tracing", action=argparse.BooleanOptionalAction, default=True,
                        help="X-Ray tracing as in Lambda with active tracing (default on)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="cProfile one round of each handler side")
    parser.add_argument("--ceiling", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the ceiling side: raw + least_documents (default on)")  # fmt: skip
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the floor side: raw + strict decoding (default on)")  # fmt: skip
    parser.add_argument("--worker", choices=(*_RAW_REQUESTS, "handler"), help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.records = args.records or (4_000 if args.quick else 20_000)
    args.batch = args.batch or [100, 1000]
    if args.worker:
        return worker_main(args)
    rounds = args.rounds or (3 if args.quick else 7)
    start = int(time.time()) - args.records // 200 - 3600

    builds = {"python": REPO / "layers" / "ddbsync"}
    for spec in args.build:
        label, _, path = spec.partition("=")
        builds[label] = Path(path).resolve()
    print(f"machine: {machine()}")
    sides = {"raw": Side("raw", builds[args.raw_from], args, start)}
    if args.ceiling:
        sides["ceiling"] = Side("ceiling", builds[args.raw_from], args, start)
    if args.floor:
        sides["floor"] = Side("floor", builds["python"], args, start)  # image_body: this checkout only
    for label, layer in builds.items():
        sides[f"handler:{label}"] = Side(f"handler:{label}", layer, args, start)
    try:
        infos = {name: side.ask("info") for name, side in sides.items()}
        stream = infos["raw"]["stream"]
        print(f"opensearch: {infos['raw']['opensearch']} at {OPENSEARCH_URL}")
        for name, info in infos.items():
            print(f"{name}: {info['build']}")
        print(
            f"client: {'SigV4 (es, fake credentials) + gzip' if args.signing else 'no signing, no gzip'}"
            f" on both sides; tracing {'on, every invocation sampled' if args.tracing else 'off'}"
        )
        print(
            f"records: {args.records} per round, {stream['counts']}, {stream['keys']} keys "
            f"({stream['live']} live at the end), {stream['record_bytes']:.0f} bytes a record as JSON, "
            f"documents {stream['document_bytes']:.0f} bytes; {rounds} rotating rounds after one "
            "warm-up of each side; medians"
        )
        ok = True
        for size in args.batch:
            ok = run_batch_size(size, sides, builds, rounds, args) and ok
    finally:
        for side in sides.values():
            side.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
