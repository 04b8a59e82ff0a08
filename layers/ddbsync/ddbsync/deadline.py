"""Time budgets and backoff: how every writer that retries (OpenSearch, Firehose) waits.

:class:`Deadline` is an invocation's time left, less a safety margin before the Lambda
timeout (``TIMEOUT_MARGIN_MS``); :func:`backoff_s` is the wait before a retry, exponential
with full jitter, capped (``RETRY_BASE_MS``, ``RETRY_MAX_MS``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["Deadline", "backoff_s"]


class Deadline:
    """The invocation's time budget, keeping a safety margin before the Lambda timeout."""

    def __init__(self, remaining_ms: Callable[[], int], margin_ms: int) -> None:
        self._remaining_ms = remaining_ms
        self.margin_ms = margin_ms

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        """A budget of ``seconds`` from now, no margin: a command's step, not a Lambda invocation."""
        end = time.monotonic() + seconds
        return cls(lambda: int((end - time.monotonic()) * 1000), 0)

    def left_s(self) -> float:
        return max(0.0, (self._remaining_ms() - self.margin_ms) / 1000)

    def expired(self) -> bool:
        return self.left_s() <= 0

    def request_timeout_s(self, cap_s: float = 30.0) -> float:
        return max(0.5, min(cap_s, self.left_s()))


def backoff_s(attempt: int, base_ms: int, cap_ms: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (from 0): exponential, full jitter."""
    # "Full jitter": uniform in [0, min(cap, base * 2^attempt)].
    return float(rng() * min(cap_ms, base_ms * (2**attempt)) / 1000)
