"""Records/s of ddbsync's decode + map + serialize path vs boto3 TypeDeserializer + json.dumps.

Both sides turn the same INSERT stream records into the same two NDJSON lines
per record (bulk action line + document source, UTF-8 bytes):

* candidate: ``ddbsync.mapping.map_record(decode=False)`` -> ``materialize()`` (decode the
  image) -> ``ddbsync.bulk.Write(...).lines()`` (what the indexer, ``make_writes`` and
  ``chunks`` do per write);
* baseline: boto3 ``TypeDeserializer`` over ``NewImage``, the same ``pk|sk`` id,
  version and ``_ddbsync`` meta, ``json.dumps(default=...)`` turning Decimal into
  int/float and sets into sorted lists, and the same action line.

Usage (from the repository root)::

    PYTHONPATH=layers/ddbsync:. python bench/decode_throughput.py [--quick] [--profile]

Exits 1 when candidate/baseline records/s is below the target (4.0).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import sys
import time
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from _common import alternate, build_info, ddb, machine, make_records, median

_api = ddb()  # ddbsync's names, from wherever this version keeps them
Write, source_of = _api.Write, _api.source_of
decode_item, dumps_bytes = _api.decode_item, _api.dumps_bytes
map_record, materialize = _api.map_record, _api.materialize
stream_version = _api.stream_version

TARGET = 4.0
ALIAS = "bench"


class _StreamDeserializer(TypeDeserializer):
    """TypeDeserializer as a stream consumer must use it: Lambda delivers B/BS as base64 text,
    which boto3's Binary rejects, so keep the text (the cheapest possible choice)."""

    def _deserialize_b(self, value: Any) -> Any:
        return value

    def _deserialize_bs(self, value: Any) -> Any:
        return set(value)


def _default(o: object) -> object:
    if isinstance(o, Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    if isinstance(o, set | frozenset):
        return sorted(o, key=lambda x: (isinstance(x, Decimal), x))
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def baseline_lines(records: list[dict[str, Any]]) -> list[bytes]:
    deser = _StreamDeserializer()
    out = []
    for record in records:
        ddb = record["dynamodb"]
        keys = ddb["Keys"]
        doc_id = f"{keys['pk']['S']}|{keys['sk']['S']}"
        seq = ddb["SequenceNumber"]
        created = int(ddb["ApproximateCreationDateTime"])
        body = {k: deser.deserialize(v) for k, v in ddb["NewImage"].items()}
        body["_ddbsync"] = {"seq": seq.zfill(40), "ts": created, "source": "stream"}
        action = {
            "index": {
                "_index": ALIAS,
                "_id": doc_id,
                "version": stream_version(created),
                "version_type": "external",
                "require_alias": True,
            }
        }
        source = json.dumps(body, default=_default, ensure_ascii=False, separators=(",", ":"))
        out.append((json.dumps(action) + "\n" + source + "\n").encode("utf-8"))
    return out


def candidate_lines(records: list[dict[str, Any]]) -> list[bytes]:
    # What the indexer does per record: map, decode the image, serialize the document.
    out = []
    for record in records:
        change = map_record(record, "pk", "sk", decode=False)
        materialize(change)
        out.append(Write(ALIAS, change, source_of(change)).lines())
    return out


def _rate(fn: Any, records: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    fn(records)
    return len(records) / (time.perf_counter() - start)


def _check_same_documents(records: list[dict[str, Any]]) -> None:
    """Both sides must produce the same documents (exact decimals aside: boto3 loses them)."""
    for a, b in zip(baseline_lines(records), candidate_lines(records), strict=True):
        action_a, source_a = a.decode().splitlines()
        action_b, source_b = b.decode().splitlines()
        assert json.loads(action_a) == json.loads(action_b), (action_a, action_b)
        doc_a, doc_b = json.loads(source_a), json.loads(source_b)
        doc_a.pop("exact", None)
        doc_b.pop("exact", None)
        assert doc_a == doc_b, (source_a, source_b)


def stages(records: list[dict[str, Any]], rounds: int) -> list[tuple[str, float]]:
    """Median microseconds per record of each step, measured without a profiler."""
    images = [r["dynamodb"]["NewImage"] for r in records]
    changes = [map_record(r, "pk", "sk") for r in records]
    bodies = [c.body for c in changes]
    sources = [dumps_bytes(b) for b in bodies]
    writes = [Write(ALIAS, c, s) for c, s in zip(changes, sources, strict=True)]
    deser = _StreamDeserializer()
    plain = [{k: deser.deserialize(v) for k, v in im.items()} for im in images]
    # Each step runs over every record and drops its results, so that one step's
    # garbage does not slow the next one's collections.
    steps: list[tuple[str, Any, list[Any]]] = [
        ("candidate decode_item(NewImage)", decode_item, images),
        ("candidate map_record (incl. decode_item)", lambda r: map_record(r, "pk", "sk"), records),
        ("candidate dumps_bytes(body)", dumps_bytes, bodies),
        ("candidate Write.lines()", Write.lines, writes),
        (
            "baseline TypeDeserializer (NewImage)",
            lambda im: {k: deser.deserialize(v) for k, v in im.items()},
            images,
        ),
        (
            "baseline json.dumps(default=...)",
            lambda d: json.dumps(d, default=_default, ensure_ascii=False, separators=(",", ":")),
            plain,
        ),
    ]
    out = []
    for name, fn, inputs in steps:
        times = []
        for _ in range(rounds):
            gc.collect()
            start = time.perf_counter()
            for x in inputs:
                fn(x)
            times.append(time.perf_counter() - start)
        out.append((name, median(times) / len(records) * 1e6))
    return out


def profile(records: list[dict[str, Any]], top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    candidate_lines(records)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="1,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the candidate afterwards")
    args = parser.parse_args()
    count = args.records or (1_000 if args.quick else 5_000)
    rounds = args.rounds or (3 if args.quick else 7)

    records = make_records(count)
    record_bytes = sum(len(json.dumps(r, separators=(",", ":"))) for r in records) / count
    _check_same_documents(records[:200])
    # Warm both paths once (imports, caches) outside the measured rounds.
    baseline_lines(records[:200])
    candidate_lines(records[:200])

    base, cand = alternate(
        rounds, lambda: _rate(baseline_lines, records), lambda: _rate(candidate_lines, records)
    )
    base_rate, cand_rate = median(base), median(cand)
    ratio = cand_rate / base_rate
    print(f"machine: {machine()}")
    print(f"build: {build_info()}")
    print(f"records: {count} INSERT stream records, mean {record_bytes:.0f} bytes as compact JSON")
    print(f"rounds: {rounds} (alternating), medians reported")
    print(
        f"baseline  (boto3 TypeDeserializer + json.dumps): {base_rate:10,.0f} records/s  "
        f"rounds={[round(x) for x in base]}"
    )
    print(
        f"candidate (ddbsync map_record + dumps + lines): {cand_rate:10,.0f} records/s  "
        f"rounds={[round(x) for x in cand]}"
    )
    ok = ratio >= TARGET
    print(f"ratio candidate/baseline: {ratio:.2f}  target >= {TARGET}: {'MET' if ok else 'MISSED'}")
    if args.profile or not ok:
        print("\nper-step cost, median of rounds (microseconds per record):")
        for name, us in stages(records, rounds):
            print(f"  {name:45s} {us:7.1f} us")
        print("\ncProfile of the candidate path (sorted by own time):")
        print(profile(records))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
