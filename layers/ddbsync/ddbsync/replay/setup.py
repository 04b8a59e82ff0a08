"""What a replay needs before it touches a queue: its settings, and OpenSearch answering.

Each helper prints what is wrong and returns None; the caller exits 2 (nothing touched).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from opensearchpy import exceptions as os_exc

from ddbsync.archive.settings import ArchiveSettings
from ddbsync.config import Settings
from ddbsync.errors import ConfigError
from ddbsync.opensearch.client import build_client

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

__all__ = ["archive_settings", "connect", "index_settings"]


def index_settings(echo: Callable[[str], None]) -> Settings | None:
    """The stream indexer's settings, from the environment."""
    try:
        return Settings.from_env()
    except ConfigError as e:
        echo(f"ERROR: {e}\nreplay uses the stream indexer's environment variables; copy them "
             "from the function's configuration (docs/runbook.md).")  # fmt: skip
        return None


def archive_settings(echo: Callable[[str], None]) -> ArchiveSettings | None:
    """The archiver's settings, from the environment (no OpenSearch settings needed)."""
    try:
        return ArchiveSettings.from_env()
    except ConfigError as e:
        echo(f"ERROR: {e}\n--archive-on-failure-queue uses the archiver function's environment "
             "variables (ARCHIVE_STREAM_NAME, RECORD_DLQ_URL, ...); copy them from the archiver's "
             "configuration (docs/runbook.md, Archive alarms).")  # fmt: skip
        return None


def connect(settings: Settings, client: OpenSearch | None, echo: Callable[[str], None]) -> OpenSearch | None:
    """The OpenSearch client, once the server answers; None (and why, printed) when it cannot be used."""
    try:
        client = client or build_client(settings)
        info = client.info()
    except ConfigError as e:
        echo(f"ERROR: {e}")
        return None
    except os_exc.TransportError as e:
        echo(f"ERROR: OpenSearch at {settings.endpoint} does not answer ({_os_error(e)}); "
             "nothing was replayed and every message stays in the queue.")  # fmt: skip
        return None
    echo(f"OpenSearch {info.get('version', {}).get('number', '?')} at {settings.endpoint}, "
         f"alias {settings.index_alias}")  # fmt: skip
    return client


def _os_error(e: os_exc.TransportError) -> str:
    status = e.status_code if isinstance(e.status_code, int) else None
    return f"HTTP {status}: {e.error}" if status else str(e.error)
