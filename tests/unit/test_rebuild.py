"""rebuild: the archive URI, the listing narrowed to a window, and one object indexed resumably.

OpenSearch is an in-memory transport here (the Transport protocol); the real one is in
tests/integration/test_rebuild_property.py and test_rebuild_cli.py. S3 is moto, or a stub
whose body hands out a few bytes per read.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from typing import Any, cast

import boto3
import orjson
import pytest

from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.errors import BackfillFileError, RebuildError
from ddbsync.opensearch.transport import BulkItemResult, StoredMeta
from ddbsync.rebuild import ArchiveLocation, index_archive_object, list_archive, parse_archive_uri
from ddbsync.rebuild.files import ArchiveProgress
from tests.support import RecordFactory, archive_object, base_env, partition_of

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
BUCKET = "arch"


def settings(**extra: str) -> Settings:
    env = base_env("rb", "https://sqs.eu-west-1.amazonaws.com/0/dlq", SORT_KEY="", **extra)
    return Settings.from_env(env, require_dlq=False)


# -- the URI ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "bucket", "prefix"), [
    ("s3://arch", "arch", ""),
    ("s3://arch/", "arch", ""),
    ("s3://arch/table=t", "arch", "table=t/"),
    ("s3://arch/table=t/dt=2027-01-15", "arch", "table=t/dt=2027-01-15/"),
    ("s3://arch/table=t/dt=2027-01-15/hour=08", "arch", "table=t/dt=2027-01-15/hour=08/"),
    ("s3://arch/table=t/dt=2027-01", "arch", "table=t/dt=2027-01"),
    ("s3://my.archive-1/x/", "my.archive-1", "x/"),
])  # fmt: skip
def test_archive_uris(text: str, bucket: str, prefix: str) -> None:
    assert parse_archive_uri(text) == ArchiveLocation(bucket, prefix)


@pytest.mark.parametrize("text", ["http://arch/x", "arch/x", "s3://", "s3://A_B/x", "s3:/arch", "s3://a..b/"])
def test_anything_else_is_a_usage_error_naming_it(text: str) -> None:
    with pytest.raises(RebuildError) as e:
        parse_archive_uri(text)
    assert e.value.usage and "\n" not in str(e.value)


# -- the listing --------------------------------------------------------------------------------


class Counting:
    """A moto S3 client that remembers the prefixes it was asked to list."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.listed: list[tuple[str, bool]] = []

    def get_paginator(self, name: str) -> Any:
        paginator = self.inner.get_paginator(name)
        outer = self

        class Recording:
            def paginate(self, **kw: Any) -> Iterator[Any]:
                outer.listed.append((kw["Prefix"], "Delimiter" in kw))
                return iter(paginator.paginate(**kw))

        return Recording()


@pytest.fixture
def archive(aws: None) -> Counting:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for day in ("2027-01-14", "2027-01-15", "2027-01-16"):
        for hour in ("00", "07", "08", "23"):
            for table in ("t", "t2"):
                s3.put_object(Bucket=BUCKET, Key=f"table={table}/dt={day}/hour={hour}/a.gz", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key=f"errors/processing-failed/dt={day}/e.gz", Body=b"x")
    return Counting(s3)


def keys(s3: Counting, uri: str, since: float | None = None, until: float | None = None) -> list[str]:
    listing = list_archive(cast(Any, s3), parse_archive_uri(uri), since, until)
    return [o.key for o in listing.objects]


def test_a_one_hour_window_lists_one_hour_and_a_few_folder_names(archive: Counting) -> None:
    # [08:00, 09:00) on 2027-01-15: the hour=08 folders of both tables, nothing else.
    got = keys(archive, "s3://arch", T0, T0 + 3600)
    assert got == ["table=t/dt=2027-01-15/hour=08/a.gz", "table=t2/dt=2027-01-15/hour=08/a.gz"]
    flat = [p for p, delimited in archive.listed if not delimited]
    assert flat == ["table=t/dt=2027-01-15/hour=08/", "table=t2/dt=2027-01-15/hour=08/"]
    assert not any("2027-01-14" in p or "2027-01-16" in p for p, _ in archive.listed)


def test_narrowing_from_a_table_a_day_or_an_hour_prefix(archive: Counting) -> None:
    hour = ["table=t/dt=2027-01-15/hour=08/a.gz"]
    assert keys(archive, "s3://arch/table=t", T0, T0 + 1) == hour
    assert keys(archive, "s3://arch/table=t/dt=2027-01-15", T0 + 10, T0 + 20) == hour
    assert keys(archive, "s3://arch/table=t/dt=2027-01-15/hour=08", T0, T0 + 3600) == hour
    assert keys(archive, "s3://arch/table=t/dt=2027-01-16", T0, T0 + 3600) == []  # outside
    # A partial name is listed flat and its keys filtered one by one.
    assert keys(archive, "s3://arch/table=t/dt=2027-01", T0 - 3600, T0 + 3600) == [
        "table=t/dt=2027-01-15/hour=07/a.gz", *hour]


def test_a_window_across_days_lists_whole_days_flat(archive: Counting) -> None:
    got = keys(archive, "s3://arch/table=t/", T0 - 9 * 3600, T0 + 17 * 3600)  # 14th 23:00 to 16th 01:00
    assert got == [
        "table=t/dt=2027-01-14/hour=23/a.gz",
        *(f"table=t/dt=2027-01-15/hour={h}/a.gz" for h in ("00", "07", "08", "23")),
        "table=t/dt=2027-01-16/hour=00/a.gz",
    ]
    assert ("table=t/dt=2027-01-15/", False) in archive.listed  # the whole day, flat


def test_errors_objects_are_counted_not_indexed(archive: Counting) -> None:
    listing = list_archive(cast(Any, archive), parse_archive_uri("s3://arch"))
    assert listing.errors_skipped == 3 and len(listing.objects) == 24
    assert not any(o.key.startswith("errors/") for o in listing.objects)
    windowed = list_archive(cast(Any, archive), parse_archive_uri("s3://arch"), T0, T0 + 3600)
    assert windowed.errors_skipped == 1  # only the day the window touches


def test_a_missing_bucket_is_one_clear_line(aws: None) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    with pytest.raises(RebuildError, match=r"^the archive bucket 'nope' does not exist \(NoSuchBucket\)$"):
        list_archive(s3, ArchiveLocation("nope", ""), T0, T0 + 60)


# -- one object -------------------------------------------------------------------------------


class Memory:
    """An index in memory: external versions, and 400 for ids listed in ``reject``."""

    def __init__(self, reject: Sequence[str] = (), reject_once: Sequence[str] = ()) -> None:
        self.docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.reject = set(reject)
        self.reject_once = set(reject_once)
        self.requests = 0
        self.fail_after: int | None = None  # requests answered before every item gets 429

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        self.requests += 1
        lines = body.split(b"\n")[:-1]
        out = []
        for action, source in zip(lines[0::2], lines[1::2], strict=True):
            meta = orjson.loads(action)["index"]
            doc_id, version = meta["_id"], meta["version"]
            if self.fail_after is not None and self.requests > self.fail_after:
                out.append(BulkItemResult(429, "es_rejected_execution_exception", "busy"))
            elif doc_id in self.reject:
                out.append(BulkItemResult(400, "mapper_parsing_exception", "bad"))
            elif doc_id in self.reject_once:  # a lost dynamic mapping race
                self.reject_once.discard(doc_id)
                reason = "mapper [n] cannot be changed from type [long] to [float]"
                out.append(BulkItemResult(400, "illegal_argument_exception", reason))
            elif doc_id in self.docs and self.docs[doc_id][0] >= version:
                out.append(BulkItemResult(409, "version_conflict_engine_exception", "old"))
            else:
                self.docs[doc_id] = (version, orjson.loads(source))
                out.append(BulkItemResult(201))
        return out

    def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[StoredMeta]:
        return [StoredMeta(True, self.docs[i][0], 1, 1, self.docs[i][1]["_ddbsync"]["seq"])
                if i in self.docs else StoredMeta(False) for i in ids]  # fmt: skip

    def live(self) -> dict[str, dict[str, Any]]:
        return {k: {a: v for a, v in d.items() if a != "_ddbsync"}
                for k, (_, d) in self.docs.items() if not d["_ddbsync"].get("deleted")}  # fmt: skip


class Trickle:
    """An S3 body handing out ``step`` bytes per read: every line crosses reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at, self.closed = data, step, 0, False
        self.largest = 0

    def read(self, amt: int = -1) -> bytes:
        n = self.step if amt < 0 else min(amt, self.step)
        chunk = self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


class StubS3:
    def __init__(self, objects: dict[str, bytes], step: int = 7) -> None:
        self.objects, self.step = objects, step
        self.bodies: list[Trickle] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        body = Trickle(self.objects[Key], self.step)
        self.bodies.append(body)
        return {"Body": body}


def run(
    s3: StubS3, transport: Memory, key: str = "o.gz", start: int = 0, remaining: Any = None, **kw: Any
) -> ArchiveProgress:
    opts: dict[str, Any] = {"since": None, "until": None, "settings": settings(BULK_MAX_ACTIONS="4"), **kw}
    return index_archive_object(
        cast(Any, s3), BUCKET, key, start_line=start, target="rb-next", transport=transport,
        deadline=Deadline(remaining or (lambda: 600_000), 0), **opts,
    )  # fmt: skip


def history(n: int = 10) -> list[dict[str, Any]]:
    f = RecordFactory(sk=None)
    out = []
    for i in range(n):
        key = f"k{i % 3}"
        out.append(f.record("REMOVE" if i % 4 == 3 else "INSERT", key, image={"v": i}, created=T0 + i // 2))
    return out


def test_a_gzip_stream_read_a_few_bytes_at_a_time_gives_whole_lines() -> None:
    records = history(10)
    s3, index = StubS3({"o.gz": archive_object(records)}, step=7), Memory()
    progress = run(s3, index)
    assert progress.done and progress.checkpoint == 10
    assert progress.applied + progress.stale == 10 and progress.poison == 0
    assert index.live() == {"k0": {"pk": "k0", "v": 9}, "k2": {"pk": "k2", "v": 8}}  # k1: removed last
    assert s3.bodies[0].closed


def test_the_window_keeps_only_its_records() -> None:
    records = history(10)  # seconds T0 .. T0+4, two records a second
    s3, index = StubS3({"o.gz": archive_object(records)}), Memory()
    progress = run(s3, index, since=T0 + 1, until=T0 + 3)
    assert progress.done and progress.outside == 6 and progress.applied + progress.stale == 4
    assert {d["_ddbsync"]["ts"] for _, d in index.docs.values()} == {T0 + 1, T0 + 2}


def test_poison_lines_stop_the_object_naming_key_and_line() -> None:
    f = RecordFactory(sk=None)
    bad_image = f.record("INSERT", "k9", raw_image={"_ddbsync": {"S": "x"}}, created=T0)
    data = archive_object([*history(3), bad_image], lines=[b"{not json"])
    with pytest.raises(BackfillFileError) as e:
        run(StubS3({"o.gz": data}), Memory())
    assert (e.value.key, e.value.line) == (f"s3://{BUCKET}/o.gz", 4) and "_ddbsync" in e.value.reason


def test_skip_poison_counts_them_and_keeps_the_first() -> None:
    f = RecordFactory(sk=None)
    bad_image = f.record("INSERT", "k9", raw_image={"_ddbsync": {"S": "x"}}, created=T0)
    rejected = f.record("INSERT", "k8", image={"v": 1}, created=T0)
    data = archive_object([*history(3), bad_image, rejected], lines=[b"{not json", b"[1]"])
    index = Memory(reject=["k8"])
    progress = run(StubS3({"o.gz": data}), index, skip_poison=True)
    assert progress.done and progress.checkpoint == 7 and progress.poison == 4
    assert [(p.line, p.reason[:28]) for p in progress.first_poison] == [
        (4, "item has an attribute named "), (5, "OpenSearch rejected the item"),
        (6, "not a JSON line: unexpected "), (7, "record must be an object, go"),
    ]
    assert {p.key for p in progress.first_poison} == {f"s3://{BUCKET}/o.gz"}
    assert set(index.docs) == {"k0", "k1", "k2"}


def test_a_write_rejected_once_is_sent_again_before_it_is_poison() -> None:
    # Two objects read in parallel may race to map a new field with two types; the loser
    # is answered 400 once, and the same write then meets the settled mapping.
    index = Memory(reject_once=["k1"])
    progress = run(StubS3({"o.gz": archive_object(history(3))}), index)
    assert progress.done and progress.poison == 0 and progress.applied == 3
    assert set(index.docs) == {"k0", "k1", "k2"}


def test_a_deadline_mid_object_then_resume_accounts_every_line_once() -> None:
    records = history(23)
    s3, index = StubS3({"o.gz": archive_object(records)}), Memory()
    budget = {"ms": 600_000}
    sent = index.bulk

    def bulk(body: bytes, timeout_s: float) -> list[BulkItemResult]:
        if index.requests == 2:
            budget["ms"] = 0  # time runs out while the third chunk is being sent
        return sent(body, timeout_s)

    index.bulk = bulk  # type: ignore[method-assign]
    first = run(s3, index, remaining=lambda: budget["ms"])
    assert not first.done and first.checkpoint == 12  # three chunks of 4 acknowledged
    second = run(s3, index, start=first.checkpoint)
    assert second.done and second.checkpoint == 23
    lines = [first.applied + first.stale + first.skipped, second.applied + second.stale + second.skipped]
    assert sum(lines) == 23 and lines == [12, 11]
    assert index.live() == run_fresh(records)


def run_fresh(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    index = Memory()
    assert run(StubS3({"o.gz": archive_object(records)}), index).done
    return index.live()


def test_a_write_left_unsent_stops_the_object_before_it() -> None:
    records = history(10)
    index = Memory()
    index.fail_after = 1  # the second chunk is answered 429 until the time runs out
    clock = iter(range(600_000, 0, -50_000))
    progress = run(StubS3({"o.gz": archive_object(records)}), index, remaining=lambda: next(clock, 0),
                   settings=settings(BULK_MAX_ACTIONS="4", RETRY_BASE_MS="1", RETRY_MAX_MS="2"))  # fmt: skip
    assert not progress.done and progress.checkpoint == 4
    assert progress.applied + progress.stale == 4


def test_memory_is_bounded_whatever_the_object_size() -> None:
    # 3,000 lines of ~2 KB through 1 KiB reads: only a couple of chunks are alive at once.
    import tracemalloc

    f = RecordFactory(sk=None)
    records = [f.record("INSERT", f"k{i}", image={"t": "x" * 2000}, created=T0) for i in range(3000)]
    data = archive_object(records)
    del records
    index = Memory()
    index.docs = cast(Any, _Forget())
    tracemalloc.start()
    try:
        progress = run(StubS3({"o.gz": data}, step=1024), index, settings=settings(BULK_MAX_BYTES="65536"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert progress.done and progress.applied == 3000
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB for {len(data) / 2**20:.1f} MiB gzip"


class _Forget(dict[str, Any]):
    def __setitem__(self, key: str, value: Any) -> None:
        pass


def test_gzip_helper_matches_the_delivery_stream_layout() -> None:
    record = history(1)[0]
    assert gzip.decompress(archive_object([record])).endswith(b"}\n")
    assert partition_of(T0) == "table=t/dt=2027-01-15/hour=08/"


# -- progress ---------------------------------------------------------------------------------


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_log() -> None:
    import io

    from ddbsync.rebuild.progress import Progress

    now = [0.0]
    bar, log = io.StringIO(), io.StringIO()
    on_tty = Progress(4, bar, clock=lambda: now[0], tty=True)
    in_log = Progress(4, log, clock=lambda: now[0], tty=False)
    for step in range(40):  # 0.1 s apart: the bar is drawn every 0.5 s, the log every 10 s
        now[0] = 0.1 * (step + 1)
        on_tty.add(lines=100, objects=step % 10 == 9)
        in_log.add(lines=100, objects=step % 10 == 9)
    on_tty.finish()
    in_log.finish()
    assert bar.getvalue().count("\r") == 9 and bar.getvalue().endswith("\n")
    assert "\r[" + "#" * 24 + "] 4/4 objects, 4,000 lines, 1,000 lines/s" in bar.getvalue()
    assert log.getvalue().splitlines() == [
        "   0/4 objects, 100 lines, 1,000 lines/s", "   4/4 objects, 4,000 lines, 1,000 lines/s"]
