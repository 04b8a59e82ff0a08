"""The stream indexer against a real OpenSearch (moto stands in for SQS)."""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.config import Settings
from ddbsync.indexer import make_handler
from tests.conftest import base_env
from tests.support import FakeContext, RecordFactory, event

pytestmark = pytest.mark.integration


def searchable(client: OpenSearch, alias: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, body={"query": {"match_all": {}}, "size": 1000})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def handler_for(alias: str, dlq_url: str, **extra: str):  # type: ignore[no-untyped-def]
    return make_handler(Settings.from_env(base_env(alias, dlq_url, **extra)))


def test_insert_modify_remove_end_with_the_latest_state(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url)
    t = 1_800_000_000
    assert handler(event([f.record("INSERT", "a", "1", {"n": 1}, created=t)]), FakeContext()) == {
        "batchItemFailures": []
    }
    handler(event([f.record("MODIFY", "a", "1", {"n": 2}, created=t + 1),
                   f.record("INSERT", "b", "1", {"n": 3}, created=t + 1)]), FakeContext())
    handler(event([f.record("REMOVE", "b", "1", created=t + 2)]), FakeContext())
    docs = searchable(os_client, alias)
    assert set(docs) == {"a|1"}
    assert docs["a|1"]["n"] == 2


def test_same_second_changes_in_separate_invocations_apply_in_order(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url)
    t = 1_800_000_000
    for n in range(5):
        result = handler(event([f.record("MODIFY", "a", "1", {"n": n}, created=t)]), FakeContext())
        assert result == {"batchItemFailures": []}
    assert searchable(os_client, alias)["a|1"]["n"] == 4


def test_a_late_replay_of_an_older_same_second_change_loses(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url)
    t = 1_800_000_000
    old = f.record("MODIFY", "a", "1", {"n": 1}, created=t)
    new = f.record("MODIFY", "a", "1", {"n": 2}, created=t)
    handler(event([old]), FakeContext())
    handler(event([new]), FakeContext())
    handler(event([old]), FakeContext())
    assert searchable(os_client, alias)["a|1"]["n"] == 2
    deleted = f.record("REMOVE", "a", "1", created=t)
    handler(event([deleted]), FakeContext())
    handler(event([new, old]), FakeContext())
    assert searchable(os_client, alias) == {}
