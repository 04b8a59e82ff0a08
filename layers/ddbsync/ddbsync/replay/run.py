"""``ddbsync replay``: re-send what the stream indexer could not index, or the archiver could
not archive, once the cause is fixed.

The indexer's two queues feed it (docs/runbook.md); each message is handled by its shape
(:mod:`ddbsync.replay.messages`):

* a **record-DLQ** message (``ddbsync.dlq``) holds one whole Lambda stream record and the
  reason it failed, or, for a dead letter too big for SQS, the reason and the S3 object
  (``DEAD_LETTER_BUCKET``) that holds the whole letter: it is read back from there, and the
  object is deleted after its message;
* an **on-failure** message is Lambda's ``OnFailure`` record for a DynamoDB stream: its
  ``DDBStreamBatchInfo`` points at a shard range, which is read again from the stream
  (``dynamodbstreams``; the stream keeps 24 hours).

The records go through the same :class:`~ddbsync.indexer.StreamIndexer` as the Lambda, with
the same settings (``Settings.from_env``). With ``archive=True`` (``--archive-on-failure-queue``)
the queue is the archiver's on-failure queue: every message must be a batch pointer, and each
range goes through the same :class:`~ddbsync.archive.archiver.Archiver` as the archiver Lambda
(``ArchiveSettings.from_env``; no OpenSearch); :mod:`ddbsync.replay.ranges` holds the range
logic both share. Replaying is safe at any time: external versions
make an old record lose against a newer one already indexed (docs/versioning.md).

Each message gets a :class:`Verdict`. A message is deleted only when every record it stands
for is handled: indexed, deleted, known stale, skipped by configuration, or (for a stream
range) safely in the record DLQ. A record OpenSearch still rejects while the index already
holds a newer change of its item (a later modification or delete) is stale too:
*superseded*, counted apart. A record-DLQ record that is *still* poison is not sent to the
DLQ again (this run would receive it straight back): its message stays in the queue, the new
reason is printed and the command exits 1. When OpenSearch stops accepting writes the
verdict says ``stop`` and the run ends there. Nothing is ever lost by running it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.archive.archiver import Archiver
from ddbsync.archive.sender import FirehoseClient, firehose_client
from ddbsync.archive.settings import ArchiveSettings
from ddbsync.aws import aws_error, region_of_queue_url, sqs_client
from ddbsync.config import Settings
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.indexer import StreamIndexer
from ddbsync.opensearch.transport import OpenSearchTransport
from ddbsync.redact import short_reason
from ddbsync.replay.dry_run import dry_run as run_dry
from ddbsync.replay.letters import HeldLetters, StoredLetters
from ddbsync.replay.messages import (
    BatchPointer,
    Message,
    RecordLetter,
    StoredLetter,
    Unrecognised,
    classify,
    describe,
)
from ddbsync.replay.queue import make_visible, queue_depth, receive
from ddbsync.replay.ranges import DELETE, ArchiveRange, IndexRange, RangeTarget, Verdict, budget, replay_range
from ddbsync.replay.report import EXIT_SETUP, ReplayReport
from ddbsync.replay.setup import archive_settings, connect, index_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef
    from opensearchpy import OpenSearch

__all__ = ["Replay", "Verdict", "replay"]

ARCHIVE_OPTION = "--archive-on-failure-queue"
ON_FAILURE_OPTION = "--on-failure-queue"


def replay(
    queue_url: str,
    *,
    pointers_only: bool = False,
    archive: bool = False,
    dry_run: bool = False,
    max_messages: int | None = None,
    visibility_timeout: int = 300,
    settings: Settings | None = None,
    sqs: SQSClient | None = None,
    streams: DynamoDBStreamsClient | None = None,
    client: OpenSearch | None = None,
    s3: S3Client | None = None,
    firehose: FirehoseClient | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Replay ``queue_url``; return the exit code. Clients are built unless given (tests).

    ``archive``: the archiver's on-failure queue (batch pointers only), re-archived.
    """
    pointers_only = pointers_only or archive
    archiving: ArchiveSettings | None = None
    if not dry_run:
        archiving, settings = _read_settings(archive, settings, echo)
        if archiving is None and settings is None:
            return EXIT_SETUP
    chosen = archiving or settings
    region = (chosen.region if chosen else None) or region_of_queue_url(queue_url)
    try:
        sqs = sqs or sqs_client(region)
        depth = queue_depth(sqs, queue_url)
    except (BotoCoreError, ClientError) as e:
        echo(f"ERROR: cannot read queue {queue_url}: {aws_error(e)}")
        return EXIT_SETUP
    echo(f"queue {queue_url}: about {depth} message(s) visible")
    if dry_run:
        return run_dry(sqs, queue_url, pointers_only, max_messages, echo, archive=archive)
    if archiving is not None:
        echo(f"re-archiving to the Firehose delivery stream {archiving.archive_stream_name}")
        archiver = Archiver(archiving, firehose or firehose_client(archiving.region), sqs, s3=s3)
        run = Replay.archiving(archiver, sqs, streams=streams, region=region)
    else:
        assert settings is not None
        client = connect(settings, client, echo)
        if client is None:
            return EXIT_SETUP
        run = Replay.indexing(settings, sqs, client, s3=s3, streams=streams, region=region,
                              pointers_only=pointers_only)  # fmt: skip
    return _run(run, sqs, queue_url, max_messages, visibility_timeout, echo)


def _read_settings(
    archive: bool, settings: Settings | None, echo: Callable[[str], None]
) -> tuple[ArchiveSettings | None, Settings | None]:
    """The archiver's settings (archive) or the indexer's; (None, None) when they are wrong (printed)."""
    if archive:
        return archive_settings(echo), None
    return None, settings or index_settings(echo)


def _run(
    run: Replay, sqs: SQSClient, queue_url: str, max_messages: int | None, visibility_timeout: int,
    echo: Callable[[str], None],
) -> int:  # fmt: skip
    kept: list[str] = []  # receipt handles, made visible again at the end
    for batch in receive(sqs, queue_url, max_messages, visibility_timeout):
        run.report.received += len(batch)
        for sqs_message in batch:
            if not run.settle(sqs_message, queue_url, echo):
                kept.append(sqs_message["ReceiptHandle"])
        echo(run.report.batch_line())
        if run.report.stopped_early:
            echo(f"stopping: {run.report.stopped_early}; the rest stays in the queue")
            break
    make_visible(sqs, queue_url, kept, echo)
    run.report.print_summary(echo)
    return run.report.exit_code()


class Replay:
    """One run's clients and targets; :meth:`handle` gives one message its verdict.

    Build it with :meth:`indexing` (the indexer's queues) or :meth:`archiving` (the archiver's).
    """

    def __init__(
        self,
        sqs: SQSClient,
        ranges: RangeTarget,
        *,
        dlq_indexer: StreamIndexer | None = None,
        held: HeldLetters | None = None,
        s3: S3Client | None = None,
        streams: DynamoDBStreamsClient | None = None,
        region: str | None = None,
        pointers_only: bool = False,
        option: str = ON_FAILURE_OPTION,
    ) -> None:
        self.sqs = sqs
        self.ranges = ranges
        self.dlq_indexer = dlq_indexer
        self.held = held or HeldLetters()
        self.letters = StoredLetters(s3, region)
        self.streams = streams
        self.region = region
        self.pointers_only = pointers_only or dlq_indexer is None
        self.option = option  # the option that asks for batch pointers only, for the kept reason
        self.report = ReplayReport(archive=isinstance(ranges, ArchiveRange))

    @classmethod
    def indexing(
        cls,
        settings: Settings,
        sqs: SQSClient,
        client: OpenSearch,
        *,
        s3: S3Client | None = None,
        streams: DynamoDBStreamsClient | None = None,
        region: str | None = None,
        pointers_only: bool = False,
    ) -> Replay:
        """A replay into the index: record letters and ranges go through the stream indexer."""
        transport = OpenSearchTransport(client)
        held = HeldLetters()
        # Still-poison DLQ records are held (their message stays); poison records of a stream
        # range go to the record DLQ as in the Lambda, so the range's pointer can be deleted.
        dlq_indexer = StreamIndexer(settings, transport, sqs, client, dead_letters=held, s3=s3)
        ranges = IndexRange(StreamIndexer(settings, transport, sqs, client, s3=s3))
        return cls(sqs, ranges, dlq_indexer=dlq_indexer, held=held, s3=s3, streams=streams, region=region,
                   pointers_only=pointers_only)  # fmt: skip

    @classmethod
    def archiving(
        cls,
        archiver: Archiver,
        sqs: SQSClient,
        *,
        streams: DynamoDBStreamsClient | None = None,
        region: str | None = None,
    ) -> Replay:
        """A re-archive: batch pointers only, each range through the archiver."""
        return cls(sqs, ArchiveRange(archiver), streams=streams, region=region, option=ARCHIVE_OPTION)

    def settle(self, sqs_message: MessageTypeDef, queue_url: str, echo: Callable[[str], None]) -> bool:
        """Handle one SQS message: delete it when handled (True), or keep it and say why (False)."""
        message = classify(sqs_message.get("Body", ""))
        try:
            verdict = self.handle(message)
        except Exception as e:  # never leave a message hidden because of one bad message
            verdict = Verdict(False, "replay failed on this message: "
                              + short_reason(f"{type(e).__name__}: {e}"))  # fmt: skip
        ident = sqs_message.get("MessageId", "?")
        if verdict.delete:
            self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=sqs_message["ReceiptHandle"])
            self.report.deleted += 1
            problem = self.letters.discard(message) if isinstance(message, StoredLetter) else ""
            if problem:
                echo(f"  note: message {ident} deleted, but {problem}")
            return True
        self.report.kept += 1
        self.report.kept_reasons[verdict.reason] += 1
        echo(f"  KEPT message {ident} ({describe(message)}): {verdict.reason}")
        if verdict.stop:
            self.report.stopped_early = self.ranges.stopped
        return False

    def handle(self, message: Message) -> Verdict:
        """Send what ``message`` stands for through its target; say whether it may be deleted."""
        if isinstance(message, Unrecognised):
            return Verdict(False, f"{message.kind.value} (neither a record-DLQ message nor a batch pointer)")
        if isinstance(message, BatchPointer):
            return replay_range(message, self.ranges, self.report, self.streams, self.region)
        if self.pointers_only or self.dlq_indexer is None:
            return Verdict(False, f"a record-DLQ message, but {self.option} expects batch pointers")
        if isinstance(message, StoredLetter):
            loaded = self.letters.load(message)
            if loaded.record is None:
                return Verdict(False, loaded.problem)
            return self._replay_record(self.dlq_indexer, loaded.record)
        assert isinstance(message, RecordLetter)
        return self._replay_record(self.dlq_indexer, message.record)

    def _replay_record(self, indexer: StreamIndexer, record: object) -> Verdict:
        self.held.letters.clear()
        result = indexer.process([cast(RawRecord, record)], budget(indexer.settings.timeout_margin_ms))
        if result.failed_sequence_numbers:
            return Verdict(False, "not sent (OpenSearch unreachable, throttling or out of time)", stop=True)
        if result.poison:
            reason = "unknown: no reason"
            if self.held.letters:
                reason = f"{self.held.letters[0].error_type}: {self.held.letters[0].reason}"
            return Verdict(False, "still poison: " + short_reason(reason))
        self.report.add(result)
        return DELETE
