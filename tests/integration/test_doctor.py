"""``ddbsync doctor`` against the real OpenSearch, and against a stub that lacks one feature at a time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from ddbsync.cli.commands import build_parser
from ddbsync.cli.doctor import main
from ddbsync.doctor import FEATURES, Checkup, run_checkup, scratch_index_name
from ddbsync.doctor.probes import PREFIX
from ddbsync.errors import TransportError
from tests.integration.doctor_stub import IGNORABLE, REFUSABLE, stub_without
from tests.support import OPENSEARCH_URL

# Probes that cannot run when another feature is missing (they report "untested").
_NEEDS = {"alias_filter_search": {"filtered_alias"}}


@pytest.fixture(scope="module")
def server_lacks(os_client: OpenSearch) -> set[str]:
    """Features the server itself lacks. The local node has every one (scripts/opensearch.sh
    adds the reindex module to the integ-test distribution); a server without that module has
    no _delete_by_query (a real gap the doctor must report, not hide). Modules are listed
    under the ``plugins`` metric."""
    nodes = os_client.nodes.info(metric="plugins")["nodes"].values()
    modules = {m["name"] for node in nodes for m in node.get("modules", [])}
    return set() if "reindex" in modules else {"delete_by_query"}


def _checkup(url: str, index: str | None = None) -> Checkup:
    client = OpenSearch(hosts=[url], timeout=30, max_retries=0)
    return run_checkup(client, url, index=index, wait_s=10.0)


def _missing(checkup: Checkup) -> dict[str, str]:
    return {f.name: f.status for f in checkup.findings if not f.works}


def _scratch_left(os_client: OpenSearch) -> list[str]:
    return sorted(os_client.indices.get(index=f"{PREFIX}*", params={"expand_wildcards": "all"}))


@pytest.fixture
def no_new_scratch(os_client: OpenSearch) -> Iterator[None]:
    before = set(_scratch_left(os_client))
    yield
    assert set(_scratch_left(os_client)) <= before, "the doctor left its scratch index behind"


def test_the_local_server_works_but_for_what_it_lacks(server_lacks: set[str], no_new_scratch: None) -> None:
    checkup = _checkup(OPENSEARCH_URL)
    assert [f.name for f in checkup.findings] == [f.name for f in FEATURES]
    assert _missing(checkup) == {name: "absent" for name in server_lacks}
    assert checkup.cleanup_error is None
    assert checkup.mode.name == ("full" if not server_lacks else "partial")


@pytest.mark.parametrize("feature", sorted(REFUSABLE))
def test_a_refused_feature_is_named_alone(feature: str, server_lacks: set[str], no_new_scratch: None) -> None:
    with stub_without(feature, "refuse") as url:
        checkup = _checkup(url)
    missing = _missing(checkup)
    if feature == "create_index":
        assert missing == {f.name: ("refused" if f.name == feature else "untested") for f in FEATURES}
        return
    untested = {name for name, needs in _NEEDS.items() if feature in needs}
    expected = {feature: "refused"} | dict.fromkeys(untested, "untested")
    expected |= {name: "absent" for name in server_lacks - {feature}}
    assert missing == expected
    refused = next(f for f in checkup.findings if f.name == feature)
    assert refused.http_status == 400 and f"stub: {feature} is not supported" in refused.reason


@pytest.mark.parametrize("feature", sorted(IGNORABLE))
def test_an_ignored_feature_is_absent(feature: str, server_lacks: set[str], no_new_scratch: None) -> None:
    with stub_without(feature, "ignore") as url:
        checkup = _checkup(url)
    untested = {name for name, needs in _NEEDS.items() if feature in needs}
    expected = {feature: "absent"} | dict.fromkeys(untested, "untested")
    expected |= {name: "absent" for name in server_lacks}
    assert _missing(checkup) == expected
    assert checkup.mode.name == "unsupported"  # every ignorable feature is a core one


@pytest.mark.parametrize(("feature", "mode"), [("refresh", "partial"), ("external_version", "unsupported")])
def test_the_mode_follows_what_is_missing(feature: str, mode: str) -> None:
    with stub_without(feature, "refuse") as url:
        checkup = _checkup(url)
    assert checkup.mode.name == mode
    assert feature in checkup.mode.summary


def test_the_scratch_index_is_deleted_when_the_connection_drops(os_client: OpenSearch) -> None:
    index = scratch_index_name()
    with stub_without("mget", "drop") as url:
        client = OpenSearch(hosts=[url], timeout=10, max_retries=0)
        with pytest.raises(TransportError, match="cannot reach OpenSearch"):
            run_checkup(client, url, index=index)
    assert not os_client.indices.exists(index=index)


def test_an_unreachable_endpoint_is_an_error_not_a_report() -> None:
    client = OpenSearch(hosts=["http://127.0.0.1:9"], timeout=2, max_retries=0)  # nothing listens
    with pytest.raises(TransportError):
        run_checkup(client, "http://127.0.0.1:9")


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(build_parser().parse_args(["doctor", *argv]), out=out)
    return code, out.getvalue()


def test_the_command_prints_json_and_exits_by_the_mode(server_lacks: set[str], no_new_scratch: None) -> None:
    code, text = _run(["--endpoint", OPENSEARCH_URL, "--json", "--wait-seconds", "10"])
    report = json.loads(text)
    assert code == (0 if not server_lacks else 1)
    assert report["missing"] == sorted(server_lacks)
    assert report["scratch_index_deleted"] is True
    assert {f["name"]: f["status"] for f in report["features"]}["external_version"] == "works"
    with stub_without("if_seq_no", "refuse") as url:
        code, text = _run(["--endpoint", url])
    assert code == 1
    assert "if_seq_no                  refused (HTTP 400: " in text
    assert "mode: unsupported" in text and "opensearch/conflicts.py" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--endpoint", "search-x.es.amazonaws.com"], "--endpoint must be an http(s) URL"),
        (
            ["--endpoint", "https://c.eu-west-1.aoss.amazonaws.com", "--region", ""],
            "--region (or AWS_REGION)",
        ),
        (["--endpoint", "http://x.eu-west-1.es.amazonaws.com"], "must use https with SigV4"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_REGION")
    code, _ = _run(argv)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_endpoint_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["doctor"])
    assert raised.value.code == 2
