"""Run an iterator ahead in a background thread, so reading overlaps sending.

The backfill reads, parses and decodes the next chunk of a data file while the
current chunk's ``_bulk`` request is in flight (the thread waiting on the socket
releases the GIL). In AWS the OpenSearch work happens on other machines, so the
file's time should tend to the larger of the two costs rather than their sum (not
measured in AWS; locally both share 2 cores).

Order and errors are kept: items arrive in order, and an exception raised by the
source (a corrupt gzip, a bad item) is raised to the consumer when it reaches that
point, after every item before it. Memory stays bounded: the thread pulls the next
item only when the queue has room, so besides the item the consumer holds at most
``depth`` items exist, queued or being made (a thread that pulled first and then
waited for room would hold one more). The backfill's items are chunks bounded in
bytes (:mod:`ddbsync.backfill.files`), so this bounds the bytes read ahead too.
Leaving the ``with`` block stops the thread and waits for it, so the caller may close
the underlying file right after.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_POLL_S = 0.05
_END = object()


@contextlib.contextmanager
def prefetched(source: Iterable[T], depth: int = 1) -> Iterator[Iterator[T]]:
    """``with prefetched(items) as it:`` iterate ``it`` while a thread pulls ``items`` ahead."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    ahead = _Ahead(source, depth)
    thread = threading.Thread(target=ahead.produce, name="ddbsync-prefetch", daemon=True)
    thread.start()
    try:
        yield ahead.consume()
    finally:
        ahead.stop.set()
        thread.join()


class _Ahead(Generic[T]):
    """The queue between the thread that pulls ``source`` (produce) and the consumer (consume)."""

    def __init__(self, source: Iterable[T], depth: int) -> None:
        self.source = source
        self.slots: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()
        # One permit per item that may exist beyond the consumer's: taken before pulling
        # from the source, given back when the consumer takes the item off the queue.
        self.room = threading.Semaphore(depth)
        self.stop = threading.Event()

    def _wait_for_room(self) -> bool:
        while not self.stop.is_set():
            if self.room.acquire(timeout=_POLL_S):
                return True
        return False

    def produce(self) -> None:
        iterator = iter(self.source)
        try:
            while self._wait_for_room():
                item = next(iterator, _END)
                if item is _END:
                    self.slots.put((False, None))
                    return
                self.slots.put((True, item))
                del item  # only the queue holds it now
        except BaseException as e:  # handed to the consumer, raised there in order
            self.slots.put((False, e))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def consume(self) -> Iterator[T]:
        while True:
            is_item, value = self.slots.get()
            self.room.release()
            if is_item:
                yield value  # type: ignore[misc]
                del value  # the consumer has it: keep no reference while waiting for the next
            elif value is None:
                return
            else:
                assert isinstance(value, BaseException)
                raise value
