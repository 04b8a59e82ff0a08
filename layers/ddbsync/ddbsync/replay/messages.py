"""What a queue message is, as a typed value: read once, by its shape, never by its text.

* :class:`RecordLetter`: a record-DLQ message holding one whole Lambda stream record and the
  reason it failed (``ddbsync.dlq``);
* :class:`StoredLetter`: a record-DLQ message for a letter too big for SQS: the reason and
  the S3 object (``DEAD_LETTER_BUCKET``) that holds the whole letter;
* :class:`BatchPointer`: Lambda's ``OnFailure`` record for a DynamoDB stream, pointing at a
  shard range (``DDBStreamBatchInfo``);
* :class:`Unrecognised`: anything else (kept in the queue, never guessed at).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ddbsync.dlq import KIND

__all__ = [
    "BatchPointer",
    "Kind",
    "Message",
    "RecordLetter",
    "StoredLetter",
    "Unrecognised",
    "classify",
    "describe",
]


class Kind(enum.Enum):
    """The kinds a run counts and names (both letter shapes are record-DLQ messages)."""

    RECORD = "record-DLQ message"
    POINTER = "on-failure batch pointer"
    UNKNOWN = "unrecognised message"


@dataclass(frozen=True, slots=True)
class RecordLetter:
    """A record-DLQ message that holds the whole record."""

    kind: ClassVar[Kind] = Kind.RECORD
    record: object  # the Lambda stream record, as sent (the indexer judges it)
    sequence_number: str
    error_type: str
    reason: str


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A record-DLQ message whose whole letter is an S3 object (``bucket``/``key``: None if absent)."""

    kind: ClassVar[Kind] = Kind.RECORD
    bucket: str | None
    key: str | None
    sequence_number: str
    error_type: str
    reason: str

    @property
    def place(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class BatchPointer:
    """An on-failure batch pointer: a shard range to read again. Absent fields are None."""

    kind: ClassVar[Kind] = Kind.POINTER
    stream_arn: str | None
    shard_id: str | None
    start: str | None  # first sequence number, inclusive
    end: str | None  # last sequence number, inclusive
    batch_size: int | None
    first_arrival: str | None  # ISO-8601 time of the range's first record
    condition: str  # why Lambda gave up on the batch

    def missing(self) -> str | None:
        """The first field a replay needs that the pointer lacks, by its name in the message."""
        fields = (
            ("streamArn", self.stream_arn),
            ("shardId", self.shard_id),
            ("startSequenceNumber", self.start),
            ("endSequenceNumber", self.end),
        )
        return next((name for name, value in fields if value is None), None)


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """Neither a record-DLQ message nor a batch pointer."""

    kind: ClassVar[Kind] = Kind.UNKNOWN


_NO_CONDITION = "unknown condition"

Message = RecordLetter | StoredLetter | BatchPointer | Unrecognised


def classify(text: str) -> Message:
    """The message a queue message's body holds."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return Unrecognised()
    if not isinstance(body, dict):
        return Unrecognised()
    info = body.get("DDBStreamBatchInfo")
    if isinstance(info, dict):
        return _pointer(body, info)
    whole = "record" in body and "reason" in body
    stored = body.get("kind") == KIND and isinstance(body.get("s3"), dict) and "reason" in body
    if not (whole or stored):
        return Unrecognised()
    sequence_number = str(body.get("sequence_number", "?"))
    error_type, reason = str(body.get("error_type", "unknown")), str(body.get("reason", ""))
    where = body.get("s3")
    if isinstance(where, dict):  # the whole letter is in S3 (ddbsync.dlq)
        return StoredLetter(
            _text(where.get("bucket")), _text(where.get("key")), sequence_number, error_type, reason
        )
    return RecordLetter(body["record"], sequence_number, error_type, reason)


def describe(message: Message) -> str:
    """Which record or range a message stands for, without item data."""
    if isinstance(message, RecordLetter | StoredLetter):
        return f"record {message.sequence_number}"
    if isinstance(message, BatchPointer):
        shard, start, end = (_or_mark(v) for v in (message.shard_id, message.start, message.end))
        return f"{shard} {start}..{end}"
    return "unrecognised"


def _pointer(body: Mapping[str, object], info: Mapping[str, object]) -> BatchPointer:
    size = info.get("batchSize")
    arrival = info.get("approximateArrivalOfFirstRecord")
    context = body.get("requestContext")
    condition = context.get("condition", _NO_CONDITION) if isinstance(context, dict) else _NO_CONDITION
    return BatchPointer(
        stream_arn=_field(info, "streamArn"),
        shard_id=_field(info, "shardId"),
        start=_field(info, "startSequenceNumber"),
        end=_field(info, "endSequenceNumber"),
        batch_size=size if isinstance(size, int) else None,
        first_arrival=arrival if isinstance(arrival, str) else None,
        condition=str(condition),
    )


def _field(info: Mapping[str, object], name: str) -> str | None:
    return str(info[name]) if name in info else None


def _or_mark(value: str | None) -> str:
    return "?" if value is None else value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
