"""The index side of a verify: every document of the live index, in ``_id`` order.

The walk sorts on ``_id`` and pages with ``search_after``, inside a point in time when the
server has them (OpenSearch 2.4+: ``POST <index>/_search/point_in_time``), so the pages
are one consistent snapshot. A server without point in time gets the same walk without
one (no scroll: a scroll holds a search context per page size and cannot be resumed).
The concrete index behind the alias is read, not the alias: the alias's filter hides
tombstones, and a tombstone is what tells "missing" from "deleted". Each hit brings its
``_version`` (the external version) and ``_source``: the body is needed for the "stale"
rule (:mod:`ddbsync.verify.compare`); only a digest of it is kept.

The point in time is closed at the end; if it cannot be (a role allowed only GET and
POST, as the scheduled verify's is), it expires after its keep-alive.

Sorting on ``_id`` loads the ids into the field-data cache and OpenSearch answers with a
deprecation warning (no other field holds the id). The warning is expected here and kept
out of the caller's warnings. A cluster that turned ``indices.id_field_data.enabled`` off
refuses the sort: that refusal is reported as such (:data:`ID_SORT_REFUSED`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ddbsync.errors import VerifyError
from ddbsync.verify.compare import IndexEntry, index_entry

__all__ = ["PAGE_DOCS", "fetch_entries", "walk_index"]

# Each page costs the server a pass over the index (a string sort cannot skip to the
# search_after point), so pages are as large as a search allows: 1M documents take 100
# passes. A page of 10,000 small documents is a few MB of JSON.
PAGE_DOCS = 10_000
KEEP_ALIVE = "5m"

ID_SORT_REFUSED = (
    "this cluster does not allow sorting on _id (cluster setting indices.id_field_data.enabled "
    "is false); verify walks the index in _id order: set it to true while verify runs"
)


def _open_pit(client: OpenSearch, index: str) -> str | None:
    """A point in time on ``index``, or None when the server has no such API."""
    try:
        created = client.create_pit(index=index, params={"keep_alive": KEEP_ALIVE})
    except os_exc.TransportError as e:
        if e.status_code in (400, 404, 405, 501):
            return None  # no point-in-time API: walk without one
        raise VerifyError(f"cannot open a point in time on {index!r}: {e.error}") from e
    except os_exc.ConnectionError as e:
        raise VerifyError(f"cannot reach OpenSearch: {e.error}") from e
    return str(created["pit_id"])


def _close_pit(client: OpenSearch, pit: str) -> None:
    with contextlib.suppress(os_exc.OpenSearchException):
        client.delete_pit(body={"pit_id": [pit]})


def walk_index(client: OpenSearch, index: str, page_docs: int = PAGE_DOCS) -> Iterator[IndexEntry]:
    """Yield every document of ``index`` (tombstones included) in ``_id`` order."""
    pit = _open_pit(client, index)
    after: list[Any] | None = None
    try:
        while True:
            body: dict[str, Any] = {
                "size": page_docs, "sort": [{"_id": "asc"}], "version": True,
                "track_total_hits": False,
            }  # fmt: skip
            if after is not None:
                body["search_after"] = after
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Loading the fielddata on the _id field",
                                            os_exc.OpenSearchWarning)  # fmt: skip
                    if pit is not None:
                        body["pit"] = {"id": pit, "keep_alive": KEEP_ALIVE}
                        found = client.search(body=body)
                        pit = str(found.get("pit_id") or pit)
                    else:
                        found = client.search(index=index, body=body)
            except os_exc.TransportError as e:
                if "id_field_data" in str(e.info):
                    raise VerifyError(ID_SORT_REFUSED) from e
                raise VerifyError(f"cannot read the index {index!r}: {e.error}") from e
            except os_exc.ConnectionError as e:
                raise VerifyError(f"cannot reach OpenSearch: {e.error}") from e
            hits = found["hits"]["hits"]
            for hit in hits:
                yield index_entry(hit)
            if len(hits) < page_docs:
                return
            after = hits[-1]["sort"]
    finally:
        if pit is not None:
            _close_pit(client, pit)


def fetch_entries(client: OpenSearch, index: str, ids: Sequence[str]) -> dict[str, IndexEntry]:
    """The documents under ``ids`` now (a real-time ``mget``: sees writes not yet refreshed)."""
    if not ids:
        return {}
    try:
        found = client.mget(index=index, body={"ids": list(ids)})
    except os_exc.TransportError as e:
        raise VerifyError(f"cannot read documents of {index!r}: {e.error}") from e
    except os_exc.ConnectionError as e:
        raise VerifyError(f"cannot reach OpenSearch: {e.error}") from e
    return {d["_id"]: index_entry(d) for d in found["docs"] if d.get("found")}
