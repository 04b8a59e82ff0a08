"""A few plain-HTTP OpenSearch calls for local tools (the demo, tests).

Deliberately not the indexer's client: the demo checks the index from the
outside, through the same REST API a user would call. Numbers in responses are
parsed as :class:`~decimal.Decimal` so comparisons stay exact.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import quote

__all__ = ["DEFAULT_URL", "OpenSearchUnavailable", "SearchHttp", "opensearch_url"]

DEFAULT_URL = "http://127.0.0.1:9200"


class OpenSearchUnavailable(Exception):
    """Nothing (or not OpenSearch) answers at the URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"OpenSearch does not answer at {url}: {reason}")

    def advice(self, indent: str = "") -> str:
        """The error and what to do, for a command's output."""
        return (
            f"{indent}ERROR: {self}.\n{indent}Start it with `scripts/opensearch.sh start`, "
            "or point OPENSEARCH_URL at a running node."
        )


def opensearch_url() -> str:
    """``OPENSEARCH_URL``, or the local node that ``scripts/opensearch.sh start`` runs."""
    return (os.environ.get("OPENSEARCH_URL", "").strip() or DEFAULT_URL).rstrip("/")


class SearchHttp:
    """JSON over HTTP to one OpenSearch node; returns ``(status, body)``, never raises on 4xx."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        """Send one request; ``body`` is JSON-encoded when given."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.url}/{path.lstrip('/')}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _parse(response.read())
        except urllib.error.HTTPError as e:
            return e.code, _parse(e.read())
        except (urllib.error.URLError, OSError) as e:
            raise OpenSearchUnavailable(self.url, str(getattr(e, "reason", e))) from e

    def version(self) -> str:
        """The server's version number; raises OpenSearchUnavailable if it is not OpenSearch."""
        status, body = self.call("GET", "/")
        version = body.get("version") if isinstance(body, dict) else None
        if status != 200 or not isinstance(version, dict) or "number" not in version:
            raise OpenSearchUnavailable(self.url, f"unexpected answer (HTTP {status})")
        return str(version["number"])

    def indices_behind(self, name: str) -> list[str]:
        """Concrete indices that ``name`` (an index or an alias) resolves to."""
        status, body = self.call("GET", f"/{quote(name)}")
        return sorted(body) if status == 200 and isinstance(body, dict) else []

    def delete_index(self, index: str) -> None:
        """Delete one concrete index (missing is fine)."""
        self.call("DELETE", f"/{quote(index)}")


def _parse(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return raw.decode("utf-8", "replace")
