"""bulk and conflicts: chunking, per-item retries with full-jitter backoff, deadlines, 409 resolution.

Everything runs against an in-memory :class:`Transport` that records each body it receives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.deadline import Deadline
from ddbsync.mapping import map_records
from ddbsync.opensearch.bulk import Outcome, Write, WriteResult, chunks, make_writes, send_writes
from ddbsync.opensearch.conflicts import MAX_ROUNDS, SUPERSEDED, resolve_conflicts, supersede_rejected
from ddbsync.opensearch.transport import BulkItemResult, StoredMeta, Transport, TransportError
from ddbsync.versioning import SLOT_BITS, export_version, stream_version
from tests.support import RecordFactory

ALIAS = "products"
SECOND = 1714555815
Response = Sequence[int] | Exception


class FakeClock:
    """Remaining invocation time that only moves when the code sleeps (or a request takes time)."""

    def __init__(self, remaining_ms: int, margin_ms: int = 0) -> None:
        self.now_ms = remaining_ms
        self.margin_ms = margin_ms
        self.sleeps: list[float] = []
        self.overslept: list[tuple[float, float]] = []

    def remaining_ms(self) -> int:
        return self.now_ms

    def sleep(self, seconds: float) -> None:
        left_s = (self.now_ms - self.margin_ms) / 1000
        if seconds >= left_s:
            self.overslept.append((seconds, left_s))
        self.sleeps.append(seconds)
        self.now_ms -= int(seconds * 1000)

    def deadline(self) -> Deadline:
        return Deadline(self.remaining_ms, self.margin_ms)


class FakeTransport:
    """Scripted answers, in order: a list of item statuses or an exception; then ``default_status``."""

    def __init__(
        self,
        responses: Sequence[Response] = (),
        *,
        default_status: int = 201,
        metas: Sequence[list[StoredMeta] | Exception] = (),
        clock: FakeClock | None = None,
        request_ms: int = 0,
    ) -> None:
        self.responses = list(responses)
        self.default_status = default_status
        self.metas = list(metas)
        self.clock = clock
        self.request_ms = request_ms
        self.bodies: list[list[tuple[dict[str, Any], dict[str, Any]]]] = []
        self.mgets: list[tuple[str, list[str]]] = []

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        assert timeout_s > 0
        lines = body.decode("utf-8").splitlines()
        pairs = [(json.loads(a), json.loads(s)) for a, s in zip(lines[::2], lines[1::2], strict=True)]
        self.bodies.append(pairs)
        if self.clock is not None:
            self.clock.now_ms -= self.request_ms
        answer: Response = self.responses.pop(0) if self.responses else [self.default_status] * len(pairs)
        if isinstance(answer, Exception):
            raise answer
        return [BulkItemResult(s, None if s < 300 else f"e{s}", None if s < 300 else f"r{s}") for s in answer]

    def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[StoredMeta]:
        self.mgets.append((index, list(ids)))
        answer = self.metas.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def ids(self, request: int) -> list[str]:
        return [action["index"]["_id"] for action, _ in self.bodies[request]]


def make(
    n: int = 1, *, created: int = SECOND, seq: int = 5 * 10**20, image: dict[str, Any] | None = None
) -> list[Write]:
    factory = RecordFactory(sk=None)
    records = [
        factory.record("MODIFY", f"k{i}", image=image or {"v": i}, created=created, seq=str(seq + i))
        for i in range(n)
    ]
    changes, poison = map_records(records, "pk", None)
    assert poison == []
    return make_writes(changes, [ALIAS])


def no_conflicts(writes: list[Write], transport: Transport, deadline: Deadline) -> list[Write]:
    raise AssertionError(f"unexpected conflicts: {[w.change.doc_id for w in writes]}")


def send(
    writes: list[Write],
    transport: FakeTransport,
    clock: FakeClock | None = None,
    *,
    resolver: Callable[[list[Write], Transport, Deadline], list[Write]] = no_conflicts,
    rng: Callable[[], float] = lambda: 0.5,
    **overrides: Any,
) -> Any:
    clock = clock or FakeClock(60_000)
    options: dict[str, Any] = {
        "max_bytes": 1024 * 1024,
        "max_actions": 100,
        "retry_base_ms": 100,
        "retry_max_ms": 1000,
        "max_document_bytes": None,
    }
    options.update(overrides)
    return send_writes(
        writes, transport, clock.deadline(), resolve_conflicts=resolver, sleep=clock.sleep, rng=rng, **options
    )


def outcomes(writes: list[Write]) -> list[Outcome]:
    assert all(w.result is not None for w in writes)
    return [w.result.outcome for w in writes if w.result is not None]


# --- make_writes and the action line ------------------------------------------------------


def test_each_change_becomes_one_external_versioned_write_per_target() -> None:
    changes, _ = map_records([RecordFactory(sk=None).record("INSERT", "a", created=SECOND)], "pk", None)
    writes = make_writes(changes, ["a-v1", "a-v2"])
    assert [w.target for w in writes] == ["a-v1", "a-v2"]
    transport = FakeTransport()
    send(writes, transport)
    (body,) = transport.bodies
    assert [action for action, _ in body] == [
        {
            "index": {
                "_index": t,
                "_id": "a",
                "version": stream_version(SECOND),
                "version_type": "external",
                "require_alias": True,  # a removed alias must never be auto-created as an index
            }
        }
        for t in ("a-v1", "a-v2")
    ]
    assert body[0][1]["_ddbsync"]["source"] == "stream"


def test_skipped_changes_produce_no_writes() -> None:
    record = RecordFactory(sk=None).record("REMOVE", "a", ttl=True)
    changes, _ = map_records([record], "pk", None, ttl_removes="keep")
    assert make_writes(changes, [ALIAS]) == []


# --- chunks -------------------------------------------------------------------------------


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=600), max_size=25),
    max_actions=st.integers(min_value=1, max_value=6),
    max_bytes=st.integers(min_value=150, max_value=2000),
)
def test_chunks_respect_both_the_action_and_the_byte_limit(
    sizes: list[int], max_actions: int, max_bytes: int
) -> None:
    writes = [w for i, size in enumerate(sizes) for w in make(1, seq=10**20 + i, image={"p": "x" * size})]
    batches = list(chunks(writes, max_bytes, max_actions))
    assert [w for batch, _ in batches for w in batch] == writes
    for i, (batch, body) in enumerate(batches):
        assert batch
        assert body == b"".join(w.lines() for w in batch)
        assert len(batch) <= max_actions
        assert len(body) <= max_bytes or len(batch) == 1
        if i + 1 < len(batches):  # a chunk is only cut when the next write would not fit
            following = batches[i + 1][0][0]
            assert len(batch) == max_actions or len(body) + len(following.lines()) > max_bytes


def test_a_write_larger_than_max_bytes_travels_alone() -> None:
    small_a, small_b = make(2)
    (big,) = make(1, seq=9 * 10**20, image={"p": "x" * 5000})
    batches = [batch for batch, _ in chunks([small_a, big, small_b], 1000, 100)]
    assert batches == [[small_a], [big], [small_b]]


def test_no_writes_make_no_chunks() -> None:
    assert list(chunks([], 1000, 10)) == []


# --- retries ------------------------------------------------------------------------------


def test_throttled_and_unavailable_items_are_retried_and_only_they_are_resent() -> None:
    writes = make(4)
    transport = FakeTransport([[201, 429, 201, 503], [201, 201]])
    report = send(writes, transport)
    assert outcomes(writes) == [Outcome.APPLIED] * 4
    assert transport.ids(0) == ["k0", "k1", "k2", "k3"]
    assert transport.ids(1) == ["k1", "k3"]
    assert transport.bodies[1] == [transport.bodies[0][1], transport.bodies[0][3]]
    assert (report.requests, report.retries) == (2, 1)
    assert report.counts == {Outcome.APPLIED: 4}


@pytest.mark.parametrize("status", [401, 403, 500, 502, 504])
def test_other_transient_item_statuses_are_retried(status: int) -> None:
    writes = make(1)
    transport = FakeTransport([[status]])
    send(writes, transport)
    assert len(transport.bodies) == 2
    assert outcomes(writes) == [Outcome.APPLIED]


def test_a_missing_index_is_left_unsent_without_retrying_in_the_invocation() -> None:
    # Retrying will not create the index (or a backfill's vanished next alias): the
    # indexer decides, and Lambda redelivers if it matters.
    writes = make(2)
    transport = FakeTransport([[201, 404]])
    report = send(writes, transport)
    assert len(transport.bodies) == 1
    assert outcomes(writes) == [Outcome.APPLIED, Outcome.UNSENT]
    assert report.retries == 0


def test_a_failed_request_without_a_status_is_retried_whole() -> None:
    writes = make(3)
    transport = FakeTransport([TransportError("connection reset", status=None)])
    report = send(writes, transport)
    assert outcomes(writes) == [Outcome.APPLIED] * 3
    assert len(transport.bodies) == 2
    assert transport.bodies[1] == transport.bodies[0]
    assert report.retries == 1


def test_a_bad_request_item_is_poison_and_not_retried() -> None:
    writes = make(2)
    transport = FakeTransport([[201, 400]])
    report = send(writes, transport)
    assert outcomes(writes) == [Outcome.APPLIED, Outcome.POISON]
    assert writes[1].result == WriteResult(Outcome.POISON, 400, "e400", "r400")
    assert len(transport.bodies) == 1
    assert report.retries == 0
    assert report.counts == {Outcome.APPLIED: 1, Outcome.POISON: 1}


RACE = BulkItemResult(
    400, "illegal_argument_exception", "mapper [n] cannot be changed from type [long] to [float]"
)


class RacingTransport(FakeTransport):
    """Answers the second write of the first ``races`` requests with a lost dynamic mapping race."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        answer = super().bulk(body, timeout_s)
        if len(self.bodies) <= self.races:
            answer[-1] = RACE
        return answer


def test_a_write_that_lost_a_dynamic_mapping_race_is_sent_once_more() -> None:
    writes = make(2)
    transport = RacingTransport(races=1)
    report = send(writes, transport)
    assert outcomes(writes) == [Outcome.APPLIED, Outcome.APPLIED]
    assert [transport.ids(i) for i in range(2)] == [["k0", "k1"], ["k1"]]
    assert report.retries == 1 and report.counts == {Outcome.APPLIED: 2}


def test_a_mapping_race_lost_twice_is_poison() -> None:
    writes = make(2)
    transport = RacingTransport(races=5)
    report = send(writes, transport)
    assert outcomes(writes) == [Outcome.APPLIED, Outcome.POISON]
    assert writes[1].result == WriteResult(Outcome.POISON, RACE.status, RACE.error_type, RACE.reason)
    assert len(transport.bodies) == 2
    assert report.counts == {Outcome.APPLIED: 1, Outcome.POISON: 1}


@pytest.mark.parametrize("status", [413, 422])
def test_other_rejections_of_the_document_are_poison(status: int) -> None:
    writes = make(1)
    transport = FakeTransport([[status]])
    send(writes, transport)
    assert outcomes(writes) == [Outcome.POISON]
    assert len(transport.bodies) == 1


def test_a_request_rejected_for_its_only_document_makes_that_document_poison() -> None:
    writes = make(1)
    transport = FakeTransport([TransportError("too large", status=413)])
    send(writes, transport)
    assert outcomes(writes) == [Outcome.POISON]
    assert writes[0].result is not None and writes[0].result.status == 413
    assert len(transport.bodies) == 1


def test_a_response_with_the_wrong_number_of_items_is_retried() -> None:
    writes = make(2)
    transport = FakeTransport([[201]])
    send(writes, transport)
    assert len(transport.bodies) == 2
    assert transport.ids(1) == ["k0", "k1"]
    assert outcomes(writes) == [Outcome.APPLIED] * 2


def test_conflicting_items_go_to_the_resolver_and_nowhere_else() -> None:
    writes = make(3)
    seen: list[list[str]] = []

    def resolver(conflicts: list[Write], transport: Transport, deadline: Deadline) -> list[Write]:
        seen.append([w.change.doc_id for w in conflicts])
        for w in conflicts:
            w.result = WriteResult(Outcome.STALE, 409)
        return []

    transport = FakeTransport([[409, 201, 409]])
    report = send(writes, transport, resolver=resolver)
    assert seen == [["k0", "k2"]]
    assert outcomes(writes) == [Outcome.STALE, Outcome.APPLIED, Outcome.STALE]
    assert len(transport.bodies) == 1
    assert report.counts == {Outcome.STALE: 2, Outcome.APPLIED: 1}


def test_writes_the_resolver_hands_back_are_sent_again() -> None:
    writes = make(1)

    def resolver(conflicts: list[Write], transport: Transport, deadline: Deadline) -> list[Write]:
        for w in conflicts:
            w.result = WriteResult(Outcome.UNSENT, 409)
        return conflicts

    transport = FakeTransport([[409], [201]])
    send(writes, transport, resolver=resolver)
    assert len(transport.bodies) == 2
    assert outcomes(writes) == [Outcome.APPLIED]


# --- backoff and deadline -----------------------------------------------------------------


def test_backoff_doubles_from_the_base_and_is_capped_at_retry_max() -> None:
    clock = FakeClock(60_000)
    writes = make(1)
    transport = FakeTransport([[503]] * 7)
    send(writes, transport, clock, rng=lambda: 1.0, retry_base_ms=100, retry_max_ms=1000)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert outcomes(writes) == [Outcome.APPLIED]


def test_backoff_is_full_jitter_drawn_from_the_injected_rng() -> None:
    draws = iter([0.25, 0.0, 0.9, 0.5])
    drawn: list[float] = []

    def rng() -> float:
        drawn.append(next(draws))
        return drawn[-1]

    clock = FakeClock(60_000)
    writes = make(1)
    send(writes, FakeTransport([[429]] * 4), clock, rng=rng, retry_base_ms=100, retry_max_ms=300)
    windows = [0.1, 0.2, 0.3, 0.3]
    assert clock.sleeps == pytest.approx([d * w for d, w in zip(drawn, windows, strict=True)])


@given(
    draws=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=1, max_size=12),
    base=st.integers(min_value=1, max_value=500),
    cap=st.integers(min_value=500, max_value=5000),
)
def test_every_backoff_stays_within_retry_max(draws: list[float], base: int, cap: int) -> None:
    values = iter(draws)
    clock = FakeClock(10**9)
    writes = make(1)
    transport = FakeTransport([[503]] * len(draws))
    send(writes, transport, clock, rng=lambda: next(values), retry_base_ms=base, retry_max_ms=cap)
    assert len(clock.sleeps) == len(draws)
    assert all(0 <= s <= cap / 1000 for s in clock.sleeps)


def test_when_the_deadline_runs_out_the_remaining_writes_end_unsent_without_oversleeping() -> None:
    clock = FakeClock(3_000, margin_ms=1_000)
    writes = make(3)
    transport = FakeTransport(default_status=503)
    report = send(writes, transport, clock, rng=lambda: 0.9, retry_base_ms=100, retry_max_ms=400)
    assert outcomes(writes) == [Outcome.UNSENT] * 3
    assert report.stopped_early
    assert clock.sleeps
    assert clock.overslept == []
    assert sum(clock.sleeps) < 2.0
    assert report.counts == {Outcome.UNSENT: 3}


def test_an_expired_deadline_sends_nothing_and_sleeps_not_at_all() -> None:
    clock = FakeClock(500, margin_ms=1_000)
    writes = make(2)
    transport = FakeTransport()
    report = send(writes, transport, clock)
    assert transport.bodies == []
    assert clock.sleeps == []
    assert outcomes(writes) == [Outcome.UNSENT] * 2
    assert report.stopped_early


def test_chunks_left_when_the_deadline_expires_mid_batch_are_not_sent() -> None:
    clock = FakeClock(1_000)
    writes = make(3)
    transport = FakeTransport(clock=clock, request_ms=600)
    report = send(writes, transport, clock, max_actions=1)
    assert len(transport.bodies) == 2
    assert outcomes(writes) == [Outcome.APPLIED, Outcome.APPLIED, Outcome.UNSENT]
    assert clock.sleeps == []
    assert report.stopped_early


# --- document size ------------------------------------------------------------------------


def test_a_document_over_max_document_bytes_is_poison_without_a_request() -> None:
    (big,) = make(1, image={"p": "x" * 5000})
    transport = FakeTransport()
    report = send([big], transport, max_document_bytes=1024)
    assert transport.bodies == []
    assert report.requests == 0
    assert big.result is not None
    assert big.result.outcome is Outcome.POISON
    assert big.result.error_type == "document_too_large"


def test_an_oversized_document_does_not_hold_back_the_others() -> None:
    (small,) = make(1)
    (big,) = make(1, seq=9 * 10**20, image={"p": "x" * 5000})
    transport = FakeTransport()
    send([small, big], transport, max_document_bytes=1024)
    assert [transport.ids(i) for i in range(len(transport.bodies))] == [["k0"]]
    assert outcomes([small, big]) == [Outcome.APPLIED, Outcome.POISON]


# --- conflicts ----------------------------------------------------------------------------

OURS_SEQ = 5 * 10**20


def stored(
    *,
    second: int = SECOND,
    slot: int = 0,
    seq: int | None = None,
    source: str = "stream",
    seq_no: int = 7,
    primary_term: int = 1,
) -> StoredMeta:
    return StoredMeta(
        found=True,
        version=stream_version(second) + slot,
        seq_no=seq_no,
        primary_term=primary_term,
        seq=None if seq is None else str(seq).zfill(40),
        source=source,
    )


def resolve(writes: list[Write], transport: FakeTransport, clock: FakeClock | None = None) -> list[Write]:
    return resolve_conflicts(writes, transport, (clock or FakeClock(60_000)).deadline())


def test_a_stored_document_from_a_later_second_makes_the_write_stale() -> None:
    writes = make(1)
    transport = FakeTransport(metas=[[stored(second=SECOND + 1, seq=1)]])
    assert resolve(writes, transport) == []
    assert outcomes(writes) == [Outcome.STALE]
    assert transport.mgets == [(ALIAS, ["k0"])]
    assert transport.bodies == []


def test_a_same_second_document_with_a_smaller_sequence_is_overwritten_by_compare_and_set() -> None:
    writes = make(1)
    transport = FakeTransport([[200]], metas=[[stored(seq=OURS_SEQ - 1, seq_no=7, primary_term=3)]])
    assert resolve(writes, transport) == []
    assert outcomes(writes) == [Outcome.APPLIED]
    ((action, source),) = transport.bodies[0]
    assert action == {
        "index": {"_index": ALIAS, "_id": "k0", "if_seq_no": 7, "if_primary_term": 3, "require_alias": True}
    }
    assert source == json.loads(writes[0].source)


@pytest.mark.parametrize("stored_seq", [OURS_SEQ, OURS_SEQ + 1, 10**39])
def test_a_same_second_document_with_an_equal_or_larger_sequence_wins(stored_seq: int) -> None:
    writes = make(1)
    transport = FakeTransport(metas=[[stored(seq=stored_seq)]])
    assert resolve(writes, transport) == []
    assert outcomes(writes) == [Outcome.STALE]
    assert transport.bodies == []


def test_a_same_second_export_document_makes_the_write_stale() -> None:
    writes = make(1)
    export = StoredMeta(True, export_version(SECOND + 1.5), 7, 1, None, "export")
    transport = FakeTransport(metas=[[export]])
    assert resolve(writes, transport) == []
    assert outcomes(writes) == [Outcome.STALE]
    assert transport.bodies == []


def test_a_compare_and_set_answered_409_reads_again_and_retries() -> None:
    writes = make(1)
    transport = FakeTransport(
        [[409], [201]],
        metas=[[stored(seq=OURS_SEQ - 2, seq_no=7)], [stored(seq=OURS_SEQ - 1, slot=1, seq_no=8)]],
    )
    assert resolve(writes, transport) == []
    assert outcomes(writes) == [Outcome.APPLIED]
    assert len(transport.mgets) == 2
    assert [body[0][0]["index"]["if_seq_no"] for body in transport.bodies] == [7, 8]


def test_a_compare_and_set_that_loses_to_a_newer_write_ends_stale() -> None:
    writes = make(1)
    transport = FakeTransport(
        [[409]], metas=[[stored(seq=OURS_SEQ - 2, seq_no=7)], [stored(seq=OURS_SEQ + 1, slot=1, seq_no=8)]]
    )
    assert resolve(writes, transport) == []
    assert outcomes(writes) == [Outcome.STALE]
    assert len(transport.bodies) == 1


def test_a_conflict_still_open_after_every_round_is_unsent() -> None:
    writes = make(1)
    transport = FakeTransport(
        [[409]] * MAX_ROUNDS, metas=[[stored(seq=OURS_SEQ - 1, seq_no=i)] for i in range(MAX_ROUNDS)]
    )
    assert resolve(writes, transport) == writes
    assert outcomes(writes) == [Outcome.UNSENT]
    assert len(transport.bodies) == MAX_ROUNDS


def test_a_failed_read_of_the_stored_documents_leaves_the_writes_unsent() -> None:
    writes = make(2)
    transport = FakeTransport(metas=[TransportError("timed out", status=None)])
    assert resolve(writes, transport) == writes
    assert outcomes(writes) == [Outcome.UNSENT] * 2
    assert all(w.result is not None and w.result.error_type == "conflict_check_failed" for w in writes)
    assert transport.bodies == []


def test_a_failed_compare_and_set_request_leaves_the_write_unsent() -> None:
    writes = make(1)
    transport = FakeTransport([TransportError("reset", status=None)], metas=[[stored(seq=OURS_SEQ - 1)]])
    assert resolve(writes, transport) == writes
    assert outcomes(writes) == [Outcome.UNSENT]


def test_a_stored_document_at_the_top_slot_is_retried_not_bumped_into_the_next_second() -> None:
    writes = make(1)
    top = stored(seq=OURS_SEQ - 1, slot=(1 << SLOT_BITS) - 1)
    transport = FakeTransport(metas=[[top]])
    assert resolve(writes, transport) == writes
    assert outcomes(writes) == [Outcome.UNSENT]
    assert transport.bodies == []


def test_a_document_gone_since_the_409_is_retried_as_a_plain_write() -> None:
    writes = make(1)
    transport = FakeTransport(metas=[[StoredMeta(found=False)]])
    assert resolve(writes, transport) == writes
    assert outcomes(writes) == [Outcome.UNSENT]


def test_conflicts_are_read_per_target_alias() -> None:
    changes, _ = map_records(
        [RecordFactory(sk=None).record("MODIFY", "a", created=SECOND, seq=str(OURS_SEQ))], "pk", None
    )
    writes = make_writes(changes, ["old", "new"])
    transport = FakeTransport(metas=[[stored(second=SECOND + 1)], [stored(second=SECOND + 1)]])
    resolve(writes, transport)
    assert transport.mgets == [("old", ["a"]), ("new", ["a"])]
    assert outcomes(writes) == [Outcome.STALE] * 2


def test_send_writes_with_the_real_resolver_applies_a_newer_same_second_change() -> None:
    writes = make(1)
    transport = FakeTransport([[409], [200]], metas=[[stored(seq=OURS_SEQ - 1)]])
    report = send(writes, transport, resolver=resolve_conflicts)
    assert outcomes(writes) == [Outcome.APPLIED]
    assert "version" in transport.bodies[0][0][0]["index"]
    assert "if_seq_no" in transport.bodies[1][0][0]["index"]
    assert report.counts == {Outcome.APPLIED: 1}


@pytest.mark.parametrize(
    ("answers", "metas", "error_type", "reason"),
    [
        pytest.param(
            [[]],
            [[stored(seq=OURS_SEQ - 1)]],
            "request_failed",
            "bulk answered with a different number of items",
            id="bulk answers no item",
        ),
        pytest.param(
            [],
            [[stored(seq=OURS_SEQ - 1), stored(seq=OURS_SEQ - 1)]],
            "conflict_check_failed",
            "mget answered with a different number of documents",
            id="mget answers two documents",
        ),
    ],
)
def test_a_compare_and_set_answer_with_the_wrong_item_count_is_not_taken_as_applied(
    answers: list[Response], metas: list[list[StoredMeta]], error_type: str, reason: str
) -> None:
    writes = make(1)
    transport = FakeTransport(answers, metas=metas)
    assert resolve(writes, transport) == writes  # handed back to be sent again
    assert [w.result for w in writes] == [WriteResult(Outcome.UNSENT, None, error_type, reason)]


def test_a_compare_and_set_answer_with_the_wrong_item_count_is_followed_by_a_plain_write() -> None:
    writes = make(1)
    transport = FakeTransport([[409], [], [201]], metas=[[stored(seq=OURS_SEQ - 1)]])
    report = send(writes, transport, resolver=resolve_conflicts)
    sent_as = [set(body[0][0]["index"]) & {"version", "if_seq_no"} for body in transport.bodies]
    assert sent_as == [{"version"}, {"if_seq_no"}, {"version"}]
    assert report.retries == 1
    assert outcomes(writes) == [Outcome.APPLIED]  # by the third request's 201, not by the empty answer


# --- documents the serializer refuses ------------------------------------------------------


def test_a_document_the_serializer_refuses_is_poison_without_a_request_and_the_rest_is_sent() -> None:
    factory = RecordFactory(sk=None)
    deep: dict[str, Any] = {"S": "x"}
    for _ in range(300):
        deep = {"M": {"a": deep}}
    records = [
        factory.record("INSERT", "k0", raw_image={"v": {"S": "lone \ud800"}}, seq=str(OURS_SEQ)),
        factory.record("INSERT", "k1", raw_image={"name \udfff": {"S": "v"}}, seq=str(OURS_SEQ + 1)),
        factory.record("INSERT", "k2", raw_image={"deep": deep}, seq=str(OURS_SEQ + 2)),
        factory.record("INSERT", "k3", image={"v": 1}, seq=str(OURS_SEQ + 3)),
    ]
    changes, poison = map_records(records, "pk", None)
    assert poison == []
    writes = make_writes(changes, [ALIAS, "products-next"])
    transport = FakeTransport()
    report = send(writes, transport)
    assert [transport.ids(i) for i in range(len(transport.bodies))] == [["k3", "k3"]]
    assert outcomes(writes) == [Outcome.POISON] * 6 + [Outcome.APPLIED] * 2
    reasons = [str(w.result.reason) for w in writes[:6] if w.result is not None]
    assert all(r.startswith("document cannot be serialized: ") for r in reasons)
    assert "surrogates not allowed" in reasons[0] and "surrogates not allowed" in reasons[2]
    assert "Recursion limit reached" in reasons[4]
    assert {w.result.error_type for w in writes[:6] if w.result is not None} == {"unserializable_document"}
    assert report.counts == {Outcome.POISON: 6, Outcome.APPLIED: 2}


# --- rejected writes the index already supersedes --------------------------------------------


def rejected(n: int = 1, **kwargs: Any) -> tuple[list[Write], FakeTransport]:
    writes = make(n, **kwargs)
    for write in writes:
        write.result = WriteResult(Outcome.POISON, 400, "mapper_parsing_exception", "failed to parse [n]")
    return writes, FakeTransport()


def check(writes: list[Write], transport: FakeTransport, clock: FakeClock | None = None) -> None:
    supersede_rejected(writes, transport, (clock or FakeClock(60_000)).deadline())


@pytest.mark.parametrize(
    "meta",
    [stored(second=SECOND + 1, seq=1), stored(seq=OURS_SEQ + 1), stored(seq=OURS_SEQ),
     stored(second=SECOND, source="export"), stored(second=SECOND + 3, source="repair")],
)  # fmt: skip
def test_a_rejected_write_whose_document_is_superseded_is_stale(meta: StoredMeta) -> None:
    writes, transport = rejected()
    transport.metas = [[meta]]
    check(writes, transport)
    (write,) = writes
    assert write.result is not None
    assert write.result.outcome is Outcome.STALE
    assert write.result.error_type == SUPERSEDED
    assert write.result.status == 400
    assert "failed to parse [n]" in (write.result.reason or "")
    assert transport.mgets == [(ALIAS, ["k0"])]


@pytest.mark.parametrize(
    "meta",
    [StoredMeta(found=False), stored(second=SECOND - 1, seq=OURS_SEQ + 9), stored(seq=OURS_SEQ - 1),
     stored(second=SECOND - 1, source="export")],
)  # fmt: skip
def test_a_rejected_write_newer_than_what_is_stored_stays_poison(meta: StoredMeta) -> None:
    writes, transport = rejected()
    transport.metas = [[meta]]
    check(writes, transport)
    assert outcomes(writes) == [Outcome.POISON]


def test_when_the_stored_documents_cannot_be_read_rejected_writes_stay_poison() -> None:
    writes, transport = rejected(2)
    transport.metas = [TransportError("mget failed", 503)]
    check(writes, transport)
    assert outcomes(writes) == [Outcome.POISON, Outcome.POISON]
    writes, transport = rejected(2)
    transport.metas = [[stored(second=SECOND + 1)]]  # a short answer: trust nothing
    check(writes, transport)
    assert outcomes(writes) == [Outcome.POISON, Outcome.POISON]


def test_only_rejected_writes_are_looked_up_and_not_after_the_deadline() -> None:
    writes = make(3)
    writes[1].result = WriteResult(Outcome.POISON, 400, "x", "y")
    writes[0].result = WriteResult(Outcome.APPLIED, 201)
    transport = FakeTransport(metas=[[stored(second=SECOND + 1)]])
    check(writes[:2], transport)
    assert transport.mgets == [(ALIAS, ["k1"])]
    late, transport = rejected()
    check(late, transport, FakeClock(0))
    assert transport.mgets == []
    assert outcomes(late) == [Outcome.POISON]


def test_send_writes_reclassifies_a_superseded_rejection_and_counts_it_stale() -> None:
    writes = make(2)
    transport = FakeTransport([[400, 201]], metas=[[stored(second=SECOND + 1)]])
    report = send(writes, transport, check_rejected=supersede_rejected)
    assert outcomes(writes) == [Outcome.STALE, Outcome.APPLIED]
    assert report.counts == {Outcome.STALE: 1, Outcome.APPLIED: 1}
