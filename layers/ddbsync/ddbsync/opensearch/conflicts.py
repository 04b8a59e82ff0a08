"""Resolve 409 answers exactly, using the full sequence number kept in each document.

A 409 under external versioning means the stored version is higher or equal.
When the stored document is from a later second it is simply newer (stale
write, counted). When it is from the *same* second the 64-bit version cannot
tell the order, so we read the stored ``_ddbsync.seq`` and compare the full
sequence numbers. If ours is newer we rewrite with ``if_seq_no`` and
``if_primary_term``: the write lands only if nobody wrote in between (otherwise
we look again), and OpenSearch bumps the version by one, still in that second.
See docs/versioning.md.
"""

from __future__ import annotations

from collections import defaultdict

import orjson

from ddbsync.deadline import Deadline
from ddbsync.opensearch.bulk import Outcome, Write, WriteResult, classify_status
from ddbsync.opensearch.transport import BulkItemResult, StoredMeta, Transport, TransportError
from ddbsync.versioning import EXPORT_RANK, Ordering, second_of

__all__ = ["MAX_ROUNDS", "SUPERSEDED", "resolve_conflicts", "stored_ordering", "supersede_rejected"]

MAX_ROUNDS = 5
# error_type of a rejected write found superseded (STALE): callers count these apart.
SUPERSEDED = "superseded"


def stored_ordering(meta: StoredMeta) -> Ordering:
    """Where the stored document sits in its item's history."""
    # Export and repair documents have no sequence number: each is the item's state just
    # before second(version) + 1, above every stream change of second(version).
    if meta.source in ("export", "repair"):
        return Ordering(second_of(meta.version), EXPORT_RANK)
    rank = int(meta.seq) if meta.seq and meta.seq.isdigit() else 0
    return Ordering(second_of(meta.version), rank)


def _cas_lines(write: Write, meta: StoredMeta) -> bytes:
    action = {
        "index": {
            "_index": write.target,
            "_id": write.change.doc_id,
            "if_seq_no": meta.seq_no,
            "if_primary_term": meta.primary_term,
            "require_alias": True,
        }
    }
    return orjson.dumps(action) + b"\n" + write.source + b"\n"


def resolve_conflicts(writes: list[Write], transport: Transport, deadline: Deadline) -> list[Write]:
    """Set STALE or APPLIED on writes answered 409; return the ones to retry later."""
    pending = list(writes)
    to_retry: list[Write] = []
    for _ in range(MAX_ROUNDS):
        if not pending or deadline.expired():
            break
        try:
            cas, retry_plain = _read_stored(pending, transport, deadline)
        except TransportError as e:
            for write in pending:
                write.result = WriteResult(Outcome.UNSENT, e.status, "conflict_check_failed", e.reason)
            return to_retry + pending
        to_retry.extend(retry_plain)
        if not cas:
            pending = []
            break
        try:
            results = _send_cas(cas, transport, deadline)
        except TransportError as e:
            for write, _meta in cas:
                write.result = WriteResult(Outcome.UNSENT, e.status, "request_failed", e.reason)
            return [w for w, _ in cas] + to_retry
        pending = _apply_cas(cas, results, to_retry)
    for write in pending:
        write.result = WriteResult(Outcome.UNSENT, 409, "conflict_unresolved", "conflict still open")
    return to_retry + pending


def _read_stored(
    pending: list[Write], transport: Transport, deadline: Deadline
) -> tuple[list[tuple[Write, StoredMeta]], list[Write]]:
    """Read the stored documents (per target alias) and decide each write: (to compare-and-set, to retry).

    Writes found stale get their result here. Raises TransportError when a read fails or
    answers with the wrong number of documents.
    """
    by_target: dict[str, list[Write]] = defaultdict(list)
    for write in pending:
        by_target[write.target].append(write)
    cas: list[tuple[Write, StoredMeta]] = []
    retry_plain: list[Write] = []
    for target, group in by_target.items():
        metas = transport.mget(target, [w.change.doc_id for w in group], deadline.request_timeout_s())
        if len(metas) != len(group):
            raise TransportError("mget answered with a different number of documents")
        for write, meta in zip(group, metas, strict=True):
            _decide(write, meta, cas, retry_plain)
    return cas, retry_plain


def _send_cas(
    cas: list[tuple[Write, StoredMeta]], transport: Transport, deadline: Deadline
) -> list[BulkItemResult]:
    """One _bulk of compare-and-set writes; raises TransportError when it fails or miscounts."""
    body = b"".join(_cas_lines(w, m) for w, m in cas)
    results = transport.bulk(body, deadline.request_timeout_s())
    if len(results) != len(cas):
        raise TransportError("bulk answered with a different number of items")
    return results


def _apply_cas(
    cas: list[tuple[Write, StoredMeta]], results: list[BulkItemResult], to_retry: list[Write]
) -> list[Write]:
    """Set each compare-and-set write's result; return those answered 409, to look at again."""
    again: list[Write] = []
    for (write, _meta), item in zip(cas, results, strict=True):
        if item.status == 409:
            again.append(write)  # someone wrote in between: look again
            continue
        outcome = classify_status(item.status) or Outcome.UNSENT
        write.result = WriteResult(outcome, item.status, item.error_type, item.reason)
        if outcome is Outcome.UNSENT:
            to_retry.append(write)
    return again


def _decide(write: Write, meta: StoredMeta, cas: list[tuple[Write, StoredMeta]], retry: list[Write]) -> None:
    ours = write.change.ordering
    if not meta.found:
        # Nothing stored (e.g. purged tombstone): a plain versioned write will do.
        write.result = WriteResult(Outcome.UNSENT, 404, "conflict_missing", "document vanished")
        retry.append(write)
        return
    stored = stored_ordering(meta)
    if not ours.newer_than(stored):
        write.result = WriteResult(Outcome.STALE, 409, "stale", "a newer or equal change is indexed")
        return
    if stored.second == ours.second and Ordering.can_bump(meta.version):
        cas.append((write, meta))
        return
    write.result = WriteResult(Outcome.UNSENT, 409, "conflict_retry", "version raced; retrying")
    retry.append(write)


def supersede_rejected(writes: list[Write], transport: Transport, deadline: Deadline) -> None:
    """Turn POISON into STALE for rejected writes whose document the index already supersedes.

    OpenSearch checks a document against the mapping before the external version, so a
    change that cannot be indexed is rejected (400) even when the index holds a newer change
    of its item (a later modification, or a delete's tombstone). Such a write is moot, as a
    409 would have said: it is STALE with error type :data:`SUPERSEDED`, by the same ordering
    as the conflict resolver (:func:`stored_ordering`, ``Ordering.newer_than``). When nothing
    newer is stored, or the check itself fails, the write stays POISON (the record DLQ keeps
    it; a replay checks again).
    """
    rejected = [w for w in writes if w.result is not None and w.result.outcome is Outcome.POISON]
    if not rejected or deadline.expired():
        return
    by_target: dict[str, list[Write]] = defaultdict(list)
    for write in rejected:
        by_target[write.target].append(write)
    for target, group in by_target.items():
        try:
            metas = transport.mget(target, [w.change.doc_id for w in group], deadline.request_timeout_s())
        except TransportError:
            continue
        if len(metas) != len(group):
            continue
        for write, meta in zip(group, metas, strict=True):
            if not meta.found or write.change.ordering.newer_than(stored_ordering(meta)):
                continue
            rejected_result = write.result
            assert rejected_result is not None
            why = rejected_result.reason or rejected_result.error_type or "rejected"
            write.result = WriteResult(
                Outcome.STALE, rejected_result.status, SUPERSEDED,
                f"superseded: the index holds a newer change of this item (the write was rejected: {why})",
            )  # fmt: skip
