"""Send writes with the settings' bulk limits and retries, resolving conflicts exactly.

The one call every writer uses (stream indexer, backfill, repair), so they all get the
same chunking, backoff and same-second tie-break (docs/versioning.md), and a rejected write
whose document the index already supersedes counts as stale, not poison.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ddbsync.bulk import Deadline, SendReport, Write, send_writes
from ddbsync.config import Settings
from ddbsync.conflicts import resolve_conflicts, supersede_rejected
from ddbsync.transport import Transport

__all__ = ["send"]


def send(
    settings: Settings,
    writes: list[Write],
    transport: Transport,
    deadline: Deadline,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """:func:`ddbsync.bulk.send_writes` with ``settings``' limits and the exact conflict resolver."""
    return send_writes(
        writes,
        transport,
        deadline,
        max_bytes=settings.bulk_max_bytes,
        max_actions=settings.bulk_max_actions,
        retry_base_ms=settings.retry_base_ms,
        retry_max_ms=settings.retry_max_ms,
        resolve_conflicts=resolve_conflicts,
        check_rejected=supersede_rejected,
        max_document_bytes=settings.max_document_bytes,
        sleep=sleep,
    )
