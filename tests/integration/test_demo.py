"""`ddbsync demo` runs the whole stream-indexer flow locally and the index matches the table."""

from __future__ import annotations

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
    assert "PASS" in out


def test_the_demo_explains_how_to_start_opensearch_when_it_is_not_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENSEARCH_URL", "http://127.0.0.1:9")  # discard port: nothing answers

    code = cli.main(["demo", "--alias", "demo-unreachable"])

    assert code != 0
    assert "scripts/opensearch.sh start" in capsys.readouterr().out
