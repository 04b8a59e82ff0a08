"""prefetch: an iterator pulled ahead in a thread keeps order, errors and bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ddbsync.prefetch import prefetched


def test_items_arrive_in_order_and_the_thread_ends() -> None:
    with prefetched(range(1000)) as it:
        assert list(it) == list(range(1000))
    assert not [t for t in threading.enumerate() if t.name == "ddbsync-prefetch"]


def test_an_error_is_raised_after_every_item_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is corrupt")

    got = []
    with prefetched(source()) as it, pytest.raises(ValueError, match="line 3 is corrupt"):
        for x in it:
            got.append(x)
    assert got == [1, 2]


def test_leaving_early_stops_the_reader_and_closes_the_source() -> None:
    pulled: list[int] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(10_000):
                pulled.append(i)
                yield i
        finally:
            closed.set()

    with prefetched(source(), depth=1) as it:
        assert next(it) == 0
        assert next(it) == 1
    # Read ahead at most the queue's depth plus the one item in hand, and then stopped.
    assert len(pulled) <= 4
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "ddbsync-prefetch"]


def test_an_empty_source_ends_at_once() -> None:
    nothing: list[int] = []
    with prefetched(nothing) as it:
        assert list(it) == []


@pytest.mark.parametrize("depth", [1, 2])
def test_the_thread_pulls_only_when_the_queue_has_room(depth: int) -> None:
    # Besides the item in the consumer's hand, at most ``depth`` items exist: a thread
    # that pulled the next item and then waited for room would hold one more (for the
    # backfill, one more chunk of up to BULK_MAX_BYTES).
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            pulled.append(i)
            yield i

    with prefetched(source(), depth=depth) as it:
        for expected in range(4):
            assert next(it) == expected
            # It does read ahead that far ...
            give_up = time.monotonic() + 10
            while len(pulled) < expected + 1 + depth and time.monotonic() < give_up:
                time.sleep(0.005)
            time.sleep(0.1)  # ... and, given every chance, no further.
            assert len(pulled) == expected + 1 + depth, (expected, pulled)
