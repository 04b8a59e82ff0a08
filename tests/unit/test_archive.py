"""The archiver (flow 5): archive lines, Firehose batching and retries, dead letters, accounting.

Firehose is a fake that records every PutRecordBatch call and is scripted to refuse some
entries or raise; the record DLQ is a fake sink, or moto's SQS and S3 where the letter's
way matters.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ddbsync.accounting import Disposition
from ddbsync.archive.archiver import TOO_LARGE, Archiver, ArchiveResult
from ddbsync.archive.handler import make_handler
from ddbsync.archive.lines import MAX_RECORD_BYTES, TABLE_FIELD, archive_line, table_name_of
from ddbsync.archive.sender import MAX_BATCH_BYTES, Entry, batches
from ddbsync.archive.settings import ArchiveSettings
from ddbsync.dlq import DeadLetter
from ddbsync.errors import ConfigError, DeadLetterError, RecordError
from ddbsync.mapping import map_record
from tests.conftest import dlq_messages
from tests.support import STREAM_ARN, FakeContext, RecordFactory, event, load_event

SETTINGS = ArchiveSettings(
    archive_stream_name="archive", record_dlq_url="https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    region="eu-west-1", timeout_margin_ms=1000, retry_base_ms=10, retry_max_ms=200,
)  # fmt: skip

# One scripted answer per call: an exception to raise, or the entry indices to refuse.
Step = BaseException | set[int]


class FakeFirehose:
    """Records each PutRecordBatch call's lines; answers from ``script``, then accepts everything."""

    def __init__(self, script: Sequence[Step] = (), on_call: Callable[[int], None] | None = None) -> None:
        self.script = list(script)
        self.calls: list[list[bytes]] = []
        self.on_call = on_call

    def put_record_batch(
        self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> Mapping[str, Any]:
        assert DeliveryStreamName == "archive"
        self.calls.append([r["Data"] for r in Records])
        if self.on_call is not None:
            self.on_call(len(self.calls))
        step = self.script.pop(0) if self.script else set()
        if isinstance(step, BaseException):
            raise step
        answers: list[dict[str, str]] = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"} if i in step
            else {"RecordId": f"id-{i}"}
            for i in range(len(Records))
        ]  # fmt: skip
        return {"FailedPutCount": len(step), "Encrypted": False, "RequestResponses": answers}

    def sent(self) -> list[bytes]:
        return [line for call in self.calls for line in call]


class FakeDeadLetters:
    def __init__(self, refuse: bool = False) -> None:
        self.letters: list[DeadLetter] = []
        self.refuse = refuse

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if self.refuse:
            raise DeadLetterError("queue gone", [letter.sequence_number for letter in letters])
        self.letters.extend(letters)


class Clock:
    """Remaining invocation time, which a test can run down."""

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining = remaining_ms

    def __call__(self) -> int:
        return self.remaining


def archiver(
    firehose: FakeFirehose, dead_letters: FakeDeadLetters | None = None
) -> tuple[Archiver, list[float]]:
    slept: list[float] = []
    a = Archiver(
        SETTINGS, firehose, boto3.client("sqs", region_name="eu-west-1"),
        dead_letters=dead_letters or FakeDeadLetters(), sleep=slept.append, rng=lambda: 1.0,
    )  # fmt: skip
    return a, slept


def records(n: int, **image: Any) -> list[dict[str, Any]]:
    f = RecordFactory()
    return [f.record("INSERT", f"k{i}", "s", {"n": i, **image}) for i in range(n)]


def sized_record(size: int) -> dict[str, Any]:
    """A record whose archive line is exactly ``size`` bytes."""
    record = records(1, pad="")[0]
    base = len(archive_line(record))
    record["dynamodb"]["NewImage"]["pad"] = {"S": "x" * (size - base)}
    assert len(archive_line(record)) == size
    return record


def assert_accounted_once(result: ArchiveResult) -> None:
    assert result.gaps() == []
    assert result.archived + result.dead_lettered + result.unsent == result.received


def seqs(rs: Sequence[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in rs]


# --- archive lines -----------------------------------------------------------------------


def test_a_line_is_the_record_as_delivered_plus_its_table_without_a_newline() -> None:
    record = load_event("insert.json")["Records"][0]
    before = copy.deepcopy(record)
    line = archive_line(record)
    assert not line.endswith(b"\n")
    assert b"\n" not in line and b": " not in line  # compact
    assert json.loads(line) == {**before, TABLE_FIELD: "demo-products"}
    assert record == before  # the record itself is not changed


def test_a_line_keeps_exactly_the_fields_present() -> None:
    record = load_event("ttl_remove.json")["Records"][0]
    loaded = json.loads(archive_line(record))
    assert set(loaded) == set(record) | {TABLE_FIELD}
    assert loaded["dynamodb"] == record["dynamodb"]
    assert loaded["userIdentity"] == record["userIdentity"]


def test_non_ascii_text_is_utf8_in_the_line() -> None:
    record = records(1, name="caf\u00e9 \U0001f600")[0]
    assert "caf\u00e9 \U0001f600".encode() in archive_line(record)


@pytest.mark.parametrize(
    ("arn", "table"),
    [
        (STREAM_ARN, "t"),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/demo-products/stream/2024-05-01T09:30:15.123",
         "demo-products"),
        ("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/My.Table_1/stream/2026-01-01T00:00:00.000",
         "My.Table_1"),
    ],
)  # fmt: skip
def test_the_table_name_comes_from_the_stream_arn(arn: str, table: str) -> None:
    assert table_name_of(arn) == table


@pytest.mark.parametrize(
    "arn", [None, 7, "", "arn:aws:dynamodb:us-east-1:123456789012:table/t1", "arn:aws:sqs:x:1:q"]
)
def test_a_record_without_a_stream_arn_cannot_be_a_line(arn: object) -> None:
    record = records(1)[0]
    record["eventSourceARN"] = arn
    with pytest.raises(RecordError, match="eventSourceARN"):
        archive_line(record)


def test_a_value_json_cannot_hold_is_a_record_error() -> None:
    record = records(1)[0]
    record["dynamodb"]["ApproximateCreationDateTime"] = 2**70
    with pytest.raises(RecordError, match="JSON"):
        archive_line(record)
    with pytest.raises(RecordError, match="object"):
        archive_line(["not", "a", "record"])


def test_a_line_read_back_maps_to_the_same_change_as_the_record() -> None:
    """The rebuild will read lines with the indexer's code: a line must map as its record does."""
    originals = [
        r for name in ("insert.json", "modify.json", "remove.json", "ttl_remove.json", "same_key_batch.json",
                       "all_types.json")
        for r in load_event(name)["Records"]
    ]  # fmt: skip
    for record in originals:
        line = orjson.loads(archive_line(record))
        for ttl in ("delete", "keep"):
            want = map_record(record, "pk", "sk", ttl)
            got = map_record(line, "pk", "sk", ttl)
            assert dataclasses.replace(got, record=None) == dataclasses.replace(want, record=None)


# --- batching --------------------------------------------------------------------------


def test_batches_hold_at_most_500_records() -> None:
    rs = records(1201)
    firehose = FakeFirehose()
    result = archiver(firehose)[0].process(rs, Clock())
    assert [len(c) for c in firehose.calls] == [500, 500, 201]
    assert firehose.sent() == [archive_line(r) for r in rs]
    assert result.response() == {"batchItemFailures": []}
    assert result.archived == 1201


def test_batches_hold_at_most_4_mib() -> None:
    rs = [sized_record(900_000) for _ in range(10)]
    firehose = FakeFirehose()
    result = archiver(firehose)[0].process(rs, Clock())
    assert [len(c) for c in firehose.calls] == [4, 4, 2]
    assert all(sum(map(len, c)) <= MAX_BATCH_BYTES for c in firehose.calls)
    assert result.archived == 10


def test_a_batch_fills_to_exactly_4_mib_and_no_further() -> None:
    quarter = MAX_BATCH_BYTES // 4
    entries = [Entry(i, b"x" * quarter) for i in range(4)] + [Entry(4, b"x")]
    assert [[e.position for e in g] for g in batches(entries)] == [[0, 1, 2, 3], [4]]


# --- the 1,000 KiB record limit ---------------------------------------------------------------


def test_a_line_exactly_at_the_record_limit_is_archived() -> None:
    record = sized_record(MAX_RECORD_BYTES)
    firehose, dead = FakeFirehose(), FakeDeadLetters()
    result = archiver(firehose, dead)[0].process([record], Clock())
    assert firehose.sent() == [archive_line(record)]
    assert dead.letters == []
    assert result.dispositions == [Disposition.APPLIED]


def test_a_line_one_byte_over_goes_whole_to_the_dlq_with_its_reason() -> None:
    small, big = records(1)[0], sized_record(MAX_RECORD_BYTES + 1)
    firehose, dead = FakeFirehose(), FakeDeadLetters()
    result = archiver(firehose, dead)[0].process([big, small], Clock())
    assert firehose.sent() == [archive_line(small)]
    (letter,) = dead.letters
    assert letter.record == big  # the whole record
    assert letter.reason == "archive line of 1024001 bytes is over Firehose's 1,000 KiB record limit"
    assert letter.error_type == TOO_LARGE
    assert letter.sequence_number == big["dynamodb"]["SequenceNumber"]
    assert result.dispositions == [Disposition.DEAD_LETTERED, Disposition.APPLIED]
    assert result.response() == {"batchItemFailures": []}


def test_a_too_large_record_reaches_the_dlq_whole_through_s3(dlq_url: str, letter_bucket: str) -> None:
    big = sized_record(MAX_RECORD_BYTES + 1)
    settings = dataclasses.replace(SETTINGS, record_dlq_url=dlq_url, dead_letter_bucket=letter_bucket)
    a = Archiver(settings, FakeFirehose(), boto3.client("sqs", region_name="eu-west-1"))
    result = a.process([big], Clock())
    assert result.dispositions == [Disposition.DEAD_LETTERED]
    (pointer,) = dlq_messages(dlq_url)
    assert pointer["reason"].startswith("archive line of 1024001 bytes")
    s3 = boto3.client("s3", region_name="eu-west-1")
    stored = json.loads(s3.get_object(Bucket=letter_bucket, Key=pointer["s3"]["key"])["Body"].read())
    assert stored["record"] == big


def test_a_record_the_dlq_refuses_is_a_batch_item_failure() -> None:
    ok, big = records(1)[0], sized_record(MAX_RECORD_BYTES + 1)
    result = archiver(FakeFirehose(), FakeDeadLetters(refuse=True))[0].process([ok, big], Clock())
    assert result.dispositions == [Disposition.APPLIED, Disposition.FAILED]
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": big["dynamodb"]["SequenceNumber"]}]}


def test_a_record_that_cannot_be_a_line_is_dead_lettered() -> None:
    bad, ok = records(2)
    bad["eventSourceARN"] = "not an arn"
    dead = FakeDeadLetters()
    result = archiver(FakeFirehose(), dead)[0].process([bad, ok], Clock())
    assert [letter.record for letter in dead.letters] == [bad]
    assert dead.letters[0].error_type == "RecordError"
    assert result.dispositions == [Disposition.DEAD_LETTERED, Disposition.APPLIED]


# --- retries -------------------------------------------------------------------------------


def test_refused_entries_alone_are_sent_again() -> None:
    rs = records(6)
    firehose = FakeFirehose([{1, 4}])
    a, slept = archiver(firehose)
    result = a.process(rs, Clock())
    assert len(firehose.calls) == 2
    assert firehose.calls[1] == [archive_line(rs[1]), archive_line(rs[4])]
    assert result.retries == 1 and slept == [0.01]
    assert result.dispositions == [Disposition.APPLIED] * 6
    assert result.response() == {"batchItemFailures": []}


def test_retry_rounds_back_off_exponentially() -> None:
    rs = records(3)
    firehose = FakeFirehose([{0, 1, 2}, {0, 2}, {1}])
    a, slept = archiver(firehose)
    result = a.process(rs, Clock())
    assert firehose.calls == [[archive_line(r) for r in rs]] * 2 + [
        [archive_line(rs[0]), archive_line(rs[2])], [archive_line(rs[2])]
    ]
    assert slept == [0.01, 0.02, 0.04]
    assert result.retries == 3 and result.archived == 3


@pytest.mark.parametrize(
    "error",
    [
        ClientError(
            {"Error": {"Code": "ServiceUnavailableException", "Message": "throttled"}}, "PutRecordBatch"
        ),
        EndpointConnectionError(endpoint_url="https://firehose.eu-west-1.amazonaws.com"),
    ],
)
def test_a_failed_call_is_sent_again_whole(error: Exception) -> None:
    rs = records(3)
    firehose = FakeFirehose([error])
    result = archiver(firehose)[0].process(rs, Clock())
    assert firehose.calls == [[archive_line(r) for r in rs]] * 2
    assert result.retries == 1 and result.archived == 3


def test_what_is_unsent_when_time_runs_out_is_reported_exactly() -> None:
    rs = records(5)
    clock = Clock(60_000)

    def run_down(call: int) -> None:
        clock.remaining = 1_005  # 5 ms left past the margin: less than the next backoff (10 ms)

    firehose = FakeFirehose([{0, 3}], on_call=run_down)
    a, slept = archiver(firehose)
    result = a.process(rs, clock)
    assert len(firehose.calls) == 1 and slept == []
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs([rs[0], rs[3]])]}
    assert result.dispositions == [Disposition.FAILED, Disposition.APPLIED, Disposition.APPLIED,
                                   Disposition.FAILED, Disposition.APPLIED]  # fmt: skip
    assert_accounted_once(result)


def test_batches_not_yet_sent_when_time_is_up_are_reported() -> None:
    rs = records(600)
    clock = Clock(60_000)

    def expire(call: int) -> None:
        clock.remaining = 1_000  # nothing left past the margin

    firehose = FakeFirehose(on_call=expire)
    result = archiver(firehose)[0].process(rs, clock)
    assert [len(c) for c in firehose.calls] == [500]
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs(rs[500:])]}


def test_an_unsent_record_without_a_sequence_number_fails_the_whole_batch() -> None:
    rs = records(2)
    del rs[1]["dynamodb"]["SequenceNumber"]
    firehose = FakeFirehose([{1}], on_call=lambda call: None)
    clock = Clock(1_005)
    result = archiver(firehose)[0].process(rs, clock)
    assert result.response() == {"batchItemFailures": [{"itemIdentifier": ""}]}


def test_every_record_is_accounted_once_in_a_mixed_batch() -> None:
    rs = records(700)
    rs[3] = sized_record(MAX_RECORD_BYTES + 1)
    rs[10]["eventSourceARN"] = None
    clock = Clock(60_000)
    failure = ClientError({"Error": {"Code": "InternalFailure"}}, "PutRecordBatch")
    script: list[Step] = [{0, 1, 2}, failure, {0}]

    def run_down(call: int) -> None:
        if call == 3:
            clock.remaining = 1_001

    firehose = FakeFirehose(script, on_call=run_down)
    dead = FakeDeadLetters()
    result = archiver(firehose, dead)[0].process(rs, clock)
    assert_accounted_once(result)
    assert result.dead_lettered == 2 and len(dead.letters) == 2
    # call 1 refuses 3 of the first 500, call 2 (the other 198) raises, call 3 retries both: 201
    # entries, of which the first is refused again and time is up.
    assert [len(c) for c in firehose.calls] == [500, 198, 201]
    assert result.unsent == 1
    assert result.failed_sequence_numbers == seqs([rs[0]])
    archived = [json.loads(line)["dynamodb"]["SequenceNumber"] for line in firehose.sent()]
    assert len(set(archived) - {rs[0]["dynamodb"]["SequenceNumber"]}) == result.archived == 697


# --- the handler and its settings -----------------------------------------------------------


@pytest.mark.parametrize("bad", [[], "x", {"records": []}, {"Records": {}}])
def test_a_malformed_event_raises_a_record_error(bad: Any) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    handler = make_handler(SETTINGS, firehose=FakeFirehose(), sqs=sqs)
    with pytest.raises(RecordError, match="Records list"), pytest.warns(UserWarning, match="metrics"):
        handler(bad, FakeContext())


def test_the_handler_archives_an_event_and_reports_nothing_failed() -> None:
    firehose = FakeFirehose()
    handler = make_handler(SETTINGS, firehose=firehose, sqs=boto3.client("sqs", region_name="eu-west-1"))
    sample = load_event("same_key_batch.json")
    assert handler(sample, FakeContext()) == {"batchItemFailures": []}
    assert firehose.sent() == [archive_line(r) for r in sample["Records"]]
    assert handler(event([]), FakeContext()) == {"batchItemFailures": []}


def test_settings_name_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        ArchiveSettings.from_env({"ARCHIVE_STREAM_NAME": "arn:aws:firehose:x", "RETRY_BASE_MS": "9",
                                  "RETRY_MAX_MS": "5", "DEAD_LETTER_KMS_KEY_ID": "k"})  # fmt: skip
    problems = "\n".join(info.value.problems)
    for name in ("ARCHIVE_STREAM_NAME", "RECORD_DLQ_URL", "RETRY_BASE_MS", "DEAD_LETTER_KMS_KEY_ID"):
        assert name in problems


def test_settings_from_the_environment() -> None:
    s = ArchiveSettings.from_env({"ARCHIVE_STREAM_NAME": "ddbsync-archive", "RECORD_DLQ_URL": "https://q",
                                  "DEAD_LETTER_BUCKET": "letters", "TIMEOUT_MARGIN_MS": "5000",
                                  "AWS_REGION": "eu-west-1"})  # fmt: skip
    assert s == ArchiveSettings("ddbsync-archive", "https://q", "eu-west-1", "letters", None, 5000)
