"""``ddbsync replay``: re-send the record DLQ's records and the on-failure queue's stream ranges
through the stream indexer, or the archive's on-failure queue's ranges through the archiver,
deleting each message once what it stands for is handled.

* ``messages``: what a queue message is (record letter, letter stored in S3, batch pointer,
  unrecognised), as a typed value;
* ``letters``: the sink that holds still-poison letters, and the letters stored in S3;
* ``queue``: receive new messages, read the queue's depth, make kept messages visible;
* ``report``: what a run did, its exit code and summary;
* ``setup``: the settings (the indexer's or the archiver's) and OpenSearch answering;
* ``ranges``: a batch pointer's range read again and given to the indexer or the archiver;
* ``run``: the flow: each message gets a :class:`Verdict` (delete, keep, stop the run);
* ``dry_run``: ``--dry-run``: what the queue holds, counts and reasons only.

The command line is :mod:`ddbsync.cli.replay`.
"""

from ddbsync.replay.letters import HeldLetters, StoredLetters
from ddbsync.replay.messages import (
    BatchPointer,
    Kind,
    Message,
    RecordLetter,
    StoredLetter,
    Unrecognised,
    classify,
    describe,
)
from ddbsync.replay.report import EXIT_KEPT, EXIT_OK, EXIT_SETUP, ReplayReport
from ddbsync.replay.run import Replay, Verdict, replay

__all__ = [
    "EXIT_KEPT",
    "EXIT_OK",
    "EXIT_SETUP",
    "BatchPointer",
    "HeldLetters",
    "Kind",
    "Message",
    "RecordLetter",
    "Replay",
    "ReplayReport",
    "StoredLetter",
    "StoredLetters",
    "Unrecognised",
    "Verdict",
    "classify",
    "describe",
    "replay",
]
