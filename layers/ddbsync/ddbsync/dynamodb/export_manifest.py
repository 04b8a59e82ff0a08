"""Read the manifests of a DynamoDB export to S3.

AWS writes them under ``<prefix>/AWSDynamoDB/<ExportId>/`` ("DynamoDB table export
output format", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):

* ``manifest-summary.json``: one JSON object (``exportArn``, ``startTime``, ``endTime``,
  ``exportTime``, ``s3Bucket``, ``s3Prefix``, ``manifestFilesS3Key``, ``itemCount``,
  ``outputFormat``, ...). Incremental exports (version ``2023-08-01``) carry
  ``exportFromTime``/``exportToTime`` instead of ``exportTime``, plus ``exportType`` and
  ``outputView``; full exports written before incremental exports existed have no
  ``exportType``.
* ``manifest-files.json``: JSON lines, one per data file: ``itemCount``,
  ``md5Checksum`` (base64 MD5 of the object), ``etag`` and ``dataFileS3Key``.

Every key in them is a full object key in ``s3Bucket``. DescribeExport's
``ExportManifest`` is the key of ``manifest-summary.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError

from ddbsync.errors import ManifestError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DataFile",
    "ManifestSummary",
    "read_files",
    "read_summary",
    "summary_key_from_export",
]

_FORMATS = ("DYNAMODB_JSON", "ION")
_EXPORT_TYPES = ("FULL_EXPORT", "INCREMENTAL_EXPORT")


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What ``manifest-summary.json`` says about one export.

    ``export_time`` is epoch seconds: the export's point in time for a full export,
    ``exportToTime`` for an incremental one. ``start_time``/``end_time`` are the ISO
    texts AWS writes (when the export job ran).
    """

    export_arn: str
    start_time: str
    end_time: str
    export_time: float
    s3_bucket: str
    s3_prefix: str | None
    manifest_files_key: str
    item_count: int
    output_format: str
    export_type: str


@dataclass(frozen=True, slots=True)
class DataFile:
    """One line of ``manifest-files.json``: a data file and what it should hold."""

    key: str
    item_count: int
    md5: str
    etag: str


def summary_key_from_export(export_description: Mapping[str, object]) -> str:
    """The ``manifest-summary.json`` key of a DescribeExport ``ExportDescription``."""
    arn = str(export_description.get("ExportArn", ""))
    key = export_description.get("ExportManifest")
    if not isinstance(key, str) or not key:
        status = export_description.get("ExportStatus", "unknown")
        raise ManifestError(arn, f"export has no ExportManifest (status {status})")
    if not isinstance(export_description.get("S3Bucket"), str):
        raise ManifestError(arn, "export description has no S3Bucket")
    return key


def _get(s3: S3Client, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
            raise ManifestError(f"s3://{bucket}/{key}", f"manifest not found ({code})") from e
        raise


def _field(doc: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        got = "missing" if value is None else f"got {value!r}"
        raise ManifestError(where, f"field {name!r} must be a {kind.__name__} ({got})")
    return value


def _epoch(text: str, name: str, where: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()  # "2020-11-04T07:28:34.028Z"
    except ValueError as e:
        raise ManifestError(where, f"field {name!r} is not an ISO timestamp: {text!r}") from e


def read_summary(s3: S3Client, bucket: str, key: str) -> ManifestSummary:
    """Read and check ``manifest-summary.json``; raise ManifestError naming the problem."""
    where = f"s3://{bucket}/{key}"
    try:
        doc = orjson.loads(_get(s3, bucket, key))
    except orjson.JSONDecodeError as e:
        raise ManifestError(where, f"invalid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError(where, "expected a JSON object")
    export_type = doc.get("exportType") or "FULL_EXPORT"
    if export_type not in _EXPORT_TYPES:
        raise ManifestError(where, f"unknown exportType {export_type!r}")
    time_field = "exportToTime" if export_type == "INCREMENTAL_EXPORT" else "exportTime"
    output_format = _field(doc, "outputFormat", str, where)
    if output_format not in _FORMATS:
        raise ManifestError(where, f"unknown outputFormat {output_format!r}")
    prefix = doc.get("s3Prefix")
    return ManifestSummary(
        export_arn=_field(doc, "exportArn", str, where),
        start_time=_field(doc, "startTime", str, where),
        end_time=_field(doc, "endTime", str, where),
        export_time=_epoch(_field(doc, time_field, str, where), time_field, where),
        s3_bucket=_field(doc, "s3Bucket", str, where),
        s3_prefix=prefix if isinstance(prefix, str) else None,
        manifest_files_key=_field(doc, "manifestFilesS3Key", str, where),
        item_count=_field(doc, "itemCount", int, where),
        output_format=output_format,
        export_type=export_type,
    )


def read_files(s3: S3Client, bucket: str, manifest_files_key: str) -> list[DataFile]:
    """Read ``manifest-files.json`` (JSON lines) into the list of data files, in order."""
    files: list[DataFile] = []
    body = _get(s3, bucket, manifest_files_key)
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"s3://{bucket}/{manifest_files_key} line {number}"
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise ManifestError(where, f"invalid JSON: {e}") from e
        if not isinstance(doc, dict):
            raise ManifestError(where, "expected a JSON object")
        count = _field(doc, "itemCount", int, where)
        if count < 0:
            raise ManifestError(where, f"negative itemCount {count}")
        files.append(
            DataFile(
                key=_field(doc, "dataFileS3Key", str, where),
                item_count=count,
                md5=_field(doc, "md5Checksum", str, where),
                etag=_field(doc, "etag", str, where),
            )
        )
    return files
