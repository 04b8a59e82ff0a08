"""Cold start of the stream-indexer handler: import time, build time and peak RSS, in fresh interpreters.

* baseline: ``import boto3; import json`` (the floor any Python Lambda with boto3 pays);
* candidate: ``import ddbsync.indexer``, then ``make_handler()`` (settings from the environment)
  (no network at build time), then, in the same process, one batch of 1,000 stream
  records handled against the local OpenSearch (fresh alias: the first batch also
  creates the index, as on a real first cold start).

Times are measured inside each fresh subprocess with ``time.perf_counter`` around
the statements; the subprocess's whole wall time (interpreter start included) is
measured by the parent. Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.
Runs alternate baseline/candidate; medians are reported. ``python -X importtime``
gives the 10 slowest imports (median over runs). There is no target: exit 0 unless
a run fails.

Usage (from the repository root, OpenSearch running; honours OPENSEARCH_URL)::

    PYTHONPATH=layers/ddbsync:. python bench/cold_start.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import ENTRY_MODULE, OPENSEARCH_URL, fake_aws_env, index_name, machine, make_records, median

_BASELINE = """
import time, resource
t0 = time.perf_counter()
import boto3
import json
t1 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0,
                  "rss_import_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

# What functions/stream_indexer/app.py does (import the module, make_handler() from the
# environment), in two timed steps.
_CANDIDATE = """
import time, resource, sys, importlib
t0 = time.perf_counter()
entry = importlib.import_module("@ENTRY@")
t1 = time.perf_counter()
handler = entry.make_handler()
t2 = time.perf_counter()
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import json
out = {"import_s": t1 - t0, "build_s": t2 - t1, "rss_import_kb": rss_import}
if len(sys.argv) > 1:
    class Context:
        function_name = "stream-indexer-bench"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:stream-indexer-bench"
        aws_request_id = "bench"
        def get_remaining_time_in_millis(self):
            return 300_000
    with open(sys.argv[1], encoding="utf-8") as f:
        event = json.load(f)
    t3 = time.perf_counter()
    response = handler(event, Context())
    t4 = time.perf_counter()
    assert not response["batchItemFailures"], response
    out["batch_s"] = t4 - t3
    out["rss_batch_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out), file=sys.stderr)
""".replace("@ENTRY@", ENTRY_MODULE)


def child_env(alias: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(fake_aws_env())
    env.update(
        {
            "OPENSEARCH_ENDPOINT": OPENSEARCH_URL,
            "OPENSEARCH_SERVICE": "none",
            "INDEX_ALIAS": alias,
            "PARTITION_KEY": "pk",
            "SORT_KEY": "sk",
            "RECORD_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/bench-dlq",
            # Nothing may reach real AWS: no poison records are expected, and were one
            # sent, it would fail here instead.
            "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    return env


def run(code: str, env: dict[str, str], *args: str, last_line_from: str = "stdout") -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr}")
    # The handler's EMF metrics go to stdout, so the candidate reports on stderr.
    text = proc.stdout if last_line_from == "stdout" else proc.stderr
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def importtime(env: dict[str, str], runs: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Median self and cumulative microseconds per module over ``runs`` fresh interpreters."""
    selfs: dict[str, list[int]] = defaultdict(list)
    cums: dict[str, list[int]] = defaultdict(list)
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {ENTRY_MODULE}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cum_us, name = line[len("import time:") :].split("|")
            selfs[name.strip()].append(int(self_us))
            cums[name.strip()].append(int(cum_us))
    top_self = sorted(((n, median(v)) for n, v in selfs.items()), key=lambda x: -x[1])[:10]
    top_cum = sorted(((n, median(v)) for n, v in cums.items()), key=lambda x: -x[1])[:10]
    return top_self, top_cum


def delete_indices(aliases: list[str]) -> None:
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[OPENSEARCH_URL], timeout=30)
    for alias in aliases:
        client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 9")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 9)

    aliases: list[str] = []
    base: list[dict[str, Any]] = []
    cand: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        event_path = Path(tmp) / "event.json"
        event_path.write_text(json.dumps({"Records": make_records(1_000)}), encoding="utf-8")
        event_kb = event_path.stat().st_size / 1024
        try:
            # One untimed run of each fills the bytecode caches (__pycache__), as a deployed layer has.
            run(_BASELINE, child_env("unused"))
            run(_CANDIDATE, child_env("unused"), last_line_from="stderr")
            for r in range(runs):
                alias = index_name("cold")
                aliases.append(alias)
                for side in ("base", "cand") if r % 2 == 0 else ("cand", "base"):
                    if side == "base":
                        base.append(run(_BASELINE, child_env("unused")))
                    else:
                        event_arg = str(event_path)
                        cand.append(run(_CANDIDATE, child_env(alias), event_arg, last_line_from="stderr"))
        finally:
            delete_indices(aliases)
    top_self, top_cum = importtime(child_env("unused"), runs)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return median([row[key] for row in rows])

    print(f"machine: {machine()}")
    print(f"opensearch: {OPENSEARCH_URL}; event: 1,000 INSERT records, {event_kb:.0f} KiB of JSON")
    print(f"runs: {runs} fresh interpreters each, alternating; medians")
    b_imp, c_imp, c_build = med(base, "import_s"), med(cand, "import_s"), med(cand, "build_s")
    print(
        f"baseline  import boto3+json:          {b_imp * 1000:8.1f} ms   "
        f"process wall {med(base, 'wall_s') * 1000:7.1f} ms   "
        f"peak RSS {med(base, 'rss_import_kb') / 1024:6.1f} MiB"
    )
    print(f"candidate import {ENTRY_MODULE}:     {c_imp * 1000:8.1f} ms")
    print(f"candidate make_handler (no network):  {c_build * 1000:8.1f} ms")
    print(
        f"candidate import + build:             {(c_imp + c_build) * 1000:8.1f} ms   "
        f"peak RSS {med(cand, 'rss_import_kb') / 1024:6.1f} MiB"
    )
    print(
        f"candidate first batch of 1,000:       {med(cand, 'batch_s') * 1000:8.1f} ms   "
        f"peak RSS {med(cand, 'rss_batch_kb') / 1024:6.1f} MiB   "
        f"process wall {med(cand, 'wall_s') * 1000:7.1f} ms"
    )
    ratio_t = med([{"x": c["import_s"] + c["build_s"]} for c in cand], "x") / b_imp
    ratio_m = med(cand, "rss_import_kb") / med(base, "rss_import_kb")
    print(f"ratio (import+build)/baseline import: {ratio_t:.2f}x time, {ratio_m:.2f}x peak RSS (no target)")
    print(f"\nslowest imports of `import {ENTRY_MODULE}` (python -X importtime, median us):")
    print("  by self time:")
    for name, us in top_self:
        print(f"    {us / 1000:8.1f} ms  {name}")
    print("  by cumulative time:")
    for name, us in top_cum:
        print(f"    {us / 1000:8.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
