"""How old a tombstone must be before it may go: the purge window and its lower bound.

A tombstone is needed only while a change it must beat can still arrive. Changes reach
the index through two doors that stay open for a bounded time:

* the stream: Lambda retries and ``ddbsync replay`` of an on-failure pointer read records
  the stream still holds, and it holds them 24 hours (:data:`STREAM_RETENTION_S`);
* the record DLQ: a letter (a whole stream record) waits there at most the queue's
  ``MessageRetentionPeriod``, which SQS caps at 14 days (:data:`SQS_MAX_RETENTION_S`),
  after having been read from the stream within its 24 hours.

So the window must be at least 24 h plus the DLQ's retention: read from the queue when
``RECORD_DLQ_URL`` is set and readable, else the SQS maximum (always safe to assume).
A shorter window is refused unless forced. Anything older that still comes (a repair of an
old window, a letter moved to another queue, a forced window) meets the purge floor
instead (docs/versioning.md, "Purging tombstones").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import aws_error
from ddbsync.errors import PurgeWindowError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "SQS_MAX_RETENTION_S",
    "STREAM_RETENTION_S",
    "ReplayWindow",
    "check_window",
    "format_duration",
    "parse_duration",
    "replay_window",
]

STREAM_RETENTION_S = 24 * 3600
SQS_MAX_RETENTION_S = 14 * 86_400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"(\d{1,7})([smhdw])")


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``36h``, ``7d`` or ``2w`` (also ``s`` and ``m``)."""
    found = _DURATION.fullmatch(text.strip().lower())
    seconds = int(found.group(1)) * _UNITS[found.group(2)] if found else 0
    if seconds <= 0:
        raise PurgeWindowError(f"a window is a positive whole number and a unit (s m h d w), such as "
                               f"36h, 7d or 2w; got {text!r}")  # fmt: skip
    return seconds


def format_duration(seconds: int) -> str:
    """``1296000`` -> ``15d``, ``129600`` -> ``1d 12h``: the largest units, no seconds lost."""
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """How long after a change it can still reach the index, and where that figure came from."""

    dlq_retention_s: int
    source: str

    @property
    def minimum_s(self) -> int:
        """The shortest safe purge window: the stream's 24 h plus the DLQ's retention."""
        return STREAM_RETENTION_S + self.dlq_retention_s


def replay_window(sqs: SQSClient | None, dlq_url: str | None) -> ReplayWindow:
    """The replay window, from the record DLQ's ``MessageRetentionPeriod`` when it can be read.

    With no queue URL, or a queue that cannot be read, the SQS maximum (14 days) is
    assumed: no queue keeps a message longer.
    """
    if not dlq_url or sqs is None:
        return ReplayWindow(SQS_MAX_RETENTION_S, "no RECORD_DLQ_URL: assumed the SQS maximum, 14d")
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["MessageRetentionPeriod"])
        retention = int(attributes["Attributes"]["MessageRetentionPeriod"])
    except (ClientError, BotoCoreError, KeyError, ValueError) as e:
        reason = aws_error(e) if isinstance(e, ClientError | BotoCoreError) else type(e).__name__
        assumed = f"record DLQ unreadable ({reason}): assumed the SQS maximum, 14d"
        return ReplayWindow(SQS_MAX_RETENTION_S, assumed)
    retention = min(max(retention, 0), SQS_MAX_RETENTION_S)
    return ReplayWindow(retention, f"record DLQ MessageRetentionPeriod {format_duration(retention)}")


def check_window(window_s: int, replay: ReplayWindow, *, force: bool) -> str | None:
    """Refuse a window shorter than the replay window; with ``force``, return the warning instead."""
    if window_s >= replay.minimum_s:
        return None
    problem = (
        f"a purge window of {format_duration(window_s)} is shorter than the replay window "
        f"{format_duration(replay.minimum_s)} (stream 24h + {replay.source}): a late change could "
        f"meet no tombstone"
    )
    if not force:
        raise PurgeWindowError(
            f"{problem}. Use --older-than {_as_option(replay.minimum_s)} or more, "
            f"or --force if no late change can come (old changes are then refused by the purge floor)"
        )
    return f"forced: {problem}; changes older than the window will be refused as stale"


def _as_option(seconds: int) -> str:
    """A duration ``parse_duration`` reads back, at least ``seconds``: whole days or hours."""
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}d"
    return f"{-(-seconds // 3600)}h"
