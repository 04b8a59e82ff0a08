"""``ddbsync replay``: re-send what the stream indexer could not index, once the cause is fixed.

Two queues feed it (docs/runbook.md); each message is handled by its shape
(:mod:`ddbsync.replay.messages`):

* a **record-DLQ** message (``ddbsync.dlq``) holds one whole Lambda stream record and the
  reason it failed, or, for a dead letter too big for SQS, the reason and the S3 object
  (``DEAD_LETTER_BUCKET``) that holds the whole letter: it is read back from there, and the
  object is deleted after its message;
* an **on-failure** message is Lambda's ``OnFailure`` record for a DynamoDB stream: its
  ``DDBStreamBatchInfo`` points at a shard range, which is read again from the stream
  (``dynamodbstreams``; the stream keeps 24 hours).

The records go through the same :class:`~ddbsync.indexer.StreamIndexer` as the Lambda, with
the same settings (``Settings.from_env``). Replaying is safe at any time: external versions
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

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError
from opensearchpy import exceptions as os_exc

from ddbsync.aws import aws_error, region_of_arn, region_of_queue_url, sqs_client, streams_client
from ddbsync.config import Settings
from ddbsync.dynamodb.stream import RawRecord
from ddbsync.dynamodb.stream_range import read_range
from ddbsync.errors import ConfigError, RangeUnavailable
from ddbsync.indexer import StreamIndexer
from ddbsync.opensearch.client import build_client
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
from ddbsync.replay.report import EXIT_SETUP, ReplayReport

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef
    from opensearchpy import OpenSearch

__all__ = ["Replay", "Verdict", "replay"]

# Time given to one indexer call; the indexer stops retrying before it runs out.
_CALL_BUDGET_S = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one message: delete it, or keep it for ``reason``; ``stop`` ends the run
    (OpenSearch stopped accepting writes: the rest stays in the queue)."""

    delete: bool
    reason: str = ""
    stop: bool = False


DELETE = Verdict(delete=True)


def replay(
    queue_url: str,
    *,
    pointers_only: bool = False,
    dry_run: bool = False,
    max_messages: int | None = None,
    visibility_timeout: int = 300,
    settings: Settings | None = None,
    sqs: SQSClient | None = None,
    streams: DynamoDBStreamsClient | None = None,
    client: OpenSearch | None = None,
    s3: S3Client | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Replay ``queue_url``; return the exit code. Clients are built unless given (tests)."""
    if not dry_run and settings is None:
        settings = _settings(echo)
        if settings is None:
            return EXIT_SETUP
    region = (settings.region if settings else None) or region_of_queue_url(queue_url)
    try:
        sqs = sqs or sqs_client(region)
        depth = queue_depth(sqs, queue_url)
    except (BotoCoreError, ClientError) as e:
        echo(f"ERROR: cannot read queue {queue_url}: {aws_error(e)}")
        return EXIT_SETUP
    echo(f"queue {queue_url}: about {depth} message(s) visible")
    if dry_run:
        return run_dry(sqs, queue_url, pointers_only, max_messages, echo)
    assert settings is not None
    client = _connect(settings, client, echo)
    if client is None:
        return EXIT_SETUP
    run = Replay(settings, sqs, client, s3=s3, streams=streams, region=region,
                 pointers_only=pointers_only)  # fmt: skip
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


def _settings(echo: Callable[[str], None]) -> Settings | None:
    try:
        return Settings.from_env()
    except ConfigError as e:
        echo(f"ERROR: {e}\nreplay uses the stream indexer's environment variables; copy them "
             "from the function's configuration (docs/runbook.md).")  # fmt: skip
        return None


def _connect(settings: Settings, client: OpenSearch | None, echo: Callable[[str], None]) -> OpenSearch | None:
    """The OpenSearch client, once the server answers; None (and why, printed) when it cannot be used."""
    try:
        client = client or build_client(settings)
        info = client.info()
    except ConfigError as e:
        echo(f"ERROR: {e}")
        return None
    except os_exc.TransportError as e:
        echo(f"ERROR: OpenSearch at {settings.endpoint} does not answer ({_os_error(e)}); "
             "nothing was replayed and every message stays in the queue.")  # fmt: skip
        return None
    echo(f"OpenSearch {info.get('version', {}).get('number', '?')} at {settings.endpoint}, "
         f"alias {settings.index_alias}")  # fmt: skip
    return client


class Replay:
    """One run's indexers and clients; :meth:`handle` gives one message its verdict."""

    def __init__(
        self,
        settings: Settings,
        sqs: SQSClient,
        client: OpenSearch,
        *,
        s3: S3Client | None = None,
        streams: DynamoDBStreamsClient | None = None,
        region: str | None = None,
        pointers_only: bool = False,
    ) -> None:
        transport = OpenSearchTransport(client)
        self.sqs = sqs
        self.held = HeldLetters()
        # Still-poison DLQ records are held (their message stays); poison records of a stream
        # range go to the record DLQ as in the Lambda, so the range's pointer can be deleted.
        self.dlq_indexer = StreamIndexer(settings, transport, sqs, client, dead_letters=self.held, s3=s3)
        self.range_indexer = StreamIndexer(settings, transport, sqs, client, s3=s3)
        self.letters = StoredLetters(s3, region)
        self.streams = streams
        self.region = region
        self.pointers_only = pointers_only
        self.report = ReplayReport()

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
            self.report.stopped_early = "OpenSearch stopped accepting writes"
        return False

    def handle(self, message: Message) -> Verdict:
        """Send what ``message`` stands for through the indexer; say whether it may be deleted."""
        if isinstance(message, Unrecognised):
            return Verdict(False, f"{message.kind.value} (neither a record-DLQ message nor a batch pointer)")
        if isinstance(message, BatchPointer):
            return self._replay_range(message)
        if self.pointers_only:
            return Verdict(False, "a record-DLQ message, but --on-failure-queue expects batch pointers")
        if isinstance(message, StoredLetter):
            loaded = self.letters.load(message)
            if loaded.record is None:
                return Verdict(False, loaded.problem)
            return self._replay_record(loaded.record)
        assert isinstance(message, RecordLetter)
        return self._replay_record(message.record)

    def _replay_record(self, record: object) -> Verdict:
        self.held.letters.clear()
        result = self.dlq_indexer.process([cast(RawRecord, record)], _budget(self.dlq_indexer.settings))
        if result.failed_sequence_numbers:
            return Verdict(False, "not sent (OpenSearch unreachable, throttling or out of time)", stop=True)
        if result.poison:
            reason = "unknown: no reason"
            if self.held.letters:
                reason = f"{self.held.letters[0].error_type}: {self.held.letters[0].reason}"
            return Verdict(False, "still poison: " + short_reason(reason))
        self.report.add(result)
        return DELETE

    def _replay_range(self, pointer: BatchPointer) -> Verdict:
        arn, shard, start, end = pointer.stream_arn, pointer.shard_id, pointer.start, pointer.end
        if arn is None or shard is None or start is None or end is None:
            return Verdict(False, f"batch pointer without {pointer.missing()}")
        try:
            streams = self.streams or streams_client(region_of_arn(arn) or self.region)
            records = read_range(streams, arn, shard, start, end)
        except RangeUnavailable as e:
            return Verdict(False, (
                f"the stream no longer has this range ({e.reason}). DynamoDB streams keep 24 hours; "
                "repair that window with `ddbsync repair --from ... --to ...` (docs/runbook.md)"
            ))  # fmt: skip
        except (BotoCoreError, ClientError) as e:
            return Verdict(False, f"cannot read the stream: {aws_error(e)}")
        expected = pointer.batch_size
        if expected is not None and expected != len(records):
            return Verdict(False, f"the range holds {len(records)} records, the pointer says {expected}")
        result = self.range_indexer.process(records, _budget(self.range_indexer.settings))
        if result.failed_sequence_numbers:
            unsent = len(set(result.failed_sequence_numbers))
            return Verdict(False, (
                f"not sent: {unsent} of {len(records)} records (OpenSearch unreachable, throttling, "
                "out of time, or the record DLQ refused them)"
            ), stop=True)  # fmt: skip
        self.report.add(result)
        self.report.to_record_dlq += result.poison
        return DELETE


def _budget(settings: Settings) -> Callable[[], int]:
    """A ``remaining_ms`` like Lambda's context gives: a fresh budget for one call."""
    deadline = time.monotonic() + _CALL_BUDGET_S + settings.timeout_margin_ms / 1000

    def remaining_ms() -> int:
        return max(0, int((deadline - time.monotonic()) * 1000))

    return remaining_ms


def _os_error(e: os_exc.TransportError) -> str:
    status = e.status_code if isinstance(e.status_code, int) else None
    return f"HTTP {status}: {e.error}" if status else str(e.error)
