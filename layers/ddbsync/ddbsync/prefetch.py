"""Run an iterator ahead in a background thread, so reading overlaps sending.

The backfill reads, parses and decodes the next chunk of a data file while the
current chunk's ``_bulk`` request is in flight (the thread waiting on the socket
releases the GIL). In AWS the OpenSearch work happens on other machines, so the
file's time should tend to the larger of the two costs rather than their sum (not
measured in AWS; locally both share 2 cores).

Order and errors are kept: items arrive in order, and an exception raised by the
source (a corrupt gzip, a bad item) is raised to the consumer when it reaches that
point, after every item before it. At most ``depth`` items wait in the queue, so
memory stays bounded. Leaving the ``with`` block stops the thread and waits for
it, so the caller may close the underlying file right after.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_POLL_S = 0.05


@contextlib.contextmanager
def prefetched(source: Iterable[T], depth: int = 1) -> Iterator[Iterator[T]]:
    """``with prefetched(items) as it:`` iterate ``it`` while a thread pulls ``items`` ahead."""
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as e:  # handed to the consumer, raised there in order
            offer((False, e))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            is_item, value = slots.get()
            if is_item:
                yield value  # type: ignore[misc]
            elif value is None:
                return
            else:
                assert isinstance(value, BaseException)
                raise value

    thread = threading.Thread(target=produce, name="ddbsync-prefetch", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=_POLL_S)
        thread.join()
