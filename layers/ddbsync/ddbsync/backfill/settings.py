"""The backfill's own settings (the indexer's come from :class:`~ddbsync.config.Settings`).

Read by the backfill Lambda and by ``ddbsync repair``, which exports from the same table
into the same bucket.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ddbsync.errors import ConfigError

__all__ = ["BackfillSettings"]


@dataclass(frozen=True, slots=True)
class BackfillSettings:
    """The backfill's own settings (the indexer's come from :class:`Settings`)."""

    table_arn: str
    export_bucket: str
    export_prefix: str
    export_format: str
    export_kms_key_id: str | None
    keep_old_index: bool
    dual_write_wait_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BackfillSettings:
        env = os.environ if env is None else env
        problems = []
        table_arn = env.get("TABLE_ARN", "").strip()
        if not table_arn.startswith("arn:") or ":table/" not in table_arn:
            problems.append(f"TABLE_ARN must be a DynamoDB table ARN, got {table_arn!r}")
        bucket = env.get("EXPORT_BUCKET", "").strip()
        if not bucket:
            problems.append("EXPORT_BUCKET is required")
        fmt = env.get("EXPORT_FORMAT", "DYNAMODB_JSON").strip().upper() or "DYNAMODB_JSON"
        if fmt not in ("DYNAMODB_JSON", "ION"):
            problems.append(f"EXPORT_FORMAT must be DYNAMODB_JSON or ION, got {fmt!r}")
        keep = env.get("KEEP_OLD_INDEX", "false").strip().lower()
        if keep not in ("true", "false"):
            problems.append(f"KEEP_OLD_INDEX must be true or false, got {keep!r}")
        wait_raw = env.get("DUAL_WRITE_WAIT_SECONDS", "65").strip() or "65"
        wait = int(wait_raw) if wait_raw.isdigit() else -1
        if not 0 <= wait <= 3600:
            problems.append(f"DUAL_WRITE_WAIT_SECONDS must be 0 to 3600, got {wait_raw!r}")
        if problems:
            raise ConfigError(problems)
        return cls(
            table_arn=table_arn,
            export_bucket=bucket,
            export_prefix=env.get("EXPORT_PREFIX", "").strip().strip("/"),
            export_format=fmt,
            export_kms_key_id=env.get("EXPORT_KMS_KEY_ID", "").strip() or None,
            keep_old_index=keep == "true",
            dual_write_wait_seconds=wait,
        )
