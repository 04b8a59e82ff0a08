"""The queue side of a replay: receive new messages, read the depth, make kept ones visible."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import aws_error

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["make_visible", "queue_depth", "receive"]


def receive(
    sqs: SQSClient, queue_url: str, max_messages: int | None, visibility_timeout: int
) -> Iterator[list[MessageTypeDef]]:
    """Batches of up to 10 new messages, until the queue is empty or ``max_messages``."""
    seen: set[str] = set()
    received = 0
    while max_messages is None or received < max_messages:
        wanted = 10 if max_messages is None else min(10, max_messages - received)
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
        received += len(fresh)
        yield fresh


def queue_depth(sqs: SQSClient, queue_url: str) -> int:
    """About how many messages are visible (``ApproximateNumberOfMessages``)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    ).get("Attributes", {})
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


def make_visible(
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
            echo(f"note: kept messages reappear after --visibility-timeout ({aws_error(e)})")
            return
