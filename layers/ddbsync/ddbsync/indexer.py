"""The stream indexer: one batch of DynamoDB stream records in, batch item failures out.

Flow: map records (poison ones apart) -> collapse per key -> bulk send with
retries and exact conflict resolution -> poison records to the record DLQ ->
whatever is still unsent becomes ``batchItemFailures`` (ReportBatchItemFailures).
A record counts as handled only once it is indexed, known stale, skipped by
configuration, or safely in the DLQ.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ddbsync.accounting import BatchLedger, Disposition, dead_letter, settle_writes
from ddbsync.config import Settings
from ddbsync.deadline import Deadline, backoff_s
from ddbsync.dlq import DeadLetter, DeadLetterSink, SqsDeadLetters
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.errors import IndexAdminError
from ddbsync.gcpause import paused_gc
from ddbsync.mapping import (
    Change,
    Poison,
    collapse,
    map_records,
    materialize_newest,
    sequence_number_of,
)
from ddbsync.observability import logger
from ddbsync.opensearch.bulk import Outcome, SendReport, Write, WriteResult, make_writes
from ddbsync.opensearch.conflicts import SUPERSEDED
from ddbsync.opensearch.floors import Target, View
from ddbsync.opensearch.indices import ensure_index, next_alias_name, read_view
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import Transport
from ddbsync.versioning import floor_version

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from opensearchpy import OpenSearch

__all__ = [
    "BatchResult",
    "LambdaContextLike",
    "StreamIndexer",
]


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(slots=True)
class BatchResult(BatchLedger):
    """What one batch did: one :class:`Disposition` per record, and the documents written.

    ``indexed``/``deleted`` count documents (a document may stand for several folded
    records); the other counts are records. ``failed_sequence_numbers`` become
    batchItemFailures.
    """

    indexed: int = 0
    deleted: int = 0
    superseded: int = 0  # stale records whose write OpenSearch rejected, but a newer change is indexed
    max_latency_ms: float | None = None

    @property
    def stale(self) -> int:
        return self.count(Disposition.STALE)

    @property
    def skipped(self) -> int:
        return self.count(Disposition.SKIPPED)

    @property
    def poison(self) -> int:
        """Records now in the record DLQ."""
        return self.count(Disposition.DEAD_LETTERED)


class StreamIndexer:
    """Holds the clients; :meth:`process` handles one batch. Reused across invocations."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        sqs: SQSClient,
        client: OpenSearch | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        dead_letters: DeadLetterSink | None = None,
        s3: S3Client | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.sqs = sqs
        self.dead_letters = dead_letters or SqsDeadLetters.configured(
            sqs, settings.record_dlq_url, settings.dead_letter_bucket, settings.dead_letter_kms_key_id,
            s3=s3, region=settings.region,
        )  # fmt: skip
        self.client = client
        self.sleep = sleep
        self.clock = clock
        self._index_ready = not settings.manage_index or client is None
        self._next_alias = next_alias_name(settings.index_alias)
        self._view = View(Target(settings.index_alias))
        self._view_read_at = float("-inf")  # wall clock: a frozen container must not trust an old view

    def targets(self) -> list[str]:
        """The live alias, plus the backfill's next alias while it exists (docs/backfill.md)."""
        return self._view_for([]).aliases

    def _view_for(self, changes: Sequence[Change], timeout_s: float | None = None) -> View:
        """Where to write ``changes``, and the floors there (docs/versioning.md, "Snapshot floors").

        Read again once older than NEXT_ALIAS_CHECK_SECONDS, and before sending an index
        write below a floor already known: the alias may have been swapped to that index
        since the last read. Raises IndexAdminError when it cannot be read.
        """
        if self.client is None:
            return self._view
        floor = self._view.highest_floor()
        lowest = None if floor is None else floor_version(floor)
        late = lowest is not None and any(c.op == "index" and c.version < lowest for c in changes)
        if late or self.clock() - self._view_read_at >= self.settings.next_alias_check_seconds:
            return self._read_view(timeout_s)
        return self._view

    def _read_view(self, timeout_s: float | None = None) -> View:
        assert self.client is not None
        started = self.clock()
        self._view = read_view(self.client, self.settings.index_alias, timeout_s)
        self._view_read_at = started
        return self._view

    def _drop_writes_to_a_finished_backfill(self, report: SendReport) -> None:
        """A backfill that finished removes the next alias: writes to it are moot, not failures."""
        missing = [
            w for w in report.writes
            if w.target == self._next_alias and w.result is not None and w.result.status == 404
        ]
        if not missing or self.client is None:
            return
        try:
            gone = self._read_view().next is None
        except IndexAdminError as e:  # keep them unsent: retried later
            logger.warning("cannot check the backfill alias", extra={"reason": str(e)})
            return
        if gone:
            ids = {id(w) for w in missing}
            report.writes = [w for w in report.writes if id(w) not in ids]

    def _send(self, writes: list[Write], deadline: Deadline, view: View) -> SendReport:
        reread = self._read_view if self.client is not None else None
        return send(
            self.settings, writes, self.transport, deadline, view=view, reread=reread, sleep=self.sleep
        )

    def _send_changes(self, changes: list[Change], poison: list[Poison], deadline: Deadline) -> SendReport:
        """Decode the surviving changes (poison images go to ``poison``) and send them."""
        ready = [c if c.op != "index" else materialize_newest(c, poison) for c in changes]
        alive = [c for c in ready if c is not None]
        view, retries = self._view_within(alive, deadline)
        if isinstance(view, IndexAdminError):
            logger.warning("cannot read where the aliases point; the batch will be retried",
                           extra={"reason": str(view)})  # fmt: skip
            writes = make_writes(alive, [self.settings.index_alias])
            for write in writes:
                write.result = WriteResult(Outcome.UNSENT, view.status, "targets_unknown", str(view))
            return SendReport(writes, retries=retries, stopped_early=True)
        report = self._send(make_writes(alive, view.aliases), deadline, view)
        report.retries += retries
        self._drop_writes_to_a_finished_backfill(report)
        return report

    def _view_within(
        self, changes: Sequence[Change], deadline: Deadline
    ) -> tuple[View | IndexAdminError, int]:
        """:meth:`_view_for` retried with the bulk's backoff until the deadline: (view or error, retries).

        Writing with an unknown view could miss the next alias or a floor, so nothing is
        written without one (docs/versioning.md, "Snapshot floors").
        """
        s = self.settings
        attempt = 0
        while True:
            try:
                return self._view_for(changes, deadline.request_timeout_s()), attempt
            except IndexAdminError as e:
                delay = backoff_s(attempt, s.retry_base_ms, s.retry_max_ms)
                if deadline.left_s() <= delay:
                    return e, attempt
                self.sleep(delay)
                attempt += 1

    @paused_gc()  # decoding a batch makes no cycles; see ddbsync.gcpause
    def process(self, records: Sequence[RawRecord], remaining_ms: Callable[[], int]) -> BatchResult:
        result = BatchResult(received=len(records), dispositions=[None] * len(records))
        if not records:
            return result
        if not self._index_ready and self.client is not None:
            try:
                ensure_index(self.client, self.settings.index_alias, self.settings.index_template)
                self._index_ready = True
            except IndexAdminError as e:
                logger.error("index not ready; the whole batch will be retried", extra={"reason": str(e)})
                result.settle(range(len(records)), Disposition.FAILED)
                result.failed_sequence_numbers = [sequence_number_of(r) for r in records]
                return result

        s = self.settings
        # Ids and versions first; images are decoded only for the change that survives
        # collapse (materialize_newest).
        changes, poison = map_records(records, s.partition_key, s.sort_key, s.ttl_removes, decode=False)
        collapsed = collapse(changes)
        for change in collapsed:
            if change.op == "skip":
                result.settle(change.members, Disposition.SKIPPED)
        deadline = Deadline(remaining_ms, s.timeout_margin_ms)
        report = self._send_changes(collapsed, poison, deadline)
        result.retries = report.retries
        self._account(result, report, poison, records)
        created = [c.created_seconds for c in changes]
        if created:
            result.max_latency_ms = max(0.0, (self.clock() - min(created)) * 1000)
        return result

    def _account(
        self, result: BatchResult, report: SendReport, poison: list[Poison], records: Sequence[RawRecord]
    ) -> None:
        """Settle every record: write outcomes, dead letters, and what stays unhandled."""
        s = self.settings
        letters = [
            DeadLetter(p.record, p.reason, p.error_type, p.sequence_number, p.doc_id)
            for p in poison
        ]
        letter_members = [p.members for p in poison]
        for done in settle_writes(result, report.writes):
            change = done.change
            if done.outcome is Outcome.POISON:
                letters.append(
                    DeadLetter(
                        change.record, done.reason or "rejected by OpenSearch", done.error_type or "rejected",
                        sequence_number_of(change.record), change.doc_id, done.status, s.index_alias,
                    )
                )
                letter_members.append(change.members)
            elif done.outcome is Outcome.STALE and done.error_type == SUPERSEDED:
                result.superseded += len(change.members)
            elif done.outcome is Outcome.APPLIED:
                if change.op == "tombstone":
                    result.deleted += 1
                else:
                    result.indexed += 1
        dead_letter(result, self.dead_letters, letters, letter_members, "poison record")
        result.finish(records)
