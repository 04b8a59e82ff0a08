"""docs/archive.md's Athena table projects the partitions the template's delivery stream writes.

The test reads the ``CREATE EXTERNAL TABLE`` block out of docs/archive.md and the
``ArchiveDeliveryStream`` out of template.yaml. The partition columns and the
``storage.location.template`` must be the ``Prefix``'s keys, in order; and for changes at
the edges of a day, the location Firehose gives a line (the template's JQ query run with
jq 1.6, the ``Prefix`` evaluated) must be the location the projection computes from the
same change's table, date and hour, formatted as the projection properties say. A change
to either side alone (a renamed key, another date format, an unpadded hour) fails here.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jq
import pytest

from ddbsync.archive.lines import archive_line
from ddbsync_local.cfn import TEMPLATE
from ddbsync_local.firehose import evaluate_prefix, java_datetime, stream_config
from tests.support import load_event

DOC = Path(__file__).resolve().parents[2] / "docs" / "archive.md"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2026-01-01T00:00:00.000"
BUCKET_ROOT = "s3://ARCHIVE-BUCKET/"


def ddl() -> str:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    (statement,) = [b for b in blocks if "CREATE EXTERNAL TABLE" in b]
    return str(statement)


def properties(statement: str) -> dict[str, str]:
    body = statement.split("TBLPROPERTIES", 1)[1]
    return dict(re.findall(r"'([^']+)'\s*=\s*'([^']*)'", body))


def partition_columns(statement: str) -> list[tuple[str, str]]:
    match = re.search(r"PARTITIONED BY \((.*?)\)", statement, re.DOTALL)
    assert match, "no PARTITIONED BY clause"
    columns = [c.split() for c in match.group(1).split(",")]
    return [(name.strip("`"), kind) for name, kind in columns]


def prefix_keys(prefix: str) -> list[str]:
    return re.findall(r"!\{partitionKeyFromQuery:(\w+)\}", prefix)


@pytest.fixture(scope="module")
def props() -> dict[str, str]:
    return properties(ddl())


def test_the_partition_columns_are_the_prefix_keys_in_order(props: dict[str, str]) -> None:
    prefix = stream_config(TEMPLATE).prefix
    keys = prefix_keys(prefix)
    assert keys, prefix
    assert partition_columns(ddl()) == [(key, "string") for key in keys]
    assert props["projection.enabled"] == "true"
    for key in keys:
        assert f"projection.{key}.type" in props, key
    location = re.sub(r"!\{partitionKeyFromQuery:(\w+)\}", r"${\1}", prefix)
    assert props["storage.location.template"] == BUCKET_ROOT + location
    assert f"LOCATION '{BUCKET_ROOT}'" in ddl()


def projected_value(props: dict[str, str], column: str, value: str) -> str:
    """``value`` as the projection of ``column`` writes it, after checking it is in its range."""
    kind = props[f"projection.{column}.type"]
    if kind == "enum":
        assert value in props[f"projection.{column}.values"].split(","), (column, value)
        return value
    if kind == "injected":
        return value
    if kind == "date":
        pattern = props[f"projection.{column}.format"]
        start, end = props[f"projection.{column}.range"].split(",")
        assert end == "NOW" and props[f"projection.{column}.interval.unit"] == "DAYS"
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)  # what the query wrote
        assert day >= datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC), (column, value)
        return java_datetime(pattern, day)
    assert kind == "integer", kind
    low, high = (int(v) for v in props[f"projection.{column}.range"].split(","))
    number = int(value)
    assert low <= number <= high, (column, value)
    return str(number).zfill(int(props.get(f"projection.{column}.digits", "1")))


WHEN = [
    "2026-01-01T00:00:00",
    "2026-01-01T09:05:00",
    "2026-06-30T23:59:59.999",
    "2026-11-15T13:00:00.5",
    "2028-02-29T07:30:00",
]


@pytest.mark.parametrize("when", WHEN)
def test_a_line_is_where_the_projection_looks_for_it(props: dict[str, str], when: str) -> None:
    config = stream_config(TEMPLATE)
    record: dict[str, Any] = copy.deepcopy(load_event("insert.json")["Records"][0])
    record["eventSourceARN"] = ARN.format("orders")
    at = datetime.fromisoformat(when).replace(tzinfo=UTC)
    record["dynamodb"]["ApproximateCreationDateTime"] = at.timestamp()

    (keys,) = jq.compile(config.query).input_text(archive_line(record).decode()).all()
    written = BUCKET_ROOT + evaluate_prefix(config.prefix, keys, at)
    projected = props["storage.location.template"]
    for column, _ in partition_columns(ddl()):
        projected = projected.replace("${" + column + "}", projected_value(props, column, keys[column]))

    assert projected == written
    assert written == f"{BUCKET_ROOT}table=orders/dt={at:%Y-%m-%d}/hour={at:%H}/"  # UTC, two-digit hour
