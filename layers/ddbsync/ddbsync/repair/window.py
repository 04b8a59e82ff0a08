"""The window a repair re-applies: ``--from``/``--to`` parsed, widened and checked.

``ExportFromTime`` is inclusive and ``ExportToTime`` exclusive (API reference,
IncrementalExportSpecification); the period is 15 minutes to 24 hours (AWS blog
"Introducing incremental export from Amazon DynamoDB to Amazon S3"); both must lie in the
PITR window and in the past. Times given with fractions of a second are *widened* to whole
seconds (T1 down, T2 up): re-applying a little more is harmless, and a whole-second T2 is
what makes the repair's versions safe (:mod:`ddbsync.repair.changes`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from dataclasses import dataclass

from ddbsync.errors import RepairError

__all__ = ["MAX_WINDOW_S", "MIN_WINDOW_S", "Window", "parse_time"]

MIN_WINDOW_S = 15 * 60
MAX_WINDOW_S = 24 * 60 * 60


def parse_time(text: str) -> float:
    """``--from``/``--to``: epoch seconds (``1767225600``) or ISO-8601 with a zone (``...Z``)."""
    value = text.strip()
    try:
        return float(value) if value.replace(".", "", 1).isdigit() else _iso(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch seconds nor an ISO-8601 time with a zone (e.g. 2026-01-31T14:00:00Z)"
        ) from e


def _iso(value: str) -> float:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in whole epoch seconds, 15 minutes to 24 hours, ending in the past."""

    start: int
    end: int

    @classmethod
    def of(cls, start: float, end: float, now: float | None = None) -> Window:
        """Widen ``[start, end)`` to whole seconds and check it; raise RepairError naming every problem."""
        lo, hi = math.floor(start), math.ceil(end)
        now = time.time() if now is None else now
        problems = []
        if hi <= lo:
            problems.append(f"--to ({_text(end)}) must be after --from ({_text(start)})")
        elif not MIN_WINDOW_S <= hi - lo <= MAX_WINDOW_S:
            problems.append(
                f"the window is {_span(hi - lo)}; an incremental export covers 15 minutes to 24 hours: "
                "split a longer window, widen a shorter one"
            )
        if hi > now:
            problems.append(f"--to ({_text(hi)}) is in the future; an export window must end in the past")
        if problems:
            raise RepairError("; ".join(problems))
        return cls(lo, hi)

    def __str__(self) -> str:
        return f"[{_text(self.start)}, {_text(self.end)})"


def _text(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h {seconds % 3600 // 60} min {seconds % 60} s"
