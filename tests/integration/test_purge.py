"""Tombstone purge (issue #10, part 3) against the real OpenSearch, with moto's SQS.

Purge removes only the tombstones older than the window; a change older than the window
replayed afterwards (``ddbsync replay`` of a dead letter, or the stream indexer with an old
record) is refused as stale and brings nothing back; a dry run changes nothing; a window
shorter than the replay window is refused with exit code 2.

The local node (scripts/opensearch.sh) has the reindex module, so these tests run the real
``_delete_by_query`` task; one test takes the server's "no handler found" answer from a
client wrapper to run the fallback (rounds of conditional deletes) on the same node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ddbsync.cli import commands as cli
from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.dlq import DeadLetter, send_dead_letters
from ddbsync.errors import PurgeWindowError
from ddbsync.handler import make_handler
from ddbsync.opensearch.indices import create_backfill_index, next_alias_name, read_view
from ddbsync.purge import make_handler as make_purge_handler
from ddbsync.purge import run as purge_run
from ddbsync.purge.run import purge_tombstones, tombstone_query
from ddbsync.replay import EXIT_OK
from tests.conftest import base_env
from tests.integration.test_replay import depth, use_env
from tests.support import OPENSEARCH_URL, FakeContext, RecordFactory, event

pytestmark = pytest.mark.integration

DAY = 86_400
NOW = int(time.time())
FOURTEEN_DAYS = str(14 * DAY)  # the stack's record DLQ (MessageRetentionPeriod 1209600)


@pytest.fixture
def dlq14(aws: None) -> str:
    sqs = boto3.client("sqs", region_name="eu-west-1")
    return sqs.create_queue(
        QueueName="record-dlq-14d",
        Attributes={"MaximumMessageSize": "262144", "MessageRetentionPeriod": FOURTEEN_DAYS},
    )["QueueUrl"]


def stored(client: OpenSearch, alias: str, doc_id: str) -> dict[str, Any] | None:
    """The document under the id, tombstones included (a GET is not filtered by the alias)."""
    found = client.get(index=alias, id=doc_id, ignore=404)
    return found["_source"] if found.get("found") else None


def searchable(client: OpenSearch, alias: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=f"{alias}*")
    hits = client.search(index=alias, body={"size": 100})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def seed(client: OpenSearch, alias: str, dlq: str, f: RecordFactory) -> dict[str, str]:
    """a: deleted 18 days ago; b: deleted 2 days ago; c: unchanged for 30 days; d: written now."""
    env = base_env(alias, dlq, NEXT_ALIAS_CHECK_SECONDS="0")
    handler = make_handler(Settings.from_env(env), client=client)
    records = [
        f.record("INSERT", "a", "1", {"n": 1}, created=NOW - 20 * DAY),
        f.record("REMOVE", "a", "1", created=NOW - 18 * DAY),
        f.record("INSERT", "b", "1", {"n": 1}, created=NOW - 20 * DAY),
        f.record("REMOVE", "b", "1", created=NOW - 2 * DAY),
        f.record("INSERT", "c", "1", {"n": 1}, created=NOW - 30 * DAY),
        f.record("INSERT", "d", "1", {"n": 1}, created=NOW),
    ]
    for record in records:  # one batch each: every change lands, tombstones included
        assert handler(event([record]), FakeContext()) == {"batchItemFailures": []}
    client.indices.refresh(index=f"{alias}*")
    return env


def purge(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> int:
    use_env(monkeypatch, env)
    return cli.main(["purge-tombstones", *args])


def finished_delete_by_query(client: OpenSearch, task_id: str | None) -> dict[str, Any]:
    """The status of the purge's task, which must be a finished _delete_by_query."""
    assert task_id is not None, (
        "the purge did not start a _delete_by_query task: the server lacks the reindex module "
        "(start the node with scripts/opensearch.sh, which adds it)"
    )
    task = client.tasks.get(task_id=task_id)
    assert task["completed"] is True
    assert task["task"]["action"] == "indices:data/write/delete/byquery"
    status: dict[str, Any] = task["task"]["status"]
    return status


class NoDeleteByQuery(OpenSearch):
    """The real node, answering _delete_by_query as a server without the reindex module does."""

    def delete_by_query(self, *, index: Any, body: Any, params: Any = None, headers: Any = None) -> Any:
        error = f"no handler found for uri [/{index}/_delete_by_query] and method [POST]"
        raise os_exc.RequestError(400, error, {"error": error})


def test_purge_removes_only_tombstones_older_than_the_window_and_an_old_replay_cannot_resurrect(
    os_client: OpenSearch, alias: str, dlq14: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = seed(os_client, alias, dlq14, f)
    capsys.readouterr()  # the indexer's logs
    assert (stored(os_client, alias, "a|1") or {})["_ddbsync"]["deleted"] is True

    assert purge(monkeypatch, env, "--older-than", "15d", "--settle-seconds", "0", "--json") == 0

    summary = json.loads(capsys.readouterr().out)
    (only,) = summary["indices"]
    assert (only["tombstones"], only["older"], only["deleted"], only["done"]) == (2, 1, 1, True)
    assert summary["ok"] is True
    assert finished_delete_by_query(os_client, only["task"])["deleted"] == 1
    assert stored(os_client, alias, "a|1") is None  # the old tombstone is gone
    assert (stored(os_client, alias, "b|1") or {})["_ddbsync"]["deleted"] is True  # the young one stays
    assert set(searchable(os_client, alias)) == {"c|1", "d|1"}  # live documents stay, old or new
    horizon = summary["horizon"]
    assert read_view(os_client, alias).live.purged == horizon + 1

    # 1. ddbsync replay of dead letters older than the window: a's INSERT from before its
    #    delete, and a MODIFY of c (newer than c's document, older than the window).
    old_a = f.record("INSERT", "a", "1", {"n": 2}, created=NOW - 19 * DAY)
    old_c = f.record("MODIFY", "c", "1", {"n": 2}, created=NOW - 25 * DAY)
    sqs = boto3.client("sqs", region_name="eu-west-1")
    send_dead_letters(sqs, dlq14, [
        DeadLetter(r, "rejected", "mapper_parsing_exception", r["dynamodb"]["SequenceNumber"], status=400)
        for r in (old_a, old_c)
    ])  # fmt: skip
    assert cli.main(["replay", "--queue", dlq14]) == EXIT_OK
    assert "records replayed 0, stale 2" in capsys.readouterr().out
    assert depth(dlq14) == 0
    assert stored(os_client, alias, "a|1") is None  # not resurrected
    # c is refused too (older than the window) but its live document is not turned into a
    # tombstone: an item unchanged since before the horizon is not below a snapshot floor.
    assert searchable(os_client, alias)["c|1"]["n"] == 1

    # 2. The stream indexer with an old record (a fresh view: the floor is read).
    handler = make_handler(Settings.from_env(env), client=os_client)
    older_a = f.record("INSERT", "a", "1", {"n": 3}, created=NOW - 16 * DAY)
    indexer = handler.indexer  # type: ignore[attr-defined]
    result = indexer.process([older_a], FakeContext().get_remaining_time_in_millis)
    assert (result.indexed, result.stale) == (0, 1)
    assert stored(os_client, alias, "a|1") is None
    assert set(searchable(os_client, alias)) == {"c|1", "d|1"}

    # 3. A change younger than the window still goes through, and a second purge is a no-op.
    assert handler(event([f.record("INSERT", "a", "1", {"n": 4}, created=NOW - DAY)]), FakeContext()) == {
        "batchItemFailures": []
    }
    assert searchable(os_client, alias)["a|1"]["n"] == 4
    assert purge(monkeypatch, env, "--older-than", "15d", "--settle-seconds", "0") == 0
    assert "purged 0" in capsys.readouterr().out
    # A later purge with a longer window never lowers the floor: the higher one stays.
    latest = read_view(os_client, alias).live.purged
    assert latest is not None and latest >= horizon + 1
    assert purge(monkeypatch, env, "--older-than", "20d", "--settle-seconds", "0") == 0
    assert read_view(os_client, alias).live.purged == latest


def test_dry_run_counts_and_changes_nothing(
    os_client: OpenSearch, alias: str, dlq14: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    env = seed(os_client, alias, dlq14, RecordFactory())
    capsys.readouterr()  # the indexer's logs
    (index,) = os_client.indices.get_alias(name=alias)
    before = os_client.indices.get_mapping(index=index)

    assert purge(monkeypatch, env, "--older-than", "15d", "--dry-run") == 0

    out = capsys.readouterr().out
    assert "2 tombstones, would purge 1" in out and "dry run: nothing changed" in out
    assert os_client.indices.get_mapping(index=index) == before  # no floor raised
    assert read_view(os_client, alias).live.purged is None
    assert (stored(os_client, alias, "a|1") or {})["_ddbsync"]["deleted"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "7d"], "shorter than the replay window 15d"),
        (["--older-than", "14d23h"], "a window is a positive whole number"),
        (["--older-than", "0d"], "a window is a positive whole number"),
        (["--older-than", "15d", "--settle-seconds", "-1"], "--settle-seconds must be"),
    ],
)
def test_a_bad_or_too_short_window_is_refused_with_exit_2_and_nothing_changes(
    os_client: OpenSearch, alias: str, dlq14: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], args: list[str], message: str,
) -> None:  # fmt: skip
    env = seed(os_client, alias, dlq14, RecordFactory())
    capsys.readouterr()  # the indexer's logs

    assert purge(monkeypatch, env, *args) == 2

    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert read_view(os_client, alias).live.purged is None
    assert (stored(os_client, alias, "a|1") or {})["_ddbsync"]["deleted"] is True


def test_the_window_follows_the_dlq_retention_and_force_overrides_it(
    os_client: OpenSearch, alias: str, dlq_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # moto's default retention is 4 days: the replay window is 5 days.
    env = seed(os_client, alias, dlq_url, RecordFactory())
    capsys.readouterr()  # the indexer's logs
    assert purge(monkeypatch, env, "--older-than", "4d", "--settle-seconds", "0") == 2
    assert "replay window 5d (stream 24h + record DLQ MessageRetentionPeriod 4d)" in capsys.readouterr().err

    assert purge(monkeypatch, env, "--older-than", "1d", "--settle-seconds", "0", "--force") == 0
    out = capsys.readouterr().out
    assert "purged 2" in out and "WARNING: forced" in out
    assert stored(os_client, alias, "b|1") is None


def test_a_running_backfill_index_is_purged_too_and_its_snapshot_floor_wins_when_higher(
    os_client: OpenSearch, alias: str, dlq14: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    f = RecordFactory()
    env = seed(os_client, alias, dlq14, f)
    capsys.readouterr()  # the indexer's logs
    (live,) = os_client.indices.get_alias(name=alias)
    snapshot_floor = NOW - DAY
    create_backfill_index(os_client, alias, Path(DEFAULT_INDEX_TEMPLATE), "next1", floor=snapshot_floor)
    os_client.indices.put_mapping(index=f"{alias}-next1", body={"_meta": {
        "ddbsync": {"floor": snapshot_floor}, "owner": "search-team"}})  # fmt: skip
    # The stream writes into both while the backfill runs; an old delete lands as a tombstone.
    handler = make_handler(Settings.from_env(env), client=os_client)
    assert handler(event([f.record("REMOVE", "e", "1", created=NOW - 17 * DAY)]), FakeContext()) == {
        "batchItemFailures": []
    }
    capsys.readouterr()

    assert purge(monkeypatch, env, "--older-than", "15d", "--settle-seconds", "0", "--json") == 0

    summary = json.loads(capsys.readouterr().out)
    by_alias = {p["alias"]: p for p in summary["indices"]}
    assert by_alias[alias]["index"] == live and by_alias[alias]["deleted"] == 2  # a and e
    assert by_alias[next_alias_name(alias)]["deleted"] == 1  # e
    view = read_view(os_client, alias)
    assert view.next is not None
    assert view.next.floor == snapshot_floor and view.next.purged == summary["horizon"] + 1
    assert view.next.write_floor == snapshot_floor  # the higher floor refuses: max wins
    assert view.live.write_floor == summary["horizon"] + 1
    meta = os_client.indices.get_mapping(index=f"{alias}-next1")[f"{alias}-next1"]["mappings"]["_meta"]
    assert meta["owner"] == "search-team"  # the rest of _meta is kept


def test_the_scheduled_lambda_purges_with_its_retention_days(
    os_client: OpenSearch, alias: str, dlq14: str
) -> None:
    env = seed(os_client, alias, dlq14, RecordFactory())
    handler = make_purge_handler({**env, "TOMBSTONE_RETENTION_DAYS": "15"}, client=os_client, settle_s=0)

    result = handler({}, FakeContext(remaining_ms=900_000))

    assert result["ok"] is True and [p["deleted"] for p in result["indices"]] == [1]
    assert stored(os_client, alias, "a|1") is None
    # A retention shorter than the replay window fails the cold start, before any purge.
    with pytest.raises(PurgeWindowError, match="shorter than the replay window"):
        make_purge_handler({**env, "TOMBSTONE_RETENTION_DAYS": "7"}, client=os_client, settle_s=0)


def test_the_task_reports_every_deleted_tombstone_over_several_batches(
    os_client: OpenSearch, alias: str, dlq14: str
) -> None:
    f = RecordFactory()
    env = seed(os_client, alias, dlq14, f)
    handler = make_handler(Settings.from_env(env), client=os_client)
    old = [f.record("REMOVE", f"old{i}", "1", created=NOW - 17 * DAY) for i in range(1200)]
    assert handler(event(old), FakeContext(remaining_ms=600_000)) == {"batchItemFailures": []}
    lines: list[str] = []

    summary = purge_tombstones(os_client, alias, NOW - 15 * DAY, progress=lines.append, poll_s=0.2)

    (only,) = summary.indices
    assert (only.older, only.deleted, only.conflicts, only.failures, only.done) == (1201, 1201, 0, [], True)
    status = finished_delete_by_query(os_client, only.task)
    assert (status["deleted"], status["batches"]) == (1201, 2)  # 1000 a scroll batch
    assert any("tombstones deleted" in line for line in lines)
    assert not any("in rounds" in line for line in lines)
    assert os_client.count(index=only.index, body=tombstone_query())["count"] == 1  # b: too young
    assert (stored(os_client, alias, "b|1") or {})["_ddbsync"]["deleted"] is True


def test_a_server_without_delete_by_query_gets_the_same_purge_in_rounds(
    alias: str, dlq14: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = NoDeleteByQuery(hosts=[OPENSEARCH_URL], timeout=30)
    f = RecordFactory()
    env = seed(client, alias, dlq14, f)
    handler = make_handler(Settings.from_env(env), client=client)
    assert handler(event([f.record("REMOVE", "e", "1", created=NOW)]), FakeContext()) == {
        "batchItemFailures": []
    }  # a tombstone younger than the horizon
    monkeypatch.setattr(purge_run, "_ROUND", 1)  # one tombstone a round: a, then b, then none
    lines: list[str] = []

    summary = purge_tombstones(client, alias, NOW - DAY, progress=lines.append)

    (only,) = summary.indices
    found = (only.tombstones, only.task, only.older, only.deleted, only.failures, only.done)
    assert found == (3, None, 2, 2, [], True)
    assert any("no _delete_by_query; deleting in rounds of 1" in line for line in lines)
    assert stored(client, alias, "a|1") is None and stored(client, alias, "b|1") is None
    assert (stored(client, alias, "e|1") or {})["_ddbsync"]["deleted"] is True
    assert set(searchable(client, alias)) == {"c|1", "d|1"}
    assert read_view(client, alias).live.purged == NOW - DAY + 1
