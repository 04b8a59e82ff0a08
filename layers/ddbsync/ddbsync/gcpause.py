"""Pause Python's cyclic garbage collector around bulk decoding.

Decoding a batch allocates tens of thousands of small dicts and lists. Each
allocation burst triggers collections, and every full collection walks every live
container: the whole Lambda event, the parsed export lines, the decoded documents.
None of it has reference cycles (JSON trees), so reference counting frees it all
anyway and the collector's work is pure overhead. Measured with a transport that
answers at once (bench/README.md): the stream handler's CPU per record at batch
1,000 went from about 34 to 19 to 25 us, and the backfill's reading and parsing
from about 40 to about 13 us per item.

The collector is switched back on afterwards if it was on; whatever cyclic garbage
the paused stretch made (exceptions with tracebacks, say) is collected then.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["paused_gc"]

_lock = threading.Lock()
_holders = 0  # pauses open now, in any thread
_restore = False  # whether the collector was on when the first of them began


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Context manager and decorator: the collector is off inside, restored after.

    Pauses may nest and overlap across threads (a rebuild indexes several objects at once):
    the collector goes off with the first and comes back, if it was on, with the last, so
    one object finishing does not switch it on under the others.
    """
    global _holders, _restore
    with _lock:
        if _holders == 0:
            _restore = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _restore:
                gc.enable()
