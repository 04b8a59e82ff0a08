"""Unit tests of ddbsync.verify: the drift rule, the sorted join, the sorted runs, the digest."""

from __future__ import annotations

import json
import warnings
from typing import Any

import boto3
import pytest
from opensearchpy import exceptions as os_exc

from ddbsync.dynamodb.decode import dumps_bytes
from ddbsync.errors import VerifyError
from ddbsync.mapping import document_meta, image_body
from ddbsync.verify import (
    Drift,
    IndexEntry,
    SortedRuns,
    TableEntry,
    classify,
    index_entry,
    join,
    parallel_scan,
    table_entry,
)
from ddbsync.verify.walk import walk_index
from ddbsync.versioning import export_version, stream_version

NEWEST = export_version(2_000_000_000.4)
ITEM: dict[str, Any] = {
    "pk": {"S": "a"}, "sk": {"N": "1.50"}, "price": {"N": "12.10"},
    "big": {"N": "123456789012345678901234567890"}, "tags": {"SS": ["y", "x"]},
    "m": {"M": {"z": {"BOOL": True}, "a": {"NULL": True}}},
}  # fmt: skip


def entry(doc_id: str = "a|1.5", digest: str = "d") -> TableEntry:
    return TableEntry(doc_id, digest, {})


def doc(version: int = NEWEST - 5, *, deleted: bool = False, digest: str = "d") -> IndexEntry:
    return IndexEntry("a|1.5", version, deleted, digest)


def test_the_drift_rule() -> None:
    assert classify(entry(), None, NEWEST) is Drift.MISSING
    assert classify(entry(), doc(deleted=True), NEWEST) is Drift.MISSING
    assert classify(None, doc(), NEWEST) is Drift.EXTRA
    assert classify(None, doc(deleted=True), NEWEST) is None
    assert classify(entry(), doc(digest="other"), NEWEST) is Drift.STALE
    assert classify(entry(), doc(), NEWEST) is None


def test_a_document_written_since_the_start_is_not_judged() -> None:
    after_start = stream_version(2_000_000_000)
    assert after_start > NEWEST
    for table in (entry(), entry(digest="other"), None):
        assert classify(table, doc(after_start), NEWEST) is None
        assert classify(table, doc(after_start, deleted=True), NEWEST) is None
    assert classify(None, doc(NEWEST - 1), NEWEST) is Drift.EXTRA


def test_the_table_digest_equals_the_indexed_documents() -> None:
    """The item's digest equals the digest of the document the export writes, as read back."""
    indexed = json.loads(dumps_bytes(image_body(ITEM, document_meta("export", 5))))
    hit = {"_id": "a|1.5", "_version": 7, "_source": indexed}
    assert table_entry(ITEM, "pk", "sk").digest == index_entry(hit).digest
    changed = {**indexed, "price": 12.2}
    assert table_entry(ITEM, "pk", "sk").digest != index_entry({**hit, "_source": changed}).digest
    assert table_entry(ITEM, "pk", "sk").doc_id == "a|1.5"
    assert table_entry(ITEM, "pk", "sk").key == {"pk": {"S": "a"}, "sk": {"N": "1.50"}}


def test_join_pairs_ids_and_refuses_an_unsorted_walk() -> None:
    table = [entry("a"), entry("c"), entry("d")]
    index = [IndexEntry(i, 1, False, "d") for i in ("b", "c", "é")]
    pairs = [(t.doc_id if t else None, d.doc_id if d else None) for t, d in join(iter(table), iter(index))]
    assert pairs == [("a", None), (None, "b"), ("c", "c"), ("d", None), (None, "é")]
    unsorted = [IndexEntry(i, 1, False, "d") for i in ("c", "b")]
    with pytest.raises(VerifyError, match="out of id order"):
        list(join(iter(table), iter(unsorted)))


def test_sorted_runs_merge_every_entry_in_id_order(tmp_path: Any) -> None:
    ids = [f"k{(i * 7919) % 1000:04d}" for i in range(1000)]
    with SortedRuns(str(tmp_path), run_size=64) as runs:
        for i in ids:
            runs.add(TableEntry(i, "d" + i, {"pk": {"S": i}}))
        merged = list(runs.merged())
        assert len(list(next(tmp_path.iterdir()).iterdir())) == 16  # ceil(1000 / 64) runs on disk
    assert [e.doc_id for e in merged] == sorted(ids)
    assert merged[3] == TableEntry(merged[3].doc_id, "d" + merged[3].doc_id, {"pk": {"S": merged[3].doc_id}})


def test_parallel_scan_reads_every_item_once(aws: None) -> None:
    ddb = boto3.client("dynamodb", region_name="eu-west-1")
    ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")  # fmt: skip
    for i in range(230):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"p{i}"}})
    pages = list(parallel_scan(ddb, "t", 4, page_items=20))
    assert sorted(item["pk"]["S"] for page in pages for item in page) == sorted(f"p{i}" for i in range(230))
    assert max(len(p) for p in pages) <= 20
    with pytest.raises(VerifyError, match="cannot scan table 'nope'"):
        list(parallel_scan(ddb, "nope", 2))


def test_the_progress_bar_draws_on_its_stream_only() -> None:
    import io

    from ddbsync.verify import Progress, default_progress

    stream = io.StringIO()
    bar = Progress(stream, total=100)
    bar.show("scan", 50, force=True)
    assert stream.getvalue() == "\rscan   [" + "#" * 15 + "." * 15 + "] 50/~100\x1b[K"
    bar.end()
    assert stream.getvalue().endswith("\r\x1b[K")
    assert default_progress(False).stream is None


def test_an_item_that_cannot_be_a_document_is_not_judged() -> None:
    from ddbsync.verify.compare import UNREADABLE, unreadable_entry

    bad = {"pk": {"S": "a"}, "sk": {"N": "1"}, "_ddbsync": {"S": "reserved"}}
    with pytest.raises(Exception, match="reserved"):
        table_entry(bad, "pk", "sk")
    entry = unreadable_entry(bad, "pk", "sk")
    assert entry is not None and entry.doc_id == "a|1" and entry.digest == UNREADABLE
    assert classify(entry, None, NEWEST) is None
    assert classify(entry, doc(), NEWEST) is None
    assert unreadable_entry({"pk": {"N": "x"}}, "pk", None) is None


class WarningServer:
    """A client stand-in answering as OpenSearch does to a sort on ``_id``: hits plus its warning."""

    def __init__(self) -> None:
        self.searches = 0

    def create_pit(self, **_: Any) -> dict[str, Any]:
        raise os_exc.TransportError(404, "no point in time", {})

    def search(self, **_: Any) -> dict[str, Any]:
        self.searches += 1
        warnings.warn("Loading the fielddata on the _id field is deprecated and will be removed",
                      os_exc.OpenSearchWarning, stacklevel=2)  # fmt: skip
        hit = {"_id": "a|1.5", "_version": 3, "_source": {"pk": "a"}}
        return {"hits": {"hits": [hit]}}


def test_the_walk_expects_the_id_sort_warning_and_lets_others_through() -> None:
    server = WarningServer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [e.doc_id for e in walk_index(server, "idx", page_docs=10)] == ["a|1.5"]  # type: ignore[arg-type]
        with pytest.raises(os_exc.OpenSearchWarning, match="other"):
            warnings.warn("other", os_exc.OpenSearchWarning, stacklevel=1)
    assert server.searches == 1
