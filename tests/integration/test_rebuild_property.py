"""Property (issue #9, "Must show: Rebuild"): a rebuild from the archive equals the table.

A random history of INSERT/MODIFY/REMOVE on a few keys (many changes in the same second,
some REMOVEs by TTL, some hours apart) is applied to a model table. Its stream records
become archive lines (``archive.lines.archive_line`` + "\\n", gzip) spread over several
objects per ``table=/dt=/hour=`` partition, some lines twice (the archiver delivers at least
once), objects named so that listing order is a random shuffle of time order, and an
``errors/`` object beside them. Then, against the real OpenSearch (moto S3 for the archive):

(a) ``rebuild`` into a new index, one object at a time in that shuffled order, and the swap;
(b) a second rebuild over the index just built (into the live alias: every write is stale);
(c) a rebuild into another new index with ``parallel=4``, and the swap;
(d) a late replay of some old records through the stream handler after it.

After each, the searchable documents (tombstones hidden by the alias filter) equal the
model table (with ``TTL_REMOVES=keep``: a TTL-removed item stays at its last image).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import uuid
from typing import Any, Literal

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opensearchpy import OpenSearch

from ddbsync.config import Settings
from ddbsync.handler import make_handler
from ddbsync.opensearch.client import build_client
from ddbsync.rebuild import ArchiveLocation, rebuild
from tests.support import FakeContext, RecordFactory, archive_object, base_env, event, partition_of

pytestmark = pytest.mark.integration

KEYS = ["k0", "k1", "k2", "k3"]
BUCKET = "archive-prop"
T0 = 1_800_003_000  # 50 minutes into an hour: histories cross into the next hour(s)
STAMP = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
_STAMPS = itertools.count()

op = st.tuples(
    st.sampled_from(["put", "put", "update", "delete", "ttl"]),
    st.sampled_from(KEYS),
    st.sampled_from([0, 0, 0, 1, 2, 700]),  # seconds before the change: mostly the same second
)


def _history(ops: list[tuple[str, str, int]], ttl_mode: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The stream records of ``ops`` and the model table (what the index must hold)."""
    f = RecordFactory(sk=None)
    t = T0
    ops = [("put", "k0", 0), *ops]  # at least one record: an empty archive is a usage error
    table: dict[str, dict[str, Any]] = {}  # what DynamoDB holds
    model: dict[str, dict[str, Any]] = {}  # what the index holds: the table, plus kept TTL items
    records = []
    for n, (kind, key, advance) in enumerate(ops):
        t += advance
        if kind in ("put", "update"):
            image = {"v": n} if kind == "put" else {**table.get(key, {}), "w": n}
            name = "MODIFY" if key in table else "INSERT"
            records.append(f.record(name, key, image=image, created=t))
            table[key] = model[key] = image
        elif key in table:  # DynamoDB writes no REMOVE for an absent item
            ttl = kind == "ttl"
            records.append(f.record("REMOVE", key, created=t, ttl=ttl))
            del table[key]
            if not (ttl and ttl_mode == "keep"):
                model.pop(key, None)
    return records, {k: {"pk": k, **v} for k, v in model.items()}


def _write_archive(s3: Any, records: list[dict[str, Any]], data: st.DataObject) -> int:
    """Spread the records over objects (several per hour, listed in a shuffled order); return the count."""
    objects: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        part = partition_of(record["dynamodb"]["ApproximateCreationDateTime"])
        copies = data.draw(st.sampled_from([1, 1, 1, 1, 2]))
        for _ in range(copies):
            objects.setdefault((part, data.draw(st.integers(0, 2))), []).append(record)
    order = data.draw(st.permutations(list(objects)))
    for rank, (part, slot) in enumerate(order):
        key = f"{part}{rank:03d}-{slot}-{uuid.uuid4().hex[:6]}.gz"
        s3.put_object(Bucket=BUCKET, Key=key, Body=archive_object(objects[(part, slot)]))
    s3.put_object(Bucket=BUCKET, Key="errors/processing-failed/dt=2027-01-15/x.gz", Body=b"not ours")
    return len(objects)


def _searchable(os_client: OpenSearch, alias: str) -> dict[str, Any]:
    os_client.indices.refresh(index=alias)
    hits = os_client.search(index=alias, body={"size": 100})["hits"]["hits"]
    return {h["_id"]: {k: v for k, v in h["_source"].items() if k != "_ddbsync"} for h in hits}


def _rebuild(s: Settings, os_client: OpenSearch, into: Literal["new", "live"], parallel: int) -> Any:
    out = io.StringIO()
    s3 = boto3.client("s3", region_name="eu-west-1")
    summary = rebuild(
        s, ArchiveLocation(BUCKET, ""), client=build_client(s), s3=s3,
        into=into, parallel=parallel, settle_seconds=0, out=out, err=io.StringIO(), sleep=lambda _: None,
        now=lambda: STAMP + dt.timedelta(seconds=next(_STAMPS)),  # a new index name every run
    )  # fmt: skip
    assert not summary.failed and not summary.poison, out.getvalue()
    assert summary.errors_skipped == 1
    return summary


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, max_size=30), ttl_mode=st.sampled_from(["delete", "keep"]),
       data=st.data())  # fmt: skip
def test_a_rebuild_from_the_archive_equals_the_table(
    os_client: OpenSearch, dlq_url: str, ops: list[tuple[str, str, int]], ttl_mode: str, data: st.DataObject
) -> None:
    alias = f"rb-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    env = base_env(alias, dlq_url, SORT_KEY="", TTL_REMOVES=ttl_mode, BULK_MAX_ACTIONS="3")
    s = Settings.from_env(env)
    try:
        records, expected = _history(ops, ttl_mode)
        objects = _write_archive(s3, records, data)
        first = _rebuild(s, os_client, "new", 1)  # (a) one by one, in the shuffled order
        assert first.swapped and first.objects == objects
        assert first.lines == first.applied + first.stale + first.skipped
        assert _searchable(os_client, alias) == expected
        again = _rebuild(s, os_client, "live", 2)  # (b) the same archive over it: nothing changes
        assert again.applied == 0 and again.lines == first.lines
        assert _searchable(os_client, alias) == expected
        _rebuild(s, os_client, "new", 4)  # (c) in parallel, into another new index
        assert _searchable(os_client, alias) == expected
        late = data.draw(st.lists(st.sampled_from(records), max_size=6)) if records else []
        handler = make_handler(s)  # (d) a late replay of old records through the stream indexer
        assert handler(event(late), FakeContext()) == {"batchItemFailures": []}
        assert _searchable(os_client, alias) == expected
    finally:
        os_client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
        s3.delete_bucket(Bucket=BUCKET)
