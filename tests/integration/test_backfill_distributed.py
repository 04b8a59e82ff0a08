"""The backfill's Distributed Maps at scale and on failure: the whole local state machine
(statemachine/backfill.asl.json in ddbsync_local.stepfunctions, distributed mode included),
the real backfill Lambda actions, moto (DynamoDB, S3) and the real OpenSearch.

* Scale: a 5,000-file export (one item per file) runs through the export Map, whose
  ItemReader reads manifest-files.json from S3 (an inline Map held the file list in the
  state and broke near 2,000 files), and the index equals the table.
* Failure report: a poison item in one file fails its child execution; the parent Map only
  sees States.ExceedToleratedFailureThreshold, and ReportFailures reads the ResultWriter's
  FAILED file back so that the execution's cause names the file's s3 uri and line.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.archive.lines import archive_line
from ddbsync_local.backfill_run import LocalExports, run_backfill
from tests.integration.test_backfill_e2e import BUCKET, World, assert_unchanged
from tests.integration.test_backfill_e2e import world as world  # the fixture
from tests.support import OPENSEARCH_URL, RecordFactory

pytestmark = pytest.mark.integration

FILES = 5000


@pytest.fixture
def wide_world(aws: None, alias: str) -> Iterator[World]:
    # One connection per Map child running at once (the fixture's client keeps one).
    yield World(OpenSearch(hosts=[OPENSEARCH_URL], timeout=30, pool_maxsize=16), alias)


def test_a_5000_file_export_backfills_through_the_distributed_map(wide_world: World) -> None:
    world = wide_world
    started = time.monotonic()
    world.create_table(FILES)
    live = world.live_index_with_ghosts()
    seeded = time.monotonic()

    # One PutObject per file: the export's 15,000 multipart calls to moto would take longer
    # than the backfill itself.
    marks: dict[str, float] = {}
    summary = world.run(
        items_per_file=1,
        map_concurrency=8,
        multipart=False,
        after_task=lambda action, _: None if action in marks else marks.update({action: time.monotonic()}),
    )

    ran = time.monotonic()
    assert summary.status == "SUCCEEDED", summary.cause
    assert (summary.files, summary.items, summary.invocations) == (FILES, FILES, FILES)
    assert summary.swapped and summary.old_indices == [live]
    table = world.table()  # one scan: moto takes seconds to serialize thousands of items
    assert world.searchable() == table
    assert len(table) == FILES
    # The file list never travelled in the state: the Map read manifest-files.json itself.
    assert "files" not in summary.execution.output["backfill"]
    assert summary.execution.output["backfill"]["file_count"] == FILES
    # Its ResultWriter recorded one SUCCEEDED child per file, none failed.
    (manifest_key,) = [
        o["Key"]
        for page in world.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="map-results/")
        for o in page.get("Contents", [])
        if o["Key"].endswith("/manifest.json")
    ]
    manifest = json.loads(world.s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["ResultFiles"]["FAILED"] == [] and manifest["ResultFiles"]["PENDING"] == []
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    children = json.loads(world.s3.get_object(Bucket=BUCKET, Key=succeeded["Key"])["Body"].read())
    assert len(children) == FILES and {c["Status"] for c in children} == {"SUCCEEDED"}
    export, mapped = marks["start_export"] - seeded, marks["finalize"] - marks["read_manifest"]
    print(f"\n{FILES}-file backfill: table {seeded - started:.1f} s, export {export:.1f} s, ", end="")
    print(f"Map {mapped:.1f} s, whole state machine {ran - seeded:.1f} s")


def _poison(world: World, data_key: str) -> None:
    """Line 3 of the file: a sort key of type BOOL, which no document id can be built from."""
    lines = world.read_lines(data_key)
    lines[2] = lines[2].replace(b'"sk":{"S":', b'"sk":{"BOOL":true,"X":', 1)
    world.write_lines(data_key, lines)


def test_a_poison_item_fails_the_execution_with_the_files_s3_uri_and_line(world: World) -> None:
    world.create_table(200)
    live = world.live_index_with_ghosts()
    poisoned: list[str] = []

    def poison_one_file(action: str, result: Mapping[str, Any]) -> None:
        if action == "start_export":
            data_key = world.export_files()[3]["dataFileS3Key"]
            _poison(world, data_key)
            poisoned.append(data_key)

    summary = world.run(items_per_file=20, after_task=poison_one_file, map_concurrency=4)

    (data_key,) = poisoned
    assert (summary.status, summary.error) == ("FAILED", "MapRunError"), summary.cause
    assert summary.cause is not None
    message = json.loads(summary.cause)["errorMessage"]
    assert f"s3://{BUCKET}/{data_key}, line 3: " in message, message
    assert "States.ExceedToleratedFailureThreshold" in message
    assert_unchanged(world, live, summary)
    assert summary.execution.trace[-3:] == ["ReportFailures", "Abort", "BackfillFailed"]


# ---------------------------------------------------------------- the archive branch, locally

ARCHIVE = "archive-bucket"


def _archive_history(world: World) -> dict[str, int]:
    """Write a history of 40 keys (inserts, updates, removes, same-second changes) to the
    archive as the archiver and Firehose would (archive lines, "\n", gzip, partitions by
    hour, objects overlapping in time, written in shuffled order); the expected live ``n``."""
    f = RecordFactory(pk="pk", sk="sk")
    base = 1_767_225_600  # 2026-01-01T00:00:00Z
    records: list[dict[str, Any]] = []
    expected: dict[str, int] = {}
    for i in range(40):
        pk, sk = f"customer-{i % 7}", f"order-{i:05d}"
        created = base + i * 1800  # spread over 20 hours
        records.append(f.record("INSERT", pk, sk, {"n": i}, created=created))
        records.append(f.record("MODIFY", pk, sk, {"n": i + 1000}, created=created))  # same second
        expected[f"{pk}|{sk}"] = i + 1000
        if i % 3 == 0:
            records.append(f.record("REMOVE", pk, sk, created=created + 4000))
            del expected[f"{pk}|{sk}"]
    rng = random.Random(9)
    objects: dict[str, list[bytes]] = {}
    for record in records:
        made = time.gmtime(record["dynamodb"]["ApproximateCreationDateTime"])
        hour = time.strftime("dt=%Y-%m-%d/hour=%H", made)
        objects.setdefault(f"table=orders/{hour}/part-{rng.randrange(3)}.gz", []).append(archive_line(record))
    keys = list(objects)
    rng.shuffle(keys)
    for key in keys:
        body = gzip.compress(b"".join(line + b"\n" for line in objects[key]))
        world.s3.put_object(Bucket=ARCHIVE, Key=key, Body=body)
    bad = gzip.compress(b"not a line\n")  # Firehose's error output: never read by the rebuild
    world.s3.put_object(Bucket=ARCHIVE, Key="errors/processing-failed/x.gz", Body=bad)
    return expected


def test_an_archive_source_rebuilds_a_new_index_from_the_archive_and_swaps(world: World) -> None:
    world.create_table(0)
    live = world.live_index_with_ghosts()
    world.s3.create_bucket(Bucket=ARCHIVE, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    expected = _archive_history(world)
    source = {"type": "archive", "uri": f"s3://{ARCHIVE}/table=orders"}

    out = io.StringIO()
    summary = run_backfill(
        world.settings(), world.backfill_settings(), client=world.os_client, s3=world.s3,
        exports=LocalExports(world.ddb, world.s3), execution_input={"source": source}, out=out,
        map_concurrency=4,
    )  # fmt: skip

    assert summary.status == "SUCCEEDED", summary.cause
    assert summary.swapped and summary.old_indices == [live]
    # The ghosts of the old live index are gone; the archive's history decides every key.
    assert {k: v["n"] for k, v in world.searchable().items()} == expected
    steps = [s for s in summary.execution.trace if s in ("PrepareRebuild", "WaitForArchive", "Finalize")]
    assert steps == ["PrepareRebuild", "WaitForArchive", "Finalize"]
