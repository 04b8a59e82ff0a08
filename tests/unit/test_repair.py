"""``ddbsync repair``: argument parsing, window rules, and where a repair write ranks."""

from __future__ import annotations

import argparse
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.cli import build_parser, repair
from ddbsync.dynamodb.export_format import IncrementalRecord
from ddbsync.errors import RecordError, RepairError
from ddbsync.mapping import META_FIELD
from ddbsync.opensearch.conflicts import stored_ordering
from ddbsync.opensearch.transport import StoredMeta
from ddbsync.repair import Window, export_request, parse_time, repair_change
from ddbsync.versioning import (
    SLOT_BITS,
    Ordering,
    export_version,
    repair_ordering,
    repair_version,
    second_of,
    stream_version,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"


def test_times_are_epoch_seconds_or_iso_8601_with_a_zone() -> None:
    assert parse_time("1767225600") == NOW
    assert parse_time("1767225600.5") == NOW + 0.5
    assert parse_time("2026-01-01T00:00:00Z") == NOW
    assert parse_time("2026-01-01T01:00:00+01:00") == NOW


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00", "yesterday", "-5", ""])
def test_a_time_without_zone_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ISO-8601 time with a zone"):
        parse_time(text)


def test_the_cli_requires_both_ends_of_the_window(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["repair", "--from", "1767225600"])
    assert exit_.value.code == 2
    assert "--to" in capsys.readouterr().err


def test_the_window_is_widened_to_whole_seconds() -> None:
    window = Window.of(NOW - 3600.7, NOW - 1800.2, now=NOW)
    assert (window.start, window.end) == (NOW - 3601, NOW - 1800)
    assert str(Window.of(NOW - 900, NOW, now=NOW)) == "[2025-12-31T23:45:00Z, 2026-01-01T00:00:00Z)"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (NOW - 899, NOW, "the window is 0 h 14 min 59 s; an incremental export covers 15 minutes"),
        (NOW - 86401, NOW, "the window is 24 h 0 min 1 s"),
        (NOW, NOW - 3600, "--to .* must be after --from"),
        (NOW - 900, NOW + 1, "is in the future"),
    ],
)
def test_a_window_outside_dynamodbs_rules_is_refused_with_the_reason(
    start: float, end: float, message: str
) -> None:
    with pytest.raises(RepairError, match=message):
        Window.of(start, end, now=NOW)


def test_the_shortest_and_longest_windows_are_accepted() -> None:
    assert Window.of(NOW - 900, NOW, now=NOW).end == NOW
    assert Window.of(NOW - 86400, NOW, now=NOW).start == NOW - 86400


def test_main_reports_a_bad_window_and_missing_settings_together() -> None:
    args = build_parser().parse_args(["repair", "--from", "1767225600", "--to", "1767225660"])
    out = io.StringIO()
    env = {"OPENSEARCH_ENDPOINT": "http://127.0.0.1:9200", "OPENSEARCH_SERVICE": "none",
           "INDEX_ALIAS": "items", "PARTITION_KEY": "pk", "AWS_REGION": "eu-west-1"}  # fmt: skip
    assert repair.main(args, env=env, out=out) == 2
    text = out.getvalue()
    assert "TABLE_ARN" in text and "EXPORT_BUCKET" in text and "15 minutes to 24 hours" in text


# --- versions --------------------------------------------------------------------------------


def test_a_repair_record_ranks_as_an_export_taken_at_the_next_second() -> None:
    micros = int(NOW) * 1_000_000 + 400_000
    s = int(NOW)
    assert repair_version(micros) == export_version(s + 1) == ((s + 1) << SLOT_BITS) - 1
    assert second_of(repair_version(micros)) == s
    assert repair_ordering(micros) == Ordering(s, float("inf"))


@given(
    second=st.integers(min_value=1, max_value=2**40),
    micros=st.integers(min_value=0, max_value=999_999),
    seq=st.integers(min_value=10**20, max_value=10**40 - 1),
    bumps=st.integers(min_value=0, max_value=(1 << SLOT_BITS) - 2),
)
def test_a_repair_beats_its_own_second_and_loses_to_the_next(
    second: int, micros: int, seq: int, bumps: int
) -> None:
    at = second * 1_000_000 + micros
    version, ordering = repair_version(at), repair_ordering(at)
    # Every stream change of the same second, even after compare-and-set bumps, is below.
    assert stream_version(second) + bumps < version
    assert ordering.newer_than(Ordering(second, seq))
    # Every change of a later second is above: the repair never overwrites it.
    assert stream_version(second + 1) > version
    assert not ordering.newer_than(Ordering(second + 1, 0))


def test_a_stored_repair_document_ranks_above_every_stream_change_of_its_second() -> None:
    s = int(NOW)
    meta = StoredMeta(True, repair_version(s * 1_000_000), 3, 1, None, "repair")
    stored = stored_ordering(meta)
    assert stored == repair_ordering(s * 1_000_000)
    assert not Ordering(s, 10**39).newer_than(stored)  # a late replay of that second is stale
    assert Ordering(s + 1, 1).newer_than(stored)


def test_a_record_with_a_new_image_indexes_it_with_the_repair_meta() -> None:
    keys: dict[str, object] = {"pk": {"S": "a"}, "sk": {"N": "1.50"}}
    record = IncrementalRecord(keys, {**keys, "n": {"N": "7"}}, int(NOW) * 1_000_000 + 5)
    change = repair_change(record, "pk", "sk")
    assert (change.doc_id, change.op) == ("a|1.5", "index")
    assert change.version == repair_version(record.write_time_micros)
    assert change.body is not None
    assert change.body["n"] == 7
    assert change.body[META_FIELD] == {"seq": None, "ts": int(NOW), "source": "repair"}


def test_a_record_without_a_new_image_is_a_tombstone_like_the_indexers() -> None:
    record = IncrementalRecord({"pk": {"S": "a"}}, None, int(NOW) * 1_000_000)
    change = repair_change(record, "pk", None)
    assert change.op == "tombstone"
    assert change.body == {META_FIELD: {"seq": None, "ts": int(NOW), "source": "repair", "deleted": True}}


def test_an_item_using_the_reserved_attribute_is_refused() -> None:
    keys: dict[str, object] = {"pk": {"S": "a"}}
    record = IncrementalRecord(keys, {**keys, META_FIELD: {"S": "x"}}, int(NOW) * 1_000_000)
    with pytest.raises(RecordError, match="reserved"):
        repair_change(record, "pk", None)


def test_the_export_request_asks_for_an_incremental_export_of_both_images() -> None:
    bs = BackfillSettings(ARN, "bucket", "exports", "ION", "key-id", False, 0)
    args = export_request(bs, Window.of(NOW - 900, NOW, now=NOW), "token")
    spec = args.pop("IncrementalExportSpecification")
    assert spec["ExportFromTime"].timestamp() == NOW - 900
    assert spec["ExportToTime"].timestamp() == NOW
    assert spec["ExportViewType"] == "NEW_AND_OLD_IMAGES"
    assert args == {
        "TableArn": ARN, "S3Bucket": "bucket", "ExportFormat": "ION", "ClientToken": "token",
        "ExportType": "INCREMENTAL_EXPORT", "S3Prefix": "exports", "S3SseAlgorithm": "KMS",
        "S3SseKmsKeyId": "key-id",
    }  # fmt: skip
