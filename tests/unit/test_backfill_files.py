"""backfill.files: memory is bounded by bytes as well as items; order, lines and checkpoints kept.

An in-memory transport stands in for OpenSearch (the Transport protocol of
ddbsync.opensearch.transport); tests/integration/test_backfill_index.py covers the real one.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
import pytest

from ddbsync.backfill.files import BackfillFileError, index_items
from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.dynamodb.export_format import iter_export_items
from ddbsync.opensearch import sending
from ddbsync.opensearch.transport import BulkItemResult, StoredMeta, TransportError
from tests.support import base_env

T0 = 1_800_000_000.25
MiB = 2**20
ITEM_BYTES = 400 * 1024  # DynamoDB's largest item


def settings(bulk_max_bytes: int = 5 * MiB) -> Settings:
    env = base_env("mem", "https://sqs.eu-west-1.amazonaws.com/0/dlq", BULK_MAX_BYTES=str(bulk_max_bytes))
    return Settings.from_env(env, require_dlq=False)


class MemoryTransport:
    """Answers 201 to every action; keeps sizes and ids (optional), never the bodies."""

    def __init__(self, keep_ids: bool = False, fail_request: int | None = None) -> None:
        self.keep_ids = keep_ids
        self.fail_request = fail_request
        self.requests: list[tuple[int, int]] = []  # (body bytes, actions)
        self.ids: list[list[str]] = []
        self.line_sizes: list[list[int]] = []  # per request, the bytes of each write's two lines
        self.on_bulk: list[int] = []  # filled by tests that watch the reader

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        if self.fail_request is not None and len(self.requests) == self.fail_request:
            self.fail_request = None
            raise TransportError("connection reset")
        actions = body.count(b"\n") // 2
        self.requests.append((len(body), actions))
        if self.keep_ids:
            lines = body.split(b"\n")
            self.ids.append([orjson.loads(a)["index"]["_id"] for a in lines[0:-1:2]])
            pairs = zip(lines[0:-1:2], lines[1::2], strict=True)
            self.line_sizes.append([len(a) + len(b) + 2 for a, b in pairs])
        return [BulkItemResult(201)] * actions

    def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[StoredMeta]:
        raise AssertionError("a fresh index has no version conflicts")


def large_item(i: int, size: int = ITEM_BYTES) -> dict[str, Any]:
    """About ``size`` bytes as an export line: a long string (distinct per item) and a few maps."""
    events = [
        {"M": {"ts": {"N": str(1_750_000_000 + j)}, "by": {"S": f"user-{j}"}, "qty": {"N": str(j % 7)}}}
        for j in range(50)
    ]
    text = f"{i:07d} " * ((size - 3_000) // 8)
    return {"pk": {"S": f"k{i}"}, "sk": {"S": "1"}, "events": {"L": events}, "notes": {"S": text}}


def export_file(items: Sequence[Mapping[str, Any]]) -> bytes:
    """A gzip DYNAMODB_JSON data file of these items, one per line."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as gz:
        for item in items:
            gz.write(orjson.dumps({"Item": item}) + b"\n")
    return out.getvalue()


def run(
    items: Any, transport: MemoryTransport, bulk_max_bytes: int = 5 * MiB, start_line: int = 0, **kw: Any
) -> Any:
    return index_items(
        items,
        key="data/0001.json.gz",
        start_line=start_line,
        export_time=T0,
        target="t-next",
        settings=settings(bulk_max_bytes),
        transport=transport,
        **{"deadline": Deadline(lambda: 600_000, 0), **kw},
    )


def test_indexing_400_kb_items_stays_within_a_few_bulk_bodies_of_memory() -> None:
    # 60 items of 400 KB (24 MB of lines) read from a gzip file, 2 MiB bulk bodies. The
    # chunk is bounded by bytes, so what is alive at once is the chunk being sent (its
    # documents, the NDJSON pieces and the body), the chunk read ahead, and the item
    # being decoded. Counted in items only (500 a chunk) the whole file would be held,
    # parsed and serialized, at once: well over 200 MiB under tracemalloc.
    count, max_bytes = 60, 2 * MiB
    data = export_file([large_item(i) for i in range(count)])
    transport = MemoryTransport()
    tracemalloc.start()
    try:
        progress = run(iter_export_items(io.BytesIO(data), "DYNAMODB_JSON", "f"), transport, max_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert progress.done and progress.checkpoint == count and progress.indexed == count
    assert sum(actions for _, actions in transport.requests) == count
    bound = 6 * max_bytes + 16 * ITEM_BYTES
    print(f"peak {peak / MiB:.1f} MiB")
    assert peak < bound, f"peak {peak / MiB:.1f} MiB, bound {bound / MiB:.1f} MiB"


def test_a_chunk_is_one_full_bulk_request_and_order_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sizes from 1 KB to 700 KB: a chunk ends when the next item's bulk lines would not
    # fit in BULK_MAX_BYTES (not only at 500 items), so each chunk is sent as exactly one
    # request, filled as far as it goes; an item over the bound travels alone; every id
    # arrives once, in file order.
    sizes = [1_000, 300_000, 700_000, 5_000, 5_000, 450_000, 200_000, 1_000, 650_000] * 3
    items = [(line, large_item(line, size)) for line, size in enumerate(sizes, start=1)]
    transport = MemoryTransport(keep_ids=True)
    requests_per_chunk: list[int] = []
    real_send = sending.send  # what ddbsync.backfill.files imports as send

    def send(*args: Any, **kwargs: Any) -> Any:
        report = real_send(*args, **kwargs)
        requests_per_chunk.append(report.requests)
        return report

    monkeypatch.setattr("ddbsync.backfill.files.send", send)
    max_bytes = 640 * 1024  # the smallest allowed is 64 KiB
    progress = run(iter(items), transport, max_bytes)
    assert progress.done and progress.checkpoint == len(items) and progress.indexed == len(items)
    assert [i for ids in transport.ids for i in ids] == [f"k{line}|1" for line, _ in items]
    assert requests_per_chunk == [1] * len(transport.requests)
    for this, after in zip(transport.line_sizes, transport.line_sizes[1:], strict=False):
        assert sum(this) <= max_bytes or len(this) == 1, this
        assert sum(this) + after[0] > max_bytes, (this, after[0])  # the next one did not fit


def test_many_small_items_still_go_500_to_a_chunk() -> None:
    items = [(line, large_item(line, 4_000)) for line in range(1, 1_201)]
    transport = MemoryTransport()
    progress = run(iter(items), transport)
    assert progress.done and progress.checkpoint == 1_200
    assert [actions for _, actions in transport.requests] == [500, 500, 200]


def test_reading_runs_at_most_one_chunk_ahead_of_sending() -> None:
    # Each bulk request notes how many lines had been read but not yet sent by then. With
    # 1 MiB chunks of two 400 KB items that is at most the chunk read ahead and the item
    # that did not fit in it: never a whole 500-item chunk (here, the whole file).
    pulled = 0

    def items() -> Iterator[tuple[int, dict[str, Any]]]:
        nonlocal pulled
        for line in range(1, 41):
            pulled = line
            yield line, large_item(line)

    transport = MemoryTransport()
    sent = 0
    ahead = []
    original = transport.bulk

    def bulk(body: bytes, timeout_s: float) -> list[BulkItemResult]:
        nonlocal sent
        results = original(body, timeout_s)
        sent += len(results)
        ahead.append(pulled - sent)
        return results

    transport.bulk = bulk  # type: ignore[method-assign]
    progress = run(items(), transport, MiB)
    assert progress.done and progress.checkpoint == 40
    assert all(size <= MiB for size, _ in transport.requests)
    assert max(ahead) <= 2 + 1, ahead


def test_an_unsent_chunk_leaves_the_checkpoint_after_the_last_acknowledged_line() -> None:
    items = [(line, large_item(line, 300_000)) for line in range(1, 11)]
    transport = MemoryTransport(keep_ids=True, fail_request=2)
    # The third request fails, and then the invocation's time is up: no retry.
    deadline = Deadline(lambda: 0 if transport.fail_request is None else 600_000, 0)
    first = run(iter(items), transport, 640 * 1024, deadline=deadline)
    assert not first.done
    acknowledged = [i for ids in transport.ids for i in ids]
    assert first.checkpoint == len(acknowledged) == first.indexed
    assert acknowledged == [f"k{line}|1" for line in range(1, first.checkpoint + 1)]
    second = run(iter(items[first.checkpoint :]), transport, 640 * 1024, start_line=first.checkpoint)
    assert second.done and second.checkpoint == 10
    assert [i for ids in transport.ids for i in ids] == [f"k{line}|1" for line in range(1, 11)]


def test_a_bad_item_is_reported_with_its_file_and_line() -> None:
    items = [(line, large_item(line, 300_000)) for line in range(1, 8)]
    items[4] = (5, {"pk": {"S": "k5"}, "sk": {"S": "1"}, "n": {"N": "not a number"}})
    transport = MemoryTransport(keep_ids=True)
    with pytest.raises(BackfillFileError, match=r"^data/0001\.json\.gz, line 5: "):
        run(iter(items), transport, 640 * 1024)
    # Every chunk before the one holding line 5 was sent; nothing after it.
    sent = [i for ids in transport.ids for i in ids]
    assert sent == [f"k{line}|1" for line in range(1, len(sent) + 1)] and len(sent) < 5
