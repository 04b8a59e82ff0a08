"""paused_gc: the collector stays off while any pause is open, in any thread, and comes back after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from ddbsync.gcpause import paused_gc


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_overlapping_pauses_in_two_threads_keep_the_collector_off_until_the_last(collector_on: None) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with paused_gc():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with paused_gc():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # the first pause has ended; this one has not

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_a_pause_leaves_a_collector_that_was_off_off(collector_on: None) -> None:
    gc.disable()
    with paused_gc(), paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
