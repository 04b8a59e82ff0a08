"""``ddbsync verify``: its options, the settings it reads, the report, the exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from ddbsync.config import Settings
from ddbsync.errors import ConfigError, DdbsyncError
from ddbsync.verify import VerifySummary, default_progress, run_verify, table_name

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from opensearchpy import OpenSearch

__all__ = ["EXIT_DRIFT", "EXIT_OK", "EXIT_USAGE", "add_arguments", "main"]

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


def _segments(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync verify``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = """\
Reads every item of the table (a parallel, strongly consistent Scan) and every document
of the index behind INDEX_ALIAS (tombstones included, in _id order), and reports:
  missing  the item is in the table, the index has no document or only a tombstone
  extra    a live document whose key is not in the table (e.g. brought back after a backfill)
  stale    both exist, the document's body differs from the item's
Documents written after the verify started are not judged. Memory stays flat: the table
side is spilled to sorted temporary files (--workdir).

--repair writes the item (missing, stale) or a tombstone (extra) at the version of an
export taken when the verify started: it never overwrites a write made after that.

Settings come from the environment: OPENSEARCH_*, INDEX_ALIAS, PARTITION_KEY, SORT_KEY,
and TABLE_NAME or TABLE_ARN (or --table).
Exit codes: 0 no drift; 1 drift found (with --repair: found and repaired, see the
summary; run verify again to confirm 0); 2 bad arguments or settings, or the table or
the index could not be read. See docs/runbook.md, "Alarm: DriftAlarm"."""
    parser.add_argument("--table", default=None, help="table name (default: TABLE_NAME or TABLE_ARN)")
    parser.add_argument(
        "--segments", type=_segments, default=4, metavar="N",
        help="parallel Scan segments (threads), 1 to 1000 (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--repair", action="store_true", help="fix the drift found (see below)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--examples", type=int, default=10, metavar="N",
        help="ids listed per kind of drift (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--workdir", default=None, help="directory for the temporary sorted runs")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show the progress bar on stderr even when it is not a terminal")  # fmt: skip
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _estimate(ddb: DynamoDBClient, table: str) -> int | None:
    """DescribeTable's item count (updated about every 6 hours), for the progress bar only."""
    try:
        return int(ddb.describe_table(TableName=table)["Table"].get("ItemCount", 0)) or None
    except Exception:  # an estimate only: a role without DescribeTable still verifies
        return None


def render(summary: VerifySummary, out: TextIO) -> None:
    """The human summary: counts, then example ids per kind."""
    print(
        f"verify {summary.table} against {summary.alias} ({summary.index}): {summary.items} items, "
        f"{summary.documents} documents ({summary.tombstones} tombstones) in {summary.duration_s:.1f} s",
        file=out,
    )
    counts = ", ".join(f"{n} {kind}" for kind, n in summary.counts.items())
    print(f"   drift: {counts}" + ("" if summary.drift else " - the index is in step"), file=out)
    for kind, ids in summary.examples.items():
        if ids:
            print(f"   {kind:<8} e.g. " + ", ".join(ids), file=out)
    if summary.recent or summary.settled:
        print(f"   not judged: {summary.recent} documents written after the start, "
              f"{summary.settled} caught up while verifying", file=out)  # fmt: skip
    if summary.unreadable:
        print(f"   {summary.unreadable} items cannot be documents (see the record DLQ)", file=out)
    if summary.repaired is not None:
        r = summary.repaired
        print(
            f"   repaired: {r.written} written, {r.newer_kept} left alone (a newer write holds them), "
            f"{r.gone} deleted since the scan, {r.rejected} rejected, {r.unsent} not sent",
            file=out,
        )
        if summary.drift:
            print("   run `ddbsync verify` again to confirm the index is in step (exit 0)", file=out)


def main(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    ddb: DynamoDBClient | None = None,
    client: OpenSearch | None = None,
    out: TextIO | None = None,
) -> int:
    """Entry point for the CLI. Tests pass ``env``, ``ddb`` (moto) and ``client``."""
    import os

    import boto3

    from ddbsync.opensearch.client import build_client

    out = out or sys.stdout
    env = os.environ if env is None else env
    problems: list[str] = []
    settings = None
    try:
        settings = Settings.from_env(env, require_dlq=False)
    except ConfigError as e:
        problems += e.problems
    table = table_name(args.table, env)
    if table is None:
        problems.append("no table: pass --table, or set TABLE_NAME or TABLE_ARN")
    if args.examples < 0:
        problems.append(f"--examples must not be negative, got {args.examples}")
    if problems or settings is None or table is None:
        print("ERROR: " + "\n       ".join(problems), file=out)
        return EXIT_USAGE
    ddb = ddb or boto3.client("dynamodb", region_name=settings.region)
    try:
        summary = run_verify(
            settings, table, ddb=ddb, client=client or build_client(settings), segments=args.segments,
            repair=args.repair, workdir=args.workdir, examples=args.examples,
            progress=default_progress(args.progress, _estimate(ddb, table)),
        )  # fmt: skip
    except DdbsyncError as e:
        print(f"ERROR: verify of {table} against {settings.index_alias} failed: {e}", file=out)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(summary.as_json()), file=out)
    else:
        render(summary, out)
    return EXIT_DRIFT if summary.drift else EXIT_OK
