"""``ddbsync verify`` items/s and peak memory, as a ratio to a plain parallel Scan of the same table.

Setup (once per size): a ``moto_server`` subprocess plays DynamoDB (so the table's memory is
not the verify's); a table of N items (the item mix of the backfill tests: strings, a number,
a string set, a bool, a map on every fourth) is seeded with ``BatchWriteItem``; the real
OpenSearch gets an index behind a fresh alias holding the document every item exports to
(``mapping.image_body``, ``versioning.export_version``), except 2 in 1,000 items: one in
1,000 is left out (missing) and one has an older body (stale), so the verify has drift to
confirm.

Each measurement is a fresh ``python`` subprocess (this file with ``--child``):

* ``scan``: ``verify.scan.parallel_scan`` over the table, counting items: the plain
  parallel Scan (same segments, page size and ConsistentRead as the verify's);
* ``verify``: ``verify.run_verify`` (read-only) over the same table and the index;
* ``floor``: imports and clients only;
* ``pipeline`` (``--pipeline``): the table's pages are first read into memory (not
  timed), then ``run_verify`` runs against a stand-in client that hands them back: the
  verify's own processing rate (decode, digest, sort, index walk, merge, confirm) with no
  DynamoDB time at all, the ceiling a faster Scan than moto's could reach. Its peak RSS
  includes the pages held, so it is not a memory figure.

A child reports wall seconds, items and ``ru_maxrss`` (peak RSS, KiB). The ratio is
verify items/s divided by scan items/s, in the same run, rounds alternating the order.
Targets (exit 1 when missed at the largest size): ratio >= 0.5; verify's peak RSS grows
by less than 32 MiB from the smallest size to the largest (memory flat).

moto's Scan walks the whole table for every page (it finds ``ExclusiveStartKey`` by
iterating), so pages are larger than DynamoDB's 1 MB default here (``--page-items``); both
children use the same value.

Usage (from the repository root, OpenSearch running: scripts/opensearch.sh start)::

    PYTHONPATH=layers/ddbsync:local:. python bench/verify_rate.py [--sizes 50000,200000]
        [--segments 4] [--page-items 5000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200").rstrip("/")
REGION = "eu-west-1"
EXPORT_TIME = 1_700_000_000


def _item(i: int, version: int = 0) -> dict[str, Any]:
    """The backfill tests' item, with wider keys. Imported here: the measured children that
    never build items do not load the test support module."""
    from tests.support import order_item

    return order_item(i, version, customers=997, digits=8)


def _env(endpoint: str, alias: str) -> dict[str, str]:
    return {
        "OPENSEARCH_ENDPOINT": OPENSEARCH_URL, "OPENSEARCH_SERVICE": "none", "INDEX_ALIAS": alias,
        "PARTITION_KEY": "pk", "SORT_KEY": "sk", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ENDPOINT_URL": endpoint,
        "POWERTOOLS_METRICS_NAMESPACE": "ddbsync", "POWERTOOLS_TRACE_DISABLED": "true",
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen([moto, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def _seed(size: int, endpoint: str, *, table_too: bool = True) -> tuple[str, str]:
    """Create and fill the table (unless not ``table_too``) and the index; return (table, alias)."""
    import boto3
    import orjson
    from opensearchpy import OpenSearch

    from ddbsync.config import DEFAULT_INDEX_TEMPLATE
    from ddbsync.dynamodb.decode import dumps_bytes
    from ddbsync.mapping import document_meta, image_body
    from ddbsync.opensearch.indices import ensure_index
    from ddbsync.versioning import export_version

    table, alias = f"verify-bench-{size}", f"verify-bench-{uuid.uuid4().hex[:8]}"
    ddb: Any = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint,
                            aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    if not table_too:
        ddb = _Synthetic(size)
    else:
        ddb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
        )  # fmt: skip
    client = OpenSearch(hosts=[OPENSEARCH_URL], timeout=120)
    ensure_index(client, alias, DEFAULT_INDEX_TEMPLATE)
    index = next(iter(client.indices.get_alias(name=alias)))
    version = export_version(EXPORT_TIME)
    lines: list[bytes] = []
    for start in range(0, size, 25):
        batch = [_item(i) for i in range(start, min(size, start + 25))]
        if table_too:
            ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in batch]})
        for i, it in enumerate(batch, start):
            if i % 1000 == 999:
                continue  # missing
            source = _item(i, -1) if i % 1000 == 998 else it  # stale
            doc_id = f"{it['pk']['S']}|{it['sk']['S']}"
            action = {"_index": index, "_id": doc_id, "version": version, "version_type": "external"}
            body = image_body(source, document_meta("export", EXPORT_TIME))
            lines += [orjson.dumps({"index": action}), dumps_bytes(body)]
        if len(lines) >= 10_000 or start + 25 >= size:
            client.bulk(body=b"\n".join(lines) + b"\n", params={"request_timeout": 120})
            lines = []
    client.indices.refresh(index=index)
    return table, alias


class _Synthetic:
    """A DynamoDB client stand-in that makes Scan pages on the fly: item i is in segment i % N."""

    def __init__(self, size: int) -> None:
        self.size = size

    def create_table(self, **_: Any) -> None:
        pass

    def scan(self, **request: Any) -> dict[str, Any]:
        segment, total, limit = request["Segment"], request["TotalSegments"], request["Limit"]
        at = int(request.get("ExclusiveStartKey", {"page": {"N": "0"}})["page"]["N"])
        ids = range(segment, self.size, total)[at * limit : (at + 1) * limit]
        out: dict[str, Any] = {"Items": [_item(i) for i in ids]}
        if (at + 1) * limit < len(range(segment, self.size, total)):
            out["LastEvaluatedKey"] = {"page": {"N": str(at + 1)}}
        return out


class _Replay:
    """A DynamoDB client stand-in for ``pipeline``: Scan pages read beforehand, per segment."""

    def __init__(self, pages: dict[int, list[list[dict[str, Any]]]]) -> None:
        self.pages = pages

    def scan(self, **request: Any) -> dict[str, Any]:
        pages = self.pages[request["Segment"]]
        at = int(request.get("ExclusiveStartKey", {"page": {"N": "0"}})["page"]["N"])
        out: dict[str, Any] = {"Items": pages[at] if pages else []}
        if at + 1 < len(pages):
            out["LastEvaluatedKey"] = {"page": {"N": str(at + 1)}}
        return out


def _read_pages(ddb: Any, table: str, segments: int, page_items: int) -> _Replay:
    pages: dict[int, list[list[dict[str, Any]]]] = {}
    for segment in range(segments):
        request: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": segments,
                                   "ConsistentRead": True, "Limit": page_items}  # fmt: skip
        pages[segment] = []
        while True:
            page = ddb.scan(**request)
            pages[segment].append(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return _Replay(pages)


def _child(kind: str, table: str, alias: str, segments: int, page_items: int) -> None:
    import boto3
    from opensearchpy import OpenSearch

    from ddbsync.config import Settings
    from ddbsync.verify import parallel_scan, run_verify

    ddb: Any = boto3.client("dynamodb", region_name=REGION)
    client = OpenSearch(hosts=[OPENSEARCH_URL], timeout=120)
    client.info()
    if kind == "pipeline":
        ddb = _read_pages(ddb, table, segments, page_items)
    elif kind.startswith("synthetic"):
        ddb = _Synthetic(int(table.rsplit("-", 1)[1]))
    started = time.perf_counter()
    items, drift = 0, 0
    if kind in ("scan", "synthetic-scan"):
        for page in parallel_scan(ddb, table, segments, page_items):
            items += len(page)
    elif kind in ("verify", "pipeline", "synthetic"):
        summary = run_verify(Settings.from_env(require_dlq=False), table, ddb=ddb, client=client,
                             segments=segments, page_items=page_items)  # fmt: skip
        items, drift = summary.items, summary.drift
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"kind": kind, "seconds": seconds, "items": items, "drift": drift, "maxrss_kib": rss}))


def _measure(
    kind: str, table: str, alias: str, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--table", table, "--alias", alias,
           "--segments", str(args.segments), "--page-items", str(args.page_items)]  # fmt: skip
    out = subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _synthetic(args: argparse.Namespace) -> int:
    """Verify against generated Scan pages (no DynamoDB): rate and peak RSS at each size."""
    os.environ.update(_env("http://127.0.0.1:9", "unused"))
    for size in [int(s) for s in args.synthetic.split(",")]:
        table, alias = _seed(size, "http://127.0.0.1:9", table_too=False)
        env = _env("http://127.0.0.1:9", alias)
        gen = _measure("synthetic-scan", table, alias, env, args)
        got = _measure("synthetic", table, alias, env, args)
        print(f"{size:>9,} items (generated pages)  verify {size / got['seconds']:,.0f} items/s "
              f"({got['seconds']:.1f} s, drift {got['drift']}), peak RSS {got['maxrss_kib'] / 1024:.0f} MiB; "
              f"generating the pages alone {size / gen['seconds']:,.0f} items/s, "
              f"peak RSS {gen['maxrss_kib'] / 1024:.0f} MiB", flush=True)  # fmt: skip
        _drop_index(alias)
    return 0


def _drop_index(alias: str) -> None:
    from opensearchpy import OpenSearch

    OpenSearch(hosts=[OPENSEARCH_URL]).indices.delete(index=f"{alias}-*")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--page-items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pipeline", action="store_true", help="also measure the verify without DynamoDB")
    parser.add_argument("--synthetic", default="", help="sizes verified against generated Scan pages")
    parser.add_argument(
        "--child", choices=["scan", "verify", "floor", "pipeline", "synthetic", "synthetic-scan"]
    )
    parser.add_argument("--table")
    parser.add_argument("--alias")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.table, args.alias, args.segments, args.page_items)
        return 0
    if args.synthetic:
        return _synthetic(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    moto, endpoint = _start_moto()
    os.environ.update(_env(endpoint, "unused"))
    rows = []
    try:
        for size in sizes:
            t0 = time.perf_counter()
            table, alias = _seed(size, endpoint)
            print(f"seeded {size:,} items and documents in {time.perf_counter() - t0:.0f} s", flush=True)
            env = _env(endpoint, alias)
            floor = _measure("floor", table, alias, env, args)
            for r in range(args.rounds):
                order = ["scan", "verify"] if r % 2 == 0 else ["verify", "scan"]
                got = {kind: _measure(kind, table, alias, env, args) for kind in order}
                scan, verify = got["scan"], got["verify"]
                assert scan["items"] == verify["items"] == size, (scan, verify)
                rows.append((size, scan, verify, floor))
                if args.pipeline:
                    alone = _measure("pipeline", table, alias, env, args)
                    rate = size / alone["seconds"]
                    print(f"{size:>9,} items  verify without DynamoDB time: {rate:,.0f} items/s "
                          f"({alone['seconds']:.1f} s)", flush=True)  # fmt: skip
                print(
                    f"{size:>9,} items  scan {size / scan['seconds']:>8,.0f}/s ({scan['seconds']:.1f} s)  "
                    f"verify {size / verify['seconds']:>8,.0f}/s ({verify['seconds']:.1f} s)  "
                    f"ratio {scan['seconds'] / verify['seconds']:.2f}  drift {verify['drift']}  "
                    f"peak RSS: floor {floor['maxrss_kib'] / 1024:.0f} MiB, scan "
                    f"{scan['maxrss_kib'] / 1024:.0f} MiB, verify {verify['maxrss_kib'] / 1024:.0f} MiB",
                    flush=True,
                )
            _drop_index(alias)
    finally:
        moto.terminate()
        moto.wait()
    largest = [r for r in rows if r[0] == max(sizes)]
    smallest = [r for r in rows if r[0] == min(sizes)]
    ratio = min(r[1]["seconds"] / r[2]["seconds"] for r in largest)
    growth = (max(r[2]["maxrss_kib"] for r in largest) - min(r[2]["maxrss_kib"] for r in smallest)) / 1024
    print(f"worst ratio at {max(sizes):,}: {ratio:.2f} (target >= 0.5); verify peak RSS growth "
          f"{min(sizes):,} -> {max(sizes):,}: {growth:+.1f} MiB (target < 32)")  # fmt: skip
    return 0 if ratio >= 0.5 and growth < 32 else 1


if __name__ == "__main__":
    sys.exit(main())
