"""dlq: poison records reach the record DLQ whole, 10 per SQS batch, or the failure names them all."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from ddbsync.dlq import DeadLetter, send_dead_letters
from ddbsync.errors import DeadLetterError
from tests.support import RecordFactory, load_event

REGION = "eu-west-1"


class SpySQS:
    """The moto SQS client, recording each send_message_batch call (and optionally failing entries)."""

    def __init__(self, fail_ids: dict[int, set[str]] | None = None) -> None:
        self.client = boto3.client("sqs", region_name=REGION)
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_ids = fail_ids or {}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.batches.append(Entries)
        failing = self.fail_ids.get(len(self.batches) - 1, set())
        response = self.client.send_message_batch(
            QueueUrl=QueueUrl, Entries=[e for e in Entries if e["Id"] not in failing]
        )
        failed = [{"Id": i, "SenderFault": True, "Code": "Injected", "Message": "injected"} for i in failing]
        return {**response, "Failed": response.get("Failed", []) + failed}


def receive_all(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        messages = got.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append({"body": json.loads(m["Body"]), "attributes": m.get("MessageAttributes", {})})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def letters(n: int) -> list[DeadLetter]:
    factory = RecordFactory()
    return [
        DeadLetter(
            record=factory.record("INSERT", f"k{i}", image={"i": i}),
            reason=f"reason {i}",
            error_type="RecordError",
            sequence_number=str(10**20 + i),
            doc_id=f"k{i}|s",
            status=400,
            index="products-v1",
        )
        for i in range(n)
    ]


def test_letters_are_sent_ten_per_batch(dlq_url: str) -> None:
    sqs = SpySQS()
    send_dead_letters(sqs, dlq_url, letters(25))  # type: ignore[arg-type]
    assert [len(batch) for batch in sqs.batches] == [10, 10, 5]
    assert len(receive_all(dlq_url)) == 25


def test_each_message_holds_the_whole_record_and_why_it_failed(dlq_url: str) -> None:
    record = load_event("poison.json")["Records"][2]
    letter = DeadLetter(
        record=copy.deepcopy(record),
        reason="unknown DynamoDB type tag 'X' at price",
        error_type="UnknownTypeTagError",
        sequence_number=record["dynamodb"]["SequenceNumber"],
        doc_id="cat-socks|item-012",
    )
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [letter])
    (message,) = receive_all(dlq_url)
    body = message["body"]
    assert body["record"] == record
    assert body["reason"] == "unknown DynamoDB type tag 'X' at price"
    assert body["error_type"] == "UnknownTypeTagError"
    assert body["sequence_number"] == "4466350000000000012345678999"
    assert body["doc_id"] == "cat-socks|item-012"
    assert body["kind"] == "ddbsync.poison_record"
    assert body["failed_at"]
    assert "truncated" not in body
    assert message["attributes"]["error_type"]["StringValue"] == "UnknownTypeTagError"


def test_every_letter_arrives_with_its_own_reason(dlq_url: str) -> None:
    sent = letters(12)
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, sent)
    received = {m["body"]["sequence_number"]: m["body"] for m in receive_all(dlq_url)}
    assert set(received) == {letter.sequence_number for letter in sent}
    for letter in sent:
        assert received[letter.sequence_number]["reason"] == letter.reason
        assert received[letter.sequence_number]["record"] == letter.record
        assert received[letter.sequence_number]["status"] == 400
        assert received[letter.sequence_number]["index"] == "products-v1"


def test_no_letters_send_nothing(dlq_url: str) -> None:
    sqs = SpySQS()
    send_dead_letters(sqs, dlq_url, [])  # type: ignore[arg-type]
    assert sqs.batches == []


def test_a_queue_that_does_not_exist_fails_naming_every_record(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="exists")["QueueUrl"].replace("exists", "missing")
    sent = letters(12)
    with pytest.raises(DeadLetterError) as info:
        send_dead_letters(sqs, url, sent)
    assert info.value.failed_ids == [letter.sequence_number for letter in sent]
    assert "12 record(s)" in str(info.value)


def test_entries_the_queue_refuses_are_named_and_the_rest_are_delivered(dlq_url: str) -> None:
    sent = letters(15)
    sqs = SpySQS(fail_ids={0: {"3"}, 1: {"0", "4"}})
    with pytest.raises(DeadLetterError) as info:
        send_dead_letters(sqs, dlq_url, sent)  # type: ignore[arg-type]
    assert sorted(info.value.failed_ids) == sorted(
        [sent[3].sequence_number, sent[10].sequence_number, sent[14].sequence_number]
    )
    assert len(receive_all(dlq_url)) == 12


def test_an_oversized_record_drops_its_old_image_and_says_so(dlq_url: str) -> None:
    record: dict[str, Any] = load_event("modify.json")["Records"][0]
    record["dynamodb"]["OldImage"]["blob"] = {"S": "x" * (300 * 1024)}
    letter = DeadLetter(record, "too big", "RecordError", record["dynamodb"]["SequenceNumber"])
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [letter])
    (message,) = receive_all(dlq_url)
    body = message["body"]
    assert body["truncated"] == ["dynamodb.OldImage"]
    assert "OldImage" not in body["record"]["dynamodb"]
    assert body["record"]["dynamodb"]["NewImage"] == record["dynamodb"]["NewImage"]
    assert body["record"]["dynamodb"]["Keys"] == record["dynamodb"]["Keys"]
    assert body["record"]["eventName"] == "MODIFY"
    assert "OldImage" in record["dynamodb"], "the caller's record must not be changed"


def test_a_small_record_keeps_its_old_image() -> None:
    record = load_event("modify.json")["Records"][0]
    body = json.loads(DeadLetter(record, "r", "RecordError", "1").body())
    assert body["record"] == record
    assert "truncated" not in body


def test_many_large_letters_that_each_fit_are_all_delivered(dlq_url: str) -> None:
    big = []
    for letter in letters(10):
        record = dict(letter.record)  # type: ignore[call-overload]
        record["pad"] = "x" * (200 * 1024)  # 200 KiB each: under the per-message limit
        big.append(DeadLetter(record, letter.reason, letter.error_type, letter.sequence_number))
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, big)
    assert len(receive_all(dlq_url)) == 10
