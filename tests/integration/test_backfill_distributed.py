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

import io
import json
import sys
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync_local.backfill_run import LocalExports, run_backfill
from tests.integration.test_backfill_e2e import BUCKET, World, assert_unchanged
from tests.integration.test_backfill_e2e import world as world  # the fixture
from tests.support import OPENSEARCH_URL

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
    assert world.searchable() == world.table()
    assert len(world.table()) == FILES
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


@dataclass
class StandInArchiveReader:
    """Stands in for ddbsync.rebuild.files.index_archive_object (written in parallel, issue #9
    section 3) in this test only: it reads nothing and reports each object's lines as applied,
    ``per_call`` at most per call, so the runner, the state machine's archive branch and the
    actions are tested here and the real reader after the merge."""

    lines: int = 30
    per_call: int = 20
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, s3: Any, bucket: str, key: str, *, start_line: int, **_: Any) -> Any:
        self.calls.append((key, start_line))
        end = min(self.lines, start_line + self.per_call)
        return types.SimpleNamespace(
            done=end == self.lines, checkpoint=end, applied=end - start_line, stale=0, skipped=0,
            poison=0, first_poison=None,
        )  # fmt: skip


def test_an_archive_source_runs_the_rebuild_branch_locally_and_swaps(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = StandInArchiveReader()
    module = types.ModuleType("ddbsync.rebuild.files")
    module.index_archive_object = reader  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ddbsync.rebuild.files", module)
    world.create_table(0)
    live = world.live_index_with_ghosts()
    world.s3.create_bucket(Bucket=ARCHIVE, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    keys = [f"table=orders/dt=2026-01-01/hour={h:02d}/part-{h}.gz" for h in range(25)]
    for key in [*keys, "errors/processing-failed/x.gz"]:
        world.s3.put_object(Bucket=ARCHIVE, Key=key, Body=b"")
    source = {"type": "archive", "uri": f"s3://{ARCHIVE}/", "since": None, "until": None}

    out = io.StringIO()
    summary = run_backfill(
        world.settings(), world.backfill_settings(), client=world.os_client, s3=world.s3,
        exports=LocalExports(world.ddb, world.s3), execution_input={"source": source}, out=out,
    )  # fmt: skip

    assert summary.status == "SUCCEEDED", summary.cause
    assert summary.swapped and summary.old_indices == [live]
    # Every archive object (not Firehose's errors/) from line 0, then again from line 20.
    assert sorted(reader.calls) == sorted([(k, 0) for k in keys] + [(k, 20) for k in keys])
    # Objects gone through: the 26 listed (errors/x.gz skipped); lines replayed: 25 x 30.
    assert (summary.files, summary.items) == (26, 25 * 30)
    # Two batches (ArchiveObjectsPerBatch 20), each call ending at a 20-line cut or a batch's end.
    assert out.getvalue().count("batch ") == summary.invocations
    assert "continues from this line" in out.getvalue()
    steps = [s for s in summary.execution.trace if s in ("PrepareRebuild", "WaitForArchive", "Finalize")]
    assert steps == ["PrepareRebuild", "WaitForArchive", "Finalize"]
