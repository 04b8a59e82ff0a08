"""The network boundary to OpenSearch: a small interface and its opensearch-py implementation.

Everything above this module speaks in :class:`BulkItemResult` and
:class:`StoredMeta`; tests can put an in-memory transport in its place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from ddbsync.errors import TransportError

__all__ = [
    "BulkItemResult",
    "OpenSearchTransport",
    "StoredMeta",
    "Transport",
    "TransportError",
]


@dataclass(frozen=True, slots=True)
class BulkItemResult:
    """The outcome of one bulk action, in request order."""

    status: int
    error_type: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMeta:
    """What the conflict resolver needs to know of a stored document."""

    found: bool
    version: int = 0
    seq_no: int = 0
    primary_term: int = 0
    seq: str | None = None
    source: str | None = None
    deleted: bool = False


class Transport(Protocol):
    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        """Send one NDJSON bulk body; raise TransportError when the whole request fails."""
        ...

    def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[StoredMeta]:
        """Version, seq_no/primary_term and ``_ddbsync`` of each id (in order)."""
        ...


_BULK_FILTER = (
    "errors,items.*.status,items.*.error.type,items.*.error.reason,items.*.error.caused_by.reason"
)


_PLAIN_RESULTS = {status: BulkItemResult(status) for status in (200, 201)}


def _status(e: os_exc.TransportError) -> int | None:
    code = e.status_code
    return code if isinstance(code, int) else None


class OpenSearchTransport:
    """:class:`Transport` over an opensearch-py client (built by ddbsync.opensearch.client)."""

    def __init__(self, client: OpenSearch) -> None:
        self.client = client

    def bulk(self, body: bytes, timeout_s: float) -> list[BulkItemResult]:
        try:
            response = self.client.bulk(
                body=body, params={"filter_path": _BULK_FILTER, "request_timeout": timeout_s}
            )
        except os_exc.ConnectionError as e:  # includes ConnectionTimeout
            raise TransportError(f"cannot reach OpenSearch: {e.error}") from e
        except os_exc.TransportError as e:
            raise TransportError(f"bulk request failed: {e.error}", _status(e)) from e
        results = []
        for item in response.get("items", []):
            ((_, outcome),) = item.items()
            error = outcome.get("error")
            if not error:
                status = outcome["status"]
                # The common answers are shared (frozen) instances: one less object per item.
                common = _PLAIN_RESULTS.get(status) if status.__class__ is int else None
                results.append(common or BulkItemResult(int(status)))
                continue
            reason = error.get("reason")
            cause = (error.get("caused_by") or {}).get("reason")
            if cause:
                reason = f"{reason}: {cause}" if reason else cause
            results.append(BulkItemResult(int(outcome["status"]), error.get("type"), reason))
        return results

    def mget(self, index: str, ids: Sequence[str], timeout_s: float) -> list[StoredMeta]:
        try:
            response = self.client.mget(
                index=index,
                body={"ids": list(ids)},
                params={"_source_includes": "_ddbsync", "request_timeout": timeout_s},
            )
        except os_exc.ConnectionError as e:
            raise TransportError(f"cannot reach OpenSearch: {e.error}") from e
        except os_exc.TransportError as e:
            raise TransportError(f"mget failed: {e.error}", _status(e)) from e
        metas = []
        for doc in response["docs"]:
            if not doc.get("found"):
                metas.append(StoredMeta(found=False))
                continue
            meta = (doc.get("_source") or {}).get("_ddbsync") or {}
            metas.append(
                StoredMeta(
                    found=True,
                    version=int(doc["_version"]),
                    seq_no=int(doc["_seq_no"]),
                    primary_term=int(doc["_primary_term"]),
                    seq=meta.get("seq"),
                    source=meta.get("source"),
                    deleted=meta.get("deleted") is True,
                )
            )
        return metas
