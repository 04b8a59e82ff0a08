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

__all__ = ["META_MAPPING", "ensure_index", "load_template", "tombstone_filter"]

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

    Creates ``<alias>-000001`` with the alias (filtered, write index) when the
    alias is missing; otherwise applies the template's mapping to the write
    index (adding fields is idempotent; a conflicting change fails loudly).
    """
    template = load_template(template_path)
    try:
        if client.indices.exists_alias(name=alias):
            index = _write_index(client, alias)
            client.indices.put_mapping(index=index, body=template["mappings"])
            return index
        if client.indices.exists(index=alias):
            raise IndexAdminError(
                f"{alias!r} is an index, not an alias: point INDEX_ALIAS at an alias "
                f"(ddbsync creates {alias}-000001 and the alias when neither exists)"
            )
        index = f"{alias}-000001"
        body = dict(template)
        body["aliases"] = {alias: {"is_write_index": True, "filter": tombstone_filter()}}
        try:
            client.indices.create(index=index, body=body)
        except os_exc.RequestError as e:
            if e.error != "resource_already_exists_exception":
                raise
            # Another cold start created it at the same moment: fine.
        return index
    except os_exc.ConnectionError as e:
        raise IndexAdminError(f"cannot reach OpenSearch to prepare {alias!r}: {e.error}") from e
    except os_exc.TransportError as e:
        raise IndexAdminError(f"cannot prepare index for {alias!r}: {e.error} {e.info}", _status(e)) from e


def _write_index(client: OpenSearch, alias: str) -> str:
    info = client.indices.get_alias(name=alias)
    indices = list(info)
    if len(indices) == 1:
        return str(indices[0])
    for index, body in info.items():
        if body.get("aliases", {}).get(alias, {}).get("is_write_index"):
            return str(index)
    raise IndexAdminError(f"alias {alias!r} points at {len(indices)} indices and none is the write index")
