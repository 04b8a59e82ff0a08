"""``ddbsync replay``: its options, and the call into :mod:`ddbsync.replay`."""

from __future__ import annotations

import argparse
import logging

from ddbsync.observability import quiet_logs
from ddbsync.replay import EXIT_SETUP, replay

__all__ = ["add_arguments", "main"]

ARCHIVE_HELP = (
    "the archiver's on-failure queue (stack output ArchiveOnFailureQueueUrl): every message must "
    "be a batch pointer; each range is read again from the stream and its records put to the "
    "archive's Firehose stream, as the archiver does. Needs the archiver function's environment "
    "(ARCHIVE_STREAM_NAME, RECORD_DLQ_URL, ...), no OpenSearch settings. A pointer is deleted "
    "once every record of its range is accepted by Firehose or in the record DLQ. A range "
    "archived in part before gets some lines twice: harmless (a rebuild applies lines by "
    "version, the copies are stale). A range the stream no longer has (24 h) is kept: the "
    "archive has a gap there"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync replay``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--queue", metavar="URL",
                        help="queue to replay: the record DLQ or the on-failure queue (each "
                             "message is handled by its shape)")
    source.add_argument("--on-failure-queue", metavar="URL",
                        help="the on-failure queue: every message must be a batch pointer")
    source.add_argument("--archive-on-failure-queue", metavar="URL", help=ARCHIVE_HELP)
    parser.add_argument("--max-messages", type=int, default=None, metavar="N",
                        help="stop after receiving N messages (default: until the queue is empty)")
    parser.add_argument("--dry-run", action="store_true",
                        help="only report what the queue holds (counts and reasons); needs no "
                             "OpenSearch or archive settings, sends and deletes nothing")
    parser.add_argument("--visibility-timeout", type=int, default=300, metavar="SECONDS",
                        help="how long a received message stays hidden while this run handles it "
                             "(default: %(default)s); kept messages are made visible again at the end")
    parser.add_argument("--verbose", action="store_true",
                        help="also show the indexer's (or archiver's) JSON logs")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Entry point for the CLI: 0 all handled, 1 some messages kept, 2 cannot start."""
    queue_url: str = args.queue or args.on_failure_queue or args.archive_on_failure_queue
    if args.max_messages is not None and args.max_messages < 1:
        print("ERROR: --max-messages must be at least 1")
        return EXIT_SETUP
    if not 0 <= args.visibility_timeout <= 43_200:
        print("ERROR: --visibility-timeout must be 0..43200 seconds")
        return EXIT_SETUP
    with quiet_logs(args.verbose, logging.CRITICAL):
        return replay(
            queue_url,
            pointers_only=args.on_failure_queue is not None,
            archive=args.archive_on_failure_queue is not None,
            dry_run=args.dry_run,
            max_messages=args.max_messages,
            visibility_timeout=args.visibility_timeout,
        )
