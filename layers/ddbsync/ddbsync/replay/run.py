"""``ddbsync replay``: re-send what the stream indexer could not index, once the cause is fixed.

Two queues feed it (docs/runbook.md); each message is handled by its shape:

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

A message is deleted only when every record it stands for is handled: indexed, deleted,
known stale, skipped by configuration, or (for a stream range) safely in the record DLQ.
A record OpenSearch still rejects while the index already holds a newer change of its item
(a later modification or delete) is stale too: *superseded*, counted apart.
A record-DLQ record that is *still* poison is not sent to the DLQ again (this run would
receive it straight back): its message stays in the queue, the new reason is printed and
the command exits 1. Nothing is ever lost by running it.
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError
from opensearchpy import exceptions as os_exc

from ddbsync.aws import LazyS3, sqs_client, streams_client
from ddbsync.config import Settings
from ddbsync.dlq import KIND, DeadLetter
from ddbsync.dynamodb.stream_range import RangeUnavailable, read_range
from ddbsync.errors import ConfigError
from ddbsync.indexer import BatchResult, StreamIndexer
from ddbsync.mapping import StreamRecord
from ddbsync.observability import quiet_logs
from ddbsync.opensearch.client import build_client
from ddbsync.opensearch.transport import OpenSearchTransport

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef
    from opensearchpy import OpenSearch

__all__ = [
    "EXIT_KEPT",
    "EXIT_OK",
    "EXIT_SETUP",
    "RangeUnavailable",
    "ReplayReport",
    "add_arguments",
    "main",
    "read_range",
    "replay",
]

EXIT_OK, EXIT_KEPT, EXIT_SETUP = 0, 1, 2

# Time given to one indexer call; the indexer stops retrying before it runs out.
_CALL_BUDGET_S = 60.0
# GetRecords may answer empty pages before the end of an open shard (AWS docs); bound the wait.
_STREAM_RETENTION_S = 24 * 3600
_REASON_CHARS = 300


class Kind(enum.Enum):
    RECORD = "record-DLQ message"
    POINTER = "on-failure batch pointer"
    UNKNOWN = "unrecognised message"


@dataclass(slots=True)
class ReplayReport:
    """What one run did: message counts, and record counts for the records it sent."""

    received: int = 0
    deleted: int = 0
    kept: int = 0
    replayed: int = 0  # records indexed, deleted (tombstones) or skipped by configuration
    stale: int = 0  # records older than what the index holds: nothing to do
    superseded: int = 0  # of the stale: still rejected, but the index holds a newer change
    to_record_dlq: int = 0  # poison records of a stream range, now whole in the record DLQ
    stopped_early: str | None = None
    kept_reasons: Counter[str] = field(default_factory=Counter)

    def exit_code(self) -> int:
        return EXIT_KEPT if self.kept or self.stopped_early else EXIT_OK


# -- the command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync replay``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--queue", metavar="URL",
                        help="queue to replay: the record DLQ or the on-failure queue (each "
                             "message is handled by its shape)")
    source.add_argument("--on-failure-queue", metavar="URL",
                        help="the on-failure queue: every message must be a batch pointer")
    parser.add_argument("--max-messages", type=int, default=None, metavar="N",
                        help="stop after receiving N messages (default: until the queue is empty)")
    parser.add_argument("--dry-run", action="store_true",
                        help="only report what the queue holds (counts and reasons); needs no "
                             "OpenSearch settings, sends and deletes nothing")
    parser.add_argument("--visibility-timeout", type=int, default=300, metavar="SECONDS",
                        help="how long a received message stays hidden while this run handles it "
                             "(default: %(default)s); kept messages are made visible again at the end")
    parser.add_argument("--verbose", action="store_true",
                        help="also show the indexer's JSON logs")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Entry point for the CLI: 0 all handled, 1 some messages kept, 2 cannot start."""
    queue_url: str = args.queue or args.on_failure_queue
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
            dry_run=args.dry_run,
            max_messages=args.max_messages,
            visibility_timeout=args.visibility_timeout,
        )


def replay(  # noqa: C901 - to be split with replay/
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
        try:
            settings = Settings.from_env()
        except ConfigError as e:
            echo(f"ERROR: {e}\nreplay uses the stream indexer's environment variables; copy them "
                 "from the function's configuration (docs/runbook.md).")  # fmt: skip
            return EXIT_SETUP
    region = (settings.region if settings else None) or _region_of_queue(queue_url)
    try:
        sqs = sqs or sqs_client(region)
        depth = _queue_depth(sqs, queue_url)
    except (BotoCoreError, ClientError) as e:
        echo(f"ERROR: cannot read queue {queue_url}: {_aws_error(e)}")
        return EXIT_SETUP
    echo(f"queue {queue_url}: about {depth} message(s) visible")
    if dry_run:
        return _dry_run(sqs, queue_url, pointers_only, max_messages, echo)

    assert settings is not None
    try:
        client = client or build_client(settings)
        info = client.info()
    except ConfigError as e:
        echo(f"ERROR: {e}")
        return EXIT_SETUP
    except os_exc.TransportError as e:
        echo(f"ERROR: OpenSearch at {settings.endpoint} does not answer ({_os_error(e)}); "
             "nothing was replayed and every message stays in the queue.")  # fmt: skip
        return EXIT_SETUP
    echo(f"OpenSearch {info.get('version', {}).get('number', '?')} at {settings.endpoint}, "
         f"alias {settings.index_alias}")  # fmt: skip

    transport = OpenSearchTransport(client)
    held = _HeldLetters()
    # Still-poison DLQ records are held (their message stays); poison records of a stream range
    # go to the record DLQ as in the Lambda, so the range's pointer can be deleted.
    dlq_indexer = StreamIndexer(settings, transport, sqs, client, dead_letters=held, s3=s3)
    range_indexer = StreamIndexer(settings, transport, sqs, client, s3=s3)
    letters = _StoredLetters(s3, region)
    report = ReplayReport()
    kept: dict[str, str] = {}  # message id -> receipt handle, made visible again at the end
    for batch in _receive(sqs, queue_url, max_messages, visibility_timeout, report):
        for message in batch:
            try:
                handled, note = _handle(
                    message, pointers_only, dlq_indexer, range_indexer, held, letters, report,
                    streams, region,
                )  # fmt: skip
            except Exception as e:  # never leave a message hidden because of one bad message
                handled, note = False, "replay failed on this message: " + _short(f"{type(e).__name__}: {e}")
            ident = message.get("MessageId", "?")
            if handled:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                report.deleted += 1
                problem = letters.discard(message)
                if problem:
                    echo(f"  note: message {ident} deleted, but {problem}")
            else:
                kept[ident] = message["ReceiptHandle"]
                report.kept += 1
                report.kept_reasons[note] += 1
                echo(f"  KEPT message {ident} ({_describe(message)}): {note}")
                if note.startswith(_UNSENT):
                    report.stopped_early = "OpenSearch stopped accepting writes"
        echo(f"  {report.received} received: {report.deleted} deleted, {report.kept} kept "
             f"({report.replayed} records replayed, {report.stale} stale, "
             f"{report.to_record_dlq} to the record DLQ)")  # fmt: skip
        if report.stopped_early:
            echo(f"stopping: {report.stopped_early}; the rest stays in the queue")
            break
    _make_visible(sqs, queue_url, list(kept.values()), echo)
    _summary(report, echo)
    return report.exit_code()


# -- one message ------------------------------------------------------------------------------

_UNSENT = "not sent"


def _handle(  # noqa: C901 - to be split with replay/
    message: MessageTypeDef,
    pointers_only: bool,
    dlq_indexer: StreamIndexer,
    range_indexer: StreamIndexer,
    held: _HeldLetters,
    letters: _StoredLetters,
    report: ReplayReport,
    streams: DynamoDBStreamsClient | None,
    region: str | None,
) -> tuple[bool, str]:
    """Handle one message; return (whether it may be deleted, why not)."""
    kind, body = _classify(message.get("Body", ""))
    if kind is Kind.UNKNOWN:
        return False, f"{kind.value} (neither a record-DLQ message nor a batch pointer)"
    if pointers_only and kind is Kind.RECORD:
        return False, "a record-DLQ message, but --on-failure-queue expects batch pointers"
    if kind is Kind.RECORD:
        if isinstance(body.get("s3"), Mapping):
            stored, problem = letters.load(cast(Mapping[str, object], body["s3"]))
            if stored is None:
                return False, problem
            body = stored
        record = body["record"]
        held.letters.clear()
        result = dlq_indexer.process([cast(StreamRecord, record)], _budget(dlq_indexer.settings))
        if result.failed_sequence_numbers:
            return False, f"{_UNSENT} (OpenSearch unreachable, throttling or out of time)"
        if result.poison:
            reason = "unknown: no reason"
            if held.letters:
                reason = f"{held.letters[0].error_type}: {held.letters[0].reason}"
            return False, "still poison: " + _short(reason)
        _count(result, report)
        return True, ""

    info = body["DDBStreamBatchInfo"]
    assert isinstance(info, Mapping)
    try:
        stream_arn = str(info["streamArn"])
        streams = streams or streams_client(_region_of_arn(stream_arn) or region)
        records = read_range(
            streams, stream_arn, str(info["shardId"]),
            str(info["startSequenceNumber"]), str(info["endSequenceNumber"]),
        )  # fmt: skip
    except RangeUnavailable as e:
        return False, (
            f"the stream no longer has this range ({e.reason}). DynamoDB streams keep 24 hours; "
            "repair that window with `ddbsync repair --from ... --to ...` (docs/runbook.md)"
        )
    except KeyError as e:
        return False, f"batch pointer without {e.args[0]}"
    except (BotoCoreError, ClientError) as e:
        return False, f"cannot read the stream: {_aws_error(e)}"
    expected = info.get("batchSize")
    if isinstance(expected, int) and expected != len(records):
        return False, f"the range holds {len(records)} records, the pointer says {expected}"
    result = range_indexer.process(records, _budget(range_indexer.settings))
    if result.failed_sequence_numbers:
        unsent = len(set(result.failed_sequence_numbers))
        return False, (
            f"{_UNSENT}: {unsent} of {len(records)} records (OpenSearch unreachable, throttling, "
            "out of time, or the record DLQ refused them)"
        )
    _count(result, report)
    report.to_record_dlq += result.poison
    return True, ""


def _classify(text: str) -> tuple[Kind, dict[str, object]]:
    try:
        body = json.loads(text)
    except ValueError:
        return Kind.UNKNOWN, {}
    if not isinstance(body, dict):
        return Kind.UNKNOWN, {}
    if isinstance(body.get("DDBStreamBatchInfo"), dict):
        return Kind.POINTER, body
    if "record" in body and "reason" in body:
        return Kind.RECORD, body
    if body.get("kind") == KIND and isinstance(body.get("s3"), dict) and "reason" in body:
        return Kind.RECORD, body  # the whole letter is in S3 (ddbsync.dlq)
    return Kind.UNKNOWN, body


def _describe(message: MessageTypeDef) -> str:
    """Which record or range a message stands for, without item data."""
    kind, body = _classify(message.get("Body", ""))
    if kind is Kind.RECORD:
        return f"record {body.get('sequence_number', '?')}"
    if kind is Kind.POINTER:
        info = cast(Mapping[str, object], body["DDBStreamBatchInfo"])
        return (f"{info.get('shardId', '?')} {info.get('startSequenceNumber', '?')}.."
                f"{info.get('endSequenceNumber', '?')}")  # fmt: skip
    return "unrecognised"


def _count(result: BatchResult, report: ReplayReport) -> None:
    report.replayed += result.indexed + result.deleted + result.skipped
    report.stale += result.stale
    report.superseded += result.superseded


def _budget(settings: Settings) -> Callable[[], int]:
    """A ``remaining_ms`` like Lambda's context gives: a fresh budget for one call."""
    deadline = time.monotonic() + _CALL_BUDGET_S + settings.timeout_margin_ms / 1000

    def remaining_ms() -> int:
        return max(0, int((deadline - time.monotonic()) * 1000))

    return remaining_ms


class _HeldLetters:
    """The record-DLQ replay's dead-letter sink: keeps letters instead of sending them."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)


class _StoredLetters(LazyS3):
    """Reads dead letters stored in S3 (``DEAD_LETTER_BUCKET``) and deletes them once replayed."""

    def load(self, where: Mapping[str, object]) -> tuple[dict[str, object] | None, str]:
        """The whole letter, or None and why not (the message is kept)."""
        bucket, key = where.get("bucket"), where.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str):
            return None, "a record-DLQ pointer without an S3 bucket and key"
        place = f"s3://{bucket}/{key}"
        try:
            data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                return None, (
                    f"the dead letter {place} is missing ({code}): the message holds only the "
                    "reason, not the record; delete the message by hand once the item is checked "
                    "or repaired (docs/runbook.md)"
                )
            return None, f"cannot read the dead letter {place}: {_aws_error(e)}"
        except BotoCoreError as e:
            return None, f"cannot read the dead letter {place}: {_aws_error(e)}"
        try:
            letter = json.loads(data)
        except ValueError:
            letter = None
        if not isinstance(letter, dict) or "record" not in letter:
            return None, f"{place} is not a ddbsync dead letter"
        return letter, ""

    def discard(self, message: MessageTypeDef) -> str:
        """Delete the S3 object of a deleted pointer message; '' or what went wrong."""
        kind, body = _classify(message.get("Body", ""))
        where = body.get("s3") if kind is Kind.RECORD else None
        if not isinstance(where, Mapping):
            return ""
        bucket, key = str(where.get("bucket")), str(where.get("key"))
        try:
            self.s3.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as e:
            return (f"its dead letter s3://{bucket}/{key} could not be deleted ({_aws_error(e)}); "
                    "delete it by hand")  # fmt: skip
        return ""


# -- the queue --------------------------------------------------------------------------------


def _receive(
    sqs: SQSClient,
    queue_url: str,
    max_messages: int | None,
    visibility_timeout: int,
    report: ReplayReport,
) -> Iterator[list[MessageTypeDef]]:
    """Batches of up to 10 new messages, until the queue is empty or ``max_messages``."""
    seen: set[str] = set()
    while max_messages is None or report.received < max_messages:
        wanted = 10 if max_messages is None else min(10, max_messages - report.received)
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=wanted, WaitTimeSeconds=1,
            VisibilityTimeout=visibility_timeout,
        ).get("Messages", [])  # fmt: skip
        # A message seen before means the run outlived --visibility-timeout: the queue holds
        # nothing new for this run.
        fresh = [m for m in got if m.get("MessageId") not in seen]
        if not fresh:
            return
        seen.update(m.get("MessageId", "") for m in fresh)
        report.received += len(fresh)
        yield fresh


def _queue_depth(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    ).get("Attributes", {})
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


def _make_visible(
    sqs: SQSClient, queue_url: str, handles: Sequence[str], echo: Callable[[str], None]
) -> None:
    """Kept messages become visible again now, for the depth alarm and the next run."""
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, handle in enumerate(handles[start : start + 10])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as e:
            echo(f"note: kept messages reappear after --visibility-timeout ({_aws_error(e)})")
            return


def _dry_run(  # noqa: C901 - to be split with replay/
    sqs: SQSClient,
    queue_url: str,
    pointers_only: bool,
    max_messages: int | None,
    echo: Callable[[str], None],
) -> int:
    report = ReplayReport()
    kinds: Counter[Kind] = Counter()
    reasons: Counter[str] = Counter()
    in_s3: Counter[str] = Counter()  # bucket -> letters stored there
    records_in_ranges = 0
    aged = 0
    receipts: list[str] = []
    for batch in _receive(sqs, queue_url, max_messages, 60, report):
        for message in batch:
            receipts.append(message["ReceiptHandle"])
            kind, body = _classify(message.get("Body", ""))
            kinds[kind] += 1
            if kind is Kind.RECORD:
                reasons[_short(f"{body.get('error_type', 'unknown')}: {body.get('reason', '')}")] += 1
                where = body.get("s3")
                if isinstance(where, Mapping):
                    in_s3[str(where.get("bucket"))] += 1
            elif kind is Kind.POINTER:
                info = cast(Mapping[str, object], body["DDBStreamBatchInfo"])
                size = info.get("batchSize")
                records_in_ranges += size if isinstance(size, int) else 0
                if _older_than_retention(info.get("approximateArrivalOfFirstRecord")):
                    aged += 1
                condition = cast(Mapping[str, object], body.get("requestContext") or {}).get(
                    "condition", "unknown condition"
                )
                reasons[f"batch pointer: {condition}"] += 1
    _make_visible(sqs, queue_url, receipts, echo)
    echo(f"dry run: {report.received} message(s) read, nothing sent or deleted")
    for kind, count in kinds.items():
        suffix = ""
        if kind is Kind.RECORD and pointers_only:
            suffix = " (would be kept: --on-failure-queue expects batch pointers)"
        if kind is Kind.UNKNOWN:
            suffix = " (would be kept)"
        echo(f"  {count} {kind.value}(s){suffix}")
    for reason, count in reasons.most_common():
        echo(f"    {count} x {reason}")
    for bucket, count in in_s3.items():
        echo(f"    {count} of the record-DLQ messages point at a dead letter stored whole in "
             f"s3://{bucket}/ (too big for SQS): replay reads it from there")  # fmt: skip
    if kinds[Kind.POINTER]:
        echo(f"  batch pointers cover {records_in_ranges} stream records; would re-read them "
             "from the stream and index them")  # fmt: skip
    if aged:
        echo(f"  {aged} pointer(s) start more than 24 h ago: the stream has probably trimmed them; "
             "those need `ddbsync repair` over their window (docs/runbook.md)")  # fmt: skip
    if kinds[Kind.RECORD]:
        echo(f"  would replay {kinds[Kind.RECORD]} record(s) through the indexer and delete each "
             "message once its record is indexed or found stale")  # fmt: skip
    return EXIT_OK


# -- output helpers ---------------------------------------------------------------------------


def _summary(report: ReplayReport, echo: Callable[[str], None]) -> None:
    echo(f"done: {report.received} message(s) received, {report.deleted} deleted, "
         f"{report.kept} kept in the queue")  # fmt: skip
    echo(f"  records replayed {report.replayed}, stale {report.stale}, "
         f"sent to the record DLQ {report.to_record_dlq}, still failing {report.kept}")  # fmt: skip
    if report.superseded:
        echo(f"  stale (superseded): {report.superseded} record(s) OpenSearch still rejects, but the "
             "index already holds a newer change of the item; their messages were deleted")  # fmt: skip
    for reason, count in report.kept_reasons.most_common():
        echo(f"  still failing: {count} x {reason}")
    if report.kept:
        echo("fix the cause and run the same command again; kept messages were not changed")


# OpenSearch quotes the offending value (and the document id, built from the keys) in its
# reasons: replay prints reasons for the on-call, never item data.
_QUOTED = re.compile(r"(?<![A-Za-z])'[^']*'|\"[^\"]*\"|(?<=value )\([^)]*\)")


def _short(text: str) -> str:
    """A reason fit to print: one line, quoted values replaced by ``…``, at most 300 characters."""
    text = _QUOTED.sub(lambda m: m.group(0)[0] + "…" + m.group(0)[-1], " ".join(text.split()))
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def _aws_error(e: BotoCoreError | ClientError) -> str:
    if isinstance(e, ClientError):
        error = e.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(e)


def _os_error(e: os_exc.TransportError) -> str:
    status = e.status_code if isinstance(e.status_code, int) else None
    return f"HTTP {status}: {e.error}" if status else str(e.error)


def _region_of_queue(url: str) -> str | None:
    match = re.match(r"https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", url)
    return match.group(1) if match else None


def _region_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def _older_than_retention(iso: object) -> bool:
    if not isinstance(iso, str):
        return False
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (datetime.now(UTC) - when).total_seconds() > _STREAM_RETENTION_S


