"""``ddbsync repair`` against moto (table, S3, a real-format incremental export) and the
real OpenSearch: a live index that missed a window of stream changes is repaired.

The history is written to the moto table *and* described with explicit write times, so
each test decides which seconds changes fall in; the changes outside the lost window
reach the index through the real stream indexer handler.
"""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.cli import build_parser, repair
from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.handler import make_handler
from ddbsync.opensearch.indices import ensure_index
from ddbsync.repair import RepairSummary, Window, run_repair
from ddbsync_local.demo import create_stream_table
from ddbsync_local.exporter import TableChange
from ddbsync_local.repair_exports import LocalIncrementalExports
from tests.support import FakeContext, base_env

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
TABLE = "orders"
BUCKET = "repair-exports"
PREFIX = "exports"
# The lost window: [T1, T2), an hour in the past.
T2 = (int(time.time()) // 60) * 60 - 3600
T1 = T2 - 1800


def keys(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"c-{i % 7}"}, "sk": {"S": f"o-{i:04d}"}}


def image(i: int, v: int) -> dict[str, Any]:
    return {**keys(i), "n": {"N": str(i * 100 + v)}, "name": {"S": f"order {i} v{v}"}}


def plain(item: dict[str, Any]) -> dict[str, object]:
    return {k: int(v["N"]) if "N" in v else v["S"] for k, v in item.items()}


@dataclass
class World:
    """The moto table, the live index fed by the stream indexer, and the history of changes."""

    os_client: OpenSearch
    alias: str
    dlq_url: str
    ddb: Any = field(default_factory=lambda: boto3.client("dynamodb", region_name=REGION))
    s3: Any = field(default_factory=lambda: boto3.client("s3", region_name=REGION))
    changes: list[TableChange] = field(default_factory=list)
    seq: int = 100000000000000000000
    output: str = ""

    def __post_init__(self) -> None:
        create_stream_table(self.ddb, TABLE)
        self.table_arn = self.ddb.describe_table(TableName=TABLE)["Table"]["TableArn"]
        self.ddb.update_continuous_backups(
            TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        ensure_index(self.os_client, self.alias, DEFAULT_INDEX_TEMPLATE)
        self.indexer = make_handler(Settings.from_env(base_env(self.alias, self.dlq_url)))
        self.current: dict[int, dict[str, Any] | None] = {}

    def env(self) -> dict[str, str]:
        env = base_env(self.alias, self.dlq_url)
        env.update(TABLE_ARN=self.table_arn, EXPORT_BUCKET=BUCKET, EXPORT_PREFIX=PREFIX)
        return env

    def write(self, i: int, v: int | None, at: float, *, lost: bool = False) -> dict[str, Any]:
        """Put (``v``) or delete (None) item ``i`` at time ``at``; the indexer sees it unless ``lost``."""
        new = None if v is None else image(i, v)
        old = self.current.get(i)
        if new is None:
            self.ddb.delete_item(TableName=TABLE, Key=keys(i))
        else:
            self.ddb.put_item(TableName=TABLE, Item=new)
        self.current[i] = new
        self.changes.append(TableChange(keys(i), new, old, int(at * 1_000_000)))
        self.seq += 7
        ddb: dict[str, Any] = {
            "ApproximateCreationDateTime": int(at),
            "Keys": keys(i),
            "SequenceNumber": str(self.seq),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            ddb["NewImage"] = new
        if old is not None:
            ddb["OldImage"] = old
        name = "REMOVE" if new is None else ("MODIFY" if old else "INSERT")
        record = {"eventID": str(self.seq)[-8:], "eventName": name, "eventSource": "aws:dynamodb",
                  "awsRegion": REGION, "dynamodb": ddb}  # fmt: skip
        if not lost:
            self.deliver([record])
        return record

    def deliver(self, records: list[dict[str, Any]]) -> None:
        response = self.indexer({"Records": records}, FakeContext())
        assert response == {"batchItemFailures": []}

    def exports(self, *, fail: bool = False) -> LocalIncrementalExports:
        return LocalIncrementalExports(self.ddb, self.s3, changes=lambda _w: self.changes, fail=fail,
                                       items_per_file=7)  # fmt: skip

    def run(self, *, fail: bool = False) -> RepairSummary:
        out = io.StringIO()
        settings = Settings.from_env(self.env(), require_dlq=False)
        bs = BackfillSettings(self.table_arn, BUCKET, PREFIX, "DYNAMODB_JSON", None, False, 0)
        try:
            return run_repair(settings, bs, Window.of(T1, T2), client=self.os_client, s3=self.s3,
                              exports=self.exports(fail=fail), poll_s=0, out=out)  # fmt: skip
        finally:
            self.output = out.getvalue()

    def cli(self, *argv: str, fail: bool = False) -> int:
        out = io.StringIO()
        args = build_parser().parse_args(["repair", *argv, "--poll-seconds", "0"])
        code = repair.main(args, env=self.env(), exports=self.exports(fail=fail), s3=self.s3, out=out)
        self.output = out.getvalue()
        return code

    def table(self) -> dict[str, dict[str, object]]:
        items = self.ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return {f"{x['pk']['S']}|{x['sk']['S']}": plain(x) for x in items}

    def searchable(self) -> dict[str, dict[str, object]]:
        self.os_client.indices.refresh(index=self.alias)
        hits = self.os_client.search(index=self.alias, body={"size": 10_000})["hits"]["hits"]
        return {h["_id"]: {k: v for k, v in h["_source"].items() if k != "_ddbsync"} for h in hits}

    def stored(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Every document, tombstones included, with its version."""
        self.os_client.indices.refresh(index=self.alias)
        index = next(iter(self.os_client.indices.get_alias(name=self.alias)))
        body = {"size": 10_000, "version": True}
        hits = self.os_client.search(index=index, body=body)["hits"]["hits"]
        return {h["_id"]: (h["_version"], h["_source"]) for h in hits}


@pytest.fixture
def world(aws: None, os_client: OpenSearch, alias: str, dlq_url: str) -> Iterator[World]:
    yield World(os_client, alias, dlq_url)


def lost_window(world: World) -> None:
    """20 items indexed before the window, then a window of changes that never reached the index."""
    for i in range(20):
        world.write(i, 0, T1 - 600 + i)
    for i in range(5):  # updates
        world.write(i, 1, T1 + 60 + i, lost=True)
    for i in range(5, 10):  # deletes of indexed items
        world.write(i, None, T1 + 120 + i, lost=True)
    for i in range(20, 25):  # inserts
        world.write(i, 0, T1 + 180 + i, lost=True)
    world.write(25, 0, T1 + 300.1, lost=True)  # inserted and deleted inside the window
    world.write(25, None, T1 + 300.2, lost=True)
    world.write(10, 1, T1 + 400.1, lost=True)  # two updates in one second
    world.write(10, 2, T1 + 400.9, lost=True)
    # The indexer saw the first change of a second, the window lost the second one.
    world.write(11, 1, T1 + 500.2)
    world.write(11, 2, T1 + 500.7, lost=True)


def test_a_live_index_that_missed_a_window_is_repaired_to_equal_the_table(world: World) -> None:
    lost_window(world)
    assert world.searchable() != world.table()

    to = dt.datetime.fromtimestamp(T2, dt.UTC).isoformat().replace("+00:00", "Z")
    code = world.cli("--from", str(T1), "--to", to)

    assert code == 0, world.output
    assert world.searchable() == world.table()
    assert "export IN_PROGRESS" in world.output and "export COMPLETED" in world.output
    # One record per changed item (compacted), in 3 files of at most 7 records.
    assert "18 records from 3 files" in world.output, world.output
    tombstone = world.stored()["c-4|o-0025"][1]["_ddbsync"]
    assert tombstone == {"deleted": True, "seq": None, "ts": T1 + 300, "source": "repair"}


def test_a_change_indexed_after_the_window_is_not_overwritten(world: World) -> None:
    lost_window(world)
    world.write(0, 7, T2 + 0.1)  # the second right after the window: newer than the repair
    world.write(1, None, T2 + 30)  # deleted after its lost update
    world.write(3, 1, T2 - 0.5, lost=True)  # lost in the window's last second...
    world.write(3, 2, T2 + 0.2)  # ...then changed again in the first second after it

    summary = world.run()

    assert world.searchable() == world.table(), world.output
    assert summary.stale == 3  # items 0, 1 and 3: the indexed change is newer
    assert world.stored()["c-0|o-0000"][1]["n"] == 7


def test_a_late_replay_of_an_older_same_second_change_loses_to_the_repair(world: World) -> None:
    first = world.write(12, 1, T1 + 700.1)  # indexed
    world.write(12, 2, T1 + 700.8, lost=True)  # the same second, lost
    world.run()
    assert world.searchable()["c-5|o-0012"]["n"] == 1202

    world.deliver([first])  # the on-failure queue replayed hours later

    assert world.searchable() == world.table()


def test_a_repair_run_twice_is_idempotent(world: World) -> None:
    lost_window(world)
    first = world.run()
    after_first = world.stored()

    second = world.run()

    assert first.applied == first.records == 18 and first.stale == 0
    assert second.applied == 0 and second.stale == 18
    assert world.stored() == after_first
    assert world.searchable() == world.table()


def test_a_failed_export_leaves_the_index_untouched_and_exits_non_zero(world: World) -> None:
    lost_window(world)
    before = world.stored()

    code = world.cli("--from", str(T1), "--to", str(T2), fail=True)

    assert code == 1
    assert "the export failed (S3NoSuchBucket)" in world.output, world.output
    assert world.stored() == before


def test_a_table_without_pitr_fails_with_advice(world: World) -> None:
    world.ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    code = world.cli("--from", str(T1), "--to", str(T2))
    assert code == 1
    assert "turn PITR on" in world.output, world.output


def test_a_missing_live_alias_fails_before_any_export(world: World) -> None:
    world.os_client.indices.delete(index=f"{world.alias}-*")
    exports = world.exports()
    out = io.StringIO()
    args = build_parser().parse_args(["repair", "--from", str(T1), "--to", str(T2)])
    assert repair.main(args, env=world.env(), exports=exports, s3=world.s3, out=out) == 1
    assert "does not exist" in out.getvalue() and exports.started == 0
    assert not world.os_client.indices.exists(index=world.alias)


def test_the_local_stand_in_reads_the_window_from_the_moto_stream(world: World) -> None:
    for i in range(3):
        world.write(i, 0, time.time(), lost=True)
    world.write(1, None, time.time(), lost=True)
    end = int(time.time()) + 1
    time.sleep(max(0.0, end - time.time()) + 0.05)
    exports = LocalIncrementalExports(world.ddb, world.s3)  # changes from the table's stream
    settings = Settings.from_env(world.env(), require_dlq=False)
    bs = BackfillSettings(world.table_arn, BUCKET, PREFIX, "ION", None, False, 0)

    summary = run_repair(settings, bs, Window.of(end - 900, end), client=world.os_client, s3=world.s3,
                         exports=exports, poll_s=0, out=io.StringIO())  # fmt: skip

    assert (summary.records, summary.tombstones) == (3, 1)
    assert world.searchable() == world.table()
