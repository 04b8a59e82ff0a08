"""Snapshot floors: which writes an index with a floor refuses, and how a backfill sets the floor."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.backfill.steps import Backfill, BackfillError, snapshot_floor
from ddbsync.config import Settings
from ddbsync.mapping import Change
from ddbsync.opensearch.bulk import Outcome, Write
from ddbsync.opensearch.floors import (
    FLOOR_REASON,
    Target,
    View,
    below_floor,
    floor_of_mappings,
    refuse_below_floors,
)
from ddbsync.versioning import Ordering, export_version, floor_version, stream_version

F = 1_800_000_000


def write(version: int, op: str = "index", target: str = "items") -> Write:
    change = Change(f"id-{version}-{op}", op, version, Ordering(version >> 20, 1), {}, {})  # type: ignore[arg-type]
    return Write(target, change, b"{}")


def test_only_index_writes_of_an_earlier_second_are_below_the_floor() -> None:
    assert below_floor(write(stream_version(F - 1)), F)
    assert not below_floor(write(stream_version(F)), F)
    assert not below_floor(write(stream_version(F - 1), "tombstone"), F)  # tombstones always go
    assert not below_floor(write(stream_version(1)), None)  # no floor, no rule


def test_the_snapshots_own_items_are_not_below_its_floor_but_an_older_snapshots_are() -> None:
    assert floor_version(F) == export_version(F)
    assert not below_floor(write(export_version(F + 0.999)), F)  # exported at T >= F
    assert below_floor(write(export_version(F - 0.5)), F)  # exported before F
    # A repair record of second F - 1 is the item as an export at F would hold it.
    assert not below_floor(write(export_version(F)), F)
    assert below_floor(write(export_version(F - 1)), F)


def test_refused_writes_are_stale_with_the_reason_and_only_for_targets_with_a_floor() -> None:
    view = View(Target("items", "items-1"), Target("items-next", "items-2", F))
    old_live, old_next = write(stream_version(F - 5)), write(stream_version(F - 5), target="items-next")
    new_next = write(stream_version(F), target="items-next")

    to_send, refused = refuse_below_floors([old_live, old_next, new_next], view)

    assert to_send == [old_live, new_next] and refused == [old_next]
    assert old_next.result is not None
    assert (old_next.result.outcome, old_next.result.reason) == (Outcome.STALE, FLOOR_REASON)


def test_a_view_lists_its_aliases_and_its_highest_floor() -> None:
    assert View(Target("items", "items-1")).aliases == ["items"]
    assert View(Target("items", "items-1")).highest_floor() is None
    view = View(Target("items", "items-1", F - 100), Target("items-next", "items-2", F))
    assert view.aliases == ["items", "items-next"]
    assert view.highest_floor() == F
    assert view.floor_of("items") == F - 100 and view.floor_of("other") is None


@pytest.mark.parametrize(
    ("mappings", "floor"),
    [
        ({"_meta": {"ddbsync": {"floor": F}}}, F),
        ({"_meta": {"ddbsync": {"floor": True}}}, None),
        ({"_meta": {"ddbsync": {"floor": "1800000000"}}}, None),
        ({"_meta": {"owner": "search-team"}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_floor_is_read_from_the_mappings_meta_only_when_it_is_a_whole_number(
    mappings: object, floor: int | None
) -> None:
    assert floor_of_mappings(mappings) == floor


def test_the_floor_leaves_time_for_the_create_call_and_the_wait() -> None:
    assert snapshot_floor(F + 0.2, 65) == F + 2 + 65
    assert snapshot_floor(F, 0) == F + 1


# -- prepare and start_export -----------------------------------------------------------------


def settings(check: int) -> Settings:
    env = {
        "OPENSEARCH_ENDPOINT": "http://127.0.0.1:9200",
        "OPENSEARCH_SERVICE": "none",
        "INDEX_ALIAS": "items",
        "PARTITION_KEY": "pk",
        "NEXT_ALIAS_CHECK_SECONDS": str(check),
    }
    return Settings.from_env(env, require_dlq=False)


class FakeExports:
    def __init__(self, export_time: float) -> None:
        self.export_time = export_time
        self.started = 0

    def start(self, bs: BackfillSettings, client_token: str) -> dict[str, Any]:
        self.started += 1
        return {"ExportArn": "arn:export", "ExportTime": dt.datetime.fromtimestamp(self.export_time, dt.UTC)}

    def describe(self, export_arn: str) -> dict[str, Any]:
        raise AssertionError("not used")


def backfill(check: int, wait: int, now: float, exports: FakeExports, slept: list[float]) -> Backfill:
    table = "arn:aws:dynamodb:eu-west-1:1:table/t"
    bs = BackfillSettings(table, "bucket", "", "DYNAMODB_JSON", None, False, wait)
    return Backfill(
        settings(check), bs, client=None, s3=None, exports=exports,  # type: ignore[arg-type]
        now=lambda: dt.datetime.fromtimestamp(now, dt.UTC), sleep=slept.append,
    )  # fmt: skip


def test_prepare_refuses_a_wait_shorter_than_the_indexers_check_interval() -> None:
    action = backfill(30, 20, F, FakeExports(F), [])
    with pytest.raises(BackfillError, match=r"DUAL_WRITE_WAIT_SECONDS \(20\) is shorter than "
                                            r"NEXT_ALIAS_CHECK_SECONDS \(30\)"):  # fmt: skip
        action.prepare({"backfill": {}}, lambda: 0)


def test_start_export_waits_out_a_short_wait_then_exports_at_or_after_the_floor() -> None:
    slept: list[float] = []
    exports = FakeExports(F + 0.1)
    state = backfill(0, 0, F - 1.5, exports, slept).start_export({"backfill": {"floor": F}}, lambda: 0)
    assert slept == [1.5] and exports.started == 1
    assert state["export_time"] == F + 0.1


def test_start_export_fails_when_it_runs_long_before_the_floor() -> None:
    exports = FakeExports(F)
    with pytest.raises(BackfillError, match="before the new index's floor"):
        backfill(0, 0, F - 60, exports, []).start_export({"backfill": {"floor": F}}, lambda: 0)
    assert exports.started == 0


def test_start_export_fails_when_the_export_time_is_before_the_floor() -> None:
    expected = f"the export's time {F - 1.0} is before the new index's floor {F}"
    with pytest.raises(BackfillError, match=expected):
        backfill(0, 0, F, FakeExports(F - 1), []).start_export({"backfill": {"floor": F}}, lambda: 0)
