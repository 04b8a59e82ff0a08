"""prefetch: an iterator pulled ahead in a thread keeps order, errors and bounds."""

from __future__ import annotations

import threading
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
    with prefetched([]) as it:
        assert list(it) == []
