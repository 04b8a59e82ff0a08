"""The stream handler's own CPU per record, with an instant HTTP layer, vs json.loads of the event.

What a Lambda cannot avoid is the runtime parsing the event's JSON (``json.loads`` of the
invocation body); the target is that the handler's own work costs no more than that,
per record, at batch 1,000. Both are measured in the same run, in alternating rounds,
with ``time.process_time`` (CPU of this process), medians:

* baseline: ``json.loads`` of each event's JSON text (bytes, as the runtime reads the
  body; the Python runtime uses simplejson's C ``loads``, of the same order);
* candidate: ``handler(event, context)`` of ``functions/stream_indexer/app.py`` (the
  entry file, run with the settings in the environment: Powertools' logger, metrics and
  tracer decorators included), called with the event freshly parsed (outside the timed
  region), as Lambda calls it.

The OpenSearch client is the handler's own (``build_client``): with ``--signing`` (the
default) SigV4 signing with fake credentials and gzip request bodies, as for a managed
domain; the stub sits below it, at the HTTP layer (a requests transport adapter, or the
urllib3 pool without signing), and answers each ``_bulk`` with the shape OpenSearch
gives under the handler's ``filter_path``, 201 for a new id and 200 for one seen before,
so the handler does all its own work: NDJSON, gzip, signature, request, parsing the
answer, accounting. The stub's own CPU (decompressing the body to count the items) is
measured inside it and subtracted. Tracing (``--tracing``, the default) is on as in Lambda
with active tracing (see ``_common.lambda_env``): every invocation sampled, subsegments
sent by UDP to a socket standing for the daemon. ``MANAGE_INDEX=false``: the index checks
of a container's first batch are left out (they happen once per container).

Events: ``_common.make_stream``, INSERT / MODIFY with OldImage / REMOVE, distinct keys
within a batch, documents of about 600 bytes (684 with ``_ddbsync``).

The split (``--split``, default on) comes from a separate pass with the phases wrapped
(``_common.Phases``): map, collapse, writes, accounting, and the Powertools shell.
``--profile`` adds a cProfile of one pass, by own time.

Usage (from the repository root; no OpenSearch needed)::

    PYTHONPATH=layers/ddbsync:. python bench/handler_cpu.py [--quick] [--batch 1000]
        [--no-tracing] [--no-signing] [--profile]

Exits 1 when handler CPU per record / json.loads CPU per record is above 1.0 at the
(first) batch size.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import pstats
import sys
import time
from typing import Any

from _common import (
    FakeContext,
    Phases,
    XraySink,
    alternate,
    build_info,
    describe_stream,
    entry_handler,
    lambda_env,
    machine,
    make_stream,
    median,
    new_trace_id,
    opensearch_env,
    stdout_to_devnull,
)

TARGET = 1.0
ALIAS = "bench-cpu"  # never created: the stub answers
ENDPOINT = "https://search-bench-cpu.eu-west-1.es.amazonaws.com"
PLAIN_ENDPOINT = "http://opensearch.invalid:9200"


class Stub:
    """Answers the handler's requests at the HTTP layer, as OpenSearch would, without a network."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.seen: set[bytes] = set()
        self.cpu = 0.0
        self.wall = 0.0
        self.requests: dict[str, int] = {}
        view = {f"{alias}-000001": {"aliases": {alias: {"is_write_index": True}}}}
        self.view = json.dumps(view).encode()

    def answer(self, method: str, path: str, body: bytes | None, gzipped: bool) -> tuple[int, bytes]:
        start, wall = time.process_time(), time.perf_counter()
        try:
            route = path.split("?", 1)[0]
            if route.endswith("/_bulk"):
                self.requests["bulk"] = self.requests.get("bulk", 0) + 1
                return 200, self._bulk(gzip.decompress(body) if gzipped and body else body or b"")
            self.requests[method] = self.requests.get(method, 0) + 1
            if method == "GET" and route == f"/{self.alias},{self.alias}-next":
                return 200, self.view  # read_view: where the aliases point
            if method == "HEAD" and route == f"/_alias/{self.alias}-next":
                return 404, b""  # the C build's check for a backfill's next alias
            raise AssertionError(f"the stub does not know {method} {path}")
        finally:
            self.cpu += time.process_time() - start
            self.wall += time.perf_counter() - wall

    def _bulk(self, body: bytes) -> bytes:
        lines = body.split(b"\n")
        items = []
        for action in lines[0:-1:2]:
            at = action.index(b'"_id":') + 6
            doc_id = action[at : action.index(b'",', at)]
            if doc_id in self.seen:
                items.append(b'{"index":{"status":200}}')
            else:
                self.seen.add(doc_id)
                items.append(b'{"index":{"status":201}}')
        # What OpenSearch answers under the handler's filter_path (errors, items.*.status, ...).
        return b'{"errors":false,"items":[' + b",".join(items) + b"]}"


def install(stub: Stub, client: Any) -> None:
    """Put ``stub`` under each of the client's connections (requests with SigV4, or urllib3)."""
    for conn in client.transport.connection_pool.connections:
        if hasattr(conn, "session"):
            import requests
            from requests.adapters import BaseAdapter
            from requests.structures import CaseInsensitiveDict

            class Adapter(BaseAdapter):
                def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # a stub
                    gz = request.headers.get("content-encoding") == "gzip"
                    status, data = stub.answer(request.method, request.path_url, request.body, gz)
                    response = requests.Response()
                    response.status_code = status
                    response._content = data
                    response.headers = CaseInsensitiveDict({"content-type": "application/json"})
                    response.request = request
                    response.url = request.url
                    return response

                def close(self) -> None:
                    pass

            conn.session.mount("https://", Adapter())
            conn.session.mount("http://", Adapter())
        else:
            from urllib3 import HTTPResponse

            class Pool:
                def urlopen(self, method: str, url: str, body: bytes | None, **kwargs: Any) -> Any:
                    headers = kwargs.get("headers") or {}
                    status, data = stub.answer(method, url, body, headers.get("content-encoding") == "gzip")
                    return HTTPResponse(
                        body=io.BytesIO(data), status=status, preload_content=True,
                        headers={"content-type": "application/json; charset=UTF-8"},
                    )  # fmt: skip

                def close(self) -> None:
                    pass

            conn.pool = Pool()


class Bench:
    def __init__(self, records: list[dict[str, Any]], batch: int, handler: Any, stub: Stub) -> None:
        self.count = len(records)
        self.texts = [
            json.dumps({"Records": records[i : i + batch]}, separators=(",", ":")).encode()
            for i in range(0, len(records), batch)
        ]
        self.handler = handler
        self.stub = stub

    def loads_us(self) -> float:
        clock = time.process_time
        total = 0.0
        for text in self.texts:
            start = clock()
            json.loads(text)
            total += clock() - start
        return total / self.count * 1e6

    def split(self) -> dict[str, float]:
        phases = Phases()
        stub_before = self.stub.cpu
        with phases.active():
            total_us = self.handler_us()
        # The stub answers inside transport.bulk: its CPU is not the handler's (handler_us drops it).
        phases.discount(self.stub.cpu - stub_before, "transport.bulk", "_send", "_send_changes", "process")
        split = phases.split(self.count, total_us * self.count / 1e6)
        split["total (with the probes)"] = total_us
        return split

    def handler_us(self, profiler: cProfile.Profile | None = None) -> float:
        clock = time.process_time
        total = 0.0
        ctx = FakeContext(remaining_ms=300_000)
        failures = 0
        with stdout_to_devnull():
            for text in self.texts:
                event = json.loads(text)  # the runtime's part, not timed here
                new_trace_id()
                stub_before = self.stub.cpu
                if profiler is not None:
                    profiler.enable()
                start = clock()
                response = self.handler(event, ctx)
                total += clock() - start - (self.stub.cpu - stub_before)
                if profiler is not None:
                    profiler.disable()
                failures += len(response["batchItemFailures"])
                del event, response
        assert failures == 0, f"{failures} batch item failures"
        return total / self.count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="5,000 records, 3 rounds")
    parser.add_argument("--records", type=int, default=None, help="records per round (default 20,000)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 7)")
    parser.add_argument("--batch", type=int, action="append", help="records per invocation (default 1000)")
    parser.add_argument("--tracing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--signing", action=argparse.BooleanOptionalAction, default=True,
                        help="SigV4 + gzip (service es), or plain http (service none)")  # fmt: skip
    parser.add_argument("--split", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--profile", action="store_true", help="cProfile one pass at the first batch size")
    args = parser.parse_args()
    count = args.records or (5_000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 7)
    sizes = args.batch or [1000]

    sink = XraySink()
    os.environ.update(lambda_env(tracing=args.tracing, sink=sink))
    endpoint = ENDPOINT if args.signing else PLAIN_ENDPOINT
    env = opensearch_env(ALIAS, signing=args.signing, url=endpoint, MANAGE_INDEX="false")
    handler = entry_handler(env, url=endpoint)
    stub = Stub(ALIAS)
    install(stub, handler.indexer.client)

    print(f"machine: {machine()}")
    print(f"build: {build_info()}")
    print(
        f"client: {'SigV4 (service es, fake credentials) + gzip bodies' if args.signing else 'no signing'}, "
        f"tracing {'on (every invocation sampled)' if args.tracing else 'off'}; HTTP answered by a stub"
    )
    ok = True
    for n, size in enumerate(sizes):
        records = make_stream(count, window=max(sizes))
        if n == 0:
            d = describe_stream(records)
            print(
                f"records: {count} per round, {d['counts']}, {d['record_bytes']:.0f} bytes a record as "
                f"JSON, documents {d['document_bytes']:.0f} bytes; {rounds} alternating rounds, medians"
            )
        bench = Bench(records, size, handler, stub)
        del records
        bench.handler_us()  # warm-up: imports, caches, the first view read
        bench.loads_us()
        loads, cand = alternate(rounds, bench.loads_us, bench.handler_us)
        ratio = median(cand) / median(loads)
        for name, values in (("json.loads", loads), ("handler", cand)):
            rounded = [round(x, 1) for x in values]
            print(f"batch {size:5d}: {name:10s}  {median(values):6.1f} us/record  rounds={rounded}")
        verdict = ""
        if n == 0:
            met = ratio <= TARGET
            ok = ok and met
            verdict = f"  target <= {TARGET}: {'MET' if met else 'MISSED'}"
        paired = median([c / x for c, x in zip(cand, loads, strict=True)])
        print(f"batch {size:5d}: ratio handler/json.loads {ratio:.2f} (median of per-round ratios "
              f"{paired:.2f}){verdict}")  # fmt: skip
        if args.split:
            splits = [bench.split() for _ in range(3)]
            print(f"batch {size:5d}: split, us/record (median of 3 passes with the phases wrapped):")
            for k in splits[0]:
                print(f"    {k:48s} {median([s[k] for s in splits]):6.1f}")
        if args.profile and n == 0:
            prof = cProfile.Profile()
            bench.handler_us(prof)
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
            print(f"\ncProfile of one pass at batch {size} (by own time):\n{buf.getvalue()}")
    print(f"requests answered by the stub: {stub.requests}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
