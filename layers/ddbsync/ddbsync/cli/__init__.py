"""The ``ddbsync`` command line: argument parsing and printing only; the work is in the flows."""

from ddbsync.cli.commands import EXIT_MISSING_EXTRA, LOCAL_EXTRA, SUBCOMMANDS, Subcommand, build_parser, main

__all__ = ["EXIT_MISSING_EXTRA", "LOCAL_EXTRA", "SUBCOMMANDS", "Subcommand", "build_parser", "main"]
