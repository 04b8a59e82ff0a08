"""The local exporter writes AWS-format exports that the export readers read back exactly (moto only)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any, Final

import boto3
import pytest

from ddbsync.dynamodb.decode import decode_item
from ddbsync.dynamodb.export_format import iter_export_items, iter_incremental
from ddbsync.dynamodb.export_manifest import read_files, read_summary
from ddbsync_local.exporter import TableChange, write_export, write_incremental_export

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

REGION: Final = "eu-west-1"  # Final: a literal, as S3's LocationConstraint wants
TABLE = "orders"
BUCKET = "exports"
EXPORT_TIME = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
ITEMS = 2500


def export_arn(export_id: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/export/{export_id}"


def table_item(i: int) -> dict[str, Any]:
    """Boto3 low-level item with every DynamoDB type (B/BS as bytes, as boto3 sends them)."""
    item: dict[str, Any] = {
        "pk": {"S": f"customer#{i % 97}"},
        "sk": {"N": str(i)},
        "total": {"N": f"{i}.{i % 100:02d}5"},
        "huge": {"N": str(10**30 + i)},
        "payload": {"B": i.to_bytes(4, "big") + b"\x00\xff"},
        "paid": {"BOOL": i % 2 == 0},
        "note": {"NULL": True},
        "address": {"M": {"city": {"S": "Lyon"}, "zip": {"N": str(69000 + i % 10)}}},
        "lines": {"L": [{"S": "a"}, {"N": "1.5"}, {"M": {"q": {"N": "2"}}}]},
        "tags": {"SS": ["new", f"t{i % 5}"]},
        "scores": {"NS": ["1", str(i + 2), "-0.25"]},  # a set: no member twice
        "blobs": {"BS": [b"x", bytes([i % 256, 1])]},
    }
    if i % 3 == 0:
        item["description"] = {"S": f'caf\u00e9 "{i}"\nline two'}
    return item


@pytest.fixture
def clients(aws: None) -> tuple[Any, Any]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, ITEMS, 25):
        requests: list[WriteRequestTypeDef] = [
            {"PutRequest": {"Item": table_item(i)}} for i in range(start, min(start + 25, ITEMS))
        ]
        dynamodb.batch_write_item(RequestItems={TABLE: requests})
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return dynamodb, s3


def by_key(docs: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(docs, key=lambda d: (str(d["pk"]), int(str(d["sk"]))))


def scanned(dynamodb: Any) -> list[dict[str, object]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=TABLE)
    return by_key([decode_item(item) for page in pages for item in page["Items"]])


@pytest.mark.parametrize("fmt,suffix", [("DYNAMODB_JSON", ".json.gz"), ("ION", ".ion.gz")])
def test_an_export_of_2500_items_reads_back_as_exactly_the_table(
    clients: tuple[Any, Any], fmt: str, suffix: str
) -> None:
    dynamodb, s3 = clients
    export_id = "01767225600250-a1b2c3d4"
    summary_key = write_export(
        dynamodb, s3, TABLE, BUCKET, "backfill/", export_arn(export_id), EXPORT_TIME, fmt, items_per_file=1000
    )
    export_dir = f"backfill/AWSDynamoDB/{export_id}"
    assert summary_key == f"{export_dir}/manifest-summary.json"

    summary = read_summary(s3, BUCKET, summary_key)
    assert (summary.export_arn, summary.export_time) == (export_arn(export_id), EXPORT_TIME)
    assert (summary.s3_bucket, summary.s3_prefix, summary.output_format) == (BUCKET, "backfill", fmt)
    assert summary.export_type == "FULL_EXPORT" and summary.item_count == ITEMS

    files = read_files(s3, BUCKET, summary.manifest_files_key)
    assert sorted(f.item_count for f in files) == [500, 1000, 1000]
    decoded: list[dict[str, object]] = []
    for data_file in files:
        assert re.fullmatch(rf"{export_dir}/data/[a-z2-7]{{26}}{re.escape(suffix)}", data_file.key)
        obj = s3.get_object(Bucket=BUCKET, Key=data_file.key)
        assert data_file.etag == obj["ETag"].strip('"') and data_file.etag.endswith("-1")
        raw = obj["Body"].read()
        assert data_file.md5 == base64.b64encode(hashlib.md5(raw).digest()).decode()
        body = s3.get_object(Bucket=BUCKET, Key=data_file.key)["Body"]  # streamed, as in Lambda
        lines = list(iter_export_items(body, fmt, data_file.key))
        assert [n for n, _ in lines] == list(range(1, data_file.item_count + 1))
        decoded.extend(decode_item(item) for _, item in lines)

    assert sum(f.item_count for f in files) == len(decoded) == ITEMS
    assert by_key(decoded) == scanned(dynamodb)
    assert s3.get_object(Bucket=BUCKET, Key=f"{export_dir}/_started")["Body"].read() == b""
    files_json = s3.get_object(Bucket=BUCKET, Key=summary.manifest_files_key)["Body"].read()
    md5_file = s3.get_object(Bucket=BUCKET, Key=f"{export_dir}/manifest-files.md5")["Body"].read()
    assert md5_file.decode() == base64.b64encode(hashlib.md5(files_json).digest()).decode()


def test_an_export_of_an_empty_table_has_one_empty_data_file(aws: None) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    dynamodb.create_table(
        TableName="empty",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/empty/export/01767225600250-00000000"
    summary = read_summary(s3, BUCKET, write_export(dynamodb, s3, "empty", BUCKET, "", arn, EXPORT_TIME))
    assert summary.item_count == 0 and summary.s3_prefix is None
    (data_file,) = read_files(s3, BUCKET, summary.manifest_files_key)
    assert data_file.item_count == 0 and data_file.key.startswith("AWSDynamoDB/01767225600250-00000000/data/")
    body = s3.get_object(Bucket=BUCKET, Key=data_file.key)["Body"]
    assert list(iter_export_items(body, "DYNAMODB_JSON", data_file.key)) == []


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_an_incremental_export_reads_back_as_its_changes(clients: tuple[Any, Any], fmt: str) -> None:
    _, s3 = clients
    keys = {"pk": {"S": "customer#1"}, "sk": {"N": "7"}}
    old = {**keys, "total": {"N": "1.5"}, "payload": {"B": b"\x01"}}
    new = {**keys, "total": {"N": "2000"}, "tags": {"SS": ["x"]}}
    changes = [
        TableChange(keys, old, None, 1_767_225_601_000_000),  # insert
        (keys, new, old, 1_767_225_601_000_001),  # update, as a plain tuple
        TableChange(keys, None, new, 1_767_225_602_500_000),  # delete
    ]
    export_id = "01767229200000-deadbeef"
    summary_key = write_incremental_export(
        s3, BUCKET, "inc", export_arn(export_id), f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}",
        EXPORT_TIME, EXPORT_TIME + 900, changes, fmt, items_per_file=2,
    )  # fmt: skip
    summary = read_summary(s3, BUCKET, summary_key)
    assert summary.export_type == "INCREMENTAL_EXPORT" and summary.export_time == EXPORT_TIME + 900
    files = read_files(s3, BUCKET, summary.manifest_files_key)
    assert [f.item_count for f in files] == [2, 1] and summary.item_count == 3
    assert all(f.key.startswith("inc/AWSDynamoDB/data/") for f in files)
    records = [
        record
        for f in files
        for _, record in iter_incremental(s3.get_object(Bucket=BUCKET, Key=f.key)["Body"], fmt, f.key)
    ]
    assert [r.write_time_micros for r in records] == [c[3] for c in changes]
    assert [decode_item(r.keys) for r in records] == [decode_item(keys)] * 3
    assert [None if r.new_image is None else decode_item(r.new_image) for r in records] == [
        decode_item({**old, "payload": {"B": "AQ=="}}),
        decode_item(new),
        None,
    ]
