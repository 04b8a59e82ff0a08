"""End-to-end indexing rate of the real stream-indexer handler vs a raw ``_bulk`` of the same NDJSON.

Both sides write the same documents (same ids, same external versions) to a fresh
index created from ``ddbsync/templates/index.json`` (``refresh_interval`` as there),
through the same opensearch-py client (the handler's own), in the same chunks:

* candidate: ``ddbsync.indexer.make_handler(Settings.from_env(env))`` called once per
  Lambda-sized batch of stream records (moto ``mock_aws`` provides the SQS DLQ). Each
  event is handed over as the Lambda runtime hands it: parsed from its JSON text
  (``json.loads``) just before the call, outside the timed region, which times the
  handler calls only. ``--prebuilt`` instead builds every event once at start-up and
  keeps them all (about 100 MB of dicts for 20,000 records), so each batch is read
  cold from memory, which a Lambda never does; both figures are in bench/README.md;
* baseline: ``client.bulk(body=bytes)`` of NDJSON pre-built outside the timed region,
  one request per batch.

Each round and side gets its own fresh index, created outside the timed region
(for the handler, its first batch still checks the alias and puts the mapping, as
on a cold start). Rounds alternate which side goes first; medians are reported.

Usage (from the repository root, with OpenSearch running: scripts/opensearch.sh start)::

    PYTHONPATH=layers/ddbsync:. python bench/e2e_indexing.py [--quick] [--batch 100 --batch 1000] [--prebuilt]

Honours OPENSEARCH_URL. Exits 1 when handler rate / raw rate is below 0.8 for any batch size.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from _common import FakeContext, alternate, fake_aws_env, machine, make_records, median

os.environ.update(fake_aws_env())

import boto3
from moto import mock_aws
from tests.support import OPENSEARCH_URL, base_env

from ddbsync.config import Settings
from ddbsync.dynamodb.decode import dumps_bytes
from ddbsync.handler import make_handler
from ddbsync.mapping import map_record
from ddbsync.opensearch.bulk import Write
from ddbsync.opensearch.indices import ensure_index

TARGET = 0.8


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Powertools writes a log line and an EMF blob per invocation to fd 1: keep the cost, drop the text."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Bench:
    def __init__(
        self, records: list[dict[str, Any]], batch: int, dlq_url: str, *, prebuilt: bool = False
    ) -> None:
        self.records = records
        self.batch = batch
        self.dlq_url = dlq_url
        self.prebuilt = prebuilt
        self.events = [{"Records": b} for b in batches(records, batch)]
        # What the Lambda service sends: the event as JSON text, parsed by the runtime.
        self.event_texts = [json.dumps(e) for e in self.events]
        # The handler's own client serves the raw side too ("same client").
        probe = make_handler(Settings.from_env(base_env("bench-probe", dlq_url)))
        self.client = probe.indexer.client  # type: ignore[attr-defined]
        self.settings = probe.indexer.settings  # type: ignore[attr-defined]
        self.aliases: list[str] = []
        # The same documents, ids and versions the handler writes, as NDJSON, one body per batch.
        self._changes = [[map_record(r, "pk", "sk") for r in b] for b in batches(records, batch)]

    def fresh_alias(self) -> str:
        alias = f"bench-e2e-{uuid.uuid4().hex[:10]}"
        self.aliases.append(alias)
        ensure_index(self.client, alias, self.settings.index_template)
        self.client.cluster.health(index=alias, wait_for_status="green")
        return alias

    def count(self, alias: str) -> int:
        self.client.indices.refresh(index=alias)
        return int(self.client.count(index=alias)["count"])

    def run_handler(self) -> float:
        alias = self.fresh_alias()
        handler = make_handler(Settings.from_env(base_env(alias, self.dlq_url)))
        ctx = FakeContext(remaining_ms=300_000)
        failures = 0
        elapsed = 0.0
        with stdout_to_devnull():
            for prebuilt, text in zip(self.events, self.event_texts, strict=True):
                event = prebuilt if self.prebuilt else json.loads(text)  # untimed, as the runtime does
                start = time.perf_counter()
                failures += len(handler(event, ctx)["batchItemFailures"])
                elapsed += time.perf_counter() - start
        assert failures == 0, f"handler reported {failures} batch item failures"
        got = self.count(alias)
        assert got == len(self.records), f"handler indexed {got} of {len(self.records)}"
        self.drop(alias)
        return len(self.records) / elapsed

    def run_raw(self) -> float:
        alias = self.fresh_alias()
        bodies = [
            b"".join(Write(alias, c, dumps_bytes(c.body)).lines() for c in changes)
            for changes in self._changes
        ]
        errors = False
        start = time.perf_counter()
        for body in bodies:
            errors |= bool(self.client.bulk(body=body)["errors"])
        elapsed = time.perf_counter() - start
        assert not errors, "raw bulk reported item errors"
        got = self.count(alias)
        assert got == len(self.records), f"raw bulk indexed {got} of {len(self.records)}"
        self.drop(alias)
        return len(self.records) / elapsed

    def drop(self, alias: str) -> None:
        self.client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        self.aliases.remove(alias)

    def cleanup(self) -> None:
        for alias in list(self.aliases):
            self.drop(alias)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="4,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile one handler run per batch size")
    parser.add_argument("--batch", type=int, action="append", help="records per invocation (repeatable)")
    parser.add_argument(
        "--prebuilt", action="store_true",
        help="hand the handler events built once at start-up (read cold) instead of freshly parsed ones",
    )
    args = parser.parse_args()
    count = args.records or (4_000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 5)
    sizes = args.batch or [100, 1000]

    records = make_records(count)
    print(f"machine: {machine()}")
    ok = True
    with mock_aws():
        dlq_url = boto3.client("sqs", region_name="eu-west-1").create_queue(QueueName="bench-dlq")["QueueUrl"]
        for size in sizes:
            bench = Bench(records, size, dlq_url, prebuilt=args.prebuilt)
            if size == sizes[0]:
                info = bench.client.info()
                print(f"opensearch: {info['version']['number']} at {OPENSEARCH_URL}")
                print(f"records: {count} INSERT stream records, distinct keys; {rounds} alternating rounds")
                how = "built once at start-up (--prebuilt)" if args.prebuilt else "parsed before each call"
                print(f"events: {how}")
            try:
                # One untimed warm-up of each side (connection pool, JIT in the server).
                bench.run_raw()
                bench.run_handler()
                raw, handler = alternate(rounds, bench.run_raw, bench.run_handler)
            finally:
                bench.cleanup()
                if args.profile:
                    prof = cProfile.Profile()
                    prof.runcall(bench.run_handler)
                    buf = io.StringIO()
                    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
                    print(f"\ncProfile of one handler run, batch {size} (cumulative):\n{buf.getvalue()}")
            ratio = median(handler) / median(raw)
            met = ratio >= TARGET
            ok = ok and met
            print(f"batch {size:5d}: raw _bulk {median(raw):9,.0f} docs/s  rounds={[round(x) for x in raw]}")
            print(
                f"batch {size:5d}: handler  {median(handler):9,.0f} docs/s  "
                f"rounds={[round(x) for x in handler]}"
            )
            print(
                f"batch {size:5d}: ratio handler/raw {ratio:.2f}  target >= {TARGET}: "
                f"{'MET' if met else 'MISSED'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
