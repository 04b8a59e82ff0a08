"""The delivery stream's MetadataExtractionQuery, run with jq 1.6 on the archiver's real lines.

Firehose runs the query (JsonParsingEngine JQ-1.6) on every record the archiver sends and
writes the record under ``table=<table>/dt=<dt>/hour=<hour>/``. These tests read the
query out of template.yaml and run it with the PyPI ``jq`` package pinned to 1.5.0, the
last release that bundles jq 1.6, on ``archive_line`` of the sample events and of
records at the edges of a day; the keys must be what Python's datetime says in UTC.

A line the query cannot partition (no numeric ApproximateCreationDateTime, no tableName)
makes jq raise an error. Firehose then writes that record, not lost, under the
ErrorOutputPrefix with ``!{firehose:error-output-type}`` = ``processing-failed``.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jq
import pytest

from ddbsync.archive.lines import TABLE_FIELD, archive_line
from ddbsync.errors import RecordError
from tests.support import EVENTS_DIR, STREAM_ARN, load_event, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def s3_destination() -> dict[str, Any]:
    stream = load_template(TEMPLATE)["Resources"]["ArchiveDeliveryStream"]["Properties"]
    destination: dict[str, Any] = stream["ExtendedS3DestinationConfiguration"]
    return destination


@pytest.fixture(scope="module")
def extraction() -> dict[str, str]:
    processors = s3_destination()["ProcessingConfiguration"]["Processors"]
    (processor,) = [p for p in processors if p["Type"] == "MetadataExtraction"]
    return {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}


@pytest.fixture(scope="module")
def query(extraction: dict[str, str]) -> Any:
    assert extraction["JsonParsingEngine"] == "JQ-1.6"
    return jq.compile(extraction["MetadataExtractionQuery"])


def partition_keys(query: Any, line: bytes) -> Any:
    """What Firehose's metadata extraction gets from one record: the query's outputs."""
    return query.input_text(line.decode()).all()


def expected(record: dict[str, Any]) -> dict[str, str]:
    when = datetime.fromtimestamp(math.floor(record["dynamodb"]["ApproximateCreationDateTime"]), UTC)
    table = record["eventSourceARN"].split(":table/", 1)[1].split("/", 1)[0]
    return {"table": table, "dt": when.strftime("%Y-%m-%d"), "hour": when.strftime("%H")}


def test_the_installed_jq_is_jq_16_like_firehoses_engine() -> None:
    # jq 1.7 made `else` optional and added pick/1; jq 1.6 rejects both at compile time.
    assert jq.compile("if true then 1 else 2 end").input_value(None).first() == 1
    for program in ("if true then 1 end", "pick(.a)"):
        with pytest.raises(ValueError, match="compile error"):
            jq.compile(program)


def sample_records() -> list[tuple[str, dict[str, Any]]]:
    records = []
    for path in sorted(EVENTS_DIR.glob("*.json")):
        for i, record in enumerate(load_event(path.name).get("Records", [])):
            try:
                archive_line(record)
            except RecordError:
                continue  # the archiver dead-letters it; Firehose never sees it
            records.append((f"{path.stem}[{i}]", record))
    return records


SAMPLES = sample_records()


def test_the_sample_events_give_lines() -> None:
    assert len(SAMPLES) >= 10


@pytest.mark.parametrize(("name", "record"), SAMPLES, ids=[name for name, _ in SAMPLES])
def test_partition_keys_of_the_sample_events(query: Any, name: str, record: dict[str, Any]) -> None:
    assert partition_keys(query, archive_line(record)) == [expected(record)]


def at(when: float, arn: str = STREAM_ARN) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(load_event("insert.json")["Records"][0])
    record["eventSourceARN"] = arn
    record["dynamodb"]["ApproximateCreationDateTime"] = when
    return record


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


EDGES = {
    "midnight": (epoch("2026-01-01T00:00:00"), "2026-01-01", "00"),
    "one second before midnight": (epoch("2025-12-31T23:59:59"), "2025-12-31", "23"),
    "float just before midnight": (epoch("2026-01-01T00:00:00") - 0.001, "2025-12-31", "23"),
    "float just after the hour": (epoch("2026-03-01T13:00:00") + 0.5, "2026-03-01", "13"),
    "leap day": (epoch("2028-02-29T07:30:00"), "2028-02-29", "07"),
    "epoch": (0, "1970-01-01", "00"),
    "float with whole value": (float(epoch("2026-06-15T09:00:00")), "2026-06-15", "09"),
}


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_partition_keys_at_the_edges_of_a_day_are_utc(query: Any, edge: str) -> None:
    when, dt, hour = EDGES[edge]
    record = at(when)
    assert expected(record) == {"table": "t", "dt": dt, "hour": hour}  # the test's own arithmetic
    assert partition_keys(query, archive_line(record)) == [{"table": "t", "dt": dt, "hour": hour}]


def test_the_table_name_is_the_lines_table_field_with_any_allowed_character(query: Any) -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/My_Table.v2-prod/stream/2026-01-01T00:00:00.000"
    line = archive_line(at(epoch("2026-01-01T12:00:00"), arn))
    assert json.loads(line)[TABLE_FIELD] == "My_Table.v2-prod"
    assert partition_keys(query, line) == [{"table": "My_Table.v2-prod", "dt": "2026-01-01", "hour": "12"}]


def unpartitionable() -> dict[str, bytes]:
    no_time = at(1)
    del no_time["dynamodb"]["ApproximateCreationDateTime"]
    no_dynamodb = at(1)
    del no_dynamodb["dynamodb"]
    string_time = at(1)
    string_time["dynamodb"]["ApproximateCreationDateTime"] = "2026-01-01T00:00:00Z"
    null_time = at(1)
    null_time["dynamodb"]["ApproximateCreationDateTime"] = None
    return {
        "no ApproximateCreationDateTime": archive_line(no_time),
        "no dynamodb": archive_line(no_dynamodb),
        "a string ApproximateCreationDateTime": archive_line(string_time),
        "a null ApproximateCreationDateTime": archive_line(null_time),
        # A record sent without the archiver's tableName (not something archive_line makes).
        "no tableName": json.dumps(at(1)).encode(),
        "a numeric tableName": json.dumps({**at(1), TABLE_FIELD: 7}).encode(),
    }


UNPARTITIONABLE = unpartitionable()


@pytest.mark.parametrize("case", sorted(UNPARTITIONABLE))
def test_a_line_without_its_keys_makes_the_query_fail(query: Any, case: str) -> None:
    # An error, never null keys: Firehose fails the record's metadata extraction and writes
    # it under errors/processing-failed/ (ErrorOutputPrefix), where it can be read back.
    with pytest.raises(ValueError, match=r"is not a (number|string)"):
        partition_keys(query, UNPARTITIONABLE[case])


def test_failed_records_have_an_error_prefix_by_error_type() -> None:
    assert s3_destination()["ErrorOutputPrefix"].startswith("errors/!{firehose:error-output-type}/")
