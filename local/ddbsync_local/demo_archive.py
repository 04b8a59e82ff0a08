"""The demo's archive step: the archiver reads the same stream and the archive lands in S3.

The archiver (:func:`ddbsync.archive.handler.make_handler`) is the stream's second
reader: its own :class:`~ddbsync_local.esm.EventSourceMapping` over the moto stream the
indexer reads, from the start of the stream, with its own checkpoints and on-failure
queue, as the template's ``ArchiverFunction`` has. Its Firehose client is
:class:`~ddbsync_local.firehose.LocalFirehose` playing the template's
``ArchiveDeliveryStream`` (the JQ partitions, the delimiter, GZIP) into a moto bucket.
After the stream is read the buffers are flushed (the buffer interval running out) and
every object is read back: each line must be under the partition of its own
``ApproximateCreationDateTime`` (UTC) and table, once, with nothing under the error prefix
and nothing in the record DLQ or the on-failure queue.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ddbsync.archive.handler import make_handler
from ddbsync.archive.settings import ArchiveSettings
from ddbsync.observability import quiet_logs
from ddbsync_local.esm import EsmConfig, EventSourceMapping, sqs_on_failure
from ddbsync_local.firehose import LocalFirehose, stream_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

__all__ = ["ArchiveOutcome", "rebuild_from_archive", "run_archive"]


@dataclass(slots=True)
class ArchiveOutcome:
    """Where the archive is and what it holds (the rebuild step reads it from here)."""

    bucket: str
    keys: list[str] = field(default_factory=list)  # data objects, sorted
    lines: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/"


def _empty_bucket(s3: S3Client, bucket: str) -> None:
    """Create the demo's archive bucket, or empty it (left over on a moto_server)."""
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        region = s3.meta.region_name
        if region and region != "us-east-1":
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        else:
            s3.create_bucket(Bucket=bucket)
        return
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _partition(line: dict[str, object]) -> str:
    ddb = line.get("dynamodb")
    when = ddb.get("ApproximateCreationDateTime") if isinstance(ddb, dict) else None
    if not isinstance(when, int | float):
        return "(no ApproximateCreationDateTime)"
    at = datetime.fromtimestamp(int(when // 1), UTC)
    return f"table={line.get('tableName')}/dt={at:%Y-%m-%d}/hour={at:%H}/"


def _read_back(s3: S3Client, outcome: ArchiveOutcome, keys: list[str]) -> Counter[str]:
    """Print each object with its line count; check every line's partition; count sequence numbers."""
    seen: Counter[str] = Counter()
    for key in sorted(keys):
        body = gzip.decompress(s3.get_object(Bucket=outcome.bucket, Key=key)["Body"].read())
        lines = [json.loads(raw) for raw in body.split(b"\n")[:-1]]
        if not body.endswith(b"\n"):
            outcome.problems.append(f"{key} does not end with the delimiter")
        print(f"   {key}  {_count(len(lines), 'line')}")
        if key.startswith("errors/"):
            outcome.problems.append(f"{key}: {len(lines)} lines Firehose could not partition")
            continue
        outcome.keys.append(key)
        outcome.lines += len(lines)
        for line in lines:
            if not key.startswith(_partition(line)):
                outcome.problems.append(f"a line of {_partition(line)} is under {key}")
            seen[str(line.get("dynamodb", {}).get("SequenceNumber"))] += 1
    return seen


def run_archive(
    stream_arn: str,
    table: str,
    sqs: SQSClient,
    s3: S3Client,
    dlq_url: str,
    *,
    batch_size: int = 100,
    verbose: bool = False,
) -> ArchiveOutcome:
    """Archive the whole stream through the local Firehose; print the objects and a verdict."""
    outcome = ArchiveOutcome(bucket=f"{table}-archive")
    _empty_bucket(s3, outcome.bucket)
    firehose = LocalFirehose(s3, outcome.bucket)
    stream_name = f"{table}-archive"
    firehose.create_stream(stream_name, stream_config())
    on_failure_url = sqs.create_queue(QueueName=f"{table}-archive-on-failure")["QueueUrl"]
    sqs.purge_queue(QueueUrl=on_failure_url)
    settings = ArchiveSettings(stream_name, dlq_url, region=s3.meta.region_name)
    handler = make_handler(settings, firehose=firehose, sqs=sqs, s3=s3)
    config = EsmConfig(batch_size=batch_size, maximum_retry_attempts=2, bisect_on_error=True,
                       function_name="ArchiverFunction")  # fmt: skip
    dlq_before = _queue_depth(sqs, dlq_url)
    esm = EventSourceMapping(stream_arn, handler, config, on_failure=sqs_on_failure(on_failure_url, sqs))
    with quiet_logs(verbose):
        stats = esm.poll()
    keys = firehose.flush()
    print(f"   archiver: {stats.records_completed} records in {stats.invocations} invocations, "
          f"{stats.retries} retries, {stats.batches_to_on_failure} batches to on-failure")
    print(f"   Firehose buffers flushed: {_count(len(keys), 'object')} in {outcome.uri}")
    seen = _read_back(s3, outcome, keys)
    twice = sorted(seq for seq, n in seen.items() if n > 1)
    if twice:
        outcome.problems.append(f"{len(twice)} changes archived more than once, e.g. {twice[0]}")
    if outcome.lines != stats.records_completed:
        outcome.problems.append(f"{outcome.lines} lines for {stats.records_completed} stream records")
    if stats.batches_to_on_failure:
        outcome.problems.append(
            f"{stats.records_to_on_failure} records went to the archiver's on-failure queue"
        )
    dead_lettered = _queue_depth(sqs, dlq_url) - dlq_before
    if dead_lettered:
        outcome.problems.append(f"{dead_lettered} records went to the record DLQ instead of the archive")
    partitions = sorted({key.rsplit("/", 1)[0] for key in outcome.keys})
    print(f"   {_count(outcome.lines, 'line')} in {_count(len(outcome.keys), 'object')}, "
          f"{_count(len(partitions), 'partition')}")  # fmt: skip
    for problem in outcome.problems:
        print(f"   - {problem}")
    print("   PASS: every change is in the archive once, under its own partition"
          if not outcome.problems else "   FAIL")  # fmt: skip
    return outcome


def _queue_depth(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


def rebuild_from_archive(outcome: ArchiveOutcome, s3: S3Client, verbose: bool = False) -> list[str]:
    """``ddbsync rebuild --from-archive`` over the demo's archive into a new index, then the swap.

    The rebuild's own code (:func:`ddbsync.rebuild.rebuild`) with the handler's settings from
    the environment. No settle wait: the demo's stream is read to its end and the local
    Firehose flushed, so the archive already holds every change (in AWS the rebuild waits
    for Firehose's buffers, docs/archive.md). Returns the problems found (none: PASS).
    """
    from ddbsync.config import Settings
    from ddbsync.opensearch.client import build_client
    from ddbsync.rebuild import rebuild
    from ddbsync.rebuild.locations import parse_archive_uri

    settings = Settings.from_env(require_dlq=False)
    out = io.StringIO()
    with quiet_logs(verbose):
        summary = rebuild(
            settings, parse_archive_uri(outcome.uri), client=build_client(settings), s3=s3,
            settle_seconds=0, out=out, err=io.StringIO(),
        )  # fmt: skip
    for line in out.getvalue().splitlines():
        print(f"   {line.strip()}" if line.startswith("rebuild ") else line)
    problems = [f"rebuild: {failure}" for failure in summary.failed]
    if summary.poison:
        problems.append(f"rebuild: {summary.poison} poison lines")
    if not summary.swapped:
        problems.append("rebuild: the alias was not swapped to the rebuilt index")
    return problems
