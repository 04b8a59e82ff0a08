"""``ddbsync rebuild --from-archive`` end to end through ``main([...])``: moto S3, the real OpenSearch."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from opensearchpy import OpenSearch

from ddbsync.cli import main
from ddbsync.config import Settings
from ddbsync.opensearch.indices import ensure_index
from tests.support import OPENSEARCH_URL, RecordFactory, archive_object, partition_of

pytestmark = pytest.mark.integration

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
BUCKET = "archive-cli"


@pytest.fixture
def env(alias: str, aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"OPENSEARCH_ENDPOINT": OPENSEARCH_URL, "OPENSEARCH_SERVICE": "none", "INDEX_ALIAS": alias,
              "PARTITION_KEY": "pk", "SORT_KEY": "", "RETRY_BASE_MS": "1", "RETRY_MAX_MS": "20"}  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return values


def put(records: list[dict[str, Any]], name: str = "a.gz", lines: list[bytes] | None = None) -> None:
    key = partition_of(records[0]["dynamodb"]["ApproximateCreationDateTime"]) + name
    boto3.client("s3", region_name="eu-west-1").put_object(
        Bucket=BUCKET, Key=key, Body=archive_object(records, lines))


def searchable(os_client: OpenSearch, alias: str) -> dict[str, Any]:
    os_client.indices.refresh(index=alias)
    hits = os_client.search(index=alias, body={"size": 100})["hits"]["hits"]
    return {h["_id"]: {k: v for k, v in h["_source"].items() if k != "_ddbsync"} for h in hits}


def history() -> list[dict[str, Any]]:
    f = RecordFactory(sk=None)
    return [
        f.record("INSERT", "a", image={"v": 1}, created=T0),
        f.record("INSERT", "b", image={"v": 1}, created=T0),
        f.record("MODIFY", "a", image={"v": 2}, created=T0),  # same second: the sequence decides
        f.record("REMOVE", "b", created=T0 + 3600),  # the next hour's partition
        f.record("INSERT", "c", image={"v": 3}, created=T0 + 3601),
    ]


def rebuild(*args: str) -> int:
    return main(["rebuild", "--settle-seconds", "0", *args])


def test_into_new_builds_an_index_and_swaps_the_alias(
    env: dict[str, str], alias: str, os_client: OpenSearch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = history()
    put(records[:3])
    put(records[3:])
    assert rebuild("--from-archive", f"s3://{BUCKET}") == 0
    out = capsys.readouterr()
    assert searchable(os_client, alias) == {"a": {"pk": "a", "v": 2}, "c": {"pk": "c", "v": 3}}
    assert "waiting 0 s (--settle-seconds)" in out.out and "swapped" in out.out
    assert "2/2 objects (0 errors/ objects skipped), 5 lines" in out.out
    assert "2/2 objects" in out.err  # the progress, on stderr
    first = list(os_client.indices.get_alias(name=alias))
    time.sleep(1.0)  # new indices are named by the second
    # Again, from the table's prefix and in parallel: a new index replaces the first one.
    assert rebuild("--from-archive", f"s3://{BUCKET}/table=t", "--parallel", "3") == 0
    assert list(os_client.indices.get_alias(name=alias)) != first
    assert not os_client.indices.exists(index=first[0])
    assert searchable(os_client, alias) == {"a": {"pk": "a", "v": 2}, "c": {"pk": "c", "v": 3}}


def test_the_swap_checks_every_document_written_is_there(
    env: dict[str, str], alias: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a, b (a tombstone now) and c: three documents; nothing removes one from the new index.
    import ddbsync.rebuild.run as run

    records = history()
    put(records[:3])
    put(records[3:])
    asked: list[int] = []
    from ddbsync.opensearch.indices import finalize_backfill as finalize

    def checked(client: Any, alias: str, index: str, expected_min_docs: int, *a: Any) -> Any:
        asked.append(expected_min_docs)
        return finalize(client, alias, index, expected_min_docs, *a)

    monkeypatch.setattr(run, "finalize_backfill", checked)
    assert rebuild("--from-archive", f"s3://{BUCKET}") == 0
    assert asked == [3]
    monkeypatch.setattr(run, "finalize_backfill",
                        lambda c, a, i, n, *rest: finalize(c, a, i, n + 1, *rest))  # fmt: skip
    time.sleep(1.0)
    assert rebuild("--from-archive", f"s3://{BUCKET}") == 1  # one short: no swap
    assert "backfill shortfall" in capsys.readouterr().out


def test_into_live_reapplies_a_window(
    env: dict[str, str], alias: str, os_client: OpenSearch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = history()
    put(records[:3])
    put(records[3:])
    ensure_index(os_client, alias, Settings.from_env(env, require_dlq=False).index_template)
    since, until = str(T0 + 3600), "2027-01-15T10:00:00Z"
    assert rebuild("--from-archive", f"s3://{BUCKET}/", "--into", "live", "--since", since,
                   "--until", until) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert searchable(os_client, alias) == {"c": {"pk": "c", "v": 3}}  # only the 09:00 hour's changes
    assert "1/1 objects" in out and "-> live alias" in out  # the 08:00 object was never listed


def test_poison_drops_the_new_index_and_skip_poison_swaps(
    env: dict[str, str], alias: str, os_client: OpenSearch, capsys: pytest.CaptureFixture[str]
) -> None:
    put(history()[:3], lines=[b"{broken"])
    assert rebuild("--from-archive", f"s3://{BUCKET}") == 1
    out = capsys.readouterr().out
    assert "line 4: not a JSON line" in out and "dropped" in out
    assert not os_client.indices.exists_alias(name=alias)
    assert os_client.indices.get(index=f"{alias}-*") == {}  # nothing left behind
    assert rebuild("--from-archive", f"s3://{BUCKET}", "--skip-poison") == 1
    out = capsys.readouterr().out
    assert "POISON s3://archive-cli/table=t/dt=2027-01-15/hour=08/a.gz, line 4: not a JSON line" in out
    assert searchable(os_client, alias) == {"a": {"pk": "a", "v": 2}, "b": {"pk": "b", "v": 1}}


@pytest.mark.parametrize(("args", "message"), [
    (["--from-archive", "https://x/y"], "ERROR: --from-archive must be an s3://bucket/prefix URI, got 'https://x/y'"),
    (["--from-archive", "s3://nope"], "ERROR: the archive bucket 'nope' does not exist (NoSuchBucket)"),
    (["--from-archive", f"s3://{BUCKET}/table=t"], "ERROR: no archive objects under s3://archive-cli/table=t/"),
    (["--from-archive", f"s3://{BUCKET}", "--into", "live", "--since", "20", "--until", "10"],
     "ERROR: --since must be before --until (got [1970-01-01T00:00:20Z, 1970-01-01T00:00:10Z))"),
    (["--from-archive", f"s3://{BUCKET}", "--since", "10"], "ERROR: --since/--until need --into live"),
])  # fmt: skip
def test_usage_mistakes_exit_2_with_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert rebuild(*args) == 2
    out = capsys.readouterr()
    assert out.out.startswith(message) and out.out.count("\n") == 1, out.out
    assert "Traceback" not in out.out + out.err


def test_into_live_needs_the_live_alias(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    put(history()[:1])
    assert rebuild("--from-archive", f"s3://{BUCKET}", "--into", "live") == 2
    assert "does not exist: use --into new" in capsys.readouterr().out
