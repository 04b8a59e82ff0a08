"""Snapshot floors (issue #7, section 2): after a backfill, no change older than the
export brings back an item the export says was gone.

Real OpenSearch; moto for DynamoDB, its stream, S3 and SQS; the backfill runs through
the local Step Functions runner and the Backfill actions, the replays through
``ddbsync replay``, exactly as the runbook's mapping-fix flow does.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.backfill.steps import Backfill
from ddbsync.cli import commands as cli
from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.deadline import Deadline
from ddbsync.dlq import DeadLetter, send_dead_letters
from ddbsync.dynamodb.export_manifest import read_files
from ddbsync.handler import make_handler
from ddbsync.indexer import StreamIndexer
from ddbsync.mapping import map_records
from ddbsync.opensearch.bulk import Outcome, make_writes
from ddbsync.opensearch.floors import FLOOR_REASON
from ddbsync.opensearch.indices import read_view
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import BulkItemResult, OpenSearchTransport, StoredMeta, Transport
from ddbsync.replay import EXIT_OK
from ddbsync_local.backfill_run import LocalExports, local_env, run_backfill
from ddbsync_local.esm import EsmConfig, EventSourceMapping, sqs_on_failure
from tests.integration.test_backfill_e2e import REGION, TABLE, World
from tests.integration.test_replay import HUGE, depth, template_mapping_big_as_double, use_env
from tests.support import OPENSEARCH_URL, FakeContext, RecordFactory, base_env, event

pytestmark = pytest.mark.integration


@dataclass
class FloorWorld(World):
    """The e2e world, with the index template the backfill and the replays use."""

    template: Path = DEFAULT_INDEX_TEMPLATE

    def settings(self) -> Settings:
        env = local_env(OPENSEARCH_URL, self.alias, "pk", "sk")
        env.update(RETRY_BASE_MS="10", RETRY_MAX_MS="200", INDEX_TEMPLATE=str(self.template))
        return Settings.from_env(env, require_dlq=False)

    def put(self, pk: str, **attributes: Mapping[str, str]) -> None:
        item = {"pk": {"S": pk}, "sk": {"S": "1"}, **attributes}
        self.ddb.put_item(TableName=TABLE, Item=item)

    def delete(self, pk: str) -> None:
        self.ddb.delete_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": "1"}})

    def stored(self, doc_id: str) -> dict[str, Any] | None:
        """The document behind the live alias, tombstones included (a GET is not filtered)."""
        found = self.os_client.get(index=self.alias, id=doc_id, ignore=404)
        return found["_source"] if found.get("found") else None

    def floor(self) -> int:
        floor = read_view(self.os_client, self.alias).live.floor
        assert floor is not None
        return floor


@pytest.fixture
def world(aws: None, os_client: OpenSearch, alias: str) -> Iterator[FloorWorld]:
    yield FloorWorld(os_client, alias)


def live_indexer(world: FloorWorld, dlq_url: str, **extra: str) -> tuple[dict[str, str], Any]:
    env = base_env(world.alias, dlq_url, **{"NEXT_ALIAS_CHECK_SECONDS": "0", **extra})
    return env, make_handler(Settings.from_env(env), client=world.os_client)


def mapped_type(world: FloorWorld, index: str, field: str) -> str:
    mapping = world.os_client.indices.get_mapping(index=index)[index]["mappings"]
    return str(mapping["properties"][field]["type"])


# ---------------------------------------------------------------- the reproduction


def test_a_replay_after_a_mapping_fix_backfill_does_not_bring_back_a_deleted_item(
    world: FloorWorld, dlq_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    world.create_table(0)
    env, handler = live_indexer(world, dlq_url)
    esm = EventSourceMapping(world.stream_arn, handler, EsmConfig(batch_size=10))
    # 1. y has big: 1, so the live index maps big as long.
    world.put("y", big={"N": "1"})
    esm.poll()
    (live,) = world.indices_of(world.alias)
    assert mapped_type(world, live, "big") == "long"
    # 2. An INSERT of x with a 36-digit big is rejected and goes to the record DLQ.
    world.put("x", big={"N": HUGE})
    esm.poll()
    assert depth(dlq_url) == 1
    # 3. x is deleted; its tombstone lands in the live index.
    world.delete("x")
    esm.poll()
    assert (world.stored("x|1") or {})["_ddbsync"]["deleted"] is True
    # 4. A backfill with big mapped double swaps the alias; the new index has no x at all.
    world.template = template_mapping_big_as_double(tmp_path)
    summary = world.run()
    assert summary.status == "SUCCEEDED", summary.cause
    assert mapped_type(world, str(summary.new_index), "big") == "double"
    assert world.stored("x|1") is None

    # 5. The runbook's replay, with the fixed template.
    use_env(monkeypatch, {**env, "INDEX_TEMPLATE": str(world.template)})
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_OK

    out = capsys.readouterr().out
    assert "records replayed 0, stale 1" in out
    assert depth(dlq_url) == 0
    assert world.stored("x|1") is None
    assert world.searchable() == world.table() == {"y|1": {"pk": "y", "sk": "1", "big": 1}}


def test_an_on_failure_pointer_replayed_after_a_backfill_does_not_bring_back_a_deleted_item(
    world: FloorWorld, dlq_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.create_table(0)
    env, handler = live_indexer(world, dlq_url)
    calls: list[int] = []

    def down_once(event: dict[str, Any], context: Any) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("OpenSearch unreachable")
        return handler(event, context)

    sqs = boto3.client("sqs", region_name=REGION)
    on_failure_url = sqs.create_queue(QueueName="on-failure")["QueueUrl"]
    esm = EventSourceMapping(
        world.stream_arn, down_once, EsmConfig(batch_size=1, maximum_retry_attempts=0),
        on_failure=sqs_on_failure(on_failure_url, sqs),
    )  # fmt: skip
    world.put("x", n={"N": "1"})
    assert esm.poll().batches_to_on_failure == 1  # x's INSERT: only a pointer to it is left
    world.delete("x")
    world.put("y", n={"N": "2"})
    esm.poll()
    summary = world.run()
    assert summary.status == "SUCCEEDED", summary.cause

    use_env(monkeypatch, env)
    assert cli.main(["replay", "--on-failure-queue", on_failure_url]) == EXIT_OK

    assert "records replayed 0, stale 1" in capsys.readouterr().out
    assert world.stored("x|1") is None
    assert world.searchable() == world.table() == {"y|1": {"pk": "y", "sk": "1", "n": 2}}


# ---------------------------------------------------------------- what the rule allows


@pytest.fixture
def backfilled(world: FloorWorld, dlq_url: str, monkeypatch: pytest.MonkeyPatch) -> FloorWorld:
    """A backfilled index holding z (n = 2) and nothing else; replays use the indexer's env."""
    world.create_table(0)
    world.put("z", n={"N": "2"})
    summary = world.run()
    assert summary.status == "SUCCEEDED", summary.cause
    use_env(monkeypatch, base_env(world.alias, dlq_url))
    return world


def replay_letters(dlq_url: str, *records: dict[str, Any]) -> None:
    letters = [
        DeadLetter(r, "rejected earlier", "mapper_parsing_exception", r["dynamodb"]["SequenceNumber"])
        for r in records
    ]
    send_dead_letters(boto3.client("sqs", region_name=REGION), dlq_url, letters)
    assert cli.main(["replay", "--queue", dlq_url]) == EXIT_OK


def test_a_pre_floor_change_of_an_item_in_the_snapshot_leaves_the_exported_image(
    backfilled: FloorWorld, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = RecordFactory()
    old = f.record("MODIFY", "z", "1", {"n": 1}, created=backfilled.floor() - 30)

    replay_letters(dlq_url, old)

    assert "records replayed 0, stale 1" in capsys.readouterr().out
    assert backfilled.searchable() == {"z|1": {"pk": "z", "sk": "1", "n": 2}}
    assert backfilled.stored("z|1")["_ddbsync"]["source"] == "export"  # type: ignore[index]


def test_a_pre_floor_remove_still_writes_its_tombstone(
    backfilled: FloorWorld, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    f = RecordFactory()
    removed = f.record("REMOVE", "w", "1", created=backfilled.floor() - 30)

    replay_letters(dlq_url, removed)

    assert "records replayed 1, stale 0" in capsys.readouterr().out
    tombstone = backfilled.stored("w|1")
    assert tombstone is not None and tombstone["_ddbsync"]["deleted"] is True
    assert "w|1" not in backfilled.searchable()


def test_a_pre_floor_tombstone_does_not_let_an_older_insert_through(
    backfilled: FloorWorld, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # x: deleted, inserted again, deleted again, all before the floor; only the last delete
    # reached the old index, so the snapshot has no x and the new index knows nothing of it.
    # A late replay of the first delete leaves a tombstone; the insert that followed it is
    # newer than that tombstone, but older than the snapshot: it must not bring x back.
    f = RecordFactory()
    floor = backfilled.floor()
    first_delete = f.record("REMOVE", "x", "1", created=floor - 30)
    insert = f.record("INSERT", "x", "1", {"n": 1}, created=floor - 20)
    replay_letters(dlq_url, first_delete)
    assert backfilled.stored("x|1")["_ddbsync"]["deleted"] is True  # type: ignore[index]

    replay_letters(dlq_url, insert)

    assert "records replayed 0, stale 1" in capsys.readouterr().out
    assert "x|1" not in backfilled.searchable()
    assert backfilled.stored("x|1")["_ddbsync"]["deleted"] is True  # type: ignore[index]


def test_a_document_a_writer_left_below_the_floor_is_undone_when_its_change_comes_again(
    backfilled: FloorWorld, dlq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A late insert landed through an alias swapped while the request was in flight, and
    # the writer died before it could check: x is searchable in the backfilled index.
    # Lambda delivers the batch again (here: the replay of the same record).
    f = RecordFactory()
    second = backfilled.floor() - 20
    insert = f.record("INSERT", "x", "1", {"n": 1}, created=second)
    meta = {"seq": insert["dynamodb"]["SequenceNumber"].zfill(40), "ts": second, "source": "stream"}
    backfilled.os_client.index(
        index=backfilled.alias, id="x|1", body={"pk": "x", "sk": "1", "n": 1, "_ddbsync": meta},
        params={"version": second << 20, "version_type": "external"},
    )  # fmt: skip
    assert "x|1" in backfilled.searchable()

    replay_letters(dlq_url, insert)

    assert "records replayed 0, stale 1" in capsys.readouterr().out
    assert "x|1" not in backfilled.searchable()
    assert backfilled.stored("x|1")["_ddbsync"]["deleted"] is True  # type: ignore[index]


# ---------------------------------------------------------------- a writer's stale view


def test_a_late_change_after_the_swap_is_refused_by_an_indexer_whose_view_predates_it(
    world: FloorWorld, dlq_url: str
) -> None:
    world.create_table(0)
    _, live_handler = live_indexer(world, dlq_url)
    live_esm = EventSourceMapping(world.stream_arn, live_handler, EsmConfig(batch_size=10))
    f = RecordFactory()
    x_insert = f.record("INSERT", "x", "1", {"n": 1}, created=int(time.time()))
    world.put("x", n={"N": "1"})
    world.put("y", n={"N": "1"})
    world.delete("x")
    live_esm.poll()
    # A container started before the backfill; it reads where the aliases point once an
    # hour, and its first batch comes while the backfill runs: it knows the new index as
    # <alias>-next (and its floor) but not, later, that the alias was swapped to it.
    _, stale_handler = live_indexer(world, dlq_url, NEXT_ALIAS_CHECK_SECONDS="3600")

    def during_the_backfill(action: str, result: Mapping[str, Any]) -> None:
        if action == "read_manifest":
            y = f.record("MODIFY", "y", "1", {"n": 1}, created=int(time.time()))
            assert stale_handler(event([y]), FakeContext()) == {"batchItemFailures": []}

    summary = world.run(after_task=during_the_backfill)
    assert summary.status == "SUCCEEDED", summary.cause
    view = stale_handler.indexer._view
    assert view.live.index != summary.new_index and view.next.index == summary.new_index

    # x's INSERT arrives late (a retried batch), older than the snapshot.
    assert stale_handler(event([x_insert]), FakeContext()) == {"batchItemFailures": []}

    assert world.stored("x|1") is None
    assert world.searchable() == world.table()


class SwapDuringTheRequest:
    """The real transport; the backfill's finalize (the alias swap) runs just before the first bulk."""

    def __init__(self, real: Transport, swap: Callable[[], None]) -> None:
        self.real = real
        self.swap: Callable[[], None] | None = swap

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        if self.swap is not None:
            swap, self.swap = self.swap, None
            swap()
        return self.real.bulk(body, timeout_s)

    def mget(self, index: str, ids: Any, timeout_s: float) -> list[StoredMeta]:
        return self.real.mget(index, ids, timeout_s)


def prepared_and_filled(world: FloorWorld) -> tuple[Backfill, dict[str, Any]]:
    """Run the Backfill actions up to, not including, finalize."""
    backfill = Backfill(world.settings(), world.backfill_settings(), client=world.os_client, s3=world.s3,
                        exports=LocalExports(world.ddb, world.s3))  # fmt: skip
    state: dict[str, Any] = {}
    for action in ("prepare", "start_export", "describe_export", "read_manifest"):
        state = backfill({"action": action, "backfill": state}, lambda: 900_000)
    # The files as the export Map reads them: the lines of manifest-files.json.
    for entry in read_files(world.s3, state["manifest_bucket"], state["manifest_files_key"]):
        file = {"key": entry.key, "item_count": entry.item_count}
        done = backfill({"action": "index_file", "backfill": state, "file": file}, lambda: 900_000)
        assert done["done"]
    return backfill, state


def test_a_late_write_in_flight_when_the_alias_swaps_is_undone(world: FloorWorld, dlq_url: str) -> None:
    world.create_table(0)
    _, live_handler = live_indexer(world, dlq_url)
    f = RecordFactory()
    x_insert = f.record("INSERT", "x", "1", {"n": 1}, created=int(time.time()))
    world.put("x", n={"N": "1"})
    world.put("y", n={"N": "1"})
    world.delete("x")
    EventSourceMapping(world.stream_arn, live_handler, EsmConfig(batch_size=10)).poll()
    backfill, state = prepared_and_filled(world)

    def swap() -> None:
        backfill({"action": "finalize", "backfill": state}, lambda: 900_000)

    # The indexer reads where the aliases point (live: the old index, no floor), sends x's
    # late INSERT to the live alias, and the swap happens while the request is under way.
    settings = Settings.from_env(base_env(world.alias, dlq_url, NEXT_ALIAS_CHECK_SECONDS="0"))
    transport = SwapDuringTheRequest(OpenSearchTransport(world.os_client), swap)
    indexer = StreamIndexer(settings, transport, boto3.client("sqs", region_name=REGION), world.os_client)
    result = indexer.process([x_insert], lambda: 60_000)

    assert transport.swap is None  # the swap did happen during the request
    assert result.failed_sequence_numbers == [] and result.stale == 1
    assert world.indices_of(world.alias) == [state["new_index"]]
    assert "x|1" not in world.searchable()
    assert world.stored("x|1")["_ddbsync"]["deleted"] is True  # type: ignore[index]
    assert world.searchable() == world.table()


# ---------------------------------------------------------------- the reason, at the one place


class Recording:
    """The real transport, keeping every request it was asked to make."""

    def __init__(self, real: Transport) -> None:
        self.real = real
        self.requests: list[str] = []

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        self.requests.append("bulk")
        return self.real.bulk(body, timeout_s)

    def mget(self, index: str, ids: Any, timeout_s: float) -> list[StoredMeta]:
        self.requests.append("mget")
        return self.real.mget(index, ids, timeout_s)


def test_a_refused_write_says_why_and_is_never_sent(world: FloorWorld) -> None:
    world.create_table(0)
    world.put("z", n={"N": "2"})
    assert world.run().status == "SUCCEEDED"
    view = read_view(world.os_client, world.alias)
    assert view.live.floor is not None
    f = RecordFactory()
    old = f.record("INSERT", "x", "1", {"n": 1}, created=view.live.floor - 1)
    (change,), _ = map_records([old], "pk", "sk")
    transport = Recording(OpenSearchTransport(world.os_client))

    report = send(world.settings(), make_writes([change], view.aliases), transport,
                  Deadline(lambda: 60_000, 0), view=view)  # fmt: skip

    (write,) = report.writes
    assert write.result is not None and write.result.reason == FLOOR_REASON
    assert report.counts == {Outcome.STALE: 1}
    assert transport.requests == []  # never sent



# ---------------------------------------------------------------- repair


def test_a_repair_after_a_backfill_does_not_bring_back_an_item_deleted_after_its_window(
    aws: None, os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    from tests.integration import test_repair as r

    world = r.World(os_client, alias, dlq_url)
    world.write(1, 0, r.T1 - 600)
    world.write(2, 0, r.T1 + 60, lost=True)  # inserted inside the window the index missed
    world.write(2, None, r.T2 + 60)  # deleted after it: the live index has its tombstone
    env = local_env(OPENSEARCH_URL, alias, "pk", "sk")
    backfill = run_backfill(
        Settings.from_env(env, require_dlq=False),
        BackfillSettings(world.table_arn, r.BUCKET, r.PREFIX, "DYNAMODB_JSON", None, False, 0),
        client=os_client, s3=world.s3, exports=LocalExports(world.ddb, world.s3), out=io.StringIO(),
    )  # fmt: skip
    assert backfill.swapped, backfill.cause

    summary = world.run()  # ddbsync repair over [T1, T2): item 2's record is older than the snapshot

    assert summary.stale == 1 and summary.applied == 0, world.output
    assert "c-2|o-0002" not in world.searchable()
    assert world.searchable() == world.table()
