"""dlq: poison records reach the record DLQ whole, 10 per SQS batch, or the failure names them all."""

from __future__ import annotations

import base64
import copy
import datetime
import json
import re
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from ddbsync.dlq import DeadLetter, LetterBucket, send_dead_letters
from ddbsync.errors import DeadLetterError
from tests.support import RecordFactory, load_event

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

REGION = "eu-west-1"


class SpySQS:
    """The moto SQS client, recording each send_message_batch call (and optionally failing entries)."""

    def __init__(self, fail_ids: dict[int, set[str]] | None = None) -> None:
        self.client = boto3.client("sqs", region_name=REGION)
        self.batches: list[list[SendMessageBatchRequestEntryTypeDef]] = []
        self.fail_ids = fail_ids or {}

    def send_message_batch(self, QueueUrl: str, Entries: list[SendMessageBatchRequestEntryTypeDef]) -> Any:
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


# --- the encoding: compact UTF-8 JSON that SQS accepts -------------------------------------


def sqs_accepts(text: str) -> bool:
    """The characters SQS allows in a message (SQS API reference, SendMessage)."""
    return all(
        c in "\t\n\r"
        or 0x20 <= ord(c) <= 0xD7FF
        or 0xE000 <= ord(c) <= 0xFFFD
        or 0x10000 <= ord(c) <= 0x10FFFF
        for c in text
    )


def test_non_ascii_text_travels_as_utf8_not_as_escapes() -> None:
    record = RecordFactory().record("INSERT", "a", "1", {"text": "😀" * 1000, "name": "Müller"})
    body = DeadLetter(record, "r", "rejected", "1").body()
    assert "😀" * 1000 in body and "Müller" in body
    # 4 bytes an emoji, not the 12 of "\ud83d\ude00"
    assert len(body.encode("utf-8")) < 4 * 1000 + 2000
    assert json.loads(body)["record"] == record
    assert ", " not in body and '": ' not in body  # compact separators


@pytest.mark.parametrize(
    "text",
    ["lone \ud800 high", "lone \udfff low", "\udc00\ud800 reversed pair", "not a character \uffff",
     "\ufffe BOM-like", "controls \x00\x01\x1f\x7f", "separators \u2028\u2029", "astral 😀 ok"],
)  # fmt: skip
def test_characters_sqs_refuses_are_escaped_and_the_record_round_trips(text: str, dlq_url: str) -> None:
    record = RecordFactory().record("INSERT", "a", "1", raw_image={text: {"S": text}})
    body = DeadLetter(record, "r", "rejected", "1").body()
    assert sqs_accepts(body)
    body.encode("utf-8")  # strict: no surrogate left
    assert json.loads(body)["record"] == record
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [
        DeadLetter(record, "r", "rejected", "1")
    ])  # fmt: skip
    (message,) = receive_all(dlq_url)
    assert message["body"]["record"] == record


def test_batches_are_sized_by_utf8_bytes_with_attributes(dlq_url: str) -> None:
    # 60,000 "é" are 60,000 characters but 120,000 UTF-8 bytes: two such letters fill a batch.
    sent = [
        DeadLetter({"pad": "é" * 60_000, "i": i}, "r", "rejected", str(10**20 + i)) for i in range(5)
    ]
    sqs = SpySQS()
    send_dead_letters(sqs, dlq_url, sent)  # type: ignore[arg-type]
    sizes = [
        [len(e["MessageBody"].encode("utf-8")) + len("error_type") + len("String") + len("rejected")
         for e in batch]
        for batch in sqs.batches
    ]  # fmt: skip
    assert all(sum(batch) <= 262_144 for batch in sizes)
    assert [len(batch) for batch in sizes] == [2, 2, 1]
    assert {m["body"]["record"]["i"] for m in receive_all(dlq_url)} == set(range(5))


# --- letters too big for SQS: stored whole in S3 -----------------------------------------


def big_record() -> dict[str, Any]:
    """A MODIFY whose NewImage and OldImage each hold a 400 KB binary value."""
    record: dict[str, Any] = load_event("modify.json")["Records"][0]
    blob_new = base64.b64encode(bytes(range(256)) * 1200).decode()  # 307,200 bytes -> 409,600 chars
    blob_old = base64.b64encode(bytes(reversed(range(256))) * 1200).decode()
    record["dynamodb"]["NewImage"]["blob"] = {"B": blob_new}
    record["dynamodb"]["OldImage"]["blob"] = {"B": blob_old}
    return record


def stored_objects(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_a_letter_too_big_for_sqs_is_stored_whole_in_s3_behind_a_pointer(
    dlq_url: str, letter_bucket: str
) -> None:
    record = big_record()
    seq = record["dynamodb"]["SequenceNumber"]
    letter = DeadLetter(copy.deepcopy(record), "document is 900000 bytes, over MAX_DOCUMENT_BYTES=65536",
                        "document_too_large", seq, "cat-shoes|item-001", None, "products")  # fmt: skip
    small = letters(1)[0]
    bucket = LetterBucket(letter_bucket, s3=boto3.client("s3", region_name=REGION))
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [letter, small], bucket)

    messages = {m["body"]["sequence_number"]: m for m in receive_all(dlq_url)}
    assert messages[small.sequence_number]["body"]["record"] == small.record
    pointer = messages[seq]["body"]
    assert "record" not in pointer
    assert "blob" not in json.dumps(pointer)  # no item data in the queue
    assert pointer["kind"] == "ddbsync.poison_record"
    assert pointer["reason"] == letter.reason
    assert pointer["error_type"] == "document_too_large"
    assert pointer["doc_id"] == "cat-shoes|item-001"
    assert pointer["index"] == "products"
    assert pointer["failed_at"]
    assert messages[seq]["attributes"]["error_type"]["StringValue"] == "document_too_large"
    ((key, data),) = stored_objects(letter_bucket).items()
    day = datetime.datetime.fromisoformat(pointer["failed_at"])
    assert re.fullmatch(rf"dead-letters/{day:%Y/%m/%d}/[0-9a-f-]{{36}}\.json", key)
    assert pointer["s3"] == {"bucket": letter_bucket, "key": key, "bytes": len(data)}
    whole = json.loads(data)
    assert whole["record"] == record  # both images intact: nothing dropped, nothing truncated
    assert whole["record"]["dynamodb"]["OldImage"]["blob"] == record["dynamodb"]["OldImage"]["blob"]
    assert {k: v for k, v in whole.items() if k != "record"} == {
        k: v for k, v in pointer.items() if k != "s3"
    }


def test_a_letter_too_big_without_a_bucket_is_refused_by_name_and_the_rest_delivered(dlq_url: str) -> None:
    record = big_record()
    big = DeadLetter(record, "too big", "document_too_large", record["dynamodb"]["SequenceNumber"])
    small = letters(2)
    with pytest.raises(DeadLetterError) as info:
        send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [small[0], big, small[1]])
    assert info.value.failed_ids == [big.sequence_number]
    assert "over SQS's 262144-byte message limit" in str(info.value)
    assert "DEAD_LETTER_BUCKET is not set" in str(info.value)
    assert len(receive_all(dlq_url)) == 2
    assert "OldImage" in record["dynamodb"], "the caller's record must not be changed"


def test_a_letter_s3_refuses_is_not_accepted(dlq_url: str) -> None:
    record = big_record()
    big = DeadLetter(record, "too big", "document_too_large", record["dynamodb"]["SequenceNumber"])
    bucket = LetterBucket("no-such-bucket", s3=boto3.client("s3", region_name=REGION))
    with pytest.raises(DeadLetterError) as info:
        send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [big], bucket)
    assert info.value.failed_ids == [big.sequence_number]
    assert "cannot store" in str(info.value) and "s3://no-such-bucket" in str(info.value)
    assert receive_all(dlq_url) == []


def test_an_object_whose_pointer_the_queue_refuses_is_removed(dlq_url: str, letter_bucket: str) -> None:
    record = big_record()
    big = DeadLetter(record, "too big", "document_too_large", record["dynamodb"]["SequenceNumber"])
    bucket = LetterBucket(letter_bucket, s3=boto3.client("s3", region_name=REGION))
    with pytest.raises(DeadLetterError) as info:
        send_dead_letters(SpySQS(fail_ids={0: {"0"}}), dlq_url, [big], bucket)  # type: ignore[arg-type]
    assert info.value.failed_ids == [big.sequence_number]
    assert stored_objects(letter_bucket) == {}


def test_a_kms_key_encrypts_the_stored_letter(dlq_url: str, letter_bucket: str) -> None:
    kms = boto3.client("kms", region_name=REGION)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    record = big_record()
    big = DeadLetter(record, "too big", "document_too_large", record["dynamodb"]["SequenceNumber"])
    s3 = boto3.client("s3", region_name=REGION)
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, [big],
                      LetterBucket(letter_bucket, kms_key_id=key_arn, s3=s3))  # fmt: skip
    (key,) = stored_objects(letter_bucket)
    head = s3.head_object(Bucket=letter_bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn
