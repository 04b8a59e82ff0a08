"""The backfill state machine end to end: moto (DynamoDB, Streams, S3), the local Step
Functions runner, real-format exports (LocalExports) and the real OpenSearch.

Every run goes through statemachine/backfill.asl.json and ddbsync.backfill.steps.Backfill,
exactly as deployed; only the AWS services are local.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.handler import make_handler
from ddbsync.opensearch.indices import ensure_index, next_alias_name
from ddbsync_local.backfill_run import BackfillSummary, LocalExports, local_env, run_backfill
from ddbsync_local.demo import create_stream_table
from ddbsync_local.esm import EsmConfig, EventSourceMapping
from tests.support import OPENSEARCH_URL, base_env, order_item

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
TABLE = "orders"
BUCKET = "backfill-exports"
PREFIX = "exports"


def table_item(i: int, version: int = 0) -> dict[str, Any]:
    return order_item(i, version)


def key(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"customer-{i % 37}"}, "sk": {"S": f"order-{i:05d}"}}


def plain(value: Mapping[str, Any]) -> object:
    """The document value of the test's attribute types."""
    ((tag, inner),) = value.items()
    if tag == "N":
        return int(inner)
    if tag == "SS":
        return sorted(inner)
    if tag == "M":
        return {k: plain(v) for k, v in inner.items()}
    return inner


@dataclass
class World:
    """moto clients, the table, and the backfill's settings for one alias."""

    os_client: OpenSearch
    alias: str
    ddb: Any = field(default_factory=lambda: boto3.client("dynamodb", region_name=REGION))
    s3: Any = field(default_factory=lambda: boto3.client("s3", region_name=REGION))
    table_arn: str = ""
    stream_arn: str = ""
    output: str = ""

    def create_table(self, items: int, *, pitr: bool = True) -> None:
        self.stream_arn = create_stream_table(self.ddb, TABLE)
        self.table_arn = self.ddb.describe_table(TableName=TABLE)["Table"]["TableArn"]
        if pitr:
            self.ddb.update_continuous_backups(
                TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        for start in range(0, items, 25):
            batch = [{"PutRequest": {"Item": table_item(i)}} for i in range(start, min(items, start + 25))]
            self.ddb.batch_write_item(RequestItems={TABLE: batch})
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})

    def settings(self) -> Settings:
        env = local_env(OPENSEARCH_URL, self.alias, "pk", "sk")
        env.update(RETRY_BASE_MS="10", RETRY_MAX_MS="200")
        return Settings.from_env(env, require_dlq=False)

    def backfill_settings(self, fmt: str = "DYNAMODB_JSON", *, keep_old: bool = False) -> BackfillSettings:
        return BackfillSettings(self.table_arn, BUCKET, PREFIX, fmt, None, keep_old, 0)

    def run(
        self,
        fmt: str = "DYNAMODB_JSON",
        *,
        items_per_file: int = 1000,
        fail: bool = False,
        keep_old: bool = False,
        timeout_ms: int = 900_000,
        tick_ms: int | None = None,
        after_task: Callable[[str, Mapping[str, Any]], None] | None = None,
        map_concurrency: int = 4,
        multipart: bool = True,
    ) -> BackfillSummary:
        out = io.StringIO()
        summary = run_backfill(
            self.settings(),
            self.backfill_settings(fmt, keep_old=keep_old),
            client=self.os_client,
            s3=self.s3,
            exports=LocalExports(
                self.ddb, self.s3, items_per_file=items_per_file, fail=fail, multipart=multipart
            ),
            timeout_ms=timeout_ms,
            tick_ms=tick_ms,
            after_task=after_task,
            map_concurrency=map_concurrency,
            out=out,
        )
        self.output = out.getvalue()
        return summary

    def table(self) -> dict[str, dict[str, object]]:
        docs = {}
        for page in self.ddb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
            for item in page["Items"]:
                docs[f"{item['pk']['S']}|{item['sk']['S']}"] = {k: plain(v) for k, v in item.items()}
        return docs

    def searchable(self) -> dict[str, dict[str, object]]:
        self.os_client.indices.refresh(index=self.alias)
        body = {"query": {"match_all": {}}, "size": 10_000}
        hits = self.os_client.search(index=self.alias, body=body)["hits"]["hits"]
        docs = {}
        for hit in hits:
            source = {k: v for k, v in hit["_source"].items() if k != "_ddbsync"}
            if "tags" in source:
                source["tags"] = sorted(source["tags"])
            docs[hit["_id"]] = source
        return docs

    def indices_of(self, name: str) -> list[str]:
        if not self.os_client.indices.exists_alias(name=name):
            return []
        return sorted(self.os_client.indices.get_alias(name=name))

    def live_index_with_ghosts(self) -> str:
        """A live index holding a wrong view of the table: a stale copy and an item long gone."""
        live = ensure_index(self.os_client, self.alias, DEFAULT_INDEX_TEMPLATE)
        self.os_client.index(index=self.alias, id="ghost|1", body={"pk": "ghost", "sk": "1"})
        wrong = {"pk": "customer-0", "sk": "order-00000", "n": -1}
        self.os_client.index(index=self.alias, id="customer-0|order-00000", body=wrong)
        return live

    def export_files(self) -> list[dict[str, Any]]:
        """The data files of the (only) export, from its manifest-files.json."""
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/AWSDynamoDB/")["Contents"]
        (files_key,) = [o["Key"] for o in listing if o["Key"].endswith("/manifest-files.json")]
        body = self.s3.get_object(Bucket=BUCKET, Key=files_key)["Body"].read()
        return [json.loads(line) for line in body.splitlines()]

    def read_lines(self, data_key: str) -> list[bytes]:
        data = self.s3.get_object(Bucket=BUCKET, Key=data_key)["Body"].read()
        return gzip.decompress(data).splitlines(keepends=True)

    def write_lines(self, data_key: str, lines: list[bytes]) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=data_key, Body=gzip.compress(b"".join(lines)))


@pytest.fixture
def world(aws: None, os_client: OpenSearch, alias: str) -> Iterator[World]:
    yield World(os_client, alias)


def assert_unchanged(world: World, live: str, summary: BackfillSummary) -> None:
    """A failed backfill: nothing swapped, the live index serving, the backfill's traces gone."""
    assert summary.status == "FAILED" and not summary.swapped, world.output
    assert world.indices_of(world.alias) == [live]
    assert world.indices_of(next_alias_name(world.alias)) == []
    assert world.os_client.indices.get(index=f"{world.alias}-*").keys() == {live}
    assert "ghost|1" in world.searchable()


# ---------------------------------------------------------------- (a) both formats


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_a_backfill_of_several_files_gives_exactly_the_table(world: World, fmt: str) -> None:
    world.create_table(3000)
    live = world.live_index_with_ghosts()

    summary = world.run(fmt, items_per_file=700)

    assert summary.status == "SUCCEEDED", summary.cause
    assert summary.swapped and summary.old_indices == [live]
    assert (summary.files, summary.items, summary.invocations) == (5, 3000, 5)
    table = world.table()  # one scan: moto takes seconds to serialize thousands of items
    assert world.searchable() == table
    assert len(table) == 3000
    assert world.indices_of(world.alias) == [summary.new_index]
    assert not world.os_client.indices.exists(index=live)
    assert world.indices_of(next_alias_name(world.alias)) == []
    # One progress line per file and the end summary.
    assert world.output.count("700/700") == 4 and "200/200" in world.output
    assert "3000 items from 5 files" in world.output and "items/s" in world.output
    assert f"{live} -> {summary.new_index}" in world.output


# ---------------------------------------------------------------- (b) concurrent writer


def test_a_backfill_while_the_table_changes_ends_equal_to_the_table(world: World, dlq_url: str) -> None:
    world.create_table(600)
    settings = Settings.from_env(base_env(world.alias, dlq_url, NEXT_ALIAS_CHECK_SECONDS="0"))
    handler = make_handler(settings, client=world.os_client)
    esm = EventSourceMapping(world.stream_arn, handler, EsmConfig(batch_size=50))
    esm.poll()  # the live index holds the table before the backfill
    live = world.indices_of(world.alias)[0]
    assert len(world.searchable()) == 600

    writes = iter(range(10_000, 20_000))
    steps: list[str] = []

    def change(action: str, result: Mapping[str, Any]) -> None:
        """Update, delete (items in the export too) and add items, then deliver the stream."""
        steps.append(action)
        step = len(steps)
        for i in range(step * 7 % 600, 600, 37):
            world.ddb.put_item(TableName=TABLE, Item=table_item(i, version=step))
        for i in range(step * 11 % 600, 600, 97):
            world.ddb.delete_item(TableName=TABLE, Key=key(i))
        for _ in range(3):
            world.ddb.put_item(TableName=TABLE, Item=table_item(next(writes), version=step))
        if action == "index_file":
            # Delete an item added after the export, and re-add one deleted from it.
            world.ddb.delete_item(TableName=TABLE, Key=key(10_000))
            world.ddb.put_item(TableName=TABLE, Item=table_item(11 * step % 600, version=99))
        esm.poll()

    summary = world.run(items_per_file=100, keep_old=True, after_task=change)

    assert summary.status == "SUCCEEDED", summary.cause
    assert steps[:4] == ["prepare", "start_export", "describe_export", "read_manifest"]
    assert steps.count("index_file") == summary.files >= 5
    assert world.searchable() == world.table()
    # The old index was kept (KEEP_OLD_INDEX) with tombstone GC untouched.
    assert summary.old_indices == [live]
    kept = world.os_client.indices.get_settings(index=live, include_defaults=True)[live]
    assert "gc_deletes" not in kept["settings"]["index"]
    assert kept["defaults"]["index"]["gc_deletes"] == "60s"


# ---------------------------------------------------------------- (c) out of time, resumed


def test_index_file_calls_that_run_out_of_time_resume_and_end_the_same(world: World) -> None:
    world.create_table(5000)
    resumed: list[int] = []
    checkpoints: dict[str, list[int]] = {}

    def watch(action: str, result: Mapping[str, Any]) -> None:
        if action == "index_file":
            checkpoints.setdefault(result["file"]["key"], []).append(result["checkpoint"])
            if not result["done"]:
                resumed.append(result["checkpoint"])

    # A simulated clock: each look at the remaining time costs 1 s of a 9 s budget, so a
    # call indexes a few 500-item chunks of a 2500-line file, stops before the next one,
    # and the state machine calls it again from its checkpoint (the same on any machine).
    summary = world.run(items_per_file=2500, timeout_ms=9_000, tick_ms=1_000, after_task=watch)

    assert summary.status == "SUCCEEDED", summary.cause
    assert resumed, world.output
    assert summary.invocations == summary.files + len(resumed)
    for progress in checkpoints.values():
        assert progress == sorted(progress) and progress[-1] == 2500  # never backwards, to the end
    assert summary.items == 5000  # no line indexed twice by the resumed calls, none skipped
    assert world.searchable() == world.table()
    assert "continues from this line" in world.output


# ---------------------------------------------------------------- (d) failed export


def test_a_failed_export_leaves_the_old_index_serving(world: World) -> None:
    world.create_table(50)
    live = world.live_index_with_ghosts()

    summary = world.run(fail=True)

    assert summary.error == "ExportFailed"
    assert summary.cause is not None and "S3NoSuchBucket" in summary.cause
    assert_unchanged(world, live, summary)
    assert "unchanged" in world.output


def test_a_table_without_pitr_fails_with_advice(world: World) -> None:
    world.create_table(10, pitr=False)
    live = world.live_index_with_ghosts()

    summary = world.run()

    assert summary.error == "BackfillError"
    assert summary.cause is not None and "turn PITR on" in summary.cause
    assert_unchanged(world, live, summary)


# ---------------------------------------------------------------- (e) bad input


def corrupt_gzip(world: World, data_key: str) -> str:
    data = bytearray(world.s3.get_object(Bucket=BUCKET, Key=data_key)["Body"].read())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    world.s3.put_object(Bucket=BUCKET, Key=data_key, Body=bytes(data))
    return "corrupt gzip data"


def truncate_line(world: World, data_key: str) -> str:
    lines = world.read_lines(data_key)
    lines[6] = lines[6][: len(lines[6]) // 2] + b"\n"
    world.write_lines(data_key, lines)
    return "line 7: invalid JSON"


def unknown_type_tag(world: World, data_key: str) -> str:
    lines = world.read_lines(data_key)
    lines[4] = lines[4].replace(b'"name":{"S":', b'"name":{"Q":', 1)
    world.write_lines(data_key, lines)
    return "line 5: unknown DynamoDB type tag 'Q'"


def missing_file(world: World, data_key: str) -> str:
    world.s3.delete_object(Bucket=BUCKET, Key=data_key)
    return "cannot read the data file listed in the manifest"


def fewer_items(world: World, data_key: str) -> str:
    world.write_lines(data_key, world.read_lines(data_key)[:-1])
    return "holds 39 lines but the manifest says 40 items"


def more_items(world: World, data_key: str) -> str:
    lines = world.read_lines(data_key)
    world.write_lines(data_key, [*lines, lines[0].replace(b"order-", b"extra-")])
    return "holds 41 lines but the manifest says 40 items"


@pytest.mark.parametrize(
    "spoil", [corrupt_gzip, truncate_line, unknown_type_tag, missing_file, fewer_items, more_items]
)
def test_bad_input_is_reported_with_file_and_line_and_nothing_is_swapped(
    world: World, spoil: Callable[[World, str], str]
) -> None:
    world.create_table(120)
    live = world.live_index_with_ghosts()
    expected: list[str] = []

    def spoil_second_file(action: str, result: Mapping[str, Any]) -> None:
        if action == "start_export":
            data_key = world.export_files()[1]["dataFileS3Key"]
            expected[:] = [data_key, spoil(world, data_key)]

    summary = world.run(items_per_file=40, after_task=spoil_second_file)

    data_key, reason = expected
    assert summary.cause is not None
    assert data_key in summary.cause and reason in summary.cause, summary.cause
    assert_unchanged(world, live, summary)


def test_a_manifest_whose_counts_disagree_is_reported(world: World) -> None:
    world.create_table(30)
    live = world.live_index_with_ghosts()

    def spoil_manifest(action: str, result: Mapping[str, Any]) -> None:
        if action == "start_export":
            listing = world.s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]
            (files_key,) = [o["Key"] for o in listing if o["Key"].endswith("/manifest-files.json")]
            entries = world.export_files()
            entries[0]["itemCount"] += 1
            body = b"".join(json.dumps(e).encode() + b"\n" for e in entries)
            world.s3.put_object(Bucket=BUCKET, Key=files_key, Body=body)

    summary = world.run(items_per_file=10, after_task=spoil_manifest)

    assert summary.cause is not None and "lists 31 items" in summary.cause, summary.cause
    assert "says 30" in summary.cause
    assert_unchanged(world, live, summary)


# ---------------------------------------------------------------- the CLI


def test_the_backfill_command_seeds_a_table_and_swaps_the_alias(
    alias: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddbsync.cli import commands as cli

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in-process

    args = ["backfill", "--seed", "50", "--alias", alias, "--items-per-file", "20", "--format", "ION"]
    code = cli.main(args)

    out = capsys.readouterr().out
    assert code == 0, out
    assert "50 items from 3 files" in out and f"alias {alias}: no index -> {alias}-" in out


def test_the_backfill_command_explains_a_missing_table(
    alias: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddbsync.cli import commands as cli

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    code = cli.main(["backfill", "--alias", alias, "--table", "nowhere"])

    assert code != 0
    assert "--seed" in capsys.readouterr().out
