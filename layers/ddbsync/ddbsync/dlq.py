"""The record DLQ: poison records go here whole, with the reason, before they count as handled.

A *dead letter* is one JSON document: the whole Lambda stream record, why it failed and
where. It travels as compact UTF-8 JSON (``ensure_ascii=False``: an emoji costs its 4 UTF-8
bytes, not a 12-byte ``\\ud83d\\ude00`` escape). SQS accepts only the characters #x9 #xA #xD
#x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF in a message (SQS API reference, SendMessage);
JSON already escapes the C0 controls, and :func:`sqs_json` also writes lone surrogates and
U+FFFE/U+FFFF as ``\\u`` escapes, so the message is accepted and decodes to the same record.

A letter bigger than an SQS message (256 KiB with its attributes, the limit of every queue
that does not raise ``MaximumMessageSize``) is stored whole in S3 (``DEAD_LETTER_BUCKET``,
key ``dead-letters/<yyyy>/<mm>/<dd>/<uuid>.json``: the extended-client pattern) and the queue
gets a small pointer message with the reason and the object's place, no item data. Without
a bucket such a letter is not accepted (:class:`~ddbsync.errors.DeadLetterError` names it):
the record stays a batch item failure. A dead letter is never truncated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import LazyS3
from ddbsync.errors import DeadLetterError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "KIND",
    "S3_PREFIX",
    "SQS_MAX_BYTES",
    "DeadLetter",
    "DeadLetterSink",
    "LetterBucket",
    "SqsDeadLetters",
    "send_dead_letters",
    "sqs_json",
]

KIND = "ddbsync.poison_record"
# SQS's limit for one message (body and attributes) and for the sum of a SendMessageBatch
# call's messages: 262,144 bytes unless the queue's MaximumMessageSize is raised (ours is not).
SQS_MAX_BYTES = 262_144
S3_PREFIX = "dead-letters/"
# A pointer message carries the reason for the on-call; the whole reason is in the object.
_POINTER_REASON_CHARS = 4096

# Characters SQS refuses that json.dumps(ensure_ascii=False) writes as they are. They can
# only occur inside JSON strings, where a \u escape stands for the same code point.
_NOT_FOR_SQS = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def sqs_json(message: object) -> str:
    """Compact UTF-8 JSON that SQS accepts and ``json.loads`` turns back into ``message``.

    (A Python string holding a high surrogate directly followed by a low one would come back
    as one code point; a string parsed from JSON, as every Lambda event is, never holds such
    a pair.)
    """
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
    return _NOT_FOR_SQS.sub(_escape, text)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that cannot be indexed, and why."""

    record: object
    reason: str
    error_type: str
    sequence_number: str
    doc_id: str | None = None
    status: int | None = None
    index: str | None = None

    def message(self, failed_at: str | None = None) -> dict[str, object]:
        """The whole dead letter: what an inline SQS message, or the S3 object, holds."""
        return {
            "kind": KIND,
            "reason": self.reason,
            "error_type": self.error_type,
            "status": self.status,
            "doc_id": self.doc_id,
            "index": self.index,
            "sequence_number": self.sequence_number,
            "failed_at": failed_at or _now(),
            "record": self.record,
        }

    def body(self) -> str:
        """The whole dead letter as an SQS message body (whatever its size)."""
        return sqs_json(self.message())

    def pointer(self, failed_at: str, bucket: str, key: str, size: int) -> dict[str, object]:
        """The small message that stands for a letter stored in S3: no item data."""
        reason = self.reason
        if len(reason) > _POINTER_REASON_CHARS:
            reason = reason[: _POINTER_REASON_CHARS - 3] + "..."
        return {
            "kind": KIND,
            "reason": reason,
            "error_type": self.error_type,
            "status": self.status,
            "doc_id": self.doc_id,
            "index": self.index,
            "sequence_number": self.sequence_number,
            "failed_at": failed_at,
            "s3": {"bucket": bucket, "key": key, "bytes": size},
        }

    def attributes(self) -> dict[str, Any]:
        return {"error_type": {"DataType": "String", "StringValue": self.error_type}}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def message_bytes(body: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    """What SQS counts against its limit: the body's UTF-8 bytes plus each attribute's
    name, data type and value."""
    size = len(body.encode("utf-8", "surrogatepass"))
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(value.get("StringValue", "").encode("utf-8", "surrogatepass"))
    return size


class LetterBucket(LazyS3):
    """Where dead letters too big for SQS are stored (``DEAD_LETTER_BUCKET``).

    The S3 client is built on first use: most invocations never store a letter.
    """

    def __init__(
        self,
        name: str,
        *,
        kms_key_id: str | None = None,
        s3: S3Client | None = None,
        region: str | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        super().__init__(s3, region)
        self.name = name
        self.kms_key_id = kms_key_id
        self._new_id = new_id

    def key_for(self, failed_at: str) -> str:
        day = dt.datetime.fromisoformat(failed_at).astimezone(dt.UTC)
        return f"{S3_PREFIX}{day:%Y/%m/%d}/{self._new_id()}.json"

    def store(self, body: str, failed_at: str) -> tuple[str, int]:
        """Put one whole letter; return its key and size. Raises BotoCoreError/ClientError."""
        data = body.encode("utf-8")  # sqs_json escaped every surrogate
        key = self.key_for(failed_at)
        extra: dict[str, str] = {}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        # Without a key the bucket's default encryption applies (S3 encrypts every object).
        self.s3.put_object(
            Bucket=self.name, Key=key, Body=data, ContentType="application/json", **extra  # type: ignore[arg-type]
        )
        return key, len(data)

    def discard(self, key: str) -> None:
        """Best effort: remove an object whose pointer message never reached the queue."""
        # An orphan object holds no state anyone relies on: a failed delete is harmless (the
        # template grants the indexer s3:PutObject only; the bucket's lifecycle rule expires it).
        with contextlib.suppress(BotoCoreError, ClientError):
            self.s3.delete_object(Bucket=self.name, Key=key)


class DeadLetterSink(Protocol):
    """Where the indexer puts poison records: raises DeadLetterError for those not accepted."""

    def send(self, letters: Sequence[DeadLetter]) -> None: ...


class SqsDeadLetters:
    """The record DLQ (``RECORD_DLQ_URL``), with S3 for letters too big for a message."""

    def __init__(self, sqs: SQSClient, queue_url: str, bucket: LetterBucket | None = None) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.bucket = bucket

    @classmethod
    def configured(
        cls,
        sqs: SQSClient,
        queue_url: str,
        bucket: str | None,
        kms_key_id: str | None = None,
        *,
        s3: S3Client | None = None,
        region: str | None = None,
    ) -> SqsDeadLetters:
        """The DLQ as the settings name it (``RECORD_DLQ_URL``, ``DEAD_LETTER_BUCKET``, its key)."""
        letters = LetterBucket(bucket, kms_key_id=kms_key_id, s3=s3, region=region) if bucket else None
        return cls(sqs, queue_url, letters)

    def send(self, letters: Sequence[DeadLetter]) -> None:
        send_dead_letters(self.sqs, self.queue_url, letters, self.bucket)


@dataclass(slots=True)
class _Outgoing:
    letter: DeadLetter
    body: str
    attributes: dict[str, Any]
    size: int
    stored_key: str | None = None


def _prepare(
    letters: Sequence[DeadLetter], bucket: LetterBucket | None, failed: list[str], reasons: list[str]
) -> list[_Outgoing]:
    """Each letter as a message body; letters too big for SQS go to S3 behind a pointer."""
    out: list[_Outgoing] = []
    for letter in letters:
        failed_at = _now()
        body = sqs_json(letter.message(failed_at))
        attributes = letter.attributes()
        size = message_bytes(body, attributes)
        key = None
        if size > SQS_MAX_BYTES:
            if bucket is None:
                failed.append(letter.sequence_number)
                reasons.append(
                    f"a dead letter of {size} bytes is over SQS's {SQS_MAX_BYTES}-byte message limit "
                    "and DEAD_LETTER_BUCKET is not set"
                )
                continue
            try:
                key, stored = bucket.store(body, failed_at)
            except (BotoCoreError, ClientError) as e:
                failed.append(letter.sequence_number)
                reasons.append(f"cannot store a {size}-byte dead letter in s3://{bucket.name}: {e}")
                continue
            body = sqs_json(letter.pointer(failed_at, bucket.name, key, stored))
            size = message_bytes(body, attributes)
        out.append(_Outgoing(letter, body, attributes, size, key))
    return out


def _batches(outgoing: Sequence[_Outgoing]) -> list[list[_Outgoing]]:
    """At most 10 messages and SQS_MAX_BYTES (UTF-8 bytes with attributes) per SQS call."""
    batches: list[list[_Outgoing]] = []
    group: list[_Outgoing] = []
    size = 0
    for item in outgoing:
        if group and (len(group) == 10 or size + item.size > SQS_MAX_BYTES):
            batches.append(group)
            group, size = [], 0
        group.append(item)
        size += item.size
    if group:
        batches.append(group)
    return batches


def send_dead_letters(
    sqs: SQSClient, queue_url: str, letters: Sequence[DeadLetter], bucket: LetterBucket | None = None
) -> None:
    """Send every letter (10 per SQS batch, big ones via ``bucket``); raise DeadLetterError
    naming those not accepted."""
    failed: list[str] = []
    reasons: list[str] = []
    for group in _batches(_prepare(letters, bucket, failed, reasons)):
        entries = [
            {"Id": str(i), "MessageBody": item.body, "MessageAttributes": item.attributes}
            for i, item in enumerate(group)
        ]
        refused: list[_Outgoing] = []
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as e:
            refused = group
            reasons.append(str(e))
        else:
            for entry in response.get("Failed", []):
                refused.append(group[int(entry["Id"])])
                reasons.append(entry.get("Message", entry.get("Code", "unknown")))
        for item in refused:
            failed.append(item.letter.sequence_number)
            if item.stored_key is not None and bucket is not None:
                bucket.discard(item.stored_key)
    if failed:
        raise DeadLetterError(
            f"record DLQ did not accept {len(failed)} record(s): {'; '.join(sorted(set(reasons)))}",
            failed,
        )
