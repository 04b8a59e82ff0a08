"""``ddbsync demo``: its options, and the call into :mod:`ddbsync_local.demo`.

ddbsync_local (moto glue and AWS stand-ins, the ``local`` extra) is imported only when
the command runs or builds its options, never when the Lambda code is imported.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync demo``."""
    from ddbsync_local.demo import DEFAULT_ALIAS

    parser.add_argument("--alias", default=DEFAULT_ALIAS,
                        help="index alias the indexer writes (default: %(default)s)")
    parser.add_argument("--reset", action=argparse.BooleanOptionalAction, default=True,
                        help="delete the indices behind the alias first (default: on)")
    parser.add_argument("--batch-size", type=int, default=5,
                        help="stream batch size; small, so one item's changes span "
                             "several invocations (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the handler's JSON logs and EMF metrics")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Entry point for the CLI: 0 the index matches the table, non-zero otherwise."""
    from ddbsync_local.demo import run_demo

    return run_demo(alias=args.alias, reset=args.reset, batch_size=args.batch_size, verbose=args.verbose)
