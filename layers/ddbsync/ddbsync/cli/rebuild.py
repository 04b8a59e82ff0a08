"""``ddbsync rebuild --from-archive s3://bucket/prefix``: its options, settings, exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from ddbsync.config import Settings
from ddbsync.errors import ConfigError, DdbsyncError, RebuildError
from ddbsync.rebuild import SETTLE_SECONDS, parse_archive_uri, rebuild
from ddbsync.repair import parse_time

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_arguments", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parallel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"must be seconds from 0 to 86400, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync rebuild``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Settings come from the environment, as for `ddbsync repair`: OPENSEARCH_*, INDEX_ALIAS,\n"
        "PARTITION_KEY, SORT_KEY, TTL_REMOVES, INDEX_TEMPLATE, BULK_MAX_*, RETRY_*.\n\n"
        "--into new (the default) creates <alias>-<stamp> and <alias>-next (the stream indexers\n"
        "write new changes there too), waits --settle-seconds so that every change made before\n"
        "that is in the archive (Firehose keeps a record up to its buffer interval, at most\n"
        "900 s, before writing it), indexes the archive, then swaps the alias in one call. On\n"
        "failure the new index is dropped and the alias never moved. The new index has no\n"
        "snapshot floor: the archive holds every delete as a tombstone, so external versions\n"
        "alone make the result independent of the order objects are read in. It is complete\n"
        "only if the archive reaches back past every item's last change (docs/archive.md).\n\n"
        "--into live writes through the live alias (and <alias>-next while a backfill runs),\n"
        "under the snapshot-floor rule: re-apply a past window with --since/--until.\n\n"
        "Exit codes: 0 rebuilt, 1 failed or poison lines found (the summary names them),\n"
        "2 bad arguments or settings, missing bucket, no archive objects."
    )
    parser.add_argument("--from-archive", dest="archive", required=True, metavar="s3://BUCKET/PREFIX",
                        help="the archive: its bucket root, table=<t>/, or a day or an hour")  # fmt: skip
    parser.add_argument("--since", type=parse_time, default=None, metavar="T1",
                        help="only changes at or after T1 (epoch seconds or ISO-8601 with a zone; "
                             "--into live only)")  # fmt: skip
    parser.add_argument("--until", type=parse_time, default=None, metavar="T2",
                        help="only changes before T2 (--into live only)")  # fmt: skip
    parser.add_argument("--into", choices=("new", "live"), default="new",
                        help="a new index then the alias swap (default), or the live alias")  # fmt: skip
    parser.add_argument("--parallel", type=_parallel, default=4, metavar="N",
                        help="archive objects read at once (default: %(default)s)")  # fmt: skip
    parser.add_argument("--settle-seconds", type=_seconds, default=float(SETTLE_SECONDS), metavar="S",
                        help="--into new: wait after creating the new index, before listing the "
                             "archive (default: %(default)g: Firehose buffers up to 900 s)")  # fmt: skip
    parser.add_argument("--skip-poison", action="store_true",
                        help="count lines that cannot be indexed and go on (exit 1, first 20 listed) "
                             "instead of stopping at the first")  # fmt: skip
    parser.add_argument("--keep-on-failure", action="store_true",
                        help="--into new: keep the new index when the rebuild fails (default: drop it)")


def main(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    s3: S3Client | None = None,
    client: OpenSearch | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Entry point for the CLI. Tests pass ``env``, ``s3`` (moto) and ``client``."""
    import boto3

    from ddbsync.opensearch.client import build_client

    out = out or sys.stdout
    problems: list[str] = []
    settings = location = None
    try:
        location = parse_archive_uri(args.archive)
    except RebuildError as e:
        problems.append(str(e))
    try:
        settings = Settings.from_env(env, require_dlq=False)
    except ConfigError as e:
        problems += e.problems
    if problems or settings is None or location is None:
        print("ERROR: " + "; ".join(problems), file=out)
        return EXIT_USAGE
    try:
        summary = rebuild(
            settings, location,
            client=client or build_client(settings),
            s3=s3 or boto3.client("s3", region_name=settings.region),
            since=args.since, until=args.until, into=args.into, parallel=args.parallel,
            settle_seconds=args.settle_seconds, skip_poison=args.skip_poison,
            keep_on_failure=args.keep_on_failure, out=out, err=err,
        )  # fmt: skip
    except RebuildError as e:
        print(f"ERROR: {e}", file=out)
        return EXIT_USAGE if e.usage else EXIT_FAILED
    except DdbsyncError as e:
        print(f"ERROR: rebuild from {location} failed: {e}", file=out)
        return EXIT_FAILED
    return EXIT_FAILED if summary.failed or summary.poison else EXIT_OK
