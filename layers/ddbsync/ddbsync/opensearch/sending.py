"""Send writes with the settings' bulk limits and retries, resolving conflicts exactly.

The one call every writer uses (stream indexer, replay, backfill, repair), so they all get
the same chunking, backoff, same-second tie-break (docs/versioning.md), the same treatment
of a rejected write whose document the index already supersedes (stale, not poison) and,
given the targets' :class:`~ddbsync.opensearch.floors.View`, the same snapshot-floor rule
(ddbsync.opensearch.floors).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.errors import IndexAdminError
from ddbsync.opensearch.bulk import Outcome, SendReport, Write, WriteResult, send_writes
from ddbsync.opensearch.conflicts import resolve_conflicts, supersede_rejected
from ddbsync.opensearch.floors import View, check_after_writing, refuse_below_floors
from ddbsync.opensearch.transport import Transport

__all__ = ["send"]


def send(
    settings: Settings,
    writes: list[Write],
    transport: Transport,
    deadline: Deadline,
    *,
    view: View | None = None,
    reread: Callable[[], View] | None = None,
    always_reread: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """:func:`ddbsync.opensearch.bulk.send_writes` with ``settings``' limits and the exact conflict resolver.

    With ``view`` (the targets and their floors, as read before the writes were made),
    index writes below a target's floor are refused, not sent. With ``reread`` too, the
    targets are read again after writing whenever a write was refused, a backfill is
    running, or ``always_reread`` (a writer whose requests may outlast a backfill's
    wait, such as repair), and :func:`ddbsync.opensearch.floors.check_after_writing` runs on the
    new view.
    """
    to_send, refused = (writes, []) if view is None else refuse_below_floors(writes, view)
    report = send_writes(
        to_send,
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
    if view is None:
        return report
    if reread is not None and (refused or view.next is not None or always_reread):
        try:
            after = reread()
        except IndexAdminError as e:
            landed = [w for w in to_send if view.next is not None and _applied_index_write(w)]
            _unsent(refused + landed, e)
        else:
            check_after_writing(to_send, refused, view, after, transport, deadline)
    report.writes = writes
    report.counts = {}
    for write in writes:
        assert write.result is not None  # send_writes and the floor rule give every write one
        report.counts[write.result.outcome] = report.counts.get(write.result.outcome, 0) + 1
    return report


def _applied_index_write(write: Write) -> bool:
    return write.change.op == "index" and write.result is not None and write.result.outcome is Outcome.APPLIED


def _unsent(writes: list[Write], error: IndexAdminError) -> None:
    """Writes whose floor check could not be made: retried (and checked) later."""
    for write in writes:
        write.result = WriteResult(Outcome.UNSENT, error.status, "floor_check_failed", str(error))
