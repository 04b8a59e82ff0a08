"""The archiver's records/s (encode + batch) against plain JSON work on the same records, and its sizes.

Issue #9 asks for the archiver's rate and for the archive branch's cost per million
changes at measured sizes. This bench measures, in one run, in rotating rounds (medians):

* ``archiver``: ``Archiver.process`` per batch (``archive_line`` of every record, the
  1,000 KiB check, ``PutRecordBatch`` calls of at most 500 records / 4 MiB with the
  sender's bookkeeping, the ledger), with a Firehose client that answers at once;
* ``handler``: the same through the Lambda handler (``archive/handler.py``: Powertools'
  logger, metrics and tracer decorators; stdout to /dev/null), the CPU the Lambda bills;
* ``json.dumps``: the stdlib encoding each record to compact JSON, no batching (the least
  any archiver must do);
* ``json.loads``: the runtime parsing each batch's event JSON (what Lambda does before the
  handler runs; the baseline of handler_cpu.py).

Records: ``_common.make_stream`` (INSERT / MODIFY with OldImage / REMOVE), batches of
the template's ``ArchiveBatchSize`` default. Rates are wall clock (``perf_counter``);
the handler's CPU per record is ``process_time``. Sizes: the mean archive line, the
ingestion Firehose bills (each record rounded up to 5 KB, 5,120 bytes), and the gzip size
of the lines with their newlines at levels 1, 6 and 9 (Firehose's level is not documented).
Then the cost per million changes, from those sizes and the prices in ``PRICES`` (see
bench/README.md, "Archive branch (issue #9)", for their sources).

Usage (from the repository root; nothing else needs to run)::

    PYTHONPATH=layers/ddbsync:local:. python bench/archiver_rate.py [--quick] [--records N] [--rounds R]

No target: it prints figures, exits 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jq

from _common import (
    FakeContext,
    build_info,
    ddb,
    fake_aws_env,
    machine,
    make_stream,
    rotate,
    stdout_to_devnull,
)
from ddbsync_local.cfn import load_template
from ddbsync_local.firehose import stream_config

MIB = 1024 * 1024
GB = 1e9  # AWS prices data in decimal GB
BILLING_UNIT = 5120  # Firehose ingestion: each record rounded up to a multiple of 5 KB
LAMBDA_FULL_VCPU_MB = 1769  # Lambda: one vCPU's worth of CPU at 1,769 MB (Lambda's memory docs)

# US East prices in USD, looked up 2026-12-02 and 2026-12-03 (sources in bench/README.md,
# "Cost per million changes of the archive branch"; Firehose's and the lifecycle transitions'
# from secondary sources, the first tier).
PRICES: dict[str, float] = {
    "lambda_gb_s_arm": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "firehose_ingest_gb": 0.029,
    "firehose_partitioning_gb": 0.020,
    "firehose_partitioning_object": 0.005 / 1000,
    "firehose_jq_hour": 0.07,
    "s3_put_standard": 0.005 / 1000,
    "s3_standard_gb_month": 0.023,
    "s3_standard_ia_gb_month": 0.0125,
    "s3_glacier_ir_gb_month": 0.004,
    "s3_transition_ia": 0.01 / 1000,
    "s3_transition_glacier_ir": 0.02 / 1000,
}


class InstantFirehose:
    """PutRecordBatch answered at once, every record accepted (the API's response shape)."""

    def __init__(self) -> None:
        self.calls = 0
        self.records = 0

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        self.calls += 1
        self.records += len(Records)
        return {"FailedPutCount": 0, "Encrypted": True,
                "RequestResponses": [{"RecordId": "r"}] * len(Records)}  # fmt: skip


class NoLetters:
    """A dead-letter sink that is never used (every bench record makes a line)."""

    def send(self, letters: Any) -> Any:
        raise AssertionError("no bench record should be dead-lettered")


def template_facts() -> dict[str, int]:
    template = load_template()
    params = template["Parameters"]
    return {
        "batch": int(params["ArchiveBatchSize"]["Default"]),
        "memory_mb": int(template["Globals"]["Function"]["MemorySize"]),
        "buffer_mib": int(params["ArchiveBufferSizeMiB"]["Default"]),
        "interval_s": int(params["ArchiveBufferIntervalSeconds"]["Default"]),
    }


def sides(batches: list[list[dict[str, Any]]], bodies: list[bytes]) -> dict[str, Callable[[], float]]:
    """Each side returns its seconds for all the records (wall clock)."""
    api = ddb()
    settings = api.ArchiveSettings("bench-archive", "https://sqs.us-east-1.amazonaws.com/1/dlq")
    firehose = InstantFirehose()
    archiver = api.Archiver(settings, firehose, None, dead_letters=NoLetters())
    handler = api.make_archive_handler(settings, firehose=firehose, sqs=object())
    handler.archiver.dead_letters = NoLetters()
    context = FakeContext(function_name="archiver-bench")

    def run_archiver() -> float:
        start = time.perf_counter()
        for batch in batches:
            result = archiver.process(batch, lambda: 60_000)
            assert result.archived == len(batch)
        return time.perf_counter() - start

    def run_handler() -> float:
        events = [{"Records": batch} for batch in batches]
        with stdout_to_devnull():
            start = time.perf_counter()
            for event in events:
                assert handler(event, context) == {"batchItemFailures": []}
            return time.perf_counter() - start

    def run_dumps() -> float:
        dumps = json.dumps
        start = time.perf_counter()
        for batch in batches:
            for record in batch:
                dumps(record, separators=(",", ":")).encode()
        return time.perf_counter() - start

    def run_loads() -> float:
        start = time.perf_counter()
        for body in bodies:
            json.loads(body)
        return time.perf_counter() - start

    return {"archiver": run_archiver, "handler": run_handler,
            "json.dumps": run_dumps, "json.loads": run_loads}  # fmt: skip


def handler_cpu_s(batches: list[list[dict[str, Any]]], rounds: int) -> float:
    """Median CPU seconds per record of the handler (process_time)."""
    api = ddb()
    settings = api.ArchiveSettings("bench-archive", "https://sqs.us-east-1.amazonaws.com/1/dlq")
    handler = api.make_archive_handler(settings, firehose=InstantFirehose(), sqs=object())
    handler.archiver.dead_letters = NoLetters()
    records = sum(len(b) for b in batches)
    per_round = []
    with stdout_to_devnull():
        for _ in range(rounds):
            start = time.process_time()
            for batch in batches:
                handler({"Records": batch}, FakeContext())
            per_round.append((time.process_time() - start) / records)
    return statistics.median(per_round)


def sizes(records: list[dict[str, Any]]) -> dict[str, float]:
    lines = [ddb().archive_line(r) for r in records]
    body = b"".join(line + b"\n" for line in lines)
    out = {
        "line_bytes": statistics.mean(len(line) for line in lines),
        "billed_bytes": statistics.mean(math.ceil(len(line) / BILLING_UNIT) * BILLING_UNIT for line in lines),
        "max_line_bytes": max(len(line) for line in lines),
    }
    for level in (1, 6, 9):
        out[f"gzip{level}_ratio"] = len(gzip.compress(body, compresslevel=level)) / len(body)
    return out


def jq_seconds(records: list[dict[str, Any]], rounds: int) -> float:
    """Median seconds per record of jq 1.6 (PyPI ``jq``) running the template's partitioning query.

    Firehose bills its JQ engine per processing hour. Its own time is not observable here,
    so this is an estimate: the query run once per archive line, as Firehose runs it, with
    the jq 1.6 this project tests the query with (tests/unit/test_archive_jq.py).
    """
    program = jq.compile(stream_config().query)
    texts = [ddb().archive_line(r).decode("utf-8") for r in records]
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            program.input_text(text).all()
        per_round.append((time.perf_counter() - start) / len(texts))
    return statistics.median(per_round)


def _money(quantity: float, price_key: str) -> str:
    return f"${quantity * PRICES[price_key]:,.6f}"


def cost_lines(size: dict[str, float], cpu_s: float, jq_s: float, facts: dict[str, int]) -> list[str]:
    """The cost of one million changes, item by item, with the quantities behind each price."""
    n = 1e6
    jq_hours = n * jq_s / 3600
    memory_gb = facts["memory_mb"] / 1024
    invocations = n / facts["batch"]
    scaled = cpu_s * max(1.0, LAMBDA_FULL_VCPU_MB / facts["memory_mb"])
    raw_gb = n * (size["line_bytes"] + 1) / GB  # what Firehose delivers: lines and newlines
    stored_gb = raw_gb * size["gzip6_ratio"]
    billed_gb = n * size["billed_bytes"] / GB
    out = [
        f"Lambda requests: {invocations:,.0f} invocations (batch {facts['batch']}): "
        f"{_money(invocations, 'lambda_request')}",
    ]
    scaled_label = f"CPU x {LAMBDA_FULL_VCPU_MB}/{facts['memory_mb']}"
    for label, seconds in (("measured CPU", cpu_s), (scaled_label, scaled)):
        gb_s = n * seconds * memory_gb
        out.append(f"Lambda duration at {label} ({seconds * 1e6:.1f} us a record, {facts['memory_mb']} MB "
                   f"arm64): {gb_s:,.2f} GB-s: {_money(gb_s, 'lambda_gb_s_arm')}")  # fmt: skip
    out += [
        f"Firehose ingestion: {billed_gb:.2f} GB billed (5 KB a record; {raw_gb:.2f} GB of lines): "
        f"{_money(billed_gb, 'firehose_ingest_gb')}",
        f"Firehose dynamic partitioning: {raw_gb:.2f} GB of lines, {stored_gb:.3f} GB as gzip objects "
        f"(the sources found do not say which one the per-GB charge counts; charged here on the "
        f"lines): {_money(raw_gb, 'firehose_partitioning_gb')}",
        f"Firehose JQ processing: {jq_hours:.4f} hours ({jq_s * 1e6:.1f} us a record with jq 1.6 here, "
        f"an estimate of Firehose's engine): {_money(jq_hours, 'firehose_jq_hour')}",
        f"S3 storage, {stored_gb:.3f} GB a month (gzip level 6): "
        f"Standard {_money(stored_gb, 's3_standard_gb_month')}, "
        f"Standard-IA {_money(stored_gb, 's3_standard_ia_gb_month')}, "
        f"Glacier IR {_money(stored_gb, 's3_glacier_ir_gb_month')}",
    ]
    per_object_max = facts["buffer_mib"] * MIB / (size["line_bytes"] + 1)
    for rate in (10, 100, 1000):
        per_object = min(per_object_max, rate * facts["interval_s"])
        objects = n / per_object
        out.append(
            f"at {rate} changes/s into one partition: {per_object:,.0f} changes an object, "
            f"{objects:,.1f} objects: "
            f"S3 PUT {_money(objects, 's3_put_standard')}, partitioning "
            f"{_money(objects, 'firehose_partitioning_object')}, lifecycle transitions "
            f"to Standard-IA {_money(objects, 's3_transition_ia')} "
            f"and to Glacier IR {_money(objects, 's3_transition_glacier_ir')}"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="5,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None, help="records (default 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="rotating rounds (default 7)")
    args = parser.parse_args()
    count = args.records or (5_000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 7)
    os.environ.update(fake_aws_env())
    os.environ["POWERTOOLS_SERVICE_NAME"] = "ddbsync-archiver"
    facts = template_facts()

    records = make_stream(count)
    batches = [records[i : i + facts["batch"]] for i in range(0, count, facts["batch"])]
    bodies = [json.dumps({"Records": batch}).encode() for batch in batches]
    print(machine())
    print(build_info())
    print(f"{count:,} stream records in batches of {facts['batch']} (ArchiveBatchSize), {rounds} rounds")

    seconds = rotate(rounds, sides(batches, bodies))
    rate = {name: count / statistics.median(values) for name, values in seconds.items()}
    for name, value in rate.items():
        per_round = ", ".join(f"{count / s:,.0f}" for s in seconds[name])
        print(f"  {name:<11} {value:>10,.0f} records/s  ({1e6 / value:6.1f} us a record; "
              f"rounds: {per_round})")  # fmt: skip
    for base in ("json.dumps", "json.loads"):
        print(f"  archiver / {base}: {rate['archiver'] / rate[base]:.2f}   "
              f"handler / {base}: {rate['handler'] / rate[base]:.2f}")  # fmt: skip

    cpu_s = handler_cpu_s(batches, rounds)
    jq_s = jq_seconds(records, rounds)
    size = sizes(records)
    print(f"handler CPU: {cpu_s * 1e6:.1f} us a record (process_time, median of {rounds})")
    print(f"archive line: mean {size['line_bytes']:,.0f} bytes, max {size['max_line_bytes']:,} bytes; "
          f"billed by Firehose {size['billed_bytes']:,.0f} bytes a record")  # fmt: skip
    print("gzip size / raw: " + ", ".join(f"level {lv} {size[f'gzip{lv}_ratio']:.3f}" for lv in (1, 6, 9)))
    print(f"per million changes (US East, first price tiers; memory {facts['memory_mb']} MB, "
          f"buffer {facts['buffer_mib']} MiB or {facts['interval_s']} s, from template.yaml):")  # fmt: skip
    for line in cost_lines(size, cpu_s, jq_s, facts):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
