"""The local event source mapping delivers a moto DynamoDB stream the way Lambda does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ddbsync_local import EsmConfig, EventSourceMapping, LocalContext, sqs_on_failure
from ddbsync_local.demo import create_stream_table

EVENTS = Path(__file__).resolve().parents[2] / "events"
TABLE = "esm-test"

Behaviour = Callable[[list[str]], object]


class StubHandler:
    """Records each invocation's sequence numbers; ``behaviour`` decides the response."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []

    @property
    def calls(self) -> list[list[str]]:
        return [[r["dynamodb"]["SequenceNumber"] for r in e["Records"]] for e in self.events]

    def __call__(self, event: dict[str, Any], context: Any) -> object:
        self.events.append(event)
        self.contexts.append(context)
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        return None if self.behaviour is None else self.behaviour(seqs)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def stream_arn(aws: None) -> str:
    return create_stream_table(boto3.client("dynamodb"), TABLE)


def put(n: int, **extra: Any) -> None:
    item: dict[str, Any] = {"pk": {"S": "p"}, "sk": {"S": f"item-{n:03d}"}, "n": {"N": str(n)}}
    item.update(extra)
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)


def write_items(count: int) -> None:
    for n in range(count):
        put(n)


def esm(stream_arn: str, handler: StubHandler, **config: Any) -> EventSourceMapping:
    return EventSourceMapping(stream_arn, handler, EsmConfig(**config))


def test_records_reach_the_handler_in_order_in_the_lambda_shape(stream_arn: str) -> None:
    put(1, blob={"B": b"\x00\x01\xff"}, blobs={"BS": [b"a", b"b"]}, m={"M": {"x": {"B": b"z"}}})
    put(1, price={"N": "2"})
    boto3.client("dynamodb").delete_item(
        TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "item-001"}}
    )
    write_items(4)
    handler = StubHandler()

    stats = esm(stream_arn, handler, batch_size=3).poll()

    records = [r for e in handler.events for r in e["Records"]]
    assert [r["eventName"] for r in records[:3]] == ["INSERT", "MODIFY", "REMOVE"]
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == 7
    assert [len(e["Records"]) for e in handler.events] == [3, 3, 1]
    assert stats.invocations == 3 and stats.records_completed == 7 and stats.retries == 0

    sample = json.loads((EVENTS / "modify.json").read_text())["Records"][0]
    modify = records[1]
    assert modify.keys() == sample.keys()
    assert modify["dynamodb"].keys() == sample["dynamodb"].keys()
    assert modify["eventVersion"] == "1.1" and modify["eventSource"] == "aws:dynamodb"
    assert modify["eventSourceARN"] == stream_arn and modify["awsRegion"] == "us-east-1"
    assert modify["dynamodb"]["OldImage"]["blob"] == {"B": "AAH/"}
    assert modify["dynamodb"]["OldImage"]["blobs"] == {"BS": ["YQ==", "Yg=="]}
    assert modify["dynamodb"]["OldImage"]["m"] == {"M": {"x": {"B": "eg=="}}}
    assert modify["dynamodb"]["Keys"] == {"pk": {"S": "p"}, "sk": {"S": "item-001"}}
    created = modify["dynamodb"]["ApproximateCreationDateTime"]
    assert isinstance(created, int) and abs(created - time.time()) < 60
    assert "NewImage" not in records[2]["dynamodb"]
    json.dumps(handler.events)  # the event is plain JSON, as Lambda delivers it

    context = handler.contexts[0]
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert context.function_name == "StreamIndexerFunction"
    assert context.invoked_function_arn.endswith(":function:StreamIndexerFunction")
    assert context.memory_limit_in_mb > 0 and context.aws_request_id


def test_a_reported_item_failure_redelivers_from_the_lowest_failed_record_only(
    stream_arn: str,
) -> None:
    write_items(6)
    first_time = True

    def fail_two_records_once(seqs: list[str]) -> object:
        nonlocal first_time
        if first_time:
            first_time = False
            return {"batchItemFailures": [{"itemIdentifier": s} for s in (seqs[4], seqs[2])]}
        return {"batchItemFailures": []}

    handler = StubHandler(fail_two_records_once)
    mapping = esm(stream_arn, handler, batch_size=10)

    stats = mapping.poll()

    first, second = handler.calls
    assert second == first[2:]
    assert stats.retries == 1 and stats.records_delivered == 10 and stats.records_completed == 6
    assert mapping.checkpoints == {next(iter(mapping.checkpoints)): first[-1]}


def test_an_invalid_item_identifier_fails_the_whole_batch(stream_arn: str) -> None:
    write_items(3)
    responses: list[object] = [{"batchItemFailures": [{"itemIdentifier": ""}]}, None]
    handler = StubHandler(lambda seqs: responses.pop(0))

    esm(stream_arn, handler, batch_size=10).poll()

    assert handler.calls[1] == handler.calls[0]


def test_an_exception_with_bisect_splits_the_batch_in_halves(stream_arn: str) -> None:
    write_items(4)
    raised = False

    def raise_once(seqs: list[str]) -> object:
        nonlocal raised
        if not raised:
            raised = True
            raise RuntimeError("OpenSearch unreachable")
        return None

    handler = StubHandler(raise_once)

    stats = esm(stream_arn, handler, batch_size=10, bisect_on_error=True).poll()

    whole, left, right = handler.calls
    assert (left, right) == (whole[:2], whole[2:])
    assert stats.bisections == 1 and stats.retries == 0 and stats.records_completed == 4


def test_bisecting_isolates_a_poison_record_and_only_it_goes_to_on_failure(
    stream_arn: str,
) -> None:
    write_items(8)
    poison: list[str] = []

    def raise_on_poison(seqs: list[str]) -> object:
        if not poison:
            poison.append(seqs[5])
        if poison[0] in seqs:
            raise ValueError("cannot map record")
        return None

    handler = StubHandler(raise_on_poison)
    config = {"batch_size": 10, "bisect_on_error": True, "maximum_retry_attempts": 1}

    stats = esm(stream_arn, handler, **config).poll()

    assert stats.batches_to_on_failure == 1 and stats.records_to_on_failure == 1
    info = stats.on_failure[0]["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison[0]
    assert stats.records_completed == 7
    assert handler.calls.count([poison[0]]) == 2  # first try + one retry


def test_exhausted_retries_send_the_batch_pointer_to_the_on_failure_queue_and_move_on(
    stream_arn: str,
) -> None:
    write_items(4)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="esm-on-failure")["QueueUrl"]
    bad: list[str] = []

    def always_raise_on_first_batch(seqs: list[str]) -> object:
        if not bad:
            bad.extend(seqs)
        if seqs == bad:
            raise RuntimeError("boom")
        return None

    handler = StubHandler(always_raise_on_first_batch)
    mapping = EventSourceMapping(
        stream_arn,
        handler,
        EsmConfig(batch_size=2, maximum_retry_attempts=2),
        on_failure=sqs_on_failure(queue_url),
    )

    stats = mapping.poll()

    assert handler.calls == [bad, bad, bad, handler.calls[3]] and handler.calls[3] != bad
    assert stats.retries == 2 and stats.batches_to_on_failure == 1
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    pointer = json.loads(messages[0]["Body"])
    info = pointer["DDBStreamBatchInfo"]
    shard_id = next(iter(mapping.checkpoints))
    assert info["shardId"] == shard_id and info["streamArn"] == stream_arn
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (bad[0], bad[-1])
    assert info["batchSize"] == 2
    assert pointer["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert pointer["requestContext"]["approximateInvokeCount"] == 3
    assert pointer["responseContext"]["functionError"] == "Unhandled"
    assert "boom" in pointer["reason"]
    assert mapping.checkpoints[shard_id] == handler.calls[3][-1]


def test_a_second_poll_resumes_after_the_checkpoint(stream_arn: str) -> None:
    write_items(3)
    handler = StubHandler()
    mapping = esm(stream_arn, handler, batch_size=10)
    mapping.poll()
    put(10)

    stats = mapping.poll()

    assert stats.invocations == 1 and len(handler.calls[-1]) == 1
    assert int(handler.calls[-1][0]) > int(handler.calls[0][-1])


def test_a_handler_that_overruns_its_timeout_fails_the_batch(stream_arn: str) -> None:
    write_items(1)
    handler = StubHandler(lambda seqs: time.sleep(0.02))

    stats = esm(stream_arn, handler, timeout_ms=1, maximum_retry_attempts=0).poll()

    assert stats.batches_to_on_failure == 1
    assert "timed out" in stats.on_failure[0]["reason"]


def test_the_local_context_counts_down_in_real_time() -> None:
    context = LocalContext(timeout_ms=1_000)
    before = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    after = context.get_remaining_time_in_millis()
    assert 900 < before <= 1_000 and after <= before - 40
