"""`ddbsync demo` runs the whole stream-indexer flow locally and the index matches the table."""

from __future__ import annotations

import re

import pytest

from ddbsync.cli import commands as cli

pytestmark = pytest.mark.integration


def test_the_demo_converges_and_exits_zero(
    alias: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``alias`` (tests/conftest.py) is unique per run; its indices are deleted afterwards."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in-process

    code = cli.main(["demo", "--alias", alias])

    out = capsys.readouterr().out
    assert code == 0, out
    # The PASS of step 7 (the stream), of step 9 (the backfill) and of step 11 (the rebuild
    # from the archive).
    assert out.count("   PASS: the index holds exactly the table's items\n") == 3
    # The archive step: objects under the template's partition keys, one line per stream record.
    archive, rebuilt = out.split("[10/11] archive the stream", 1)[1].split("[11/11] rebuild", 1)
    objects = re.findall(
        r"^   table=demo-products/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/demo-products-archive-1-"
        r"\d{4}(?:-\d{2}){5}-[0-9a-f-]{36}\.gz  (\d+) lines?$", archive, re.MULTILINE,
    )  # fmt: skip
    assert objects, archive
    (records,) = re.findall(r"archiver: (\d+) records in", archive)
    assert sum(map(int, objects)) == int(records) >= 39
    assert "errors/" not in archive
    assert archive.rstrip().endswith("PASS: every change is in the archive once, under its own partition")
    # The rebuild: every archive object read, a new index swapped in, equal to the table.
    assert re.search(rf"-> new index {alias}-\d{{14}} \(then swap {alias}\)", rebuilt), rebuilt
    assert f"{len(objects)}/{len(objects)} objects (0 errors/ objects skipped), {records} lines" in rebuilt
    assert re.search(rf"swapped: {alias}-\d{{14}} now serves the alias", rebuilt), rebuilt
    assert rebuilt.rstrip().endswith("PASS: the index holds exactly the table's items")


def test_the_demo_explains_how_to_start_opensearch_when_it_is_not_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENSEARCH_URL", "http://127.0.0.1:9")  # discard port: nothing answers

    code = cli.main(["demo", "--alias", "demo-unreachable"])

    assert code != 0
    assert "scripts/opensearch.sh start" in capsys.readouterr().out
