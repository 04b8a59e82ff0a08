"""Shared bench helpers: realistic stream records, alternating rounds, machine facts, and the
one place that names ddbsync's internals.

Run the benches from the repository root with the package importable, either
installed (``pip install -e .``) or through ``PYTHONPATH``::

    PYTHONPATH=layers/ddbsync:. python bench/decode_throughput.py --quick

``tests.support`` (RecordFactory, FakeContext) is imported from the repository
root, hence the ``.`` in ``PYTHONPATH``.

Every import of a ddbsync module by a bench goes through :func:`ddb` (or the few
helpers below it), so that a bench script runs unchanged against another version
of the package (a module moved, the C build of 60eeb22): only this file knows
where things live. ddbsync is imported lazily, after the bench has set the
environment (Powertools reads it at import).
"""

from __future__ import annotations

import base64
import functools
import gc
import importlib
import os
import platform
import random
import runpy
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    from tests.support import FakeContext, RecordFactory
except ModuleNotFoundError as e:  # pragma: no cover - a usage error, say how to run
    raise SystemExit(
        f"cannot import tests.support ({e}); run from the repository root with "
        "PYTHONPATH=layers/ddbsync:. python bench/<name>.py"
    ) from e

__all__ = [
    "APP_FILE",
    "ENTRY_MODULE",
    "OPENSEARCH_URL",
    "REPO",
    "FakeContext",
    "Phases",
    "RecordFactory",
    "XraySink",
    "alternate",
    "build_info",
    "ddb",
    "describe_stream",
    "entry_handler",
    "fake_aws_env",
    "index_name",
    "lambda_env",
    "machine",
    "make_records",
    "make_stream",
    "median",
    "new_trace_id",
    "opensearch_env",
    "rotate",
    "stdout_to_devnull",
]

REPO = Path(__file__).resolve().parent.parent
# The Lambda's entry file (what the runtime imports) and the module it builds the handler from.
APP_FILE = REPO / "functions" / "stream_indexer" / "app.py"
ENTRY_MODULE = "ddbsync.handler"
OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200").rstrip("/")
# Index and alias names start with this (BENCH_INDEX_PREFIX), so that benches run side by
# side on a shared OpenSearch never touch each other's indices.
INDEX_PREFIX = os.environ.get("BENCH_INDEX_PREFIX", "bench-")


def index_name(kind: str) -> str:
    """A fresh alias or index name, ``<prefix><kind>-<random>``."""
    return f"{INDEX_PREFIX}{kind}-{uuid.uuid4().hex[:10]}"

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "widget",
    "gadget",
    "sprocket",
    "flange",
    "gasket",
    "bracket",
    "hinge",
    "lever",
    "spring",
    "washer",
    "bolt",
    "nut",
    "rivet",
    "crème",
    "brûlée",
    "façade",
    "naïve",
    "résumé",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _image(rng: random.Random, i: int) -> dict[str, Any]:
    """One item in DynamoDB JSON (~1 KB as a stream record): the mix a product table holds."""
    image: dict[str, Any] = {
        "name": {"S": _text(rng, 5)},
        "description": {"S": _text(rng, 12)},
        "price": {"N": f"{rng.randint(1, 99999) / 100:.2f}".rstrip("0").rstrip(".")},
        "qty": {"N": str(rng.randint(0, 5000))},
        "rating": {"N": str(rng.choice(["4.5", "3.25", "5", "1.1", "2.75"]))},
        "updated_at": {"N": str(1_760_000_000 + i)},
        "active": {"BOOL": rng.random() < 0.8},
        "tags": {"SS": sorted({rng.choice(_WORDS) for _ in range(rng.randint(2, 6))})},
        "attrs": {
            "M": {
                "color": {"S": rng.choice(["red", "green", "blue", "black"])},
                "size": {"N": str(rng.randint(1, 60))},
                "origin": {"S": rng.choice(["FR", "DE", "US", "JP", "BR"])},
                "dims": {
                    "M": {
                        "w": {"N": f"{rng.uniform(1, 100):.1f}"},
                        "h": {"N": f"{rng.uniform(1, 100):.1f}"},
                        "d": {"N": str(rng.randint(1, 50))},
                    }
                },
            }
        },
        "history": {
            "L": [
                {
                    "M": {
                        "ts": {"N": str(1_750_000_000 + rng.randint(0, 10_000_000))},
                        "status": {"S": rng.choice(["created", "priced", "shipped", "returned"])},
                        "by": {"S": f"user-{rng.randint(1, 999)}"},
                    }
                }
                for _ in range(rng.randint(2, 4))
            ]
        },
        "scores": {"L": [{"N": str(rng.randint(0, 100))} for _ in range(5)]},
    }
    if i % 5 == 0:
        image["sizes"] = {"NS": sorted({str(rng.randint(30, 48)) for _ in range(4)})}
    if i % 7 == 0:
        image["discontinued"] = {"NULL": True}
    if i % 10 == 0:
        image["thumb"] = {"B": base64.b64encode(rng.randbytes(rng.randint(32, 64))).decode("ascii")}
    if i % 50 == 0:
        # A decimal a float cannot carry exactly (ddbsync keeps its digits).
        image["exact"] = {"N": "3.14159265358979323846264338327950288"}
    return image


def make_records(count: int, *, seed: int = 7, created: int | None = None) -> list[dict[str, Any]]:
    """``count`` INSERT stream records with distinct keys, built with tests.support.RecordFactory."""
    rng = random.Random(seed)
    factory = RecordFactory()
    when = created if created is not None else int(time.time())
    return [
        factory.record("INSERT", f"tenant-{i % 50}", f"item-{i:07d}", raw_image=_image(rng, i), created=when)
        for i in range(count)
    ]


def make_stream(
    count: int,
    *,
    seed: int = 7,
    start: int | None = None,
    window: int = 1000,
    per_second: int = 200,
    mix: tuple[float, float, float] = (0.5, 0.35, 0.15),
) -> list[dict[str, Any]]:
    """``count`` stream records in stream order: INSERT, MODIFY and REMOVE, as a table's stream holds.

    ``mix`` is the share of INSERT / MODIFY / REMOVE asked for; a MODIFY or REMOVE picks a
    live item at random, and becomes an INSERT of a new item when none is free (early in
    the stream), so the actual shares are a little more INSERT (see :func:`describe_stream`).
    MODIFY records carry the item's previous image as ``OldImage`` and a new image (the
    :func:`make_records` mix, about 600 bytes of document); REMOVE records carry ``OldImage``
    and no ``NewImage`` (a NEW_AND_OLD_IMAGES stream). ``per_second`` records share each
    ``ApproximateCreationDateTime`` second, from ``start``.

    Keys are distinct within each run of ``window`` records (so within every batch of a
    size dividing it), and an item's changes are in different seconds: nothing collapses
    within a batch and no write meets a same-second conflict, so the handler and a raw
    ``_bulk`` of its NDJSON do the same work (the loss experiment of bench/peer.py makes
    same-second changes on purpose).
    """
    rng = random.Random(seed)
    factory = RecordFactory()
    start = start if start is not None else int(time.time()) - count // per_second - 60
    live: list[int] = []
    where: dict[int, int] = {}  # key -> index in live
    images: dict[int, dict[str, Any]] = {}
    last_second: dict[int, int] = {}
    in_window: set[int] = set()
    next_key = 0
    records: list[dict[str, Any]] = []
    for i in range(count):
        if i % window == 0:
            in_window = set()
        second = start + i // per_second
        roll = rng.random()
        key: int | None = None
        op = "INSERT"
        if live and roll >= mix[0]:
            for _ in range(8):
                k = live[rng.randrange(len(live))]
                if k not in in_window and last_second[k] < second:
                    key = k
                    op = "MODIFY" if roll < mix[0] + mix[1] else "REMOVE"
                    break
        if key is None:
            key, next_key = next_key, next_key + 1
        in_window.add(key)
        last_second[key] = second
        pk, sk = f"tenant-{key % 50}", f"item-{key:07d}"
        keys = factory.keys(pk, sk)
        if op == "REMOVE":
            rec = factory.record("REMOVE", pk, sk, created=second)
            rec["dynamodb"]["OldImage"] = {**keys, **images.pop(key)}
            last = live.pop()
            if last != key:
                live[where[key]] = last
                where[last] = where[key]
            del where[key]
        else:
            image = _image(rng, i)
            rec = factory.record(op, pk, sk, raw_image=image, created=second)
            if op == "MODIFY":
                rec["dynamodb"]["OldImage"] = {**keys, **images[key]}
            else:
                where[key] = len(live)
                live.append(key)
            images[key] = image
        records.append(rec)
    return records


def describe_stream(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts per eventName, live items at the end, mean record and document sizes (bytes)."""
    import json

    counts: dict[str, int] = {}
    alive: set[tuple[str, str]] = set()
    docs: list[int] = []
    for r in records:
        name = r["eventName"]
        counts[name] = counts.get(name, 0) + 1
        keys = r["dynamodb"]["Keys"]
        key = (keys["pk"]["S"], keys["sk"]["S"])
        if name == "REMOVE":
            alive.discard(key)
        else:
            alive.add(key)
            docs.append(len(ddb().document_json(r)))
    sizes = [len(json.dumps(r, separators=(",", ":"))) for r in records]
    return {
        "counts": counts,
        "live": len(alive),
        "keys": len({(r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records}),
        "record_bytes": statistics.mean(sizes),
        "document_bytes": statistics.mean(docs) if docs else 0.0,
    }


def _least_map(image: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for name, value in image.items():
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            text = value["N"]
            out[name] = float(text) if "." in text else int(text)
        elif "M" in value:
            out[name] = _least_map(value["M"])
        elif "L" in value:
            out[name] = list(_least_map(dict(enumerate(value["L"]))).values())
        else:
            ((tag, inner),) = value.items()
            out[name] = None if tag == "NULL" else inner
    return out


def _strict_document(ddb_record: dict[str, Any]) -> bytes:
    """A stream record's new image as ddbsync writes its source: strict decoding and ``_ddbsync``."""
    seq = ddb_record["SequenceNumber"]
    meta = ddb().document_meta("stream", int(ddb_record["ApproximateCreationDateTime"]), seq)
    return bytes(ddb().dumps_bytes(ddb().image_body(ddb_record["NewImage"], meta, seq)))


def least_documents(records: Sequence[dict[str, Any]], *, strict: bool = False) -> list[bytes]:
    """The least work any Python handler must do with a batch: each new image to JSON bytes.

    A bound, not a decoder: no checks at all (a bad number raises, ``"1E+2"`` stays
    text...), sets neither sorted nor checked, B not validated, no ids, versions,
    ``_ddbsync`` metadata, collapse, action lines or accounting. S and N inline, a dict per
    map, orjson for the JSON (faster than a recursive function per value), the cyclic
    collector paused as the writers pause it (``ddbsync.gcpause``). The benches add it to a
    raw ``_bulk`` to show the best rate a Python handler that decodes a batch, then sends
    it, could reach here (bench/README.md, "The ceiling").

    With ``strict`` (the "floor" sides): each image through ddbsync's own strict decoder
    and ``_ddbsync`` builder instead (``mapping.image_body`` of ``document_meta``, then
    ``dumps_bytes``), still with no ids, versions, collapse, action lines or accounting:
    the least a handler does once its decoding must refuse what DynamoDB cannot hold
    (issue #7) and stay in Python (issue #8).
    """
    import orjson

    dumps = orjson.dumps
    d: dict[str, Any]
    if strict:
        with ddb().paused_gc():
            return [
                _strict_document(d)
                for r in records
                if r["eventName"] != "REMOVE" and "NewImage" in (d := r["dynamodb"])
            ]
    with ddb().paused_gc():
        return [
            dumps(_least_map(d["NewImage"]))
            for r in records
            if r["eventName"] != "REMOVE" and "NewImage" in (d := r["dynamodb"])
        ]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rotate(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every side ``rounds`` times; round r starts with side r (mod n), so each goes first equally."""
    names = list(sides)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            gc.collect()
            out[name].append(sides[name]())
    return out


def alternate(
    rounds: int, baseline: Callable[[], float], candidate: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Run both ``rounds`` times, swapping which goes first each round (cancels drift).

    Each callable returns its own measurement (seconds or a rate).
    """
    base: list[float] = []
    cand: list[float] = []
    for r in range(rounds):
        order = ((base, baseline), (cand, candidate)) if r % 2 == 0 else ((cand, candidate), (base, baseline))
        for sink, fn in order:
            gc.collect()
            sink.append(fn())
    return base, cand


def fake_aws_env() -> dict[str, str]:
    """Credentials and region that can never reach real AWS (as tests/conftest.py)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "ddbsync",
        "POWERTOOLS_DEV": "false",
    }


def machine() -> str:
    """nproc, CPU model and Python version, one line."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"nproc={nproc} cpu={model!r} python={platform.python_version()} ({sys.executable})"


def build_info() -> str:
    """Which ddbsync is imported: its directory, git commit, and whether the C speedups are loaded."""
    import ddbsync

    layer = Path(ddbsync.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(layer), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    try:
        native = importlib.import_module("ddbsync.native")
        c = getattr(native, "speedups", None) is not None
    except ImportError:
        c = False
    return f"ddbsync at {layer} (commit {commit}), {'C speedups loaded' if c else 'pure Python'}"


# --- the Lambda environment: tracing as in production ---------------------------------------------


class XraySink:
    """A UDP socket standing for the X-Ray daemon: bound, never read (datagrams are dropped when full).

    The X-Ray SDK sends each finished subsegment there with ``sendto``, as in Lambda.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"


def new_trace_id() -> None:
    """What Lambda does before each invocation with active tracing: a new sampled trace header."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    os.environ["_X_AMZN_TRACE_ID"] = f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def lambda_env(*, tracing: bool, sink: XraySink | None = None) -> dict[str, str]:
    """Environment of the function in Lambda, with fake credentials that never reach AWS.

    With ``tracing``: what active tracing sets (``LAMBDA_TASK_ROOT`` and a sampled
    ``_X_AMZN_TRACE_ID``, so Powertools' Tracer is on, patches botocore/requests/httplib
    and the X-Ray SDK records a subsegment per HTTP request and per handler call), the
    daemon address being ``sink``. Every invocation is sampled (``Sampled=1``): the
    dearest case; Lambda samples 1 a second plus 5 % by default.
    """
    env = fake_aws_env()
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "stream-indexer-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            # Nothing may reach real AWS: no poison record is expected, and were one sent it
            # would fail here (and the bench's check of batchItemFailures would say so).
            "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:9",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        }
    )
    if tracing:
        sink = sink or XraySink()
        env.update(
            {
                "POWERTOOLS_TRACE_DISABLED": "false",
                "LAMBDA_TASK_ROOT": str(APP_FILE.parent),
                "AWS_XRAY_DAEMON_ADDRESS": sink.address,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            }
        )
        new_trace_id()
    return env


def opensearch_env(alias: str, *, signing: bool, url: str = OPENSEARCH_URL, **extra: str) -> dict[str, str]:
    """The stream indexer's settings for ``alias``. With ``signing``: SigV4 (``es``) and gzip bodies.

    Settings want https with SigV4; :func:`entry_handler` then points the client's connection
    back at ``url``'s plain http (the signature is computed and sent; a local OpenSearch
    without the security plugin ignores it).
    """
    endpoint = url.replace("http://", "https://", 1) if signing else url
    env = {
        "OPENSEARCH_ENDPOINT": endpoint,
        "OPENSEARCH_SERVICE": "es" if signing else "none",
        "INDEX_ALIAS": alias,
        "PARTITION_KEY": "pk",
        "SORT_KEY": "sk",
        "RECORD_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/bench-dlq",
        "AWS_REGION": "eu-west-1",
        "TIMEOUT_MARGIN_MS": "1000",
    }
    env.update(extra)
    return env


def plain_http(client: Any) -> None:
    """Send a client built for https (Settings want it with SigV4) over plain http to the same host:port."""
    for conn in client.transport.connection_pool.connections:
        if conn.base_url.startswith("https://"):
            conn.base_url = "http://" + conn.base_url[len("https://") :]
            conn.use_ssl = False


def entry_handler(env: dict[str, str], *, url: str = OPENSEARCH_URL) -> Any:
    """The handler as Lambda gets it: ``functions/stream_indexer/app.py`` run with ``env`` set.

    A fresh handler (and client) each call. ``handler.indexer`` is its StreamIndexer.
    """
    os.environ.update(env)
    handler = runpy.run_path(str(APP_FILE))["handler"]
    client = handler.indexer.client
    if client is not None and env.get("OPENSEARCH_SERVICE") in ("es", "aoss") and url.startswith("http://"):
        plain_http(client)
    return handler


@contextmanager
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


# --- ddbsync internals: the one place that names them -------------------------------------------


# name -> where it lives: this checkout's module first, then the flat layout of commit 60eeb22
# (the C build the e2e and CPU benches compare with). The one table to update when a module moves.
_WHERE: dict[str, tuple[str, ...]] = {
    "paused_gc": ("ddbsync.gcpause",),
    "prefetched": ("ddbsync.prefetch",),
    "make_handler": ("ddbsync.handler", "ddbsync.indexer"),
    "StreamIndexer": ("ddbsync.indexer",),
    "BatchResult": ("ddbsync.indexer",),
    "Settings": ("ddbsync.config",),
    "build_client": ("ddbsync.opensearch.client", "ddbsync.opensearch"),
    "OpenSearchTransport": ("ddbsync.opensearch.transport", "ddbsync.transport"),
    "BulkItemResult": ("ddbsync.opensearch.transport", "ddbsync.transport"),
    "StoredMeta": ("ddbsync.opensearch.transport", "ddbsync.transport"),
    "ensure_index": ("ddbsync.opensearch.indices", "ddbsync.index_admin"),
    "create_backfill_index": ("ddbsync.opensearch.indices", "ddbsync.index_admin"),
    "map_record": ("ddbsync.mapping",),
    "materialize": ("ddbsync.mapping",),
    "image_body": ("ddbsync.mapping",),
    "document_meta": ("ddbsync.mapping",),
    "Write": ("ddbsync.opensearch.bulk", "ddbsync.bulk"),
    "Deadline": ("ddbsync.deadline", "ddbsync.bulk"),
    "source_of": ("ddbsync.opensearch.bulk", "ddbsync.bulk"),
    "decode_item": ("ddbsync.dynamodb.decode", "ddbsync.decode"),
    "dumps_bytes": ("ddbsync.dynamodb.decode", "ddbsync.decode"),
    "stream_version": ("ddbsync.versioning",),
    "CHUNK_ITEMS": ("ddbsync.backfill.files", "ddbsync.backfill_files"),
    "export_change": ("ddbsync.backfill.files", "ddbsync.backfill_files"),
    "index_items": ("ddbsync.backfill.files", "ddbsync.backfill_files"),
    "iter_export_items": ("ddbsync.dynamodb.export_format", "ddbsync.export_format"),
    "json_line": ("ddbsync_local.exporter", "ddbsync.local.exporter"),
    "archive_line": ("ddbsync.archive.lines",),
    "index_archive_object": ("ddbsync.rebuild.files",),
    "map_records": ("ddbsync.mapping",),
    "collapse": ("ddbsync.mapping",),
    "materialize_newest": ("ddbsync.mapping",),
    "make_writes": ("ddbsync.opensearch.bulk", "ddbsync.bulk"),
    "ion_line": ("ddbsync_local.exporter", "ddbsync.local.exporter"),
    # The filter_path of the indexer's bulk requests: a raw _bulk baseline must ask for the same.
    "BULK_FILTER": ("ddbsync.opensearch.transport:_BULK_FILTER", "ddbsync.transport:_BULK_FILTER"),
    # The archiver (issue #9): bench/archiver_rate.py.
    "Archiver": ("ddbsync.archive.archiver",),
    "ArchiveSettings": ("ddbsync.archive.settings",),
    "make_archive_handler": ("ddbsync.archive.handler:make_handler",),
    "indexer": ("ddbsync.indexer:",),  # the module itself
    "handler_module": ("ddbsync.handler:", "ddbsync.indexer:"),  # where _emit lives
}


def _find(places: tuple[str, ...], name: str) -> Any:
    for where in places:
        module_name, _, attr = where.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and module_name.startswith(e.name):
                continue  # not in this version: try the next place
            raise
        if where.endswith(":"):
            return module
        if hasattr(module, attr or name):
            return getattr(module, attr or name)
    raise AttributeError(f"{name} is in none of {places}")


class _Ddbsync:
    """ddbsync's names the benches use, each imported on first use from where this version keeps it."""

    def __getattr__(self, name: str) -> Any:
        try:
            places = _WHERE[name]
        except KeyError:
            raise AttributeError(name) from None
        value = _find(places, name)
        setattr(self, name, value)
        return value

    def document_json(self, record: dict[str, Any]) -> bytes:
        """The document source the indexer writes for one stream record (a tombstone for a REMOVE)."""
        return bytes(self.source_of(self.map_record(record, "pk", "sk")))

    def bulk_lines(self, records: Sequence[dict[str, Any]], alias: str) -> bytes:
        """The NDJSON the indexer sends for ``records`` (distinct keys) to ``alias``: action + source each."""
        out = []
        for record in records:
            change = self.map_record(record, "pk", "sk")
            out.append(self.Write(alias, change, self.source_of(change)).lines())
        return b"".join(out)


_DDBSYNC = _Ddbsync()


def ddb() -> Any:
    """Every ddbsync name the benches use (``ddb().map_record``...), imported lazily on first use.

    Import after the bench set the environment (Powertools reads it at import). Works with
    this checkout and with the C build of commit 60eeb22.
    """
    return _DDBSYNC


class Phases:
    """CPU time (``time.process_time``) of the indexer's phases, by wrapping its steps while active.

    Only steps called once per batch are wrapped (the CPU clock is a system call), so the
    wrappers cost next to nothing:

    * map: ``map_records`` (envelope, id, version; the C build also writes most documents'
      JSON here) + decoding the images of the changes that survive collapse
      (``materialize_newest``, measured as ``_send_changes`` minus ``make_writes`` and
      ``_send``; that remainder also holds the view check, a few list passes);
    * collapse: ``collapse``;
    * writes: ``make_writes`` (serialize the documents) + ``StreamIndexer._send`` (NDJSON
      lines, chunks, the HTTP client with gzip, SigV4 and tracing, parsing the answer,
      classifying each item); ``transport.bulk`` is the client part of it;
    * accounting: ``StreamIndexer._account`` (settle every record) + ``_emit`` (8 metrics)
      + ``BatchResult.response``;
    * process glue: the rest of ``StreamIndexer.process`` (deadline, latency, results);
    * shell: the handler's total minus ``process``, ``_emit`` and ``response``: Powertools'
      decorators (logger context, metrics flush, tracer subsegment) and the log line.
    """

    _MODULE_FUNCTIONS = ("map_records", "collapse", "make_writes", "_emit")
    _METHODS = (("StreamIndexer", "_send_changes"), ("StreamIndexer", "_send"), ("StreamIndexer", "_account"),
                ("StreamIndexer", "process"), ("BatchResult", "response"))  # fmt: skip

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        seconds = self.seconds
        clock = time.process_time

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + clock() - start

        return timed

    @contextmanager
    def active(self) -> Iterator[Phases]:
        ns = ddb()
        mod = ns.indexer
        saved: list[tuple[Any, str, Any]] = []
        for name in self._MODULE_FUNCTIONS:
            for owner in (mod, ns.handler_module):
                if hasattr(owner, name):
                    saved.append((owner, name, getattr(owner, name)))
                    break
        for cls_name, name in self._METHODS:
            # The class that defines it (BatchResult inherits ``response`` from BatchLedger).
            cls = next(c for c in getattr(mod, cls_name).__mro__ if name in c.__dict__)
            saved.append((cls, name, cls.__dict__[name]))
        transport_cls = ns.OpenSearchTransport
        saved.append((transport_cls, "bulk", transport_cls.__dict__["bulk"]))
        try:
            for owner, name, fn in saved:
                label = "transport.bulk" if owner is transport_cls else name
                setattr(owner, name, self._wrap(label, fn))
            yield self
        finally:
            for owner, name, fn in saved:
                setattr(owner, name, fn)

    def discount(self, seconds: float, *names: str) -> None:
        """Take ``seconds`` (time spent in a stub below them) off the phases ``names``."""
        for name in names:
            if name in self.seconds:
                self.seconds[name] -= seconds

    def split(self, records: int, total_s: float) -> dict[str, float]:
        """Microseconds per record of each phase; they add up to ``total_s`` (the handler's time)."""
        s = {k: v / records * 1e6 for k, v in self.seconds.items()}
        g = s.get
        decode = g("_send_changes", 0) - g("make_writes", 0) - g("_send", 0)
        inside = g("map_records", 0) + g("collapse", 0) + g("_send_changes", 0) + g("_account", 0)
        return {
            "map (map_records + decode)": g("map_records", 0) + decode,
            "  of which decode (materialize_newest)": decode,
            "collapse": g("collapse", 0),
            "writes (make_writes + _send)": g("make_writes", 0) + g("_send", 0),
            "  of which make_writes (serialize)": g("make_writes", 0),
            "  of which transport.bulk (client, HTTP, parse)": g("transport.bulk", 0),
            "accounting (_account + _emit + response)": g("_account", 0) + g("_emit", 0) + g("response", 0),
            "process glue (results; freeing the batch)": g("process", 0) - inside,
            "shell (Powertools decorators, log line)": total_s / records * 1e6
            - g("process", 0) - g("_emit", 0) - g("response", 0),
        }
