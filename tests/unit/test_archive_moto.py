"""The archiver against moto's Firehose: a DirectPut delivery stream writing to an S3 bucket.

moto writes each PutRecordBatch straight to one S3 object, the records concatenated with
no delimiter (the real stream's AppendDelimiterToRecord processor is not emulated). Our
lines carry no newline, so the objects are read back as consecutive JSON values.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from ddbsync.archive.handler import make_handler
from ddbsync.archive.lines import TABLE_FIELD
from ddbsync.archive.settings import ArchiveSettings
from tests.support import FakeContext, load_event

REGION = "eu-west-1"


def json_values(data: str) -> list[Any]:
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at = 0
    while at < len(data):
        value, at = decoder.raw_decode(data, at)
        values.append(value)
    return values


def test_an_event_archived_through_firehose_reads_back_record_by_record() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="archive", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        firehose = boto3.client("firehose", region_name=REGION)
        firehose.create_delivery_stream(
            DeliveryStreamName="ddbsync-archive",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::archive",
                "Prefix": "records/",
            },
        )
        settings = ArchiveSettings.from_env(
            {"ARCHIVE_STREAM_NAME": "ddbsync-archive", "RECORD_DLQ_URL": dlq, "AWS_REGION": REGION}
        )
        handler = make_handler(settings, sqs=sqs)  # the real boto3 Firehose client, against moto
        sample = load_event("same_key_batch.json")
        assert handler(sample, FakeContext()) == {"batchItemFailures": []}

        objects = s3.list_objects_v2(Bucket="archive")["Contents"]
        assert all(o["Key"].startswith("records/") for o in objects)
        lines = [
            v for o in objects
            for v in json_values(s3.get_object(Bucket="archive", Key=o["Key"])["Body"].read().decode())
        ]  # fmt: skip
        assert lines == [{**r, TABLE_FIELD: "demo-products"} for r in sample["Records"]]
        assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
