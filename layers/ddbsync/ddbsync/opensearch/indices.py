"""Index and alias management: the repo's JSON template, applied idempotently.

Writes and searches go through one alias. The alias filters out tombstone
documents (``_ddbsync.deleted: true``), so a deleted item disappears from
search while its tombstone keeps the delete's version (see docs/versioning.md).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import cast

from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ddbsync.errors import IndexAdminError
from ddbsync.mapping import META_FIELD
from ddbsync.opensearch.floors import Target, View, floor_meta, floor_of_mappings, purged_of_mappings

__all__ = [
    "META_MAPPING",
    "abort_backfill",
    "create_backfill_index",
    "ensure_index",
    "finalize_backfill",
    "load_template",
    "next_alias_name",
    "read_view",
    "tombstone_filter",
]

META_MAPPING: dict[str, object] = {
    "properties": {
        "seq": {"type": "keyword"},
        "ts": {"type": "date", "format": "epoch_second"},
        "deleted": {"type": "boolean"},
        "source": {"type": "keyword"},
    }
}


def tombstone_filter() -> dict[str, object]:
    """The alias filter that hides tombstones from searches."""
    return {"bool": {"must_not": [{"term": {f"{META_FIELD}.deleted": True}}]}}


def load_template(path: Path) -> dict[str, object]:
    """Read the index template (settings + mappings) and add ddbsync's own meta field."""
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexAdminError(f"cannot read index template {path}: {e}") from e
    if not isinstance(template, dict):
        raise IndexAdminError(f"index template {path} must be a JSON object")
    template = copy.deepcopy(template)
    mappings = template.setdefault("mappings", {})
    properties = mappings.setdefault("properties", {})
    properties[META_FIELD] = META_MAPPING
    return cast(dict[str, object], template)


def _status(e: os_exc.TransportError) -> int | None:
    return e.status_code if isinstance(e.status_code, int) else None


def ensure_index(client: OpenSearch, alias: str, template_path: Path) -> str:
    """Make sure ``alias`` exists with the template's mapping; return the index it writes to.

    Creates ``<alias>-000001`` with the alias (filtered, write index) when the name is
    free; otherwise applies the template's mapping to the write index (adding fields is
    idempotent; a conflicting change fails loudly). Safe when several containers start at
    once: whoever creates the index, every caller then reads what the name is.
    """
    template = load_template(template_path)
    try:
        found = _aliases_of(client, alias)
        if found is None:
            _create_first_index(client, alias, template)
            found = _aliases_of(client, alias)
        if found is None:
            raise IndexAdminError(
                f"{alias}-000001 exists but the alias {alias!r} does not point at it: add the alias "
                f"to the index that should serve (POST _aliases) or delete {alias}-000001"
            )
        if alias in found:  # the name is a concrete index, not an alias
            raise IndexAdminError(
                f"{alias!r} is an index, not an alias: point INDEX_ALIAS at an alias "
                f"(ddbsync creates {alias}-000001 and the alias when neither exists)"
            )
        index = _write_index(alias, found)
        # Never through _meta: it holds a backfilled index's snapshot floor (ddbsync.opensearch.floors).
        mappings = {k: v for k, v in cast(dict[str, object], template["mappings"]).items() if k != "_meta"}
        client.indices.put_mapping(index=index, body=mappings)
        return index
    except os_exc.ConnectionError as e:
        raise IndexAdminError(f"cannot reach OpenSearch to prepare {alias!r}: {e.error}") from e
    except os_exc.TransportError as e:
        raise IndexAdminError(f"cannot prepare index for {alias!r}: {e.error} {e.info}", _status(e)) from e


def _aliases_of(client: OpenSearch, name: str) -> dict[str, dict[str, object]] | None:
    """``GET <name>/_alias``: the indices ``name`` resolves to, with their aliases; None if free.

    A concrete index answers under its own name, an alias under the names of the indices
    it points at: one request tells the two apart.
    """
    try:
        return cast(dict[str, dict[str, object]], client.indices.get_alias(index=name))
    except os_exc.NotFoundError:
        return None


def _create_first_index(client: OpenSearch, alias: str, template: dict[str, object]) -> None:
    body = dict(template)
    body["aliases"] = {alias: {"is_write_index": True, "filter": tombstone_filter()}}
    try:
        client.indices.create(index=f"{alias}-000001", body=body)
    except os_exc.RequestError as e:
        if e.error != "resource_already_exists_exception":
            raise
        # Another container created it first (with the alias, in the same call): fine.


def _alias_map(body: object) -> dict[str, dict[str, object]]:
    aliases = body.get("aliases") if isinstance(body, dict) else None
    return aliases if isinstance(aliases, dict) else {}


def _write_index(alias: str, found: dict[str, dict[str, object]]) -> str:
    """The index ``alias`` writes to, from a ``GET _alias`` or ``GET <index>`` answer."""
    holders = [index for index, body in found.items() if alias in _alias_map(body)]
    if len(holders) == 1:
        return holders[0]
    for index in holders:
        if _alias_map(found[index])[alias].get("is_write_index"):
            return index
    raise IndexAdminError(f"alias {alias!r} points at {len(holders)} indices and none is the write index")


def read_view(client: OpenSearch, alias: str, timeout_s: float | None = None) -> View:
    """Where the live alias and ``<alias>-next`` point now, with each index's snapshot floor.

    One request (``GET <alias>,<alias>-next`` resolves both aliases to their indices);
    writers call it at least every ``NEXT_ALIAS_CHECK_SECONDS`` (docs/versioning.md).
    """
    next_alias = next_alias_name(alias)
    params: dict[str, object] = {
        "ignore_unavailable": "true",
        "allow_no_indices": "true",
        "filter_path": "*.aliases,*.mappings._meta",
    }
    if timeout_s is not None:
        params["request_timeout"] = timeout_s
    try:
        found = client.indices.get(index=f"{alias},{next_alias}", params=params)
    except os_exc.ConnectionError as e:
        raise IndexAdminError(f"cannot reach OpenSearch to read where {alias!r} points: {e.error}") from e
    except os_exc.TransportError as e:
        raise IndexAdminError(f"cannot read where {alias!r} points: {e.error}", _status(e)) from e
    found = cast(dict[str, dict[str, object]], found)
    following = _target(found, next_alias)
    return View(_target(found, alias), following if following.index is not None else None)


def _target(found: dict[str, dict[str, object]], alias: str) -> Target:
    try:
        index = _write_index(alias, found)
    except IndexAdminError:  # missing, or no write index: the bulk request will say so
        return Target(alias)
    mappings = found[index].get("mappings")
    return Target(alias, index, floor_of_mappings(mappings), purged_of_mappings(mappings))


# -- backfill: a new index beside the live one, then an atomic swap ---------------------------


def next_alias_name(alias: str) -> str:
    """The alias the stream indexer also writes to while a backfill runs."""
    return f"{alias}-next"


def _indices_of(client: OpenSearch, alias: str) -> list[str]:
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(str(i) for i in client.indices.get_alias(name=alias))


def create_backfill_index(
    client: OpenSearch, alias: str, template_path: Path, stamp: str, *, floor: int | None = None
) -> dict[str, object]:
    """Create ``<alias>-<stamp>`` for a backfill and point ``<alias>-next`` at it.

    Backfill-friendly settings (no replicas, no refresh) until :func:`finalize_backfill`.
    ``floor`` (epoch seconds) goes into the mapping's ``_meta`` in the same call, so no
    writer ever sees the next alias without it (ddbsync.opensearch.floors). The live alias is not
    touched. Fails when a backfill already holds the next alias.
    """
    next_alias = next_alias_name(alias)
    try:
        held = _indices_of(client, next_alias)
        if held:
            raise IndexAdminError(
                f"a backfill is already running: {next_alias} points at {', '.join(held)}; "
                "let it finish or abort it first"
            )
        template = load_template(template_path)
        settings = copy.deepcopy(template.get("settings") or {})
        index_settings = settings.setdefault("index", {}) if isinstance(settings, dict) else {}
        index_settings["number_of_replicas"] = 0
        index_settings["refresh_interval"] = "-1"
        new_index = f"{alias}-{stamp}"
        mappings = dict(cast(dict[str, object], template["mappings"]))
        if floor is not None:
            meta = mappings.get("_meta")
            mappings["_meta"] = {**(meta if isinstance(meta, dict) else {}), **floor_meta(floor)}
        body = {
            "settings": settings,
            "mappings": mappings,
            "aliases": {next_alias: {"is_write_index": True}},
        }
        client.indices.create(index=new_index, body=body)
        live = _indices_of(client, alias)
        return {"new_index": new_index, "next_alias": next_alias, "live_index": live[0] if live else None}
    except os_exc.ConnectionError as e:
        raise IndexAdminError(f"cannot reach OpenSearch to prepare the backfill: {e.error}") from e
    except os_exc.TransportError as e:
        raise IndexAdminError(f"cannot create the backfill index: {e.error} {e.info}", _status(e)) from e


def finalize_backfill(
    client: OpenSearch,
    alias: str,
    new_index: str,
    expected_min_docs: int,
    template_path: Path,
    *,
    keep_old: bool = False,
) -> dict[str, object]:
    """Restore settings, check the count, swap ``alias`` to ``new_index`` in one call.

    Every export item leaves a document in the new index (stream changes replace
    documents or turn them into tombstones, never remove them), so fewer documents
    than the export's item count means items were lost: fail loudly, swap nothing.
    """
    next_alias = next_alias_name(alias)
    template = load_template(template_path)
    wanted = (template.get("settings") or {}) if isinstance(template.get("settings"), dict) else {}
    index_wanted = wanted.get("index", wanted) if isinstance(wanted, dict) else {}
    restore = {
        "index": {
            "number_of_replicas": index_wanted.get("number_of_replicas", 1),
            "refresh_interval": index_wanted.get("refresh_interval", "1s"),
        }
    }
    try:
        client.indices.put_settings(index=new_index, body=restore)
        client.indices.refresh(index=new_index)
        count = int(client.count(index=new_index)["count"])
        if count < expected_min_docs:
            raise IndexAdminError(
                f"backfill shortfall: {new_index} holds {count} documents but the export has "
                f"{expected_min_docs} items; the live alias was not swapped"
            )
        old = [i for i in _indices_of(client, alias) if i != new_index]
        actions: list[dict[str, object]] = [{"remove": {"index": i, "alias": alias}} for i in old]
        add = {"index": new_index, "alias": alias, "is_write_index": True, "filter": tombstone_filter()}
        actions.append({"add": add})
        if new_index in _indices_of(client, next_alias):
            actions.append({"remove": {"index": new_index, "alias": next_alias}})
        client.indices.update_aliases(body={"actions": actions})
        if not keep_old:
            for index in old:
                client.indices.delete(index=index)
        return {"swapped": True, "doc_count": count, "old_indices": old, "old_deleted": not keep_old}
    except os_exc.ConnectionError as e:
        raise IndexAdminError(f"cannot reach OpenSearch to finalize the backfill: {e.error}") from e
    except os_exc.TransportError as e:
        raise IndexAdminError(f"cannot finalize the backfill: {e.error} {e.info}", _status(e)) from e


def abort_backfill(client: OpenSearch, alias: str, new_index: str | None) -> None:
    """Drop this backfill's new index (and with it the next alias); the live alias never moved.

    With no ``new_index`` this backfill created nothing, so nothing is touched: in
    particular not a next alias that belongs to another backfill still running.
    """
    try:
        if new_index and client.indices.exists(index=new_index):
            if alias in client.indices.get_alias(index=new_index).get(new_index, {}).get("aliases", {}):
                raise IndexAdminError(f"{new_index} already serves {alias}: refusing to delete it")
            client.indices.delete(index=new_index)  # removes its aliases, the next alias too
    except os_exc.ConnectionError as e:
        raise IndexAdminError(f"cannot reach OpenSearch to abort the backfill: {e.error}") from e
    except os_exc.TransportError as e:
        raise IndexAdminError(f"cannot abort the backfill: {e.error} {e.info}", _status(e)) from e
