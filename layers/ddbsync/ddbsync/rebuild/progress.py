"""The rebuild's progress on stderr: a one-line bar on a terminal, plain lines otherwise.

Objects done of the total, lines accounted and the rate since the start. On a terminal
the bar is redrawn in place (``\\r``) at most every :data:`BAR_EVERY_S`; in a log (not a
TTY) a plain line is written at most every :data:`PLAIN_EVERY_S`, and once at the end.
Worker threads call :meth:`Progress.add`; drawing happens under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["BAR_EVERY_S", "PLAIN_EVERY_S", "Progress"]

BAR_EVERY_S = 0.5
PLAIN_EVERY_S = 10.0
_WIDTH = 24


class Progress:
    def __init__(
        self, total: int, out: TextIO, *, clock: Callable[[], float] = time.monotonic, tty: bool | None = None
    ) -> None:
        self.total = total
        self.out = out
        self.clock = clock
        self.tty = out.isatty() if tty is None else tty
        self.started = clock()
        self.objects = 0
        self.lines = 0
        self._drawn_at = float("-inf")
        self._lock = threading.Lock()

    def add(self, *, lines: int = 0, objects: int = 0) -> None:
        with self._lock:
            self.lines += lines
            self.objects += objects
            now = self.clock()
            if now - self._drawn_at >= (BAR_EVERY_S if self.tty else PLAIN_EVERY_S):
                self._draw(now)

    def finish(self) -> None:
        with self._lock:
            self._draw(self.clock())
            if self.tty:
                self.out.write("\n")
                self.out.flush()

    def line(self, now: float) -> str:
        seconds = max(now - self.started, 1e-9)
        rate = self.lines / seconds
        text = f"{self.objects}/{self.total} objects, {self.lines:,} lines, {rate:,.0f} lines/s"
        if not self.tty:
            return text
        filled = _WIDTH * self.objects // max(self.total, 1)
        return f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {text}"

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        if self.tty:
            self.out.write("\r" + self.line(now) + "\x1b[K")
        else:
            self.out.write("   " + self.line(now) + "\n")
        self.out.flush()
