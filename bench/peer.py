"""ddbsync's handler vs a typical peer Lambda (bench/peer_lambda.py): rate, and same-second updates lost.

Both run in this process against the real OpenSearch, each on a fresh index made from
``templates/index.json`` (created and green before timing), both with SigV4 signing
(``--signing``, default; fake credentials, plain http to the local server, see
``_common.entry_handler``) and with tracing as in Lambda (``--tracing``, default; the
X-Ray SDK's patches apply to both, the handler subsegment only to ddbsync, which has the
Powertools tracer). ddbsync also gzips its request bodies (its production client); the
peer's client is the AWS documentation's example, which does not.

1. Rate (records/s): the same events (``_common.make_stream``: INSERT, MODIFY with
   OldImage, REMOVE; no same-second changes, so the peer loses nothing here), one
   invocation per batch, each event freshly parsed before the call (outside the timed
   region); rotating rounds after a warm-up of each, medians. Target: ddbsync at
   least 1.5 times the peer's rate at batch 1,000. A third side, the ceiling, runs in
   the same rounds: ``_common.least_documents`` of each event, then ddbsync's NDJSON as a
   raw ``_bulk``: what no handler that decodes, then sends, can beat here. A fourth, the
   floor, is the same with ``least_documents(strict=True)``: ddbsync's strict decoder and
   ``_ddbsync`` builder, nothing else (no ids, versions, collapse or accounting).

2. Lost updates: ``--items`` items, inserted by the first invocation, then updated once
   per invocation for ``--invocations - 1`` more; each update is in the same second
   (``ApproximateCreationDateTime``) as the item's previous change with probability 1/2,
   else in the next second; sequence numbers always increase. Every image carries a
   ``rev`` (the update's number), so the table's final state is known. After all
   invocations, each index is compared with it: the peer's external version (the second)
   cannot order two changes of one second, so OpenSearch answers the later one 409 and
   the peer takes it as done. Printed: the 409s the peer took as success, the items whose
   document is not the table's, for the peer and for ddbsync (target: 0).

Usage (from the repository root, OpenSearch running)::

    PYTHONPATH=layers/ddbsync:. python bench/peer.py [--quick] [--batch 1000] [--items 1000 --invocations 8]

Honours OPENSEARCH_URL and BENCH_INDEX_PREFIX. Exits 1 when ddbsync's rate is below 1.5
times the peer's at batch 1,000 (or the first batch size) or ddbsync loses any update.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    OPENSEARCH_URL,
    FakeContext,
    RecordFactory,
    XraySink,
    _image,
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
    rotate,
    stdout_to_devnull,
)

TARGET = 1.5
TARGET_BATCH = 1000


def same_second_history(
    items: int, invocations: int, *, seed: int = 3
) -> tuple[list[list[dict[str, Any]]], dict[str, int]]:
    """Batches of stream records (one per item per invocation) and each item's final ``rev``."""
    rng = random.Random(seed)
    factory = RecordFactory()
    start = int(time.time()) - 3600
    second = dict.fromkeys(range(items), start)
    final: dict[str, int] = {}
    batches = []
    rev = 0
    for n in range(invocations):
        order = list(range(items))
        rng.shuffle(order)
        batch = []
        for k in order:
            if n > 0 and rng.random() >= 0.5:
                second[k] += 1  # else: the same second as the item's previous change
            rev += 1
            image = _image(rng, rev)
            image["rev"] = {"N": str(rev)}
            pk, sk = f"tenant-{k % 50}", f"item-{k:07d}"
            name = "INSERT" if n == 0 else "MODIFY"
            batch.append(factory.record(name, pk, sk, raw_image=image, created=second[k]))
            final[f"{pk}|{sk}"] = rev
        batches.append(batch)
    return batches, final


class Bench:
    def __init__(self, records: list[dict[str, Any]], signing: bool) -> None:
        import peer_lambda

        self.peer = peer_lambda
        self.signing = signing
        self.stream = describe_stream(records)
        self.records = records
        self.count = len(records)
        probe = entry_handler(opensearch_env(index_name("peer-probe"), signing=signing))
        self.client = probe.indexer.client
        self.template = probe.indexer.settings.index_template
        self.texts: dict[int, list[bytes]] = {}
        self.peer_conflicts = 0

    def batches(self, size: int) -> list[bytes]:
        if size not in self.texts:
            self.texts[size] = [
                json.dumps({"Records": self.records[i : i + size]}, separators=(",", ":")).encode()
                for i in range(0, self.count, size)
            ]
        return self.texts[size]

    def fresh_alias(self, kind: str) -> str:
        alias = index_name(kind)
        ddb().ensure_index(self.client, alias, self.template)
        self.client.cluster.health(index=alias, wait_for_status="green")
        return alias

    def drop(self, alias: str) -> None:
        self.client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)

    def ddbsync_handler(self, alias: str) -> Callable[[dict[str, Any], Any], Any]:
        handler = entry_handler(opensearch_env(alias, signing=self.signing))

        def run(event: dict[str, Any], ctx: Any) -> None:
            failures = handler(event, ctx)["batchItemFailures"]
            assert not failures, f"ddbsync reported {len(failures)} batch item failures"

        return run

    def peer_handler(self, alias: str) -> Callable[[dict[str, Any], Any], Any]:
        client = self.peer.make_client(OPENSEARCH_URL, "eu-west-1", signing=self.signing)
        handler = self.peer.make_handler(client, alias)

        def run(event: dict[str, Any], ctx: Any) -> None:
            self.peer_conflicts += handler(event, ctx)["conflicts"]

        return run

    def ceiling_handler(
        self, alias: str, size: int, *, strict: bool = False
    ) -> Callable[[dict[str, Any], Any], Any]:
        """The least any Python handler does (``least_documents``), then ddbsync's NDJSON, raw."""
        lines = ddb().bulk_lines
        bodies = iter([lines(self.records[i : i + size], alias) for i in range(0, self.count, size)])
        params = {"filter_path": ddb().BULK_FILTER, "request_timeout": 30}

        def run(event: dict[str, Any], ctx: Any) -> None:
            least_documents(event["Records"], strict=strict)
            assert not self.client.bulk(body=next(bodies), params=params)["errors"]

        return run

    def invoke_all(self, run: Callable[[dict[str, Any], Any], Any], texts: list[bytes]) -> float:
        ctx = FakeContext(remaining_ms=300_000)
        elapsed = 0.0
        with stdout_to_devnull():
            for text in texts:
                event = json.loads(text)  # the runtime's part, not timed
                new_trace_id()
                start = time.perf_counter()
                run(event, ctx)
                elapsed += time.perf_counter() - start
                del event
        return elapsed

    def rate(self, side: str, size: int) -> float:
        alias = self.fresh_alias(side)
        try:
            if side in ("ceiling", "floor"):
                run = self.ceiling_handler(alias, size, strict=side == "floor")
            else:
                run = self.ddbsync_handler(alias) if side == "ddbsync" else self.peer_handler(alias)
            elapsed = self.invoke_all(run, self.batches(size))
            self.client.indices.refresh(index=f"{alias}-*")
            live = int(self.client.count(index=alias)["count"])
            expected = self.stream["live"]
            assert live == expected, f"{side}: {live} live documents, expected {expected}"
        finally:
            self.drop(alias)
        return self.count / elapsed

    def losses(
        self, side: str, batches: list[list[dict[str, Any]]], final: dict[str, int]
    ) -> dict[str, int]:
        alias = self.fresh_alias(f"{side}-loss")
        try:
            self.peer_conflicts = 0
            run = self.ddbsync_handler(alias) if side == "ddbsync" else self.peer_handler(alias)
            texts = [json.dumps({"Records": b}, separators=(",", ":")).encode() for b in batches]
            self.invoke_all(run, texts)
            self.client.indices.refresh(index=f"{alias}-*")
            found = self.client.search(
                index=alias, body={"size": len(final) + 10, "_source": ["rev"], "query": {"match_all": {}}}
            )["hits"]["hits"]
            stored = {hit["_id"]: int(hit["_source"]["rev"]) for hit in found}
        finally:
            self.drop(alias)
        differ = sum(1 for doc_id, rev in final.items() if stored.get(doc_id) != rev)
        return {"items_differing": differ, "conflicts_taken_as_success": self.peer_conflicts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="4,000 records, 3 rounds, 200 items")
    parser.add_argument("--records", type=int, default=None, help="records per rate round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 7)")
    parser.add_argument("--batch", type=int, action="append", help="records per invocation (default 1000)")
    parser.add_argument("--items", type=int, default=None, help="items of the loss experiment (default 1000)")
    parser.add_argument("--invocations", type=int, default=8, help="invocations of the loss experiment")
    parser.add_argument("--signing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tracing", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    count = args.records or (4_000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 7)
    sizes = args.batch or [TARGET_BATCH]
    items = args.items or (200 if args.quick else 1000)

    sink = XraySink()
    os.environ.update(lambda_env(tracing=args.tracing, sink=sink))
    bench = Bench(make_stream(count, window=max(sizes)), args.signing)
    d = bench.stream
    print(f"machine: {machine()}")
    print(f"opensearch: {bench.client.info()['version']['number']} at {OPENSEARCH_URL}")
    print(f"ddbsync: {build_info()}")
    print("peer: bench/peer_lambda.py (boto3 TypeDeserializer + opensearch-py helpers.bulk, "
          "version=ApproximateCreationDateTime, version_type=external, 409s ignored)")  # fmt: skip
    print(f"signing: {'SigV4 on both (ddbsync also gzips bodies)' if args.signing else 'off'}; "
          f"tracing: {'on (every invocation sampled)' if args.tracing else 'off'}")  # fmt: skip
    print(f"records: {count} per round, {d['counts']}, {d['record_bytes']:.0f} bytes a record as JSON, "
          f"documents {d['document_bytes']:.0f} bytes; {rounds} alternating rounds, medians")  # fmt: skip
    ok = True
    for n, size in enumerate(sizes):
        bench.rate("peer", size)  # warm-up of each side
        bench.rate("ddbsync", size)
        peer_rate = functools.partial(bench.rate, "peer", size)
        our_rate = functools.partial(bench.rate, "ddbsync", size)
        best_rate = functools.partial(bench.rate, "ceiling", size)
        floor_rate = functools.partial(bench.rate, "floor", size)
        best_rate()
        floor_rate()
        sides: dict[str, Callable[[], float]] = {
            "peer": peer_rate, "ddbsync": our_rate, "ceiling": best_rate, "floor": floor_rate,
        }  # fmt: skip
        rates = rotate(rounds, sides)
        peer, ours, best, floor = rates["peer"], rates["ddbsync"], rates["ceiling"], rates["floor"]
        ratio = median(ours) / median(peer)
        print(f"batch {size:5d}: peer    {median(peer):9,.0f} records/s  rounds={[round(x) for x in peer]}")
        print(f"batch {size:5d}: ddbsync {median(ours):9,.0f} records/s  rounds={[round(x) for x in ours]}")
        print(f"batch {size:5d}: ceiling {median(best):9,.0f} records/s  rounds={[round(x) for x in best]}"
              f"  (least_documents + raw _bulk: {median(best) / median(peer):.2f} x the peer, the most"
              " a Python handler that decodes, then sends, reaches)")  # fmt: skip
        print(f"batch {size:5d}: floor   {median(floor):9,.0f} records/s  rounds={[round(x) for x in floor]}"
              f"  (ceiling, strict decoder: {median(floor) / median(peer):.2f} x the peer)")  # fmt: skip
        verdict = ""
        if size == TARGET_BATCH or (n == 0 and TARGET_BATCH not in sizes):
            met = ratio >= TARGET
            ok = ok and met
            verdict = f"  target >= {TARGET}: {'MET' if met else 'MISSED'}"
        paired = median([o / p for o, p in zip(ours, peer, strict=True)])
        print(f"batch {size:5d}: ratio ddbsync/peer {ratio:.2f} (median of per-round ratios {paired:.2f})"
              f"{verdict}")  # fmt: skip

    batches, final = same_second_history(items, args.invocations)
    updates = items * (args.invocations - 1)
    print(
        f"\nlost updates: {items} items, {args.invocations} invocations of {items} records "
        f"(an insert, then {updates} updates, each in the previous change's second with probability 1/2)"
    )
    for side in ("peer", "ddbsync"):
        result = bench.losses(side, batches, final)
        extra = ""
        if side == "peer":
            taken = result["conflicts_taken_as_success"]
            extra = f"; 409 answers taken as success: {taken} of {updates} updates"
        differ = result["items_differing"]
        print(f"  {side:8s}: items whose document is not the table's: {differ} of {items}{extra}")
        if side == "ddbsync" and result["items_differing"]:
            ok = False
            print("  ddbsync lost updates: target 0 MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
