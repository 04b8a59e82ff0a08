"""The stream indexer against a real OpenSearch (moto stands in for SQS)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.config import Settings
from ddbsync.dynamodb.decode import dumps
from ddbsync.handler import make_handler
from tests.conftest import base_env
from tests.support import FakeContext, RecordFactory, event, load_event

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


def _new_image_doc(record: dict[str, Any]) -> dict[str, Any]:
    from ddbsync.dynamodb.decode import decode_item

    return decode_item(record["dynamodb"]["NewImage"])


def test_sample_events_insert_modify_remove_in_order(os_client: OpenSearch, alias: str, dlq_url: str) -> None:
    handler = handler_for(alias, dlq_url)
    insert, modify = load_event("insert.json"), load_event("modify.json")
    assert handler(insert, FakeContext()) == {"batchItemFailures": []}
    assert handler(modify, FakeContext()) == {"batchItemFailures": []}
    docs = searchable(os_client, alias)
    expected = _new_image_doc(modify["Records"][-1])
    assert {k: v for k, v in docs["cat-shoes|item-001"].items() if k != "_ddbsync"} == json.loads(
        dumps(expected)
    )
    # The insert delivered again (at-least-once) does not roll the item back.
    handler(insert, FakeContext())
    assert searchable(os_client, alias)["cat-shoes|item-001"]["_ddbsync"]["seq"].endswith(
        modify["Records"][-1]["dynamodb"]["SequenceNumber"]
    )
    handler(load_event("remove.json"), FakeContext())
    assert "cat-shoes|item-001" not in searchable(os_client, alias)


def test_same_key_batch_collapses_to_the_last_change(os_client: OpenSearch, alias: str, dlq_url: str) -> None:
    batch = load_event("same_key_batch.json")
    handler = handler_for(alias, dlq_url)
    assert handler(batch, FakeContext()) == {"batchItemFailures": []}
    docs = searchable(os_client, alias)
    last = {}
    for record in batch["Records"]:
        keys = record["dynamodb"]["Keys"]
        last[f'{keys["pk"]["S"]}|{keys["sk"]["S"]}'] = record
    live = {k for k, r in last.items() if r["eventName"] != "REMOVE"}
    assert set(docs) == live
    for doc_id in live:
        assert docs[doc_id]["_ddbsync"]["seq"].endswith(last[doc_id]["dynamodb"]["SequenceNumber"])


@pytest.mark.parametrize(("mode", "kept"), [("delete", False), ("keep", True)])
def test_ttl_removals_delete_by_default_and_can_be_kept(
    os_client: OpenSearch, alias: str, dlq_url: str, mode: str, kept: bool
) -> None:
    ttl = load_event("ttl_remove.json")
    (record,) = ttl["Records"]
    f = RecordFactory()
    keys = record["dynamodb"]["Keys"]
    insert = f.record(
        "INSERT", keys["pk"]["S"], keys["sk"]["S"], {"n": 1},
        created=record["dynamodb"]["ApproximateCreationDateTime"] - 10, seq="1" + "0" * 20,
    )
    handler = handler_for(alias, dlq_url, TTL_REMOVES=mode)
    handler(event([insert]), FakeContext())
    assert handler(ttl, FakeContext()) == {"batchItemFailures": []}
    doc_id = f'{keys["pk"]["S"]}|{keys["sk"]["S"]}'
    assert (doc_id in searchable(os_client, alias)) is kept


def test_every_dynamodb_type_reaches_opensearch_exactly(
    os_client: OpenSearch, alias: str, dlq_url: str, tmp_path: Any
) -> None:
    # A 30-digit integer does not fit OpenSearch's `long`, and a list mixing strings and
    # maps cannot be indexed: a real table needs such fields mapped, as here.
    from ddbsync.config import DEFAULT_INDEX_TEMPLATE

    template = json.loads(DEFAULT_INDEX_TEMPLATE.read_text())
    template["mappings"]["properties"].update(
        {"n_huge": {"type": "double"}, "ns": {"type": "double"}, "l": {"type": "object", "enabled": False}}
    )
    path = tmp_path / "index.json"
    path.write_text(json.dumps(template))
    all_types = load_event("all_types.json")
    handler = handler_for(alias, dlq_url, INDEX_TEMPLATE=str(path))
    assert handler(all_types, FakeContext()) == {"batchItemFailures": []}
    (record,) = all_types["Records"]
    doc_id = "cat-misc|item-999"
    os_client.indices.refresh(index=alias)
    import urllib.request

    from tests.conftest import OPENSEARCH_URL

    with urllib.request.urlopen(f"{OPENSEARCH_URL}/{alias}/_source/{doc_id.replace('|', '%7C')}") as r:
        text = r.read().decode()
    stored = json.loads(text)
    stored.pop("_ddbsync")
    assert stored == json.loads(dumps(_new_image_doc(record)))
    assert '"n_huge":123456789012345678901234567890' in text
    assert '"n_decimal":3.14159265358979323846264338327950288' in text
