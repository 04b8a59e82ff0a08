"""The local Firehose (ddbsync_local/firehose.py) writes the archive as the template's stream does.

Its settings come from template.yaml; these tests put the archiver's real lines through it
(and through the archiver itself) against moto's S3 and read the objects back: the
partition of each line is Python's UTC date and hour of its ApproximateCreationDateTime,
the objects are gzip with a newline after every line, a line the query cannot partition
lands under errors/processing-failed/ in Firehose's error-record shape, the answer has
the API's shape, and a partition's buffer is written when it reaches the buffer size.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ddbsync.archive.archiver import Archiver
from ddbsync.archive.lines import archive_line
from ddbsync.archive.settings import ArchiveSettings
from ddbsync_local.cfn import TEMPLATE
from ddbsync_local.firehose import ERROR_CODE, LocalFirehose, StreamConfig, stream_config
from tests.support import load_event, load_template

BUCKET = "archive"
STREAM = "ddbsync-archive"
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/{}/stream/2026-01-01T00:00:00.000"
KEY_NAME = re.compile(
    r"(?P<prefix>.*/)ddbsync-archive-1-(?P<time>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.gz"
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client


@pytest.fixture
def clock() -> Clock:
    return Clock(epoch("2026-12-02T10:15:30"))


def make_firehose(s3: Any, clock: Clock, **overrides: Any) -> LocalFirehose:
    firehose = LocalFirehose(s3, BUCKET, clock=clock)
    firehose.create_stream(STREAM, stream_config(**overrides))
    return firehose


@pytest.fixture
def firehose(s3: Any, clock: Clock) -> LocalFirehose:
    return make_firehose(s3, clock)


def record(when: float, table: str = "t", pk: str = "k") -> dict[str, Any]:
    rec: dict[str, Any] = copy.deepcopy(load_event("insert.json")["Records"][0])
    rec["eventSourceARN"] = ARN.format(table)
    rec["dynamodb"]["ApproximateCreationDateTime"] = when
    rec["dynamodb"]["Keys"]["pk"] = {"S": pk}
    return rec


def put(firehose: LocalFirehose, lines: list[bytes]) -> dict[str, Any]:
    return firehose.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": line} for line in lines])


def objects(s3: Any) -> dict[str, bytes]:
    """Every object in the bucket, key -> raw body."""
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_the_settings_are_the_templates() -> None:
    config = stream_config()
    destination = load_template(TEMPLATE)["Resources"]["ArchiveDeliveryStream"]["Properties"][
        "ExtendedS3DestinationConfiguration"
    ]
    default_mib = load_template(TEMPLATE)["Parameters"]["ArchiveBufferSizeMiB"]["Default"]
    assert (config.prefix, config.error_prefix) == (destination["Prefix"], destination["ErrorOutputPrefix"])
    assert config.delimiter == b"\n"  # the template's '\n' is an escape; Firehose appends a newline
    assert config.gzip and config.encrypted
    assert config.buffer_bytes == default_mib * 1024 * 1024


EDGES = [
    "2026-01-01T00:00:00",
    "2025-12-31T23:59:59",
    "2025-12-31T23:59:59.999",
    "2026-03-01T13:00:00.5",
    "2028-02-29T07:30:00",
    "1970-01-01T00:00:00",
]


def test_partitions_are_pythons_utc_date_and_hour_at_the_edges_of_a_day(
    firehose: LocalFirehose, s3: Any
) -> None:
    records = [record(epoch(text), pk=text) for text in EDGES]
    assert put(firehose, [archive_line(r) for r in records])["FailedPutCount"] == 0
    firehose.flush()

    found: dict[str, list[Any]] = {}
    for key, body in objects(s3).items():
        match = KEY_NAME.fullmatch(key)
        assert match, key
        found[match["prefix"]] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    expected: dict[str, list[Any]] = {}
    for r in records:
        when = datetime.fromtimestamp(r["dynamodb"]["ApproximateCreationDateTime"], UTC)
        expected.setdefault(f"table=t/dt={when:%Y-%m-%d}/hour={when:%H}/", []).append({**r, "tableName": "t"})
    assert found == expected
    assert len(found) == len(EDGES) - 1  # 23:59:59 and 23:59:59.999 share their hour


def test_objects_are_gzip_with_a_newline_after_every_line_and_named_like_firehoses(
    firehose: LocalFirehose, s3: Any, clock: Clock
) -> None:
    sample = load_event("same_key_batch.json")["Records"]
    lines = [archive_line(r) for r in sample]
    put(firehose, lines[:3])
    clock.now += 61
    put(firehose, lines[3:])
    (key,) = firehose.flush()

    body = objects(s3)[key]
    assert body[:2] == b"\x1f\x8b"  # gzip's magic number
    assert gzip.decompress(body) == b"".join(line + b"\n" for line in lines)
    match = KEY_NAME.fullmatch(key)
    assert match and match["time"] == "2026-12-02-10-15-30"  # the oldest record's arrival, UTC
    when = datetime.fromtimestamp(sample[0]["dynamodb"]["ApproximateCreationDateTime"], UTC)
    assert match["prefix"] == f"table=demo-products/dt={when:%Y-%m-%d}/hour={when:%H}/"


def test_a_line_the_query_cannot_partition_goes_to_the_error_prefix_whole(
    firehose: LocalFirehose, s3: Any, clock: Clock
) -> None:
    clock.now = epoch("2026-12-02T23:59:59.5")
    good = archive_line(record(epoch("2026-12-01T08:00:00")))
    bad_time = record(1)
    bad_time["dynamodb"]["ApproximateCreationDateTime"] = "yesterday"
    bad = [archive_line(bad_time), b"not json at all"]
    response = put(firehose, [bad[0], good, bad[1]])
    assert response["FailedPutCount"] == 0  # accepted: partitioning fails later, inside Firehose
    clock.now += 1  # the error object's date is its oldest record's arrival, not the flush's
    firehose.flush()

    stored = objects(s3)
    (error_key,) = [k for k in stored if k.startswith("errors/")]
    assert error_key.startswith("errors/processing-failed/dt=2026-12-02/")
    assert error_key.split("/")[-1].startswith("ddbsync-archive-1-2026-12-02-23-59-59-")
    errors = [json.loads(line) for line in gzip.decompress(stored[error_key]).splitlines()]
    assert [base64.b64decode(e["rawData"]) for e in errors] == bad
    for e in errors:
        assert e["errorCode"] == ERROR_CODE and e["errorMessage"] and e["attemptsMade"] == 1
        arrived = int(epoch("2026-12-02T23:59:59.5") * 1000)
        assert e["arrivalTimestamp"] == e["attemptEndingTimestamp"] == arrived
    assert "is not a number" in errors[0]["errorMessage"]  # the template query's own error
    (data_key,) = [k for k in stored if not k.startswith("errors/")]
    assert data_key.startswith("table=t/dt=2026-12-01/hour=08/")
    assert gzip.decompress(stored[data_key]) == good + b"\n"


def test_the_answer_has_the_apis_shape_and_a_refused_entry_is_not_written(
    firehose: LocalFirehose, s3: Any
) -> None:
    lines = [archive_line(record(epoch("2026-05-05T05:05:05"), pk=f"k{i}")) for i in range(4)]
    firehose.fail_next(None, "ServiceUnavailableException", None, "InternalFailure")
    response = put(firehose, lines)

    assert response["FailedPutCount"] == 2
    assert response["Encrypted"] is True
    answers = response["RequestResponses"]
    assert [sorted(a) for a in answers] == [
        ["RecordId"], ["ErrorCode", "ErrorMessage"], ["RecordId"], ["ErrorCode", "ErrorMessage"]
    ]  # fmt: skip
    codes = [a.get("ErrorCode") for a in answers]
    assert codes == [None, "ServiceUnavailableException", None, "InternalFailure"]
    assert len({a["RecordId"] for a in answers if "RecordId" in a}) == 2
    (key,) = firehose.flush()
    assert gzip.decompress(objects(s3)[key]) == lines[0] + b"\n" + lines[2] + b"\n"


def test_the_archivers_retries_through_it_land_each_line_once(firehose: LocalFirehose, s3: Any) -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    settings = ArchiveSettings(STREAM, dlq, retry_base_ms=1, retry_max_ms=2, timeout_margin_ms=0)
    archiver = Archiver(settings, firehose, sqs, sleep=lambda _s: None)
    records = [record(epoch("2026-07-01T12:00:00") + i, pk=f"k{i:03d}") for i in range(600)]
    firehose.fail_next(*(["ServiceUnavailableException", None] * 300), "InternalFailure")

    result = archiver.process(records, lambda: 60_000)
    firehose.flush()

    assert (result.archived, result.unsent, result.retries) == (600, 0, 2)
    (body,) = objects(s3).values()
    assert sorted(gzip.decompress(body).splitlines()) == sorted(archive_line(r) for r in records)


def test_a_partition_is_written_when_its_buffer_reaches_the_size(s3: Any, clock: Clock) -> None:
    line = archive_line(record(epoch("2026-02-02T02:02:02")))
    firehose = make_firehose(s3, clock, buffer_bytes=3 * (len(line) + 1))
    other = archive_line(record(epoch("2026-02-02T03:00:00")))

    put(firehose, [line, line, other])
    assert objects(s3) == {}  # below the size in both partitions
    put(firehose, [line])  # the third line fills hour=02's buffer
    written = objects(s3)
    assert [k.split("ddbsync-archive")[0] for k in written] == ["table=t/dt=2026-02-02/hour=02/"]
    assert gzip.decompress(next(iter(written.values()))) == (line + b"\n") * 3
    put(firehose, [line])
    keys = firehose.flush()
    assert sorted(k.split("ddbsync-archive")[0] for k in keys) == [
        "table=t/dt=2026-02-02/hour=02/", "table=t/dt=2026-02-02/hour=03/"
    ]  # fmt: skip
    assert len(objects(s3)) == 3


def test_calls_over_the_apis_quotas_fail_whole(firehose: LocalFirehose, s3: Any) -> None:
    line = archive_line(record(1))
    cases = {
        "InvalidArgumentException": [[{"Data": line}] * 501, [], [{"Data": b"x" * 1_024_001}],
                                     [{"Data": b"x" * 1_000_000}] * 5],
    }  # fmt: skip
    for code, calls in cases.items():
        for records in calls:
            with pytest.raises(ClientError) as raised:
                firehose.put_record_batch(DeliveryStreamName=STREAM, Records=records)
            assert raised.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        firehose.put_record_batch(DeliveryStreamName="nope", Records=[{"Data": line}])
    assert firehose.flush() == []


def test_a_query_that_jq_16_rejects_is_a_config_error(s3: Any, clock: Clock) -> None:
    from ddbsync.errors import ConfigError

    firehose = LocalFirehose(s3, BUCKET, clock=clock)
    config = StreamConfig("p/", "e/", "if true then 1 end", b"\n", True, 1024)  # jq 1.7 syntax
    with pytest.raises(ConfigError, match=r"jq 1\.6"):
        firehose.create_stream(STREAM, config)
