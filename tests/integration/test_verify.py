"""``ddbsync verify [--repair]`` against moto (DynamoDB) and the real OpenSearch.

The index is built by the real backfill (local state machine, real-format export), then
drift is planted the way it happens in production: stream changes that never reached the
index (put or delete in the table only), a tombstone left by a lost re-insert, and a live
document for a key the table does not hold (brought back after the backfill).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.cli import build_parser, verify
from ddbsync.config import Settings
from ddbsync.mapping import document_meta, tombstone_body
from ddbsync.verify import Candidate, VerifySummary, run_verify
from ddbsync.versioning import stream_version
from ddbsync_local.backfill_run import local_env
from tests.integration.test_backfill_e2e import TABLE, World, key, table_item
from tests.support import OPENSEARCH_URL

pytestmark = pytest.mark.integration

ITEMS = 40


def doc_id(i: int) -> str:
    return f"customer-{i % 37}|order-{i:05d}"


class VerifyWorld:
    """A backfilled index over a moto table, and the tools to plant drift in it."""

    def __init__(self, base: World) -> None:
        self.base, self.ddb, self.client = base, base.ddb, base.os_client
        base.create_table(ITEMS)
        base.run()
        self.index = next(iter(self.client.indices.get_alias(name=base.alias)))
        self.output = ""

    def env(self) -> dict[str, str]:
        env = local_env(OPENSEARCH_URL, self.base.alias, "pk", "sk")
        env.update(RETRY_BASE_MS="10", RETRY_MAX_MS="200", TABLE_NAME=TABLE)
        return env

    def stored(self, i: int) -> tuple[int, dict[str, Any]]:
        got = self.client.get(index=self.index, id=doc_id(i))
        return int(got["_version"]), got["_source"]

    def put_doc(self, i: int, source: dict[str, Any], version: int) -> None:
        """A document written straight into the index (what a writer would have left there)."""
        self.client.index(index=self.index, id=doc_id(i), body=source,
                          params={"version": version, "version_type": "external"})  # fmt: skip

    def settle(self) -> None:
        """Wait for the next second: every planted version is then older than the verify's start.

        Also refresh: the walk is a search, which sees what the last refresh (every 1 s) saw.
        """
        self.client.indices.refresh(index=self.index)
        time.sleep(1.05 - time.time() % 1)

    def run(self, *, repair: bool = False, hook: Any = None) -> VerifySummary:
        settings = Settings.from_env(self.env(), require_dlq=False)
        return run_verify(settings, TABLE, ddb=self.ddb, client=self.client, segments=3, repair=repair,
                          run_size=7, before_repair=hook)  # fmt: skip

    def cli(self, *argv: str) -> int:
        out = io.StringIO()
        args = build_parser().parse_args(["verify", *argv])
        code = verify.main(args, env=self.env(), ddb=self.ddb, client=self.client, out=out)
        self.output = out.getvalue()
        return code


@pytest.fixture
def vw(aws: None, os_client: OpenSearch, alias: str) -> Iterator[VerifyWorld]:
    yield VerifyWorld(World(os_client, alias))


def plant_every_kind(vw: VerifyWorld) -> None:
    """missing: 100 (never indexed), 1 (only a tombstone); stale: 2; extra: 3, 200 (resurrected)."""
    vw.ddb.put_item(TableName=TABLE, Item=table_item(100))
    version, _ = vw.stored(1)
    vw.put_doc(1, tombstone_body(document_meta("stream", version >> 20, "1", deleted=True)), version + 1)
    vw.ddb.put_item(TableName=TABLE, Item=table_item(2, version=1))
    vw.ddb.delete_item(TableName=TABLE, Key=key(3))
    # A live document for a key deleted before the backfill's export, as an old writer left it.
    _, source = vw.stored(4)
    source = {**source, "sk": "order-00200", "_ddbsync": document_meta("stream", 1_700_000_000, "9")}
    old = {"version": stream_version(1_700_000_000), "version_type": "external"}
    vw.client.index(index=vw.index, id="customer-15|order-00200", body=source, params=old)
    vw.settle()


def test_an_index_in_step_exits_0(vw: VerifyWorld) -> None:
    vw.settle()
    assert vw.cli("--segments", "2") == verify.EXIT_OK, vw.output
    assert f"{ITEMS} items, {ITEMS} documents (0 tombstones)" in vw.output
    assert "0 missing, 0 extra, 0 stale - the index is in step" in vw.output


def test_each_planted_kind_is_found_with_counts_and_examples(vw: VerifyWorld) -> None:
    plant_every_kind(vw)
    summary = vw.run()
    assert summary.counts == {"missing": 2, "extra": 2, "stale": 1}
    assert sorted(summary.examples["missing"]) == sorted([doc_id(100), doc_id(1)])
    assert summary.examples["stale"] == [doc_id(2)]
    assert sorted(summary.examples["extra"]) == sorted([doc_id(3), "customer-15|order-00200"])
    assert (summary.items, summary.documents, summary.tombstones) == (ITEMS, ITEMS + 1, 1)
    assert summary.repaired is None


def test_json_output_and_exit_1_on_drift(vw: VerifyWorld) -> None:
    plant_every_kind(vw)
    assert vw.cli("--json", "--examples", "1") == verify.EXIT_DRIFT
    report = json.loads(vw.output)
    assert report["drift"] == 5 and report["counts"] == {"missing": 2, "extra": 2, "stale": 1}
    assert {len(ids) for ids in report["examples"].values()} == {1}
    assert report["repaired"] is None and report["table"] == TABLE and report["items"] == ITEMS
    assert "order 2" not in vw.output  # ids only, never item data


def test_repair_removes_every_kind_and_a_second_verify_exits_0(vw: VerifyWorld) -> None:
    plant_every_kind(vw)
    assert vw.cli("--repair") == verify.EXIT_DRIFT, vw.output
    assert "repaired: 5 written, 0 left alone" in vw.output, vw.output
    assert vw.base.searchable() == vw.base.table()
    vw.settle()
    assert vw.cli() == verify.EXIT_OK, vw.output
    _, source = vw.stored(3)
    assert source["_ddbsync"]["deleted"] is True and source["_ddbsync"]["source"] == "repair"


def test_a_write_made_between_the_scan_and_the_repair_is_left_alone(vw: VerifyWorld) -> None:
    plant_every_kind(vw)
    newer: dict[int, int] = {}

    def concurrent_writes(confirmed: Sequence[Candidate]) -> None:
        now = int(time.time())  # the second the verify started, or later
        for i in (2, 3):  # stale 2 updated again; extra 3 created again: both reach the index
            item = table_item(i, version=7)
            vw.ddb.put_item(TableName=TABLE, Item=item)
            source = {**vw.base.table()[doc_id(i)], "_ddbsync": document_meta("stream", now, "77")}
            newer[i] = stream_version(now)
            vw.put_doc(i, source, newer[i])

    summary = vw.run(repair=True, hook=concurrent_writes)
    assert summary.repaired is not None
    assert (summary.repaired.written, summary.repaired.newer_kept) == (3, 2)
    for i in (2, 3):
        version, source = vw.stored(i)
        assert version == newer[i] and source["_ddbsync"]["source"] == "stream"
        assert source["name"] == f"order {i} v7"
    assert vw.base.searchable() == vw.base.table()


def test_usage_errors_exit_2(vw: VerifyWorld) -> None:
    args = build_parser().parse_args(["verify"])
    out = io.StringIO()
    env = {k: v for k, v in vw.env().items() if k != "TABLE_NAME"}
    assert verify.main(args, env=env, ddb=vw.ddb, client=vw.client, out=out) == verify.EXIT_USAGE
    assert "no table: pass --table" in out.getvalue()
    assert vw.cli("--table", "no-such-table") == verify.EXIT_USAGE
    assert vw.output.startswith("ERROR: verify of no-such-table") and "Traceback" not in vw.output
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["verify", "--segments", "0"])
    assert exited.value.code == 2


def test_a_cluster_that_refuses_the_id_sort_is_a_clear_error(vw: VerifyWorld) -> None:
    setting = "indices.id_field_data.enabled"
    vw.client.cluster.put_settings(body={"transient": {setting: False}})
    try:
        assert vw.cli() == verify.EXIT_USAGE
    finally:
        vw.client.cluster.put_settings(body={"transient": {setting: None}})
    assert f"cluster setting {setting} is false" in vw.output and "Traceback" not in vw.output


def test_the_scheduled_lambda_publishes_drift_documents(
    vw: VerifyWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddbsync.verify.scheduled import make_handler

    plant_every_kind(vw)
    handler = make_handler({**vw.env(), "VERIFY_SEGMENTS": "2"}, ddb=vw.ddb, client=vw.client)
    report = handler({"source": "aws.scheduler"}, None)
    assert report["drift"] == 5 and report["repaired"] is None
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (metrics,) = [m for m in emf if "DriftDocuments" in m]
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ddbsync"
    values = [metrics[name] for name in ("DriftDocuments", "DriftMissing", "DriftExtra", "DriftStale")]
    assert [v if isinstance(v, list) else [v] for v in values] == [[5], [2], [2], [1]]
    assert vw.base.searchable() != vw.base.table()  # read-only: nothing was fixed
