"""Write a DynamoDB export to (moto) S3 in AWS's exact file layout and formats.

moto runs ExportTableToPointInTime but writes no data files and no manifests. This
module scans the table and writes what AWS would ("DynamoDB table export output
format", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html),
so that the backfill reads, locally, exactly the objects it reads in AWS:

```
<prefix>/AWSDynamoDB/<ExportId>/_started                  (empty)
<prefix>/AWSDynamoDB/<ExportId>/data/<26 base32 chars>.json.gz   (or .ion.gz)
<prefix>/AWSDynamoDB/<ExportId>/manifest-files.json       (JSON lines)
<prefix>/AWSDynamoDB/<ExportId>/manifest-summary.json
<prefix>/AWSDynamoDB/<ExportId>/manifest-files.md5, manifest-summary.md5
```

Checksums are real: ``md5Checksum`` is the base64 MD5 of the gzip object, and each
data file is uploaded as a one-part multipart upload, as AWS does, so ``etag`` is the
``<hex>-1`` ETag S3 reports. (The guide names the checksum files ``*.checksum``; real
exports name them ``*.md5`` and hold the base64 MD5 of the manifest, which is what we write.)
An empty table still gets one empty data file, like an empty partition in AWS.

:func:`write_incremental_export` writes an incremental export (``exportType``
``INCREMENTAL_EXPORT``, manifest version ``2023-08-01``) from a list of changes; its
data files go to the shared ``<prefix>/AWSDynamoDB/data/`` folder, as in real
incremental exports.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

__all__ = ["TableChange", "ion_line", "json_line", "write_export", "write_incremental_export"]

_FORMATS = ("DYNAMODB_JSON", "ION")
_SUFFIX = {"DYNAMODB_JSON": ".json.gz", "ION": ".ion.gz"}
_EXACT = Context(prec=200, Emax=999_999, Emin=-999_999)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ION_KEYWORDS = frozenset({"null", "true", "false", "nan"})

Item = Mapping[str, Any]


class TableChange(NamedTuple):
    """One change for an incremental export; ``new_image`` None means a delete."""

    keys: Item
    new_image: Item | None
    old_image: Item | None
    write_time_micros: int


# --- line formats -------------------------------------------------------------------------


def _json_value(value: Mapping[str, Any]) -> dict[str, object]:
    """boto3 attribute value -> DynamoDB JSON as AWS writes it (bytes as base64 text)."""
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": _b64(inner)}
    if tag == "BS":
        return {"BS": [_b64(x) for x in inner]}
    if tag == "M":
        return {"M": _json_item(inner)}
    if tag == "L":
        return {"L": [_json_value(x) for x in inner]}
    return {tag: inner}


def _json_item(item: Item) -> dict[str, object]:
    return {name: _json_value(value) for name, value in item.items()}


def _b64(value: bytes | str) -> str:
    return value if isinstance(value, str) else base64.b64encode(value).decode("ascii")


def _raw(value: bytes | str) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def json_line(item: Item) -> bytes:
    """One DYNAMODB_JSON data line: ``{"Item":{...}}`` and a newline."""
    return orjson.dumps({"Item": _json_item(item)}) + b"\n"


def _ion_string(text: str) -> str:
    # JSON string escapes (\" \\ \n \uXXXX ...) are all valid Ion string escapes.
    return orjson.dumps(text).decode("utf-8")


def _ion_name(name: str) -> str:
    """A field name: a bare identifier, else a quoted symbol ('x y', '$0').

    Quoted symbols, not "strings": amazon-ion's reader takes a string field name such
    as "$0" for a symbol id, and AWS's example writes field names as symbols.
    """
    if _IDENTIFIER.match(name) and name not in _ION_KEYWORDS:
        return name
    return "'" + _ion_string(name)[1:-1].replace("'", "\\'") + "'"


def _ion_decimal(text: str) -> str:
    """N text -> Ion decimal as AWS writes it: ``103.``, ``6d2`` (600), ``1.5``."""
    sign, digits, exponent = Decimal(text).normalize(_EXACT).as_tuple()
    assert isinstance(exponent, int)  # DynamoDB numbers are finite
    coefficient = "".join(map(str, digits))
    minus = "-" if sign and coefficient != "0" else ""
    if exponent == 0:
        return f"{minus}{coefficient}."
    if exponent > 0:
        return f"{minus}{coefficient}d{exponent}"
    places = -exponent
    if places < len(coefficient):
        return f"{minus}{coefficient[:-places]}.{coefficient[-places:]}"
    return f"{minus}0.{'0' * (places - len(coefficient))}{coefficient}"


def _ion_blob(value: bytes | str) -> str:
    return "{{" + base64.b64encode(_raw(value)).decode("ascii") + "}}"


def _ion_value(value: Mapping[str, Any]) -> str:
    ((tag, inner),) = value.items()
    write = _ION_WRITERS.get(tag)
    if write is None:
        raise ValueError(f"unknown DynamoDB type tag {tag!r}")
    return write(inner)


def _ion_struct(item: Item) -> str:
    return "{" + ",".join(f"{_ion_name(name)}:{_ion_value(v)}" for name, v in item.items()) + "}"


# DynamoDB type tag -> the Ion text of a value with that tag.
_ION_WRITERS: dict[str, Callable[[Any], str]] = {
    "S": _ion_string,
    "N": _ion_decimal,
    "M": _ion_struct,
    "L": lambda inner: "[" + ",".join(_ion_value(x) for x in inner) + "]",
    "BOOL": lambda inner: "true" if inner else "false",
    "NULL": lambda inner: "null",
    "B": _ion_blob,
    "SS": lambda inner: "$dynamodb_SS::[" + ",".join(_ion_string(x) for x in inner) + "]",
    "NS": lambda inner: "$dynamodb_NS::[" + ",".join(_ion_decimal(x) for x in inner) + "]",
    "BS": lambda inner: "$dynamodb_BS::[" + ",".join(_ion_blob(x) for x in inner) + "]",
}


def ion_line(item: Item) -> bytes:
    """One ION data line: ``$ion_1_0 {Item:{...}}`` and a newline."""
    return f"$ion_1_0 {{Item:{_ion_struct(item)}}}\n".encode()


def _incremental_line(change: TableChange, fmt: str) -> bytes:
    if fmt == "DYNAMODB_JSON":
        # AWS's example writes WriteTimeMicros as a JSON string of digits.
        doc: dict[str, object] = {
            "Metadata": {"WriteTimeMicros": str(change.write_time_micros)},
            "Keys": _json_item(change.keys),
        }
        if change.old_image is not None:
            doc["OldImage"] = _json_item(change.old_image)
        if change.new_image is not None:
            doc["NewImage"] = _json_item(change.new_image)
        return orjson.dumps(doc) + b"\n"
    parts = [f"Metadata:{{WriteTimeMicros:{change.write_time_micros}}}", f"Keys:{_ion_struct(change.keys)}"]
    if change.old_image is not None:
        parts.append(f"OldImage:{_ion_struct(change.old_image)}")
    if change.new_image is not None:
        parts.append(f"NewImage:{_ion_struct(change.new_image)}")
    return ("$ion_1_0 {" + ",".join(parts) + "}\n").encode()


# --- S3 objects ----------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    """AWS's manifest timestamps: ``2020-11-04T07:28:34.028Z``."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _random_name() -> str:
    # AWS names data files with 26 lowercase base32 characters.
    return base64.b32encode(os.urandom(16)).decode("ascii").rstrip("=").lower()


def _upload_multipart(s3: S3Client, bucket: str, key: str, data: bytes) -> str:
    """Upload as one part, as the export does; return S3's ETag (``<hex>-1``) unquoted."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = upload["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=data)
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    return done["ETag"].strip('"')


def _chunks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_data_file(
    s3: S3Client, bucket: str, data_dir: str, fmt: str, lines: list[bytes], multipart: bool = True
) -> dict[str, object]:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.writelines(lines)
    data = buffer.getvalue()
    key = f"{data_dir}/{_random_name()}{_SUFFIX[fmt]}"
    if multipart:
        etag = _upload_multipart(s3, bucket, key, data)
    else:
        etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
    # Key order as in AWS's manifest-files.json.
    return {"itemCount": len(lines), "md5Checksum": _md5_b64(data), "etag": etag, "dataFileS3Key": key}


def _write_data_files(
    s3: S3Client,
    bucket: str,
    data_dir: str,
    fmt: str,
    lines: Iterable[bytes],
    items_per_file: int,
    multipart: bool = True,
) -> tuple[list[dict[str, object]], int]:
    """Write the lines ``items_per_file`` to a file (at least one file); return entries and total."""
    entries: list[dict[str, object]] = []
    total = 0
    for chunk in _chunks(lines, items_per_file):
        entries.append(_write_data_file(s3, bucket, data_dir, fmt, chunk, multipart))
        total += len(chunk)
    if not entries:  # an empty partition still gets an (empty) data file
        entries.append(_write_data_file(s3, bucket, data_dir, fmt, []))
    return entries, total


def _put_manifest(s3: S3Client, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key=key.removesuffix(".json") + ".md5", Body=_md5_b64(body).encode())


def _write_manifests(
    s3: S3Client,
    bucket: str,
    prefix: str,
    export_dir: str,
    entries: list[dict[str, object]],
    *,
    version: str,
    export_arn: str,
    started: float,
    item_count: int,
    fmt: str,
    **specific: object,
) -> str:
    """Write manifest-files.json and manifest-summary.json (fields of both export types plus
    ``specific``); return the summary's key."""
    files_key = f"{export_dir}/manifest-files.json"
    _put_manifest(s3, bucket, files_key, b"".join(orjson.dumps(e) + b"\n" for e in entries))
    summary = {
        "version": version,
        "exportArn": export_arn,
        "startTime": _iso(started),
        "endTime": _iso(time.time()),
        **specific,
        "s3Bucket": bucket,
        "s3Prefix": prefix.strip("/") or None,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": files_key,
        "billedSizeBytes": 0,
        "itemCount": item_count,
        "outputFormat": fmt,
    }
    summary_key = f"{export_dir}/manifest-summary.json"
    _put_manifest(s3, bucket, summary_key, orjson.dumps(summary))
    return summary_key


def _base(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/AWSDynamoDB" if prefix else "AWSDynamoDB"


def _export_id(export_arn: str) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/export/<ExportId>
    export_id = export_arn.rsplit("/", 1)[-1]
    if "/export/" not in export_arn or not export_id:
        raise ValueError(f"not an export ARN: {export_arn!r}")
    return export_id


def _scan(dynamodb: DynamoDBClient, table_name: str) -> Iterator[Item]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        yield from page.get("Items", [])


def write_export(
    dynamodb: DynamoDBClient,
    s3: S3Client,
    table_name: str,
    bucket: str,
    prefix: str,
    export_arn: str,
    export_time: float,
    fmt: str = "DYNAMODB_JSON",
    items_per_file: int = 1000,
    *,
    multipart: bool = True,
) -> str:
    """Scan ``table_name`` and write a full export of it; return the manifest-summary key.

    ``multipart=False`` writes each data file with one PutObject instead of AWS's one-part
    multipart upload (a third of the S3 calls, for exports of thousands of small files);
    its ``etag`` in the manifest is then S3's plain MD5 ETag, not ``<hex>-1``.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    if items_per_file < 1:
        raise ValueError("items_per_file must be at least 1")
    started = time.time()
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    export_dir = f"{_base(prefix)}/{_export_id(export_arn)}"
    s3.put_object(Bucket=bucket, Key=f"{export_dir}/_started", Body=b"")
    to_line = json_line if fmt == "DYNAMODB_JSON" else ion_line
    lines = (to_line(item) for item in _scan(dynamodb, table_name))
    entries, total = _write_data_files(
        s3, bucket, f"{export_dir}/data", fmt, lines, items_per_file, multipart
    )
    return _write_manifests(
        s3, bucket, prefix, export_dir, entries,
        version="2020-06-30", export_arn=export_arn, started=started, item_count=total, fmt=fmt,
        tableArn=table.get("TableArn"), tableId=table.get("TableId"), exportTime=_iso(export_time),
    )  # fmt: skip


def write_incremental_export(
    s3: S3Client,
    bucket: str,
    prefix: str,
    export_arn: str,
    table_arn: str,
    export_from_time: float,
    export_to_time: float,
    changes: Iterable[TableChange | tuple[Item, Item | None, Item | None, int]],
    fmt: str = "DYNAMODB_JSON",
    items_per_file: int = 1000,
    view: str = "NEW_AND_OLD_IMAGES",
) -> str:
    """Write an incremental export holding ``changes``; return the manifest-summary key.

    With ``view="NEW_IMAGE"`` old images are left out, as AWS does for that view.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    if view not in ("NEW_AND_OLD_IMAGES", "NEW_IMAGE"):
        raise ValueError(f"unknown export view {view!r}")
    started = time.time()
    base = _base(prefix)
    export_dir = f"{base}/{_export_id(export_arn)}"
    s3.put_object(Bucket=bucket, Key=f"{export_dir}/_started", Body=b"")

    def lines() -> Iterator[bytes]:
        for raw in changes:
            change = TableChange(*raw)
            if view == "NEW_IMAGE":
                change = change._replace(old_image=None)
            yield _incremental_line(change, fmt)

    entries, total = _write_data_files(s3, bucket, f"{base}/data", fmt, lines(), items_per_file)
    return _write_manifests(
        s3, bucket, prefix, export_dir, entries,
        version="2023-08-01", export_arn=export_arn, started=started, item_count=total, fmt=fmt,
        tableArn=table_arn, tableId=None, exportFromTime=_iso(export_from_time),
        exportToTime=_iso(export_to_time), outputView=view, exportType="INCREMENTAL_EXPORT",
    )  # fmt: skip
