"""Send document writes with ``_bulk``: chunk, send, classify, retry, resolve conflicts.

A pipeline of small steps (expand each write to its NDJSON lines, chunk by count
*and* bytes, send, classify each item). Only the failed items are retried, with
exponential backoff and full jitter, never past the deadline. Every write ends
with exactly one :class:`Outcome`.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson

from ddbsync.deadline import Deadline, backoff_s
from ddbsync.dynamodb.decode import dumps_bytes
from ddbsync.errors import DdbsyncError
from ddbsync.mapping import Change
from ddbsync.opensearch.transport import BulkItemResult, Transport, TransportError

__all__ = [
    "Outcome",
    "SendReport",
    "Write",
    "WriteResult",
    "classify_status",
    "send_writes",
    "source_of",
]

# Statuses that say the *document* is bad: retrying cannot help, so it goes to the DLQ.
_POISON_STATUSES = frozenset({400, 413, 422})
# The target index or alias does not exist: not the record's fault, and retrying within
# this invocation will not create it. Left unsent at once (the indexer decides).
_NO_RETRY_STATUSES = frozenset({404})
# A 400 that is not the document's fault: two writers brought a new field at once with two
# types (``5`` and ``4.5``) and OpenSearch refused the second dynamic mapping update. Once
# the mapping has settled the same write is taken (a value of the other type is coerced),
# so such a write is sent once more before it counts as poison.
_MAPPING_RACE = "cannot be changed from type"


_ACTION = (
    b'{"index":{"_index":%b,"_id":%b,"version":%d,"version_type":"external","require_alias":true}}'
    b"\n%b\n"
)


# JSON of the target aliases seen so far (a handful per process).
_QUOTED: dict[str, bytes] = {}


class Outcome(enum.Enum):
    APPLIED = "applied"  # written (index or tombstone)
    STALE = "stale"  # OpenSearch already holds a newer or equal change: counted, not failed
    POISON = "poison"  # rejected for good (mapping conflict, bad or oversized document)
    UNSENT = "unsent"  # still retryable when we stopped: reported as a batch item failure

    # Members are singletons compared by identity: hash them by identity too, in C, rather
    # than with Enum's Python-level __hash__ (outcomes are counted per write).
    __hash__ = object.__hash__


def classify_status(status: int) -> Outcome | None:
    """Outcome for a final item status; None means retry (429, 5xx, auth, missing index...)."""
    if status in (200, 201):
        return Outcome.APPLIED
    if status in _POISON_STATUSES:
        return Outcome.POISON
    return None


@dataclass(slots=True)
class Write:
    """One change to one target alias, with its serialized source."""

    target: str
    change: Change
    source: bytes
    result: WriteResult | None = None

    def lines(self) -> bytes:
        # require_alias: writes always go through an alias; if it is gone (a finished
        # backfill's next alias), a domain with auto_create_index must not create an index.
        quoted = _QUOTED.get(self.target)
        if quoted is None:
            quoted = _QUOTED.setdefault(self.target, orjson.dumps(self.target))
        return _ACTION % (
            quoted,
            orjson.dumps(self.change.doc_id),
            self.change.version,
            self.source,
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    status: int | None = None
    error_type: str | None = None
    reason: str | None = None


# The usual answers, shared (frozen, so safe to share): one less object per write.
_APPLIED_RESULTS = {status: WriteResult(Outcome.APPLIED, status) for status in (200, 201)}


@dataclass(slots=True)
class SendReport:
    writes: list[Write]
    retries: int = 0
    requests: int = 0
    stopped_early: bool = False
    counts: dict[Outcome, int] = field(default_factory=dict)


def source_of(change: Change) -> bytes:
    """The document's JSON."""
    return dumps_bytes(change.body)


def make_writes(changes: Sequence[Change], targets: Sequence[str]) -> list[Write]:
    """Expand changes to one write per target alias (the source is serialized once).

    A document the serializer refuses (a lone surrogate in a string or an attribute name,
    maps nested deeper than orjson's 255 levels) makes that change poison: its writes get
    a POISON result here and are never sent; the other changes are not affected.
    """
    writes: list[Write] = []
    for change in changes:
        if change.op == "skip":
            continue
        result = None
        try:
            source = source_of(change)
        except DdbsyncError as e:  # dumps_bytes: a DecodeError naming what orjson refused
            source = b""
            reason = f"document cannot be serialized: {e.__cause__ or e}"
            result = WriteResult(Outcome.POISON, None, "unserializable_document", reason)
        if len(targets) == 1:  # the usual case: no backfill running
            writes.append(Write(targets[0], change, source, result))
        else:
            writes.extend(Write(target, change, source, result) for target in targets)
    return writes


def chunks(
    items: Sequence[Write], max_bytes: int, max_actions: int
) -> Iterator[tuple[list[Write], bytes]]:
    """Split writes into bulk bodies of at most ``max_actions`` items and ``max_bytes`` bytes.

    A single write larger than ``max_bytes`` travels alone (OpenSearch decides).
    """
    batch: list[Write] = []
    parts: list[bytes] = []
    size = 0
    for write in items:
        data = write.lines()
        if batch and (len(batch) >= max_actions or size + len(data) > max_bytes):
            yield batch, b"".join(parts)
            batch, parts, size = [], [], 0
        batch.append(write)
        parts.append(data)
        size += len(data)
    if batch:
        yield batch, b"".join(parts)


Resolver = Callable[[list[Write], Transport, Deadline], list[Write]]
RejectionCheck = Callable[[list[Write], Transport, Deadline], None]


def send_writes(
    writes: list[Write],
    transport: Transport,
    deadline: Deadline,
    *,
    max_bytes: int,
    max_actions: int,
    retry_base_ms: int,
    retry_max_ms: int,
    resolve_conflicts: Resolver,
    check_rejected: RejectionCheck | None = None,
    max_document_bytes: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> SendReport:
    """Send every write; each ends with a result. Never raises for OpenSearch failures.

    ``resolve_conflicts`` receives the writes answered 409, sets their result
    (stale or applied) and returns those that should be retried. ``check_rejected``
    receives every write at the end and may turn a POISON result into STALE (a rejected
    write whose document the index already supersedes).
    """
    report = SendReport(writes)
    pending = _sendable(writes, max_document_bytes)
    raced: set[int] = set()
    attempt = 0
    while pending:
        retry = _send_round(pending, transport, deadline, report, max_bytes, max_actions, resolve_conflicts)
        retry += _lost_mapping_races(pending, raced)
        if not retry:
            break
        delay = backoff_s(attempt, retry_base_ms, retry_max_ms, rng)
        if deadline.left_s() <= delay:
            report.stopped_early = True
            break
        attempt += 1
        report.retries += 1
        sleep(delay)
        pending = retry
    if check_rejected is not None:
        check_rejected(writes, transport, deadline)
    _tally(report, deadline)
    return report


def _lost_mapping_races(sent: list[Write], raced: set[int]) -> list[Write]:
    """The writes refused for a dynamic mapping race (see ``_MAPPING_RACE``), each once per send."""
    again = [
        w for w in sent
        if (r := w.result) is not None and r.status == 400 and r.outcome is Outcome.POISON
        and _MAPPING_RACE in (r.reason or "") and id(w) not in raced
    ]  # fmt: skip
    raced.update(map(id, again))
    return again


def _sendable(writes: list[Write], max_document_bytes: int | None) -> list[Write]:
    """The writes to send; an oversized document is made POISON here, without a request."""
    pending: list[Write] = []
    for write in writes:
        if write.result is not None and write.result.outcome is Outcome.POISON:
            continue  # judged before sending (make_writes: the document cannot be serialized)
        size = len(write.source)
        if max_document_bytes is not None and size > max_document_bytes:
            reason = f"document is {size} bytes, over MAX_DOCUMENT_BYTES={max_document_bytes}"
            write.result = WriteResult(Outcome.POISON, None, "document_too_large", reason)
        else:
            pending.append(write)
    return pending


def _send_round(
    pending: list[Write],
    transport: Transport,
    deadline: Deadline,
    report: SendReport,
    max_bytes: int,
    max_actions: int,
    resolve_conflicts: Resolver,
) -> list[Write]:
    """Send every pending write once (chunked), resolve the conflicts; return what to retry."""
    retry: list[Write] = []
    conflicts: list[Write] = []
    for chunk, body in chunks(pending, max_bytes, max_actions):
        if deadline.expired():
            retry.extend(chunk)
            continue
        report.requests += 1
        try:
            results = transport.bulk(body, deadline.request_timeout_s())
        except TransportError as e:
            _request_failed(chunk, e, retry)
            continue
        _apply_results(chunk, results, retry, conflicts)
    if conflicts and not deadline.expired():
        retry.extend(resolve_conflicts(conflicts, transport, deadline))
    elif conflicts:
        retry.extend(conflicts)
    return retry


def _request_failed(chunk: list[Write], error: TransportError, retry: list[Write]) -> None:
    if len(chunk) == 1 and error.status is not None and error.status in _POISON_STATUSES:
        reason = f"OpenSearch rejected the request: {error.reason}"
        chunk[0].result = WriteResult(Outcome.POISON, error.status, "request_rejected", reason)
        return
    for write in chunk:
        write.result = WriteResult(Outcome.UNSENT, error.status, "request_failed", error.reason)
    retry.extend(chunk)


def _tally(report: SendReport, deadline: Deadline) -> None:
    """Give every write still without a result UNSENT (timeout), and count the outcomes."""
    for write in report.writes:
        if write.result is None:
            write.result = WriteResult(Outcome.UNSENT, None, "timeout", "stopped before the deadline")
        outcome = write.result.outcome
        if outcome is Outcome.UNSENT:
            report.stopped_early = report.stopped_early or deadline.expired()
        report.counts[outcome] = report.counts.get(outcome, 0) + 1


def _apply_results(
    chunk: list[Write], results: list[BulkItemResult], retry: list[Write], conflicts: list[Write]
) -> None:
    if len(results) != len(chunk):
        for write in chunk:
            write.result = WriteResult(Outcome.UNSENT, None, "bad_response", "bulk item count mismatch")
        retry.extend(chunk)
        return
    for write, item in zip(chunk, results, strict=True):
        if item.status == 409:
            conflicts.append(write)
            continue
        outcome = classify_status(item.status)
        if outcome is None:
            write.result = WriteResult(Outcome.UNSENT, item.status, item.error_type, item.reason)
            if item.status not in _NO_RETRY_STATUSES:
                retry.append(write)
        elif item.error_type is None and item.reason is None and item.status in _APPLIED_RESULTS:
            write.result = _APPLIED_RESULTS[item.status]  # shared (frozen): the common case
        else:
            write.result = WriteResult(outcome, item.status, item.error_type, item.reason)
