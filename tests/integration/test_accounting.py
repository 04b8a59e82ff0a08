"""Every record of a batch ends in exactly one outcome, also when changes of one key fold together.

Real OpenSearch, moto SQS. The outcomes: applied, stale, skipped by configuration,
in the record DLQ, or reported as a batch item failure (docs/versioning.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.accounting import Disposition
from ddbsync.config import Settings
from ddbsync.errors import AccountingError
from ddbsync.handler import make_handler
from ddbsync.indexer import BatchResult
from tests.conftest import base_env, dlq_messages
from tests.support import FakeContext, RecordFactory, event

pytestmark = pytest.mark.integration

T = 1_800_000_000


def documents(client: OpenSearch, alias: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, body={"size": 100})["hits"]["hits"]
    return {h["_id"]: {k: v for k, v in h["_source"].items() if k != "_ddbsync"} for h in hits}


def handler_for(alias: str, dlq_url: str, **extra: str):  # type: ignore[no-untyped-def]
    return make_handler(Settings.from_env(base_env(alias, dlq_url, **extra)))


def process(handler: Any, records: list[dict[str, Any]], remaining_ms: int = 60_000) -> BatchResult:
    """Run one batch through the handler's indexer and check every record ended exactly once."""
    result: BatchResult = handler.indexer.process(records, lambda: remaining_ms)
    assert len(result.dispositions) == len(records)
    assert None not in result.dispositions
    return result


# --- section 3: TTL_REMOVES=keep and collapse -----------------------------------------------


def test_a_kept_ttl_removal_in_the_same_batch_does_not_erase_the_insert(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url, TTL_REMOVES="keep")
    batch = [
        f.record("INSERT", "a", "1", {"n": 1}, created=T),
        f.record("REMOVE", "a", "1", created=T + 1, ttl=True),
    ]
    result = process(handler, batch)
    assert result.dispositions == [Disposition.APPLIED, Disposition.SKIPPED]
    assert documents(os_client, alias) == {"a|1": {"pk": "a", "sk": "1", "n": 1}}


def test_a_kept_ttl_removal_in_the_same_batch_does_not_hide_a_modify(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url, TTL_REMOVES="keep")
    process(handler, [f.record("INSERT", "b", "1", {"n": 1}, created=T)])
    result = process(handler, [
        f.record("MODIFY", "b", "1", {"n": 2}, created=T + 1),
        f.record("REMOVE", "b", "1", created=T + 1, ttl=True),
    ])
    assert result.dispositions == [Disposition.APPLIED, Disposition.SKIPPED]
    assert documents(os_client, alias) == {"b|1": {"pk": "b", "sk": "1", "n": 2}}


def test_a_ttl_removal_still_deletes_with_the_default_setting(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url)
    process(handler, [
        f.record("INSERT", "a", "1", {"n": 1}, created=T),
        f.record("REMOVE", "a", "1", created=T + 1, ttl=True),
    ])
    assert documents(os_client, alias) == {}


# --- section 4: a folded record never vanishes -----------------------------------------------


def _poison_modify(f: RecordFactory, created: int) -> dict[str, Any]:
    return f.record("MODIFY", "a", "1", created=created, raw_image={"bad": {"XX": "1"}})


def test_records_folded_into_an_older_fallback_that_stays_unsent_are_reported(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    # The key's newest image is poison, so the older change is written instead; out of
    # time, that write stays unsent: the records behind it must come back as failures.
    f = RecordFactory()
    handler = handler_for(alias, dlq_url)
    process(handler, [f.record("INSERT", "z", "1", {"n": 0}, created=T)])  # the index exists
    older = f.record("INSERT", "a", "1", {"n": 1}, created=T)
    middle = f.record("MODIFY", "a", "1", {"n": 2}, created=T)
    newest = _poison_modify(f, T + 1)
    result = handler(event([older, middle, newest]), FakeContext(remaining_ms=500))  # margin 1000
    seqs = [r["dynamodb"]["SequenceNumber"] for r in (older, middle, newest)]
    assert result == {"batchItemFailures": [{"itemIdentifier": seqs[0]}, {"itemIdentifier": seqs[1]}]}
    letters = dlq_messages(dlq_url)
    assert [m["sequence_number"] for m in letters] == [seqs[2]]


def test_a_poison_newest_image_falls_back_and_accounts_every_record(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url)
    batch = [
        f.record("INSERT", "a", "1", {"n": 1}, created=T),
        f.record("MODIFY", "a", "1", {"n": 2}, created=T),
        _poison_modify(f, T + 1),
        f.record("INSERT", "b", "1", {"n": 3}, created=T),
    ]
    result = process(handler, batch)
    assert result.dispositions == [
        Disposition.APPLIED, Disposition.APPLIED, Disposition.DEAD_LETTERED, Disposition.APPLIED,
    ]
    assert documents(os_client, alias)["a|1"]["n"] == 2
    assert len(dlq_messages(dlq_url)) == 1


def test_when_the_dlq_refuses_a_folded_poison_record_it_becomes_a_failure(
    os_client: OpenSearch, alias: str, dlq_url: str
) -> None:
    f = RecordFactory()
    handler = handler_for(alias, dlq_url.replace("record-dlq", "no-such-queue"))
    batch = [f.record("INSERT", "a", "1", {"n": 1}, created=T), _poison_modify(f, T + 1)]
    result = process(handler, batch)
    assert result.dispositions == [Disposition.APPLIED, Disposition.FAILED]
    assert result.failed_sequence_numbers == [batch[1]["dynamodb"]["SequenceNumber"]]


def test_a_record_settled_twice_is_a_bug_that_fails_loudly() -> None:
    result = BatchResult(received=2, dispositions=[None, None])
    result.settle([0], Disposition.APPLIED)
    with pytest.raises(AccountingError):
        result.settle([0, 1], Disposition.STALE)
