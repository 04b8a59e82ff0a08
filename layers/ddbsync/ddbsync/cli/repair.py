"""``ddbsync repair``: its options, the settings it reads, and the call into :mod:`ddbsync.repair`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.config import Settings
from ddbsync.errors import ConfigError, DdbsyncError, RepairError
from ddbsync.repair import (
    AwsIncrementalExports,
    IncrementalExports,
    Window,
    parse_time,
    run_repair,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_arguments", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync repair``."""
    parser.epilog = (
        "Settings come from the environment, as for the backfill function: OPENSEARCH_*, "
        "INDEX_ALIAS, PARTITION_KEY, SORT_KEY, TABLE_ARN, EXPORT_BUCKET, EXPORT_PREFIX, "
        "EXPORT_FORMAT, EXPORT_KMS_KEY_ID. The table needs point-in-time recovery. "
        "Exit codes: 0 repaired, 1 the repair failed (the reason is printed), 2 bad arguments "
        "or settings. See docs/runbook.md, 'Repair a lost stream window'."
    )
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        type=parse_time,
        metavar="T1",
        help="window start, inclusive: epoch seconds or ISO-8601 with a zone",
    )
    parser.add_argument(
        "--to",
        dest="end",
        required=True,
        type=parse_time,
        metavar="T2",
        help="window end, exclusive (15 min to 24 h after T1, in the past)",
    )
    parser.add_argument(
        "--token", default=None, help="export ClientToken (default: derived from the alias and the window)"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=30.0,
        help="DescribeExport polling interval (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-minutes",
        type=float,
        default=240.0,
        help="give up waiting for the export after this long (default: %(default)s)",
    )


def main(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    exports: IncrementalExports | None = None,
    s3: S3Client | None = None,
    out: TextIO | None = None,
) -> int:
    """Entry point for the CLI. Tests pass ``env``, ``exports`` and ``s3`` (moto stand-ins)."""
    import boto3

    from ddbsync.opensearch.client import build_client

    out = out or sys.stdout
    problems: list[str] = []
    settings = bs = None
    try:
        settings = Settings.from_env(env, require_dlq=False)
    except ConfigError as e:
        problems += e.problems
    try:
        bs = BackfillSettings.from_env(env)
    except ConfigError as e:
        problems += e.problems
    try:
        window = Window.of(args.start, args.end)
    except RepairError as e:
        problems.append(str(e))
    if problems or settings is None or bs is None:
        print("ERROR: " + "\n       ".join(problems), file=out)
        return EXIT_USAGE
    region = settings.region
    try:
        summary = run_repair(
            settings,
            bs,
            window,
            client=build_client(settings),
            s3=s3 or boto3.client("s3", region_name=region),
            exports=exports or AwsIncrementalExports(boto3.client("dynamodb", region_name=region)),
            token=args.token,
            poll_s=args.poll_seconds,
            max_wait_s=args.max_wait_minutes * 60,
            out=out,
        )
    except DdbsyncError as e:
        print(f"ERROR: repair of {window} failed: {e}", file=out)
        return EXIT_FAILED
    return EXIT_FAILED if summary.poison else EXIT_OK
