"""Backfill index lifecycle against a real OpenSearch: prepare, dual-write, export items, swap."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.backfill.files import BackfillFileError, index_items
from ddbsync.config import DEFAULT_INDEX_TEMPLATE, Settings
from ddbsync.deadline import Deadline
from ddbsync.errors import IndexAdminError
from ddbsync.handler import make_handler
from ddbsync.opensearch.floors import Target, View
from ddbsync.opensearch.indices import abort_backfill, create_backfill_index, ensure_index, finalize_backfill
from ddbsync.opensearch.transport import OpenSearchTransport
from tests.support import FakeContext, RecordFactory, base_env, ddb_json, event

pytestmark = pytest.mark.integration

T0 = 1_800_000_000


def searchable(client: OpenSearch, alias: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, body={"query": {"match_all": {}}, "size": 1000})["hits"]["hits"]
    return {h["_id"]: {k: v for k, v in h["_source"].items() if k != "_ddbsync"} for h in hits}


def item(pk: str, n: int) -> dict[str, Any]:
    return {"pk": ddb_json(pk), "sk": ddb_json("1"), "n": ddb_json(n)}


def export_items(
    client: OpenSearch, settings: Settings, target: str, items: list[dict[str, Any]], export_time: float
) -> None:
    progress = index_items(
        list(enumerate(items, start=1)),
        key="data/0001.json.gz",
        start_line=0,
        export_time=export_time,
        target=target,
        settings=settings,
        transport=OpenSearchTransport(client),
        deadline=Deadline(lambda: 60_000, 0),
        chunk_items=7,
    )
    assert progress.done and progress.checkpoint == len(items)


def test_a_backfill_beside_live_changes_ends_equal_to_the_table(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    settings = Settings.from_env(base_env(alias, dlq_url, NEXT_ALIAS_CHECK_SECONDS="0"))
    handler = make_handler(settings, client=os_client)
    f = RecordFactory()
    # The live index already has a (partly wrong) view of the table.
    handler(event([f.record("INSERT", f"k{i}", "1", {"n": -1}, created=T0 - 100) for i in range(10)]),
            FakeContext())
    old_index = ensure_index(os_client, alias, DEFAULT_INDEX_TEMPLATE)
    prepared = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")
    assert prepared["live_index"] == old_index
    assert set(searchable(os_client, alias)) == {f"k{i}|1" for i in range(10)}

    # The table at export time T: k0..k19 with n = i.
    export_time = T0 + 0.5
    table = {f"k{i}": i for i in range(20)}
    snapshot = [item(k, n) for k, n in table.items()]
    # Live changes after T, some delivered before the export items are indexed ...
    before = [
        f.record("MODIFY", "k1", "1", {"n": 100}, created=T0),       # same second as T
        f.record("REMOVE", "k2", "1", created=T0 + 1),              # delete of an exported item
        f.record("INSERT", "k50", "1", {"n": 50}, created=T0 + 1),  # a new item
    ]
    handler(event(before), FakeContext())
    table.update({"k1": 100, "k50": 50})
    del table["k2"]
    export_items(os_client, settings, prepared["next_alias"], snapshot, export_time)  # type: ignore[arg-type]
    # ... and some after.
    after = [
        f.record("MODIFY", "k3", "1", {"n": 300}, created=T0 + 2),
        f.record("REMOVE", "k4", "1", created=T0 + 2),
        f.record("REMOVE", "k50", "1", created=T0 + 3),
    ]
    handler(event(after), FakeContext())
    table["k3"] = 300
    del table["k4"], table["k50"]
    # The live index is still serving, untouched by the export.
    assert searchable(os_client, alias)["k0|1"] == {"pk": "k0", "sk": "1", "n": -1}

    new_index = str(prepared["new_index"])
    done = finalize_backfill(os_client, alias, new_index, len(snapshot), DEFAULT_INDEX_TEMPLATE)
    assert done["swapped"] and done["old_indices"] == [old_index]
    assert not os_client.indices.exists(index=old_index)
    assert searchable(os_client, alias) == {f"{k}|1": {"pk": k, "sk": "1", "n": n} for k, n in table.items()}
    # After the swap the next alias is gone; a container that still thinks it exists
    # drops those writes instead of failing the batch.
    stale = View(Target(alias, old_index), Target(str(prepared["next_alias"]), new_index))
    handler.indexer._view = stale  # type: ignore[attr-defined]
    handler.indexer._view_read_at = time.time() + 3600  # type: ignore[attr-defined]
    result = handler(event([f.record("MODIFY", "k0", "1", {"n": 7}, created=T0 + 9)]), FakeContext())
    assert result == {"batchItemFailures": []}
    assert searchable(os_client, alias)["k0|1"]["n"] == 7


def test_a_shortfall_fails_loudly_and_leaves_the_live_alias(os_client: OpenSearch, alias: str) -> None:
    live = ensure_index(os_client, alias, DEFAULT_INDEX_TEMPLATE)
    prepared = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")
    with pytest.raises(IndexAdminError, match="shortfall"):
        finalize_backfill(os_client, alias, str(prepared["new_index"]), 5, DEFAULT_INDEX_TEMPLATE)
    assert list(os_client.indices.get_alias(name=alias)) == [live]


def test_abort_removes_the_new_index_and_leaves_the_live_one(os_client: OpenSearch, alias: str) -> None:
    live = ensure_index(os_client, alias, DEFAULT_INDEX_TEMPLATE)
    prepared = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")
    with pytest.raises(IndexAdminError, match="already running"):
        create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000001")
    abort_backfill(os_client, alias, str(prepared["new_index"]))
    assert not os_client.indices.exists(index=str(prepared["new_index"]))
    assert not os_client.indices.exists_alias(name=str(prepared["next_alias"]))
    assert list(os_client.indices.get_alias(name=alias)) == [live]


def test_an_item_opensearch_rejects_stops_the_file_with_its_line(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    settings = Settings.from_env(base_env(alias, dlq_url))
    prepared = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")
    items = [item("a", 1), {"pk": ddb_json("b"), "sk": ddb_json("1"), "n": ddb_json("text")}]
    with pytest.raises(BackfillFileError, match=r"data/0001.json.gz, line 2: OpenSearch rejected"):
        export_items(os_client, settings, str(prepared["next_alias"]), items, T0)


def test_a_file_that_runs_out_of_time_resumes_from_its_checkpoint(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    settings = Settings.from_env(base_env(alias, dlq_url))
    prepared = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")
    items = list(enumerate((item(f"k{i}", i) for i in range(50)), start=1))
    budget = iter([60_000] * 9 + [0] * 1000)  # time runs out after a few chunks
    common = dict(key="f", export_time=T0, target=str(prepared["next_alias"]), settings=settings,
                  transport=OpenSearchTransport(os_client), chunk_items=10)
    first = index_items(items, start_line=0, deadline=Deadline(lambda: next(budget), 0), **common)  # type: ignore[arg-type]
    assert not first.done and 0 < first.checkpoint < 50
    second = index_items(
        [p for p in items if p[0] > first.checkpoint], start_line=first.checkpoint,
        deadline=Deadline(lambda: 60_000, 0), **common,  # type: ignore[arg-type]
    )
    assert second.done and second.checkpoint == 50
    assert first.indexed + second.indexed == 50
    os_client.indices.refresh(index=str(prepared["new_index"]))
    assert os_client.count(index=str(prepared["new_index"]))["count"] == 50


def test_an_abort_of_a_backfill_that_created_nothing_leaves_a_running_one_alone(
    os_client: OpenSearch, alias: str
) -> None:
    # A second execution fails in Prepare ("already running") and then aborts with no
    # new index: the running backfill must keep its next alias (and its dual writes).
    ensure_index(os_client, alias, DEFAULT_INDEX_TEMPLATE)
    running = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")
    abort_backfill(os_client, alias, None)
    assert list(os_client.indices.get_alias(name=str(running["next_alias"]))) == [running["new_index"]]
