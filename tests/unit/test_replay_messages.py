"""``ddbsync replay`` without AWS or OpenSearch: what a message is, and the verdict it gets.

The whole flow against moto and a real OpenSearch is tests/integration/test_replay.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ddbsync.config import Settings
from ddbsync.dlq import KIND, DeadLetter
from ddbsync.replay import (
    BatchPointer,
    Kind,
    RecordLetter,
    Replay,
    StoredLetter,
    Unrecognised,
    Verdict,
    classify,
    describe,
)
from tests.support import base_env

RECORD = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "100"}}
POINTER: dict[str, dict[str, Any]] = {
    "requestContext": {"condition": "RetryAttemptsExhausted"},
    "DDBStreamBatchInfo": {
        "shardId": "shardId-1",
        "startSequenceNumber": "100",
        "endSequenceNumber": "200",
        "streamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026",
        "batchSize": 3,
        "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
    },
}


def letter(**extra: object) -> str:
    body = {"kind": KIND, "reason": "mapper_parsing_exception: 'x'", "error_type": "mapping",
            "sequence_number": "100", **extra}  # fmt: skip
    return json.dumps(body)


def test_a_letter_with_its_record_is_a_record_letter() -> None:
    message = classify(letter(record=RECORD))
    assert message == RecordLetter(RECORD, "100", "mapping", "mapper_parsing_exception: 'x'")
    assert message.kind is Kind.RECORD
    assert describe(message) == "record 100"


def test_a_letter_pointing_at_s3_is_a_stored_letter() -> None:
    message = classify(letter(s3={"bucket": "b", "key": "dead-letters/1.json", "size": 300_000}))
    assert isinstance(message, StoredLetter)
    assert (message.bucket, message.key, message.place) == ("b", "dead-letters/1.json", "s3://b/dead-letters/1.json")
    assert message.kind is Kind.RECORD
    assert describe(message) == "record 100"


def test_a_stored_letter_without_bucket_or_key_says_so() -> None:
    message = classify(letter(s3={"size": 1}))
    assert isinstance(message, StoredLetter)
    assert (message.bucket, message.key) == (None, None)


def test_an_on_failure_record_is_a_batch_pointer() -> None:
    message = classify(json.dumps(POINTER))
    assert isinstance(message, BatchPointer)
    assert (message.shard_id, message.start, message.end) == ("shardId-1", "100", "200")
    assert message.batch_size == 3
    assert message.condition == "RetryAttemptsExhausted"
    assert message.first_arrival == "2026-01-01T00:00:00Z"
    assert message.missing() is None
    assert describe(message) == "shardId-1 100..200"


def test_a_pointer_names_the_first_field_it_lacks() -> None:
    lacking = ("shardId", "endSequenceNumber")
    info = {k: v for k, v in POINTER["DDBStreamBatchInfo"].items() if k not in lacking}
    message = classify(json.dumps({"DDBStreamBatchInfo": info}))
    assert isinstance(message, BatchPointer)
    assert message.missing() == "shardId"
    assert message.condition == "unknown condition"
    assert describe(message) == "? 100..?"


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", '{"reason": "no record"}', '{"kind": "other", "s3": {}, "reason": "r"}',
             "[" * 100_000 + "]" * 100_000],
)  # fmt: skip
def test_anything_else_is_unrecognised(body: str) -> None:
    message = classify(body)
    assert message == Unrecognised()
    assert describe(message) == "unrecognised"


# --- verdicts ---------------------------------------------------------------------------------


class FakeIndexer:
    """Stands in for StreamIndexer: answers ``process`` with the given counts."""

    def __init__(self, settings: Settings, held: Any = None, **counts: Any) -> None:
        self.settings = settings
        self.held = held
        self.result = SimpleNamespace(
            failed_sequence_numbers=[], poison=0, indexed=0, deleted=0, skipped=0, stale=0, superseded=0
        )
        for name, value in counts.items():
            setattr(self.result, name, value)
        self.calls: list[Sequence[object]] = []

    def process(self, records: Sequence[object], remaining_ms: Callable[[], int]) -> Any:
        self.calls.append(records)
        if self.held is not None and self.result.poison:
            self.held.send([DeadLetter(cast(Any, records[0]), "mapper_parsing_exception: value 'secret'",
                                       "opensearch_rejected", "100", None)])  # fmt: skip
        return self.result


def settings_of(run: Replay) -> Settings:
    assert run.dlq_indexer is not None
    return run.dlq_indexer.settings


@pytest.fixture
def run() -> Replay:
    settings = Settings.from_env(base_env("items", "https://sqs.eu-west-1.amazonaws.com/1/dlq"))
    return Replay.indexing(settings, cast(Any, None), cast(Any, None), region="eu-west-1")


def test_a_record_opensearch_did_not_take_stops_the_run(run: Replay) -> None:
    run.dlq_indexer = cast(Any, FakeIndexer(settings_of(run), failed_sequence_numbers=["100"]))
    verdict = run.handle(classify(letter(record=RECORD)))
    assert verdict.stop and not verdict.delete
    assert verdict.reason == "not sent (OpenSearch unreachable, throttling or out of time)"


def test_a_still_poison_record_is_kept_without_its_values_and_the_run_goes_on(run: Replay) -> None:
    run.dlq_indexer = cast(Any, FakeIndexer(settings_of(run), run.held, poison=1))
    verdict = run.handle(classify(letter(record=RECORD)))
    assert not verdict.delete and not verdict.stop
    assert verdict.reason == "still poison: opensearch_rejected: mapper_parsing_exception: value '…'"


def test_a_handled_record_is_deleted_and_counted(run: Replay) -> None:
    indexer = FakeIndexer(settings_of(run), indexed=1)
    run.dlq_indexer = cast(Any, indexer)
    assert run.handle(classify(letter(record=RECORD))) == Verdict(True)
    assert indexer.calls == [[RECORD]]
    assert run.report.replayed == 1


def test_a_pointer_without_its_range_is_kept_without_reading_the_stream(run: Replay) -> None:
    info = {k: v for k, v in POINTER["DDBStreamBatchInfo"].items() if k != "startSequenceNumber"}
    verdict = run.handle(classify(json.dumps({"DDBStreamBatchInfo": info})))
    assert verdict == Verdict(False, "batch pointer without startSequenceNumber")


def test_on_failure_queue_keeps_record_letters(run: Replay) -> None:
    run.pointers_only = True
    verdict = run.handle(classify(letter(record=RECORD)))
    assert verdict == Verdict(False, "a record-DLQ message, but --on-failure-queue expects batch pointers")


def test_an_unrecognised_message_is_kept(run: Replay) -> None:
    verdict = run.handle(Unrecognised())
    assert verdict == Verdict(
        False, "unrecognised message (neither a record-DLQ message nor a batch pointer)"
    )
