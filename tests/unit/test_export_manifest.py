"""Reading export manifests (manifest-summary.json, manifest-files.json) from (moto) S3."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import orjson
import pytest

from ddbsync.dynamodb.export_manifest import DataFile, read_files, read_summary, summary_key_from_export
from ddbsync.errors import ManifestError

BUCKET = "exports"
EXPORT_ID = "01700000000000-abcdef12"
ARN = f"arn:aws:dynamodb:eu-west-1:123456789012:table/t/export/{EXPORT_ID}"
DIR = f"backfill/AWSDynamoDB/{EXPORT_ID}"


def full_summary(**changes: Any) -> dict[str, Any]:
    """A full-export summary with the fields AWS documents (S3DataExport.Output)."""
    doc: dict[str, Any] = {
        "version": "2020-06-30",
        "exportArn": ARN,
        "startTime": "2020-11-04T07:28:34.028Z",
        "endTime": "2020-11-04T07:33:43.897Z",
        "tableArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/t",
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": "2020-11-04T07:28:34.028Z",
        "s3Bucket": BUCKET,
        "s3Prefix": "backfill",
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{DIR}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": 8,
        "outputFormat": "DYNAMODB_JSON",
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


def file_line(key: str, count: int) -> dict[str, Any]:
    return {
        "itemCount": count,
        "md5Checksum": "sQMSpEILNgoQmarvDFonGQ==",
        "etag": "af83-1",
        "dataFileS3Key": key,
    }


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client


def put(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_a_full_export_summary_reads_into_a_manifest_summary(s3: Any) -> None:
    put(s3, f"{DIR}/manifest-summary.json", orjson.dumps(full_summary()))
    summary = read_summary(s3, BUCKET, f"{DIR}/manifest-summary.json")
    assert summary.export_arn == ARN
    assert summary.export_time == datetime(2020, 11, 4, 7, 28, 34, 28000, tzinfo=UTC).timestamp()
    assert summary.start_time == "2020-11-04T07:28:34.028Z"
    assert summary.end_time == "2020-11-04T07:33:43.897Z"
    assert (summary.s3_bucket, summary.s3_prefix) == (BUCKET, "backfill")
    assert summary.manifest_files_key == f"{DIR}/manifest-files.json"
    assert (summary.item_count, summary.output_format) == (8, "DYNAMODB_JSON")
    assert summary.export_type == "FULL_EXPORT"  # full exports carry no exportType


def test_an_incremental_summary_takes_its_export_time_from_export_to_time(s3: Any) -> None:
    doc = full_summary(
        version="2023-08-01",
        exportTime=...,
        exportFromTime="2026-01-14T10:20:00.000Z",
        exportToTime="2026-01-14T10:35:00.000Z",
        s3Prefix=None,
        outputFormat="ION",
        outputView="NEW_AND_OLD_IMAGES",
        exportType="INCREMENTAL_EXPORT",
    )
    put(s3, "s.json", orjson.dumps(doc))
    summary = read_summary(s3, BUCKET, "s.json")
    assert summary.export_type == "INCREMENTAL_EXPORT"
    assert summary.export_time == datetime(2026, 1, 14, 10, 35, tzinfo=UTC).timestamp()
    assert summary.s3_prefix is None and summary.output_format == "ION"


@pytest.mark.parametrize(
    "field",
    [
        "exportArn",
        "startTime",
        "endTime",
        "exportTime",
        "s3Bucket",
        "manifestFilesS3Key",
        "itemCount",
        "outputFormat",
    ],
)
def test_a_summary_missing_a_required_field_names_it(s3: Any, field: str) -> None:
    put(s3, "s.json", orjson.dumps(full_summary(**{field: ...})))
    with pytest.raises(ManifestError) as caught:
        read_summary(s3, BUCKET, "s.json")
    assert field in str(caught.value) and "s.json" in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"itemCount": "8"},
        {"itemCount": True},
        {"outputFormat": "CSV"},
        {"exportTime": "yesterday"},
        {"exportType": "X"},
    ],
)
def test_a_summary_with_a_bad_value_is_refused(s3: Any, changes: dict[str, Any]) -> None:
    put(s3, "s.json", orjson.dumps(full_summary(**changes)))
    with pytest.raises(ManifestError):
        read_summary(s3, BUCKET, "s.json")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_a_summary_that_is_not_a_json_object_is_refused(s3: Any, body: bytes) -> None:
    put(s3, "s.json", body)
    with pytest.raises(ManifestError):
        read_summary(s3, BUCKET, "s.json")


def test_a_missing_summary_is_a_manifest_error_naming_the_object(s3: Any) -> None:
    with pytest.raises(ManifestError) as caught:
        read_summary(s3, BUCKET, f"{DIR}/manifest-summary.json")
    assert caught.value.key == f"s3://{BUCKET}/{DIR}/manifest-summary.json"


def test_the_files_manifest_reads_as_json_lines_in_order(s3: Any) -> None:
    lines = [file_line(f"{DIR}/data/a.json.gz", 8), file_line(f"{DIR}/data/b.json.gz", 0)]
    put(s3, f"{DIR}/manifest-files.json", b"".join(orjson.dumps(x) + b"\n" for x in lines))
    assert read_files(s3, BUCKET, f"{DIR}/manifest-files.json") == [
        DataFile(key=f"{DIR}/data/a.json.gz", item_count=8, md5="sQMSpEILNgoQmarvDFonGQ==", etag="af83-1"),
        DataFile(key=f"{DIR}/data/b.json.gz", item_count=0, md5="sQMSpEILNgoQmarvDFonGQ==", etag="af83-1"),
    ]


def test_an_empty_files_manifest_lists_no_files(s3: Any) -> None:
    put(s3, "f.json", b"")
    assert read_files(s3, BUCKET, "f.json") == []


@pytest.mark.parametrize("field", ["itemCount", "md5Checksum", "etag", "dataFileS3Key"])
def test_a_files_manifest_line_missing_a_field_names_the_field_and_line(s3: Any, field: str) -> None:
    bad = file_line("k2", 1)
    del bad[field]
    put(s3, "f.json", orjson.dumps(file_line("k1", 1)) + b"\n" + orjson.dumps(bad) + b"\n")
    with pytest.raises(ManifestError) as caught:
        read_files(s3, BUCKET, "f.json")
    assert field in str(caught.value) and "line 2" in str(caught.value)


def test_a_files_manifest_with_a_broken_line_is_refused(s3: Any) -> None:
    put(s3, "f.json", orjson.dumps(file_line("k1", 1)) + b'\n{"itemCount": 3, "md5')
    with pytest.raises(ManifestError):
        read_files(s3, BUCKET, "f.json")


def test_a_missing_files_manifest_is_a_manifest_error(s3: Any) -> None:
    with pytest.raises(ManifestError):
        read_files(s3, BUCKET, "nope.json")


def test_the_summary_key_comes_from_describe_export() -> None:
    description = {
        "ExportArn": ARN,
        "ExportStatus": "COMPLETED",
        "ExportManifest": f"{DIR}/manifest-summary.json",
        "S3Bucket": BUCKET,
    }
    assert summary_key_from_export(description) == f"{DIR}/manifest-summary.json"


def test_an_export_without_a_manifest_yet_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError) as caught:
        summary_key_from_export({"ExportArn": ARN, "ExportStatus": "IN_PROGRESS", "S3Bucket": BUCKET})
    assert "IN_PROGRESS" in str(caught.value)
