"""``ddbsync backfill``: locally (moto, :mod:`ddbsync_local.backfill_run`), or with ``--stack``
on the deployed state machine in AWS (:mod:`ddbsync.cli.backfill_stack`).

ddbsync_local (moto glue and AWS stand-ins, the ``local`` extra) is imported only when
the command runs or builds its options, never when the Lambda code is imported.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync backfill``."""
    from ddbsync_local.backfill_run import DEFAULT_BUCKET
    from ddbsync_local.demo import DEFAULT_ALIAS, TABLE

    parser.epilog = (
        "Environment: OPENSEARCH_URL (default http://127.0.0.1:9200; start one with "
        "`scripts/opensearch.sh start`); AWS_ENDPOINT_URL to use a running moto_server "
        "instead of moto in-process (an in-process table lives only in this command, so "
        "use --seed, or `ddbsync demo`, which backfills its own table); AWS_REGION "
        "(default us-east-1). The table needs point-in-time recovery (--seed turns it on)."
    )
    parser.add_argument("--table", default=TABLE, help="DynamoDB table name (default: %(default)s)")
    parser.add_argument("--alias", default=DEFAULT_ALIAS,
                        help="live index alias to rebuild (default: %(default)s)")
    parser.add_argument("--format", default="DYNAMODB_JSON", choices=("DYNAMODB_JSON", "ION"),
                        help="export format (default: %(default)s)")
    parser.add_argument("--items-per-file", type=int, default=1000,
                        help="items per export data file (default: %(default)s)")
    parser.add_argument("--keep-old-index", action="store_true",
                        help="keep the old index after the alias swap (default: delete it)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="first create the table (pk, sk; PITR on) with N demo items")
    parser.add_argument("--bucket", default=DEFAULT_BUCKET,
                        help="export bucket, created if missing (default: %(default)s)")
    parser.add_argument("--timeout-ms", type=int, default=900_000,
                        help="the backfill Lambda's timeout per call (default: %(default)s)")  # fmt: skip
    from ddbsync.cli.backfill_stack import add_stack_arguments

    add_stack_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """Entry point for the CLI: 0 swapped, 1 failed, 2 no OpenSearch, 3 bad table or options.

    With --stack: 0 the execution succeeded, 1 it did not (the cause is printed), 2 it could
    not be started (no such stack, no access, bad --input).
    """
    if args.stack:
        from ddbsync.cli.backfill_stack import run_on_stack

        return run_on_stack(args)
    from ddbsync_local.backfill_run import backfill_table

    return backfill_table(
        table=args.table,
        alias=args.alias,
        export_format=args.format,
        items_per_file=args.items_per_file,
        keep_old_index=args.keep_old_index,
        seed=args.seed,
        bucket=args.bucket,
        timeout_ms=args.timeout_ms,
    )
