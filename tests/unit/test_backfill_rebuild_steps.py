"""The archive branch's Lambda actions (ddbsync.backfill.rebuild_steps) and the failure report.

``index_archive_objects`` calls ``ddbsync.rebuild.files.index_archive_object``, the rebuild's
reader, which is written elsewhere (issue #9, section 3). Here it is replaced by
:class:`FakeArchiveReader`, a stand-in injected for these tests only: it follows the reader's
signature and result (``ArchiveProgress``), so the loop over a batch, the checkpoint and the
skipping are tested; the real reader runs in the integration tests once it is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from opensearchpy import OpenSearch

from ddbsync.backfill.map_report import describe_failure
from ddbsync.backfill.rebuild_steps import index_archive_objects, is_archive_object, parse_source
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.backfill.steps import Backfill
from ddbsync.config import Settings
from ddbsync.errors import BackfillError
from ddbsync_local.backfill_run import local_env

SOURCE = {"type": "archive", "uri": "s3://arch/table=t/"}


@dataclass(frozen=True)
class FakeProgress:
    """Shaped like ddbsync.rebuild.files.ArchiveProgress."""

    done: bool
    checkpoint: int
    applied: int
    stale: int
    skipped: int
    poison: int
    first_poison: str | None


@dataclass
class FakeArchiveReader:
    """A stand-in for index_archive_object (test only): ``lines[key]`` lines, ``per_call`` at most."""

    lines: dict[str, int]
    per_call: int = 1000
    poison_in: set[str] = field(default_factory=set)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, s3: Any, bucket: str, key: str, **kwargs: Any) -> FakeProgress:
        self.calls.append({"bucket": bucket, "key": key, **kwargs})
        start = kwargs["start_line"]
        end = min(self.lines[key], start + self.per_call)
        poison = 1 if key in self.poison_in else 0
        first = f"{key} line {start + 1}: not a stream record" if poison else None
        return FakeProgress(end == self.lines[key], end, end - start, 0, 0, poison, first)


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> FakeArchiveReader:
    fake = FakeArchiveReader({"table=t/a.gz": 120, "table=t/b.gz": 30, "table=t/c.gz": 5})
    monkeypatch.setattr("ddbsync.rebuild.files.index_archive_object", fake)
    return fake


@pytest.fixture
def backfill() -> Backfill:
    settings = Settings.from_env(local_env("http://127.0.0.1:1", "items", "pk", "sk"), require_dlq=False)
    table = "arn:aws:dynamodb:eu-west-1:1:table/t"
    bs = BackfillSettings(table, "exports", "exports", "DYNAMODB_JSON", None, False, 0)
    client = OpenSearch(hosts=["http://127.0.0.1:1"])  # never called: the reader is the fake
    return Backfill(settings, bs, client=client, s3=None, exports=None)  # type: ignore[arg-type]


def event(keys: list[str], checkpoint: dict[str, int] | None = None) -> dict[str, Any]:
    state = {"source": parse_source(SOURCE), "next_alias": "items-next"}
    return {"backfill": state, "items": [{"Key": k, "Size": 1} for k in keys], "checkpoint": checkpoint}


FOREVER = lambda: 900_000  # noqa: E731 - the remaining time of a fresh invocation


def test_a_batch_is_replayed_object_by_object_skipping_what_is_not_archive(
    backfill: Backfill, reader: FakeArchiveReader
) -> None:
    keys = ["table=t/a.gz", "errors/processing-failed/x.gz", "table=t/b.gz", "table=t/", "table=t/c.gz"]
    result = index_archive_objects(backfill, event(keys), FOREVER)
    assert result["done"] is True
    assert result["checkpoint"] == {"item": 5, "line": 0}
    assert result["applied"] == 155
    assert [c["key"] for c in reader.calls] == ["table=t/a.gz", "table=t/b.gz", "table=t/c.gz"]
    first = reader.calls[0]
    assert first["bucket"] == "arch" and first["target"] == "items-next" and first["start_line"] == 0
    assert first["since"] is None and first["until"] is None
    assert result["items"] == event(keys)["items"]


def test_an_object_too_big_for_one_call_resumes_from_its_line(
    backfill: Backfill, reader: FakeArchiveReader
) -> None:
    reader.per_call = 50
    keys = ["table=t/c.gz", "table=t/a.gz", "table=t/b.gz"]
    checkpoints: list[dict[str, int]] = []
    result: dict[str, Any] = {"checkpoint": {"item": 0, "line": 0}, "done": False}
    while not result["done"]:
        result = index_archive_objects(backfill, event(keys, result["checkpoint"]), FOREVER)
        checkpoints.append(result["checkpoint"])
    assert checkpoints == [{"item": 1, "line": 50}, {"item": 1, "line": 100}, {"item": 3, "line": 0}]
    assert [(c["key"], c["start_line"]) for c in reader.calls] == [
        ("table=t/c.gz", 0),
        ("table=t/a.gz", 0),
        ("table=t/a.gz", 50),
        ("table=t/a.gz", 100),
        ("table=t/b.gz", 0),
    ]


def test_a_poison_line_fails_the_batch_naming_the_object(
    backfill: Backfill, reader: FakeArchiveReader
) -> None:
    reader.poison_in = {"table=t/b.gz"}
    expected = r"s3://arch/table=t/b.gz: table=t/b.gz line 1: not a stream record"
    with pytest.raises(BackfillError, match=expected):
        index_archive_objects(backfill, event(["table=t/c.gz", "table=t/b.gz"]), FOREVER)


@pytest.mark.parametrize(
    ("items", "checkpoint", "message"),
    [
        ([{"Size": 1}], None, "needs items"),
        ([{"Key": "table=t/a.gz"}], {"item": 3, "line": 0}, "bad checkpoint"),
        ([{"Key": "table=t/a.gz"}], {"item": 0, "line": -1}, "bad checkpoint"),
    ],
)
def test_bad_batch_input_is_refused(
    backfill: Backfill, reader: FakeArchiveReader, items: Any, checkpoint: Any, message: str
) -> None:
    bad = {**event([]), "items": items, "checkpoint": checkpoint}
    with pytest.raises(BackfillError, match=message):
        index_archive_objects(backfill, bad, FOREVER)
    assert reader.calls == []


def test_parse_source_reads_the_uri() -> None:
    source = parse_source({"type": "archive", "uri": "s3://bkt/p/q/"})
    assert source == {"type": "archive", "uri": "s3://bkt/p/q/", "bucket": "bkt", "prefix": "p/q/"}
    assert parse_source({"type": "archive", "uri": "s3://bkt"})["prefix"] == ""
    # The rebuild's own parser: a whole partition gets its "/" (table=t does not match table=t2).
    assert parse_source({"type": "archive", "uri": "s3://bkt/table=t"})["prefix"] == "table=t/"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "archive", "uri": "b/p"}, "s3://bucket/prefix"),
        ({"type": "archive", "uri": "s3:///p"}, "not an S3 bucket name"),
        ({"type": "archive", "uri": "s3://bkt", "since": 10}, "would miss every item"),
        ({"type": "archive", "uri": "s3://bkt", "until": "2026-01-01T00:00:00Z"}, "would miss every item"),
        ({"type": "export"}, "not an archive source"),
    ],
)
def test_parse_source_refuses_what_it_cannot_use(source: dict[str, Any], message: str) -> None:
    with pytest.raises(BackfillError, match=message):
        parse_source(source)


def test_firehose_error_output_and_folders_are_not_archive_objects() -> None:
    assert is_archive_object("table=t/dt=2026-01-01/hour=00/x.gz")
    assert not is_archive_object("errors/processing-failed/dt=2026-01-01/x.gz")
    assert not is_archive_object("archive/errors/x.gz")
    assert not is_archive_object("table=t/")


def test_a_failure_names_the_object_its_message_names_or_the_batch() -> None:
    def child(message: str, items: list[str]) -> dict[str, Any]:
        cause = json.dumps({"errorMessage": message, "errorType": "BackfillFileError"})
        data = {"Items": [{"Key": k} for k in items], "BatchInput": {}}
        return {"Error": "BackfillFileError", "Cause": cause, "Input": json.dumps(data)}

    named = describe_failure(child("table=t/b.gz, line 4: bad", ["table=t/a.gz", "table=t/b.gz"]), "arch")
    assert named == "BackfillFileError: s3://arch/table=t/b.gz, line 4: bad"
    unnamed = describe_failure(child("Task timed out", ["table=t/a.gz", "table=t/b.gz"]), "arch")
    assert unnamed == "BackfillFileError: s3://arch/table=t/a.gz (batch of 2 objects): Task timed out"
    bare = describe_failure({"Error": "States.Timeout", "Cause": ""}, "arch")
    assert bare == "States.Timeout: (no cause)"
