"""`ddbsync demo` runs the whole stream-indexer flow locally and the index matches the table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ddbsync import cli
from ddbsync.local.search import OpenSearchUnavailable, SearchHttp, opensearch_url

pytestmark = pytest.mark.integration


@pytest.fixture
def alias() -> Iterator[str]:
    search = SearchHttp(opensearch_url())
    try:
        search.version()
    except OpenSearchUnavailable as e:
        pytest.skip(f"{e}; run scripts/opensearch.sh start")
    name = f"demo-test-{uuid.uuid4().hex[:12]}"
    yield name
    for index in search.indices_behind(name):
        if index.startswith(name):
            search.delete_index(index)


def test_the_demo_converges_and_exits_zero(
    alias: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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
