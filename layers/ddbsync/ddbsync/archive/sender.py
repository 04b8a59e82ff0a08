"""Archive lines to Firehose: PutRecordBatch within its quotas, failed entries retried until the deadline.

Firehose quotas (Amazon Data Firehose, "Quota"): at most 500 records and 4 MiB per
``PutRecordBatch`` call, at most 1,000 KiB per record (the caller keeps bigger lines out;
see ``archive/lines.py``). A call can succeed for some entries only (``FailedPutCount``, an
``ErrorCode`` per failed entry): only those are sent again. A whole call that fails (a
botocore ``ClientError`` such as ``ServiceUnavailableException``, or a ``BotoCoreError``)
is sent again whole. Retries wait with exponential backoff and full jitter
(``opensearch/bulk.py``'s ``backoff_s``) and stop when the invocation's time is up: what is
still unsent then is the caller's to report.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import aws_error, client_config
from ddbsync.deadline import Deadline, backoff_s
from ddbsync.observability import logger

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "Entry",
    "FirehoseClient",
    "SendOutcome",
    "batches",
    "firehose_client",
    "send_lines",
]

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024


class FirehoseClient(Protocol):
    """The one call of boto3's Firehose client used here (the dev stubs do not cover Firehose)."""

    def put_record_batch(
        self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]
    ) -> Mapping[str, Any]: ...


def firehose_client(region: str | None = None) -> FirehoseClient:
    """A Firehose client with bounded retries and timeouts (built at cold start)."""
    import boto3

    return cast("FirehoseClient", boto3.client("firehose", region_name=region, config=client_config()))


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive line and the batch position of the record it stands for."""

    position: int
    data: bytes


@dataclass(slots=True)
class SendOutcome:
    """Which entries Firehose accepted, which are still unsent, and how many retry rounds ran."""

    sent: list[Entry] = field(default_factory=list)
    unsent: list[Entry] = field(default_factory=list)
    retries: int = 0


def batches(
    entries: Sequence[Entry], max_records: int = MAX_BATCH_RECORDS, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[Entry]]:
    """Consecutive groups of at most ``max_records`` entries and ``max_bytes`` of data each."""
    groups: list[list[Entry]] = []
    group: list[Entry] = []
    size = 0
    for entry in entries:
        if group and (len(group) == max_records or size + len(entry.data) > max_bytes):
            groups.append(group)
            group, size = [], 0
        group.append(entry)
        size += len(entry.data)
    if group:
        groups.append(group)
    return groups


def _put(firehose: FirehoseClient, stream: str, group: list[Entry]) -> list[Entry]:
    """One PutRecordBatch call; returns the entries not accepted."""
    try:
        response = firehose.put_record_batch(
            DeliveryStreamName=stream, Records=[{"Data": e.data} for e in group]
        )
    except (BotoCoreError, ClientError) as e:
        logger.warning("PutRecordBatch failed", extra={"reason": aws_error(e), "records": len(group)})
        return list(group)
    if not response.get("FailedPutCount"):
        return []
    answers = list(response.get("RequestResponses", []))
    failed = [
        entry for i, entry in enumerate(group)
        if i >= len(answers) or answers[i].get("ErrorCode") or not answers[i].get("RecordId")
    ]  # fmt: skip
    codes = sorted({str(a.get("ErrorCode")) for a in answers if a.get("ErrorCode")})
    logger.warning("Firehose refused some records", extra={"failed": len(failed), "error_codes": codes})
    return failed


def send_lines(
    firehose: FirehoseClient,
    stream: str,
    entries: Sequence[Entry],
    deadline: Deadline,
    *,
    retry_base_ms: int,
    retry_max_ms: int,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> SendOutcome:
    """Send every entry, retrying the refused ones; never raises for Firehose failures."""
    outcome = SendOutcome()
    pending = list(entries)
    attempt = 0
    while pending:
        refused: list[Entry] = []
        for group in batches(pending):
            if deadline.expired():
                refused.extend(group)
                continue
            failed = _put(firehose, stream, group)
            failed_ids = {id(e) for e in failed}
            outcome.sent.extend(e for e in group if id(e) not in failed_ids)
            refused.extend(failed)
        pending = refused
        if not pending:
            break
        delay = backoff_s(attempt, retry_base_ms, retry_max_ms, rng)
        if deadline.left_s() <= delay:
            break
        sleep(delay)
        attempt += 1
        outcome.retries += 1
    outcome.unsent = pending
    return outcome
