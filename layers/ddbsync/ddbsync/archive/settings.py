"""The archiver's settings: one frozen object built from the environment.

``ARCHIVE_STREAM_NAME`` (the Firehose delivery stream, required), ``RECORD_DLQ_URL``
(required) with ``DEAD_LETTER_BUCKET`` and ``DEAD_LETTER_KMS_KEY_ID`` (optional) as the
stream indexer reads them, ``TIMEOUT_MARGIN_MS``, ``RETRY_BASE_MS``, ``RETRY_MAX_MS`` and
``AWS_REGION``. A bad or missing value raises one ConfigError naming every problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ddbsync.config import EnvReader
from ddbsync.errors import ConfigError

__all__ = ["ArchiveSettings"]

# Firehose delivery stream names: 1-64 characters of letters, digits, '_', '.', '-'.
_STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    """Everything the archiver needs, validated."""

    archive_stream_name: str
    record_dlq_url: str
    region: str | None = None
    dead_letter_bucket: str | None = None
    dead_letter_kms_key_id: str | None = None
    timeout_margin_ms: int = 10_000
    retry_base_ms: int = 100
    retry_max_ms: int = 20_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArchiveSettings:
        """Build settings from ``env`` (default ``os.environ``); raise ConfigError listing all problems."""
        read = EnvReader(os.environ if env is None else env)
        stream = read.required("ARCHIVE_STREAM_NAME")
        read.check(
            not stream or _STREAM_NAME.fullmatch(stream) is not None,
            f"ARCHIVE_STREAM_NAME must be a Firehose delivery stream name (1-64 characters: letters, "
            f"digits, '_', '.', '-'; not an ARN), got {stream!r}",
        )
        dlq = read.required("RECORD_DLQ_URL")
        margin = read.integer("TIMEOUT_MARGIN_MS", 10_000, 0, 600_000)
        base, cap = read.retries()
        bucket, key = read.dead_letter_bucket()
        if read.problems:
            raise ConfigError(read.problems)
        return cls(
            archive_stream_name=stream,
            record_dlq_url=dlq,
            region=read.optional("AWS_REGION"),
            dead_letter_bucket=bucket,
            dead_letter_kms_key_id=key,
            timeout_margin_ms=margin,
            retry_base_ms=base,
            retry_max_ms=cap,
        )
