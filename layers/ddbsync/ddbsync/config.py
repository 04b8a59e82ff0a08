"""Settings: one frozen object built from the environment.

A missing or bad value raises one :class:`ConfigError` naming every problem, so
a misconfigured function fails at cold start with the whole list (the stream
waits; nothing is skipped). Endpoints and regions have no defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ddbsync.errors import ConfigError
from ddbsync.index_template import fetch_s3_template, is_s3_uri

__all__ = ["BUCKET_NAME", "DEFAULT_INDEX_TEMPLATE", "KMS_KEY_ARN", "EnvReader", "Settings"]

DEFAULT_INDEX_TEMPLATE = Path(__file__).parent / "templates" / "index.json"

_SERVICES = ("es", "aoss", "none")
_TTL_MODES = ("delete", "keep")
# S3 bucket naming rules (general purpose buckets): 3-63 characters, lower-case letters, digits,
# dots and hyphens, starting and ending with a letter or digit, no "..", not an IP address.
BUCKET_NAME = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the indexer needs, validated.

    Environment variables (see README, "Configuration"):
    ``OPENSEARCH_ENDPOINT``, ``OPENSEARCH_SERVICE`` (es|aoss|none), ``AWS_REGION``
    (required for es/aoss), ``INDEX_ALIAS``, ``PARTITION_KEY``, ``SORT_KEY``,
    ``RECORD_DLQ_URL``, ``TTL_REMOVES`` (delete|keep), ``BULK_MAX_BYTES``,
    ``BULK_MAX_ACTIONS``, ``MAX_DOCUMENT_BYTES``, ``TIMEOUT_MARGIN_MS``, ``RETRY_BASE_MS``,
    ``RETRY_MAX_MS``, ``INDEX_TEMPLATE`` (a path, or ``s3://bucket/key`` read at cold start
    by :mod:`ddbsync.index_template`), ``MANAGE_INDEX`` (true|false),
    ``NEXT_ALIAS_CHECK_SECONDS`` (how old a writer's view of where the live and next aliases
    point, with the indices' snapshot floors, may get; a backfill's DUAL_WRITE_WAIT_SECONDS
    must be at least this, and the backfill function checks it against its own value),
    ``DEAD_LETTER_BUCKET`` (S3 bucket for dead letters too big for SQS) and
    ``DEAD_LETTER_KMS_KEY_ID`` (encrypt those objects with this KMS key).
    """

    endpoint: str
    service: str
    region: str | None
    index_alias: str
    partition_key: str
    sort_key: str | None
    record_dlq_url: str
    ttl_removes: str = "delete"
    bulk_max_bytes: int = 5 * 1024 * 1024
    bulk_max_actions: int = 1000
    max_document_bytes: int = 10 * 1024 * 1024
    timeout_margin_ms: int = 10_000
    retry_base_ms: int = 100
    retry_max_ms: int = 20_000
    index_template: Path = DEFAULT_INDEX_TEMPLATE
    manage_index: bool = True
    next_alias_check_seconds: int = 30
    dead_letter_bucket: str | None = None
    dead_letter_kms_key_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_dlq: bool = True) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raise ConfigError listing all problems."""
        read = EnvReader(os.environ if env is None else env)
        endpoint = read.required("OPENSEARCH_ENDPOINT").rstrip("/")
        read.check(
            not endpoint or _is_http_url(endpoint),
            f"OPENSEARCH_ENDPOINT must be an http(s) URL such as "
            f"https://search-x.eu-west-1.es.amazonaws.com, got {endpoint!r}",
        )
        service = read.choice("OPENSEARCH_SERVICE", _SERVICES, None)
        region = read.optional("AWS_REGION")
        signed = service in ("es", "aoss")
        read.check(
            not signed or region is not None,
            f"AWS_REGION is required to sign requests for OPENSEARCH_SERVICE={service}",
        )
        read.check(
            not signed or urlparse(endpoint).scheme.lower() != "http",
            "OPENSEARCH_ENDPOINT must use https with SigV4 signing",
        )
        alias = read.required("INDEX_ALIAS")
        read.check(
            not alias or _is_index_name(alias), f"INDEX_ALIAS {alias!r} is not a valid OpenSearch index name"
        )
        partition_key = read.required("PARTITION_KEY")
        sort_key = read.optional("SORT_KEY")
        dlq = read.required("RECORD_DLQ_URL") if require_dlq else read.optional("RECORD_DLQ_URL") or ""
        ttl = read.choice("TTL_REMOVES", _TTL_MODES, "delete")
        max_bytes = read.integer("BULK_MAX_BYTES", 5 * 1024 * 1024, 64 * 1024, 100 * 1024 * 1024)
        max_actions = read.integer("BULK_MAX_ACTIONS", 1000, 1, 10_000)
        max_doc = read.integer("MAX_DOCUMENT_BYTES", 10 * 1024 * 1024, 1024, 100 * 1024 * 1024)
        margin = read.integer("TIMEOUT_MARGIN_MS", 10_000, 0, 600_000)
        base, cap = read.retries()
        template = read.index_template()
        manage = read.choice("MANAGE_INDEX", ("true", "false"), "true") == "true"
        next_check = read.integer("NEXT_ALIAS_CHECK_SECONDS", 30, 0, 3600)
        letter_bucket, letter_key = read.dead_letter_bucket()

        if read.problems:
            raise ConfigError(read.problems)
        return cls(
            endpoint=endpoint,
            service=service,
            region=region,
            index_alias=alias,
            partition_key=partition_key,
            sort_key=sort_key,
            record_dlq_url=dlq,
            ttl_removes=ttl,
            bulk_max_bytes=max_bytes,
            bulk_max_actions=max_actions,
            max_document_bytes=max_doc,
            timeout_margin_ms=margin,
            retry_base_ms=base,
            retry_max_ms=cap,
            index_template=template,
            manage_index=manage,
            next_alias_check_seconds=next_check,
            dead_letter_bucket=letter_bucket,
            dead_letter_kms_key_id=letter_key,
        )


class EnvReader:
    """Reads environment variables, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def optional(self, name: str) -> str | None:
        return self.env.get(name, "").strip() or None

    def required(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        self.check(bool(value), f"{name} is required")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        self.check(low <= value <= high, f"{name} must be between {low} and {high}, got {value}")
        return value

    def retries(self) -> tuple[int, int]:
        """RETRY_BASE_MS and RETRY_MAX_MS: the backoff of every writer that retries."""
        base = self.integer("RETRY_BASE_MS", 100, 1, 60_000)
        cap = self.integer("RETRY_MAX_MS", 20_000, 1, 600_000)
        self.check(base <= cap, f"RETRY_BASE_MS ({base}) must not exceed RETRY_MAX_MS ({cap})")
        return base, cap

    def dead_letter_bucket(self) -> tuple[str | None, str | None]:
        """DEAD_LETTER_BUCKET and DEAD_LETTER_KMS_KEY_ID: where letters too big for SQS go."""
        bucket = self.optional("DEAD_LETTER_BUCKET")
        self.check(
            bucket is None or BUCKET_NAME.fullmatch(bucket) is not None,
            f"DEAD_LETTER_BUCKET must be an S3 bucket name (3-63 characters: lower-case letters, "
            f"digits, '.', '-'; no s3:// prefix, no key), got {bucket!r}",
        )
        key = self.optional("DEAD_LETTER_KMS_KEY_ID")
        self.check(
            key is None or KMS_KEY_ARN.fullmatch(key) is not None,
            f"DEAD_LETTER_KMS_KEY_ID must be a KMS key ARN "
            f"(arn:aws:kms:<region>:<account>:key/<id>), got {key!r}",
        )
        self.check(
            key is None or bucket is not None, "DEAD_LETTER_KMS_KEY_ID is set but DEAD_LETTER_BUCKET is not"
        )
        return bucket, key

    def index_template(self) -> Path:
        """INDEX_TEMPLATE: empty = the bundled file; a local path; or s3://bucket/key, read now."""
        raw = self.optional("INDEX_TEMPLATE")
        if raw is not None and is_s3_uri(raw):
            try:
                return fetch_s3_template(raw)
            except ConfigError as e:
                self.problems.extend(e.problems)
                return DEFAULT_INDEX_TEMPLATE
        template = Path(raw or DEFAULT_INDEX_TEMPLATE)
        self.check(template.is_file(), f"INDEX_TEMPLATE {str(template)!r} is not a readable file")
        return template

    def choice(self, name: str, options: tuple[str, ...], default: str | None) -> str:
        raw = self.env.get(name, "").strip().lower()
        if raw:
            self.check(raw in options, f"{name} must be one of {', '.join(options)}, got {raw!r}")
            return raw
        self.check(default is not None, f"{name} is required (one of {', '.join(options)})")
        return default or ""


def _is_http_url(endpoint: str) -> bool:
    parsed = urlparse(endpoint)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _is_index_name(name: str) -> bool:
    return (
        name == name.lower()
        and not name.startswith(("_", "-", "+"))
        and not any(c in name for c in ' "*\\<|,>/?#:')
    )
