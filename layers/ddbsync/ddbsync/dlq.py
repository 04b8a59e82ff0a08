"""The record DLQ: poison records go here whole, with the reason, before they count as handled."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.errors import DeadLetterError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DeadLetter", "send_dead_letters"]

# SQS accepts up to 256 KiB per message, and per SendMessageBatch call in total, in
# every region; keep room for attributes.
_MAX_BODY = 250 * 1024
_MAX_BATCH_BYTES = 250 * 1024


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

    def body(self) -> str:
        message: dict[str, object] = {
            "kind": "ddbsync.poison_record",
            "reason": self.reason,
            "error_type": self.error_type,
            "status": self.status,
            "doc_id": self.doc_id,
            "index": self.index,
            "sequence_number": self.sequence_number,
            "failed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "record": self.record,
        }
        text = json.dumps(message, default=str)
        if len(text.encode("utf-8")) > _MAX_BODY and isinstance(self.record, dict):
            # The new image and keys are what a replay needs; the old image is expendable.
            ddb = dict(self.record.get("dynamodb") or {})
            ddb.pop("OldImage", None)
            message["record"] = {**self.record, "dynamodb": ddb}
            message["truncated"] = ["dynamodb.OldImage"]
            text = json.dumps(message, default=str)
        return text


def _batches(letters: Sequence[DeadLetter]) -> list[tuple[list[DeadLetter], list[str]]]:
    """Group letters by at most 10 and at most _MAX_BATCH_BYTES of bodies per SQS call."""
    batches: list[tuple[list[DeadLetter], list[str]]] = []
    group: list[DeadLetter] = []
    bodies: list[str] = []
    size = 0
    for letter in letters:
        body = letter.body()
        length = len(body.encode("utf-8"))
        if group and (len(group) == 10 or size + length > _MAX_BATCH_BYTES):
            batches.append((group, bodies))
            group, bodies, size = [], [], 0
        group.append(letter)
        bodies.append(body)
        size += length
    if group:
        batches.append((group, bodies))
    return batches


def send_dead_letters(sqs: SQSClient, queue_url: str, letters: Sequence[DeadLetter]) -> None:
    """Send every letter (10 per SQS batch); raise DeadLetterError naming those not accepted."""
    failed: list[str] = []
    reasons: list[str] = []
    for group, bodies in _batches(letters):
        entries = [
            {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": {
                    "error_type": {"DataType": "String", "StringValue": letter.error_type},
                },
            }
            for i, (letter, body) in enumerate(zip(group, bodies, strict=True))
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as e:
            failed.extend(letter.sequence_number for letter in group)
            reasons.append(str(e))
            continue
        for entry in response.get("Failed", []):
            failed.append(group[int(entry["Id"])].sequence_number)
            reasons.append(entry.get("Message", entry.get("Code", "unknown")))
    if failed:
        raise DeadLetterError(
            f"record DLQ did not accept {len(failed)} record(s): {'; '.join(sorted(set(reasons)))}",
            failed,
        )
