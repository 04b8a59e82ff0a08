"""``ddbsync purge-tombstones``: its options, its summary, and the call into :mod:`ddbsync.purge`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from ddbsync.config import Settings
from ddbsync.errors import ConfigError, DdbsyncError, PurgeWindowError
from ddbsync.purge import PurgeSummary, format_duration, parse_duration, run_purge

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from opensearchpy import OpenSearch

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_arguments", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync purge-tombstones``."""
    parser.epilog = (
        "Settings come from the environment, as for the stream indexer: OPENSEARCH_*, INDEX_ALIAS, "
        "NEXT_ALIAS_CHECK_SECONDS, and RECORD_DLQ_URL (its MessageRetentionPeriod bounds the window; "
        "without it 14 days are assumed). Exit codes: 0 purged (or dry run), 1 the purge failed or "
        "did not finish, 2 bad arguments or settings, or a window shorter than the replay window. "
        "See docs/runbook.md, 'Index grows with tombstones'."
    )
    parser.add_argument("--older-than", required=True, metavar="DURATION",
                        help="purge tombstones older than this (36h, 7d, 2w); at least 24h plus the "
                             "record DLQ's retention unless --force")
    parser.add_argument("--dry-run", action="store_true",
                        help="count what would be purged; changes nothing (no floor, no delete)")
    parser.add_argument("--force", action="store_true",
                        help="accept a window shorter than the replay window (older changes are then "
                             "refused as stale by the purge floor)")
    parser.add_argument("--settle-seconds", type=float, default=None, metavar="S",
                        help="wait between raising the purge floor and deleting (default: "
                             "NEXT_ALIAS_CHECK_SECONDS + 60, so every writer has read the floor)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")  # fmt: skip


def main(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    client: OpenSearch | None = None,
    sqs: SQSClient | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Entry point for the CLI. Tests pass ``env``, ``client`` and ``sqs``."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        window_s = parse_duration(args.older_than)
        settings = Settings.from_env(env, require_dlq=False)
        if args.settle_seconds is not None and not 0 <= args.settle_seconds <= 3600:
            raise PurgeWindowError(f"--settle-seconds must be 0..3600, got {args.settle_seconds:g}")
    except ConfigError as e:
        print("ERROR: " + "\n       ".join(e.problems), file=err)
        return EXIT_USAGE
    except PurgeWindowError as e:
        print(f"ERROR: {e}", file=err)
        return EXIT_USAGE
    try:
        summary = _run(args, settings, window_s, client, sqs, err)
    except PurgeWindowError as e:
        print(f"ERROR: {e}", file=err)
        return EXIT_USAGE
    except DdbsyncError as e:
        print(f"ERROR: the purge failed: {e}", file=err)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(summary.as_json(), indent=2), file=out)
    else:
        _print_summary(summary, window_s, out)
    return EXIT_OK if summary.ok else EXIT_FAILED


def _run(
    args: argparse.Namespace,
    settings: Settings,
    window_s: int,
    client: OpenSearch | None,
    sqs: SQSClient | None,
    err: TextIO,
) -> PurgeSummary:
    from ddbsync.aws import sqs_client
    from ddbsync.opensearch.client import build_client

    queue = sqs or (sqs_client(settings.region) if settings.record_dlq_url else None)
    return run_purge(
        settings, window_s, client=client or build_client(settings), sqs=queue, force=args.force,
        dry_run=args.dry_run, settle_s=args.settle_seconds, progress=lambda line: print(line, file=err),
    )  # fmt: skip


def _print_summary(summary: PurgeSummary, window_s: int, out: TextIO) -> None:
    horizon = dt.datetime.fromtimestamp(summary.horizon, dt.UTC).isoformat(timespec="seconds")
    what = "would purge" if summary.dry_run else "purged"
    print(f"{summary.alias}: tombstones older than {format_duration(window_s)} (before {horizon})", file=out)
    for p in summary.indices:
        done = p.older if summary.dry_run else p.deleted
        line = f"  {p.index} ({p.alias}): {p.tombstones} tombstones, {what} {done}"
        if not summary.dry_run:
            line += f", kept {p.conflicts} rewritten meanwhile, purge floor {p.purge_floor}"
        print(line, file=out)
        for failure in p.failures:
            print(f"    FAILED: {failure}", file=out)
    for warning in summary.warnings:
        print(f"  WARNING: {warning}", file=out)
    if summary.dry_run:
        print("  dry run: nothing changed", file=out)
