"""The probes of ``ddbsync doctor``: one per feature, all in one scratch index, deleted at the end.

Each probe makes the calls ddbsync makes and checks the answer, not just the status: a
server that accepts a parameter and ignores it is *absent*, one that answers an error is
*refused*, and a probe whose precondition failed is *untested*. Writes go to the scratch
index (``ddbsync-doctor-<random>``) and its two aliases, nothing else; the index (and with
it the aliases) is deleted even when a probe fails or the connection drops.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ddbsync.doctor.features import ABSENT, FEATURES, REFUSED, UNTESTED, WORKS, Finding, Mode, mode_of
from ddbsync.errors import TransportError
from ddbsync.mapping import META_FIELD
from ddbsync.opensearch.floors import floor_meta, floor_of_mappings
from ddbsync.opensearch.indices import META_MAPPING, tombstone_filter

__all__ = ["PREFIX", "Checkup", "run_checkup", "scratch_index_name"]

PREFIX = "ddbsync-doctor-"
_FLOOR = 1_700_000_000  # any epoch second: the probe reads back what it wrote


def scratch_index_name() -> str:
    return PREFIX + secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Checkup:
    """Every finding, the mode they allow, and whether the scratch index was deleted."""

    endpoint: str
    index: str
    findings: tuple[Finding, ...]
    mode: Mode
    cleanup_error: str | None  # None: the scratch index is gone


class _Failed(Exception):
    def __init__(self, status: str, reason: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.http_status = status, reason, http_status


def _reason(info: object, fallback: str) -> str:
    error = info.get("error") if isinstance(info, dict) else None
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('reason')}"
    return str(error or info or fallback)


def _failure(e: os_exc.TransportError) -> _Failed:
    code = e.status_code if isinstance(e.status_code, int) else None
    reason = _reason(e.info, str(e.error))
    # No such endpoint (or method) on this server: the feature is not there at all.
    absent = code in (405, 501) or "no handler found" in reason
    return _Failed(ABSENT if absent else REFUSED, reason, code)


def _written(item: dict[str, Any], what: str, *, failed: str = REFUSED) -> dict[str, Any]:
    status = int(item.get("status", 0))
    if status in (200, 201):
        return item
    raise _Failed(failed, f"{what}: {_reason(item, 'no reason given')}", status)


class _Probes:
    def __init__(self, client: OpenSearch, index: str, wait_s: float) -> None:
        self.client, self.index, self.wait_s = client, index, wait_s
        self.live, self.plain = f"{index}-live", f"{index}-w"
        self.found: dict[str, Finding] = {}

    # -- calls -------------------------------------------------------------------------

    def call(self, method: str, path: str, body: object = None, **params: str) -> dict[str, Any]:
        try:
            answer = self.client.transport.perform_request(method, path, params=params or None, body=body)
        except os_exc.ConnectionError as e:
            raise TransportError(f"cannot reach OpenSearch: {e.error}") from e
        except os_exc.TransportError as e:
            raise _failure(e) from e
        return answer if isinstance(answer, dict) else {}

    def bulk_one(self, action: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
        """One action through ``_bulk``; its item (status, error, _seq_no...)."""
        answer = self.call("POST", "/_bulk", orjson.dumps(action) + b"\n" + orjson.dumps(source) + b"\n")
        items = answer.get("items") or []
        if len(items) != 1:
            raise _Failed(REFUSED, f"_bulk answered {len(items)} items for 1 action")
        ((_, item),) = items[0].items()
        return dict(item)

    def put(self, doc_id: str, source: dict[str, Any]) -> dict[str, Any]:
        """A plain write (no version, no alias): what the probes that need a document start with."""
        item = self.bulk_one({"index": {"_index": self.index, "_id": doc_id}}, source)
        return _written(item, "a plain _bulk write failed", failed=UNTESTED)

    def works(self, name: str) -> bool:
        found = self.found.get(name)
        return found is not None and found.works

    def visible(self, ids: set[str]) -> bool:
        """Wait (refreshing when that works) until a search of the index finds ``ids``."""
        deadline = time.monotonic() + self.wait_s
        while True:
            if self.works("refresh"):
                self.call("POST", f"/{self.index}/_refresh")
            body = {"query": {"ids": {"values": sorted(ids)}}, "size": len(ids)}
            hits = self.call("POST", f"/{self.index}/_search", body)["hits"]["hits"]
            if ids <= {h["_id"] for h in hits}:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    # -- probes: each returns normally when the feature works --------------------------

    def create_index(self) -> None:
        self.call("PUT", f"/{self.index}", {"mappings": {"properties": {META_FIELD: META_MAPPING}}})

    def mapping_meta(self) -> None:
        self.call("PUT", f"/{self.index}/_mapping", {"_meta": floor_meta(_FLOOR)})
        mappings = self.call("GET", f"/{self.index}/_mapping").get(self.index, {}).get("mappings")
        floor = floor_of_mappings(mappings)
        if floor != _FLOOR:
            raise _Failed(ABSENT, f"_meta was accepted but reads back as floor {floor!r}, not {_FLOOR}")

    def _setting(self, key: str, value: str) -> None:
        self.call("PUT", f"/{self.index}/_settings", {"index": {key: value}})
        settings = self.call("GET", f"/{self.index}/_settings", flat_settings="true")
        stored = settings.get(self.index, {}).get("settings", {}).get(f"index.{key}")
        if str(stored) != value:
            raise _Failed(ABSENT, f"index.{key}={value} was accepted but reads back as {stored!r}")

    def settings_replicas(self) -> None:
        self._setting("number_of_replicas", "0")

    def settings_refresh_interval(self) -> None:
        self._setting("refresh_interval", "-1")
        self._setting("refresh_interval", "1s")

    def filtered_alias(self) -> None:
        add = {"index": self.index, "alias": self.live, "is_write_index": True, "filter": tombstone_filter()}
        self.call("POST", "/_aliases", {"actions": [{"add": add}]})
        aliases = self.call("GET", f"/{self.index}/_alias/{self.live}").get(self.index, {}).get("aliases", {})
        if "filter" not in aliases.get(self.live, {}):
            raise _Failed(ABSENT, "the alias was created but reads back without its filter")

    def require_alias(self) -> None:
        try:
            self.call("POST", "/_aliases", {"actions": [{"add": {"index": self.index, "alias": self.plain}}]})
        except _Failed as e:
            raise _Failed(UNTESTED, f"no alias to write through: {e.reason}", e.http_status) from e
        through = self.bulk_one({"index": {"_index": self.plain, "_id": "ra", "require_alias": True}}, {})
        _written(through, "a write through an alias with require_alias=true")
        direct = self.bulk_one({"index": {"_index": self.index, "_id": "rb", "require_alias": True}}, {})
        status = int(direct.get("status", 0))
        if status in (200, 201):
            raise _Failed(
                ABSENT, "a write to a concrete index with require_alias=true landed: the flag is ignored"
            )
        if status != 404:
            raise _Failed(REFUSED, f"a write to a concrete index answered {status}, not 404", status)

    def external_version(self) -> None:
        def write(version: int) -> dict[str, Any]:
            action = {"_index": self.index, "_id": "v", "version": version, "version_type": "external"}
            return self.bulk_one({"index": action}, {"v": version})

        _written(write(5), "version 5 (version_type=external)")
        lower = write(3)
        status = int(lower.get("status", 0))
        if status in (200, 201):
            raise _Failed(ABSENT, "version 3 landed over version 5: external versions are ignored")
        if status != 409:
            raise _Failed(
                REFUSED, f"version 3 over 5 answered {status}, not 409: {_reason(lower, '')}", status
            )
        _written(write(7), "version 7 over version 5")

    def mget(self) -> None:
        self.put("m", {"m": 1})
        answer = self.call("POST", f"/{self.index}/_mget", {"ids": ["m", "no-such-id"]})
        docs = answer.get("docs") or []
        if len(docs) != 2 or not docs[0].get("found") or docs[1].get("found"):
            raise _Failed(ABSENT, f"_mget of one stored and one missing id answered {docs!r}")
        lacking = [k for k in ("_version", "_seq_no", "_primary_term") if not isinstance(docs[0].get(k), int)]
        if lacking:
            raise _Failed(ABSENT, f"_mget answers without {', '.join(lacking)}")

    def if_seq_no(self) -> None:
        item = self.put("c", {"c": 1})
        seq, term = item.get("_seq_no"), item.get("_primary_term")
        if not isinstance(seq, int) or not isinstance(term, int):
            raise _Failed(UNTESTED, "the _bulk answer carries no _seq_no/_primary_term")
        action = {"index": {"_index": self.index, "_id": "c", "if_seq_no": seq, "if_primary_term": term}}
        _written(self.bulk_one(action, {"c": 2}), "a write with the current if_seq_no/if_primary_term")
        again = self.bulk_one(action, {"c": 3})
        status = int(again.get("status", 0))
        if status in (200, 201):
            raise _Failed(ABSENT, "a write with an outdated if_seq_no landed: the condition is ignored")
        if status != 409:
            raise _Failed(REFUSED, f"an outdated if_seq_no answered {status}, not 409", status)

    def refresh(self) -> None:
        shards = self.call("POST", f"/{self.index}/_refresh").get("_shards") or {}
        if shards.get("failed"):
            raise _Failed(REFUSED, f"{shards['failed']} shard(s) failed to refresh")

    def alias_filter_search(self) -> None:
        if not self.works("filtered_alias"):
            raise _Failed(UNTESTED, "no filtered alias to search through")
        self.put("live", {META_FIELD: {"deleted": False}})
        self.put("dead", {META_FIELD: {"deleted": True}})
        if not self.visible({"live", "dead"}):
            raise _Failed(
                UNTESTED, f"the documents were not searchable in the index within {self.wait_s:g} s"
            )
        body = {"query": {"ids": {"values": ["live", "dead"]}}, "size": 10}
        ids = {h["_id"] for h in self.call("POST", f"/{self.live}/_search", body)["hits"]["hits"]}
        if "dead" in ids:
            raise _Failed(ABSENT, "a search through the alias returned the tombstone: the filter is ignored")
        if ids != {"live"}:
            raise _Failed(REFUSED, f"a search through the alias returned {sorted(ids)}, not ['live']")

    def delete_by_query(self) -> None:
        self.put("gone", {META_FIELD: {"deleted": True}})
        if not self.visible({"gone"}):
            raise _Failed(UNTESTED, f"the tombstone was not searchable within {self.wait_s:g} s")
        query = {"query": {"term": {f"{META_FIELD}.deleted": True}}}
        answer = self.call("POST", f"/{self.index}/_delete_by_query", query, conflicts="proceed")
        if answer.get("failures"):
            raise _Failed(REFUSED, f"delete-by-query failed: {answer['failures'][0]}")
        if not answer.get("deleted"):
            raise _Failed(ABSENT, f"delete-by-query deleted nothing: {answer!r}")

    # -- the run -----------------------------------------------------------------------

    def run(self) -> tuple[Finding, ...]:
        for feature in FEATURES:
            name = feature.name
            if name != "create_index" and not self.works("create_index"):
                self.found[name] = Finding(name, UNTESTED, None, "the scratch index could not be created")
                continue
            probe: Callable[[], None] = getattr(self, name)
            try:
                probe()
            except _Failed as e:
                self.found[name] = Finding(name, e.status, e.http_status, e.reason)
            else:
                self.found[name] = Finding(name, WORKS)
        return tuple(self.found[f.name] for f in FEATURES)

    def delete_scratch(self) -> str | None:
        """Delete the scratch index (its aliases go with it); the reason when that failed."""
        try:
            self.client.indices.delete(index=self.index, ignore_unavailable=True)
        except os_exc.TransportError as e:  # includes ConnectionError
            return f"could not delete {self.index}: {e.error} (delete it by hand)"
        return None


def run_checkup(
    client: OpenSearch, endpoint: str, *, index: str | None = None, wait_s: float = 30.0
) -> Checkup:
    """Probe every feature of :data:`~ddbsync.doctor.features.FEATURES` in a scratch index.

    The index is deleted at the end, whatever happened. Raises
    :class:`~ddbsync.errors.TransportError` when the endpoint cannot be reached.
    """
    probes = _Probes(client, index or scratch_index_name(), wait_s)
    try:
        findings = probes.run()
    finally:
        cleanup_error = probes.delete_scratch()
    return Checkup(endpoint, probes.index, findings, mode_of(findings), cleanup_error)
