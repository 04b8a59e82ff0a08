"""The mode ``ddbsync doctor`` names from its findings, and the service a host name implies."""

from __future__ import annotations

import pytest

from ddbsync.cli.doctor import service_of
from ddbsync.doctor import FEATURES, Finding, mode_of


def _findings(missing: dict[str, str]) -> list[Finding]:
    return [Finding(f.name, missing.get(f.name, "works")) for f in FEATURES]


def test_everything_working_is_full() -> None:
    mode = mode_of(_findings({}))
    assert mode.name == "full" and mode.ok and mode.missing == ()


@pytest.mark.parametrize(
    ("missing", "name", "said"),
    [
        ({"refresh": "refused"}, "partial", "do not run backfill"),
        ({"delete_by_query": "absent"}, "partial", "do not run purge"),
        ({"mapping_meta": "absent", "delete_by_query": "absent"}, "partial", "do not run backfill or purge"),
        ({"external_version": "absent"}, "unsupported", "missing external_version"),
        ({"filtered_alias": "refused", "alias_filter_search": "untested"}, "unsupported", "filtered_alias"),
        ({"if_seq_no": "refused", "refresh": "refused"}, "unsupported", "missing if_seq_no"),
    ],
)
def test_the_mode_says_what_cannot_run(missing: dict[str, str], name: str, said: str) -> None:
    mode = mode_of(_findings(missing))
    assert (mode.name, mode.ok) == (name, False)
    assert said in mode.summary
    assert set(mode.missing) == set(missing)


@pytest.mark.parametrize(
    ("endpoint", "service"),
    [
        ("https://abc123.eu-west-1.aoss.amazonaws.com", "aoss"),
        ("https://search-d-x.eu-west-1.es.amazonaws.com/", "es"),
        ("http://127.0.0.1:9200", "none"),
        ("https://search.example.com", "none"),
    ],
)
def test_the_service_follows_the_host_name(endpoint: str, service: str) -> None:
    assert service_of(endpoint) == service
