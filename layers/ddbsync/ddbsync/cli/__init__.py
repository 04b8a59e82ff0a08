"""The ``ddbsync`` command line: argument parsing and printing only; the work is in the flows.

* ``commands``: the parser, :data:`SUBCOMMANDS` (the one place subcommands are registered)
  and :func:`main`, the ``ddbsync`` entry point;
* ``replay``: ``ddbsync replay`` over :mod:`ddbsync.replay`;
* ``repair``: ``ddbsync repair`` over :mod:`ddbsync.repair`;
* ``rebuild``: ``ddbsync rebuild --from-archive`` over :mod:`ddbsync.rebuild`;
* ``doctor``: ``ddbsync doctor`` over :mod:`ddbsync.doctor`;
* ``status``: ``ddbsync status`` over :mod:`ddbsync.status`;
* ``purge``: ``ddbsync purge-tombstones`` over :mod:`ddbsync.purge`;
* ``demo``: ``ddbsync demo`` over :mod:`ddbsync_local.demo` (the ``local`` extra);
* ``backfill``: the local ``ddbsync backfill`` over :mod:`ddbsync_local.backfill_run` (the
  ``local`` extra).
"""

from ddbsync.cli.commands import EXIT_MISSING_EXTRA, LOCAL_EXTRA, SUBCOMMANDS, Subcommand, build_parser, main

__all__ = ["EXIT_MISSING_EXTRA", "LOCAL_EXTRA", "SUBCOMMANDS", "Subcommand", "build_parser", "main"]
