"""The purge window: durations, the replay window it must cover, and the floors it composes with."""

from __future__ import annotations

import pytest

from ddbsync.errors import PurgeWindowError
from ddbsync.opensearch.floors import Target, View
from ddbsync.purge import ReplayWindow, check_window, format_duration, parse_duration, tombstone_query

DAY = 86_400


@pytest.mark.parametrize(("text", "seconds"), [("36h", 36 * 3600), ("7d", 7 * DAY), ("2w", 14 * DAY),
                                               ("90m", 5400), (" 15D ", 15 * DAY)])  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "1.5d", "-1d", "0h", "7 d", "7days"])
def test_bad_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(PurgeWindowError, match="such as 36h, 7d or 2w"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(15 * DAY) == "15d"
    assert format_duration(DAY + 12 * 3600) == "1d 12h"
    assert format_duration(0) == "0s"


def test_the_window_must_cover_the_stream_and_the_dlq_retention() -> None:
    replay = ReplayWindow(14 * DAY, "record DLQ MessageRetentionPeriod 14d")
    assert replay.minimum_s == 15 * DAY
    assert check_window(15 * DAY, replay, force=False) is None
    with pytest.raises(PurgeWindowError, match=r"--older-than 15d or more"):
        check_window(15 * DAY - 1, replay, force=False)
    assert "forced" in (check_window(DAY, replay, force=True) or "")
    odd = ReplayWindow(4 * DAY + 1800, "4d 30m")
    with pytest.raises(PurgeWindowError, match=r"--older-than 121h or more"):  # parseable, rounded up
        check_window(DAY, odd, force=False)


def test_the_higher_floor_refuses_and_only_the_snapshot_floor_is_a_snapshot_floor() -> None:
    both = Target("items", "items-1", floor=100, purged=200)
    assert both.write_floor == 200
    assert Target("items", "i", 300, 200).write_floor == 300
    assert Target("i").write_floor is None
    view = View(both)
    assert view.highest_floor() == 200
    assert view.floor_of("items") == 100  # the after-writing check uses the snapshot floor only


def test_the_query_matches_tombstones_before_the_horizon() -> None:
    query = tombstone_query(1000)["query"]
    assert query == {"bool": {"filter": [
        {"term": {"_ddbsync.deleted": True}},
        {"range": {"_ddbsync.ts": {"lt": 1000, "format": "epoch_second"}}},
    ]}}  # fmt: skip
