"""What an OpenSearch Dashboards index pattern sees, checked against the real OpenSearch.

A pattern is a search target: ``items*`` expands to the alias *and* the physical indices
behind it. An index named directly (or by a wildcard) is searched without the alias's
filter, so tombstones show up, and during a backfill the new index's documents show up a
second time. The shipped saved object (dashboards/saved-objects.ndjson) is a pattern whose
title is the alias itself, which keeps the filter. docs/deploy.md, "OpenSearch Dashboards".
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from ddbsync.config import DEFAULT_INDEX_TEMPLATE
from ddbsync.mapping import META_FIELD, document_meta, tombstone_body
from ddbsync.opensearch.indices import create_backfill_index, ensure_index, next_alias_name

ROOT = Path(__file__).resolve().parents[2]
SAVED_OBJECTS = ROOT / "dashboards" / "saved-objects.ndjson"


def _seed(client: OpenSearch, alias: str, live: int, tombstones: int) -> str:
    index = ensure_index(client, alias, DEFAULT_INDEX_TEMPLATE)
    for i in range(live):
        client.index(index=alias, id=f"live-{i}", body={"n": i, META_FIELD: document_meta("stream", 100)})
    for i in range(tombstones):
        body = tombstone_body(document_meta("stream", 100, deleted=True))
        client.index(index=alias, id=f"gone-{i}", body=body)
    client.indices.refresh(index=index)
    return index


def _count(client: OpenSearch, target: str) -> int:
    return int(client.count(index=target)["count"])


def test_a_wildcard_pattern_matches_the_alias_and_its_index_and_skips_the_filter(
    os_client: OpenSearch, alias: str
) -> None:
    index = _seed(os_client, alias, live=3, tombstones=2)

    resolved: dict[str, Any] = os_client.transport.perform_request("GET", f"/_resolve/index/{alias}*")
    assert [i["name"] for i in resolved["indices"]] == [index]
    assert [a["name"] for a in resolved["aliases"]] == [alias]

    assert _count(os_client, alias) == 3  # the alias: tombstones hidden
    assert _count(os_client, f"{alias}*") == 5  # the wildcard: the index unfiltered, tombstones shown
    assert _count(os_client, f"{alias}-*") == 5
    assert _count(os_client, f"{alias},{index}") == 5  # named both ways: the filter is not applied
    hits = os_client.search(index=f"{alias}*", body={"query": {"term": {f"{META_FIELD}.deleted": True}}})
    assert hits["hits"]["total"]["value"] == 2


def test_during_a_backfill_a_wildcard_pattern_counts_documents_twice(
    os_client: OpenSearch, alias: str
) -> None:
    _seed(os_client, alias, live=3, tombstones=0)
    new = create_backfill_index(os_client, alias, DEFAULT_INDEX_TEMPLATE, "20260101000000")["new_index"]
    for i in range(3):  # the backfill copies the same items into its new index
        body = {"n": i, META_FIELD: document_meta("export", 100)}
        os_client.index(index=next_alias_name(alias), id=f"live-{i}", body=body)
    os_client.indices.refresh(index=str(new))

    assert _count(os_client, alias) == 3
    assert _count(os_client, f"{alias}*") == 6


def test_the_shipped_index_pattern_is_the_alias_of_the_default_config() -> None:
    lines = [json.loads(line) for line in SAVED_OBJECTS.read_text(encoding="utf-8").splitlines() if line]
    assert len(lines) == 1
    (pattern,) = lines
    with (ROOT / "samconfig.toml").open("rb") as f:
        config = tomllib.load(f)
    aliases = {
        dict(o.split("=", 1) for o in env["deploy"]["parameters"].get("parameter_overrides", [])).get(
            "IndexAlias"
        )
        for env in config.values()
        if isinstance(env, dict) and "deploy" in env
    } - {None}
    # [default] holds a <placeholder> the user must answer (its pattern refuses it); the
    # environments with a real alias are the ones the shipped pattern must match.
    aliases = {a for a in aliases if a is not None and not a.startswith("<")}
    assert pattern["type"] == "index-pattern"
    assert aliases == {pattern["attributes"]["title"]}
    assert not any(c in pattern["attributes"]["title"] for c in "*,?")
    assert pattern["attributes"]["timeFieldName"] == f"{META_FIELD}.ts"
