"""The ``ddbsync`` command line.

Every subcommand is one :class:`Subcommand` in :data:`SUBCOMMANDS`: a module
that exposes ``add_arguments(parser)`` and ``main(args) -> int``. Modules keep
heavy or optional imports (moto) inside the functions that need them.

moto comes with the ``local`` extra only (``pip install 'ddbsync[local]'``): the
local subcommands check for it before they start and say what to install.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["EXIT_MISSING_EXTRA", "LOCAL_EXTRA", "SUBCOMMANDS", "Subcommand", "build_parser", "main"]

LOCAL_EXTRA = "pip install 'ddbsync[local]'"
# Same code as argparse's usage errors: the command cannot run as installed.
EXIT_MISSING_EXTRA = 2


def moto_is_missing() -> bool:
    """True when a local subcommand would run moto in-process and moto cannot be imported.

    With ``AWS_ENDPOINT_URL`` set, a moto_server (or another endpoint) plays AWS and the
    subcommand never imports moto.
    """
    if os.environ.get("AWS_ENDPOINT_URL", "").strip():
        return False
    try:
        importlib.import_module("moto")
    except ImportError:
        return True
    return False


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A subcommand implemented by ``module`` (``add_arguments`` and ``main``)."""

    name: str
    help: str
    module: str
    # Runs AWS locally with moto (the ``local`` extra)...
    needs_moto: bool = False
    # ...unless this option is given: then it works on the deployed stack instead.
    remote_option: str | None = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Let the module declare its options."""
        add: Callable[[argparse.ArgumentParser], None] = importlib.import_module(
            self.module
        ).add_arguments
        add(parser)

    def run(self, args: argparse.Namespace) -> int:
        """Run the module's ``main``; its return value is the exit code."""
        remote = self.remote_option is not None and bool(getattr(args, self.remote_option, None))
        if self.needs_moto and not remote and moto_is_missing():
            print(
                f"ddbsync {self.name} plays its AWS services locally with moto, which is not "
                f"installed: {LOCAL_EXTRA} (or set AWS_ENDPOINT_URL to a running moto_server)",
                file=sys.stderr,
            )
            return EXIT_MISSING_EXTRA
        run: Callable[[argparse.Namespace], int] = importlib.import_module(self.module).main
        return run(args)


# The one place where subcommands are registered.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "demo",
        "run the stream indexer flow locally (moto + a real OpenSearch) and check the index",
        "ddbsync.cli.demo",
        needs_moto=True,
    ),
    Subcommand(
        "backfill",
        "rebuild an index alias from a point-in-time export with the backfill state machine, "
        "then swap the alias: locally (moto + a real OpenSearch), or with --stack NAME on the "
        "deployed state machine, following its progress until it ends",
        "ddbsync.cli.backfill",
        needs_moto=True,
        remote_option="stack",
    ),
    Subcommand(
        "replay",
        "re-send the record DLQ or the on-failure queue's stream ranges through the indexer; "
        "--archive-on-failure-queue re-archives the archiver's ranges",
        "ddbsync.cli.replay",
    ),
    Subcommand(
        "repair",
        "re-apply a lost stream window (--from T1 --to T2) into the live alias from an "
        "incremental export",
        "ddbsync.cli.repair",
    ),
    Subcommand(
        "rebuild",
        "replay the archive (--from-archive s3://bucket/prefix) into a new index then swap the "
        "alias, or into the live alias",
        "ddbsync.cli.rebuild",
    ),
    Subcommand(
        "doctor",
        "probe an OpenSearch endpoint (in a scratch index) for every feature ddbsync relies on "
        "and name the mode that fits",
        "ddbsync.cli.doctor",
    ),
    Subcommand(
        "status",
        "the pipeline's health on one screen (readers, queues, alias, backfill, counts, archive), "
        "with the command that fixes each problem",
        "ddbsync.cli.status",
    ),
    Subcommand(
        "purge-tombstones",
        "delete tombstones older than the replay window (--older-than 15d), raising the purge "
        "floor first so that no older change can bring an item back",
        "ddbsync.cli.purge",
    ),
    Subcommand(
        "verify",
        "compare the table with the index: missing, extra and stale documents "
        "(--repair fixes them); exit 1 when drift is found",
        "ddbsync.cli.verify",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="ddbsync", description="Keep OpenSearch in step with a DynamoDB table."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(subcommand=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return its exit code."""
    args = build_parser().parse_args(argv)
    command: Subcommand = args.subcommand
    return command.run(args)


if __name__ == "__main__":
    sys.exit(main())
