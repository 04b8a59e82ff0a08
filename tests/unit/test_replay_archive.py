"""``ddbsync replay --archive-on-failure-queue``: the archiver's lost batches, archived again.

moto plays SQS, DynamoDB and its stream, and Firehose (a DirectPut stream writing each
PutRecordBatch to one S3 object: see test_archive_moto.py). No OpenSearch is involved: the
re-archive needs none, and the tests run without any OpenSearch settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ddbsync.archive.lines import TABLE_FIELD
from ddbsync.cli import commands as cli
from ddbsync.dlq import DeadLetter, send_dead_letters
from ddbsync.replay import EXIT_KEPT, EXIT_OK, EXIT_SETUP, ranges, replay
from ddbsync_local.esm import EsmConfig, EventSourceMapping, sqs_on_failure
from tests.support import RecordFactory
from tests.unit.test_archive_moto import json_values

REGION = "eu-west-1"
BUCKET = "archive"
STREAM = "ddbsync-archive"
OPTION = "--archive-on-failure-queue"


def _depth(url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(attributes[name]) for name in attributes)


def _archived_lines() -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name=REGION)
    return [
        v for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        for v in json_values(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode())
    ]  # fmt: skip


@pytest.fixture
def archive_env(dlq_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The archiver's environment (as copied from its function), a Firehose stream into S3, and
    no OpenSearch settings at all."""
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": "records/",
        },
    )
    env = {"ARCHIVE_STREAM_NAME": STREAM, "RECORD_DLQ_URL": dlq_url, "TIMEOUT_MARGIN_MS": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("OPENSEARCH_ENDPOINT", "INDEX_ALIAS", "PARTITION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ranges, "CALL_BUDGET_S", 1.5)  # a Firehose that refuses is given up on quickly
    return env


def _failing_archiver(event: dict[str, Any], context: Any) -> object:
    raise ConnectionError("Firehose unreachable")


@pytest.fixture
def pointers(archive_env: dict[str, str]) -> tuple[str, list[str]]:
    """The archive's on-failure queue holding 3 pointers (9 changes of table "orders"), as
    Lambda sends them when the archiver gives up; and the changes' sequence numbers."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    stream_arn = ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    for i in range(7):
        ddb.put_item(TableName="orders", Item={"pk": {"S": f"o{i}"}, "n": {"N": str(i)}})
    ddb.update_item(TableName="orders", Key={"pk": {"S": "o1"}}, UpdateExpression="SET n = :n",
                    ExpressionAttributeValues={":n": {"N": "100"}})  # fmt: skip
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "o2"}})
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="archive-on-failure")["QueueUrl"]
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    esm = EventSourceMapping(stream_arn, _failing_archiver, EsmConfig(batch_size=4, maximum_retry_attempts=0),
                             on_failure=sqs_on_failure(url, sqs), client=streams)  # fmt: skip
    assert esm.poll().batches_to_on_failure == 3
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return url, [r["dynamodb"]["SequenceNumber"] for r in records]


def test_the_pointers_ranges_are_re_archived_and_the_pointers_deleted(
    pointers: tuple[str, list[str]], dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url, sequence_numbers = pointers
    assert len(sequence_numbers) == 9

    assert cli.main(["replay", OPTION, url]) == EXIT_OK

    out = capsys.readouterr().out
    assert f"re-archiving to the Firehose delivery stream {STREAM}" in out
    assert "3 received: 3 deleted, 0 kept (9 records archived, 0 to the record DLQ)" in out
    assert "records archived 9, sent to the record DLQ 0; messages still failing 0" in out
    assert _depth(url) == 0
    lines = _archived_lines()
    assert sorted(line["dynamodb"]["SequenceNumber"] for line in lines) == sorted(sequence_numbers)
    assert {line[TABLE_FIELD] for line in lines} == {"orders"}
    assert [line["eventName"] for line in lines].count("REMOVE") == 1
    assert _depth(dlq_url) == 0


class RefusingFirehose:
    """A Firehose that answers every entry with a throttling error."""

    def __init__(self) -> None:
        self.calls = 0

    def put_record_batch(
        self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> Mapping[str, Any]:
        self.calls += 1
        return {"FailedPutCount": len(Records), "RequestResponses": [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"} for _ in Records
        ]}  # fmt: skip


@pytest.mark.parametrize("how", ["FailedPutCount", "no such stream"])
def test_a_firehose_that_refuses_keeps_the_pointer_and_stops_the_run(
    pointers: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:  # fmt: skip
    url, _ = pointers
    firehose = RefusingFirehose() if how == "FailedPutCount" else None
    if how == "no such stream":
        monkeypatch.setenv("ARCHIVE_STREAM_NAME", "not-the-archive")

    assert replay(url, archive=True, max_messages=1, firehose=firehose) == EXIT_KEPT

    out = capsys.readouterr().out
    assert "not sent: 4 of 4 records (Firehose refused them" in out
    assert "stopping: Firehose stopped accepting records; the rest stays in the queue" in out
    assert "0 deleted, 1 kept" in out
    assert firehose is None or firehose.calls > 1  # retried until the budget ran out
    assert _depth(url) == 3
    assert _archived_lines() == []


def _pointer_body() -> str:
    return json.dumps({
        "requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001700000000000-0000abcd",
            "startSequenceNumber": "100000000000000000100", "endSequenceNumber": "100000000000000000200",
            "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z", "batchSize": 2,
            "streamArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026-01-01T00:00:00.000",
        },
    })  # fmt: skip


def test_a_range_the_stream_no_longer_has_is_kept_with_the_gap_it_leaves(
    archive_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="archive-on-failure")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=_pointer_body())
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    with Stubber(streams) as stub:
        stub.add_client_error("get_shard_iterator", "TrimmedDataAccessException", "trimmed")
        assert replay(url, archive=True, streams=streams) == EXIT_KEPT

    out = capsys.readouterr().out
    assert "the stream no longer has this range" in out
    assert "the archive now has a gap for this window (changes from about 2026-01-01T00:00:00Z)" in out
    assert "a later `ddbsync rebuild --from-archive` would miss these changes" in out
    assert "Rebuild the index from a backfill" in out and "or accept the gap" in out
    assert "ddbsync repair" not in out  # that is the index's way out, not the archive's
    assert _depth(url) == 1


def test_a_record_dlq_message_on_the_archive_queue_is_kept(
    archive_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="archive-on-failure")["QueueUrl"]
    record = RecordFactory().record("INSERT", "a", "1", {"n": 1})
    send_dead_letters(sqs, url, [DeadLetter(record, "x", "rejected", record["dynamodb"]["SequenceNumber"])])

    assert cli.main(["replay", OPTION, url]) == EXIT_KEPT

    out = capsys.readouterr().out
    assert f"a record-DLQ message, but {OPTION} expects batch pointers" in out
    assert _depth(url) == 1
    assert _archived_lines() == []


def test_without_the_archivers_environment_it_exits_2_and_touches_nothing(
    archive_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="archive-on-failure")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=_pointer_body())
    monkeypatch.delenv("ARCHIVE_STREAM_NAME")

    assert cli.main(["replay", OPTION, url]) == EXIT_SETUP

    captured = capsys.readouterr()
    assert "ARCHIVE_STREAM_NAME" in captured.out
    assert "the archiver function's environment" in captured.out
    assert "Traceback" not in captured.out + captured.err
    assert _depth(url) == 1
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages")  # still visible


def test_dry_run_reports_without_settings_and_sends_nothing(
    pointers: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = pointers
    record = RecordFactory().record("INSERT", "a", "1", {"n": 1})
    letter = DeadLetter(record, "x", "rejected", record["dynamodb"]["SequenceNumber"])
    send_dead_letters(boto3.client("sqs", region_name=REGION), url, [letter])
    for name in ("ARCHIVE_STREAM_NAME", "RECORD_DLQ_URL"):
        monkeypatch.delenv(name)

    assert cli.main(["replay", OPTION, url, "--dry-run"]) == EXIT_OK

    out = capsys.readouterr().out
    assert "dry run: 4 message(s) read, nothing sent or deleted" in out
    assert "3 on-failure batch pointer(s)" in out
    assert f"1 record-DLQ message(s) (would be kept: {OPTION} expects batch pointers)" in out
    assert "batch pointers cover 9 stream records" in out and "archive line to Firehose" in out
    assert "through the indexer" not in out
    assert _depth(url) == 4
    assert _archived_lines() == []
