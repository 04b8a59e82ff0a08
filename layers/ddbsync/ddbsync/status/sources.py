"""Each source ``ddbsync status`` reads, as one small function over an injected client.

The functions raise what their client raises (botocore, opensearch-py, ddbsync errors);
:mod:`ddbsync.status.gather` turns a failure into an ``Unknown`` with its reason. Nothing
here writes anything.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping as AnyMapping
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ddbsync.mapping import META_FIELD
from ddbsync.opensearch.indices import next_alias_name, read_view
from ddbsync.status.facts import AliasState, ArchiveState, Execution, Mapping, MetricReading, QueueDepth

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient
    from opensearchpy import OpenSearch

__all__ = [
    "MetricReader",
    "count_documents",
    "count_tombstones",
    "item_count",
    "mapping_by_id",
    "mapping_of_function",
    "metric",
    "newest_execution",
    "newest_partition",
    "queue_depth",
    "queue_name",
    "read_alias",
]


class MetricReader(Protocol):
    """CloudWatch's GetMetricStatistics (a boto3 ``cloudwatch`` client, or a stand-in)."""

    def get_metric_statistics(
        self,
        *,
        Namespace: str,
        MetricName: str,
        Dimensions: Sequence[AnyMapping[str, str]],
        StartTime: datetime,
        EndTime: datetime,
        Period: int,
        Statistics: Sequence[str],
    ) -> AnyMapping[str, Any]: ...


def _mapping(answer: AnyMapping[str, Any]) -> Mapping:
    arn = str(answer.get("FunctionArn", ""))
    return Mapping(
        uuid=str(answer.get("UUID", "")),
        function=arn.split(":")[6] if arn.count(":") >= 6 else arn,
        state=str(answer.get("State", "unknown")),
        last_result=answer.get("LastProcessingResult"),
        batch_size=answer.get("BatchSize"),
    )


def mapping_by_id(lambda_: LambdaClient, uuid: str) -> Mapping:
    """GetEventSourceMapping: state, last processing result, batch size."""
    return _mapping(lambda_.get_event_source_mapping(UUID=uuid))


def mapping_of_function(lambda_: LambdaClient, function: str) -> Mapping:
    """The DynamoDB stream mapping of ``function`` (ListEventSourceMappings)."""
    found = lambda_.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", [])
    streams = [m for m in found if ":dynamodb:" in m.get("EventSourceArn", "")]
    if not streams:
        raise LookupError(f"{function} has no DynamoDB stream event source mapping")
    return _mapping(streams[0])


def metric(
    cloudwatch: MetricReader,
    namespace: str,
    name: str,
    dimension: tuple[str, str],
    *,
    now: float,
    window_s: int = 3600,
    period_s: int = 300,
) -> MetricReading:
    """The Maximum statistic of one metric over the last ``window_s`` seconds."""
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": dimension[0], "Value": dimension[1]}],
        StartTime=datetime.fromtimestamp(now - window_s, tz=UTC),
        EndTime=datetime.fromtimestamp(now, tz=UTC),
        Period=period_s,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        return MetricReading(None, None, window_s)
    return MetricReading(max(float(p["Maximum"]) for p in points), float(points[-1]["Maximum"]), window_s)


def queue_name(url: str) -> str:
    """The queue's name, the last part of its URL (the metrics' QueueName dimension)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def queue_depth(sqs: SQSClient, url: str) -> QueueDepth:
    """GetQueueAttributes: messages waiting, in flight (received, not deleted), delayed."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    ).get("Attributes", {})
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def read_alias(client: OpenSearch, alias: str) -> AliasState:
    """Where ``alias`` and ``<alias>-next`` point (opensearch/indices.py: read_view)."""
    view = read_view(client, alias)
    following = view.next
    return AliasState(
        alias=alias,
        live_index=view.live.index,
        next_alias=next_alias_name(alias),
        next_index=following.index if following is not None else None,
        floor=view.live.floor,
    )


def count_documents(client: OpenSearch, alias: str) -> int:
    """Documents a search through ``alias`` sees: its filter hides tombstones."""
    return int(client.count(index=alias)["count"])


def count_tombstones(client: OpenSearch, index: str) -> int:
    """Tombstones in ``index``, counted on the index itself: through the alias they are hidden."""
    query = {"query": {"term": {f"{META_FIELD}.deleted": True}}}
    return int(client.count(index=index, body=query)["count"])


def item_count(dynamodb: DynamoDBClient, table: str) -> int:
    """DescribeTable's ItemCount: an estimate, updated about every six hours."""
    return int(dynamodb.describe_table(TableName=table)["Table"].get("ItemCount", 0))


def newest_execution(sfn: SFNClient, state_machine: str) -> Execution | None:
    """The newest execution of the state machine (ListExecutions lists newest first)."""
    found = sfn.list_executions(stateMachineArn=state_machine, maxResults=1).get("executions", [])
    if not found:
        return None
    newest = found[0]
    stopped = newest.get("stopDate")
    return Execution(
        name=newest["name"],
        arn=newest["executionArn"],
        status=newest["status"],
        started=newest["startDate"].timestamp(),
        stopped=stopped.timestamp() if stopped is not None else None,
    )


def _largest_prefix(s3: S3Client, bucket: str, prefix: str) -> str | None:
    """The last common prefix (``<prefix>x=<value>/``) one level below ``prefix``."""
    newest: str | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            candidate = common.get("Prefix", "")
            if newest is None or candidate > newest:
                newest = candidate
    return newest


def newest_partition(s3: S3Client, bucket: str, table: str) -> ArchiveState:
    """The newest ``dt=``/``hour=`` partition under ``table=<table>/``, listed by delimiter.

    ``dt=YYYY-MM-DD`` and ``hour=HH`` sort as text, so the largest prefix is the newest.
    """
    prefix = f"table={table}/"
    day = _largest_prefix(s3, bucket, prefix)
    hour = _largest_prefix(s3, bucket, day) if day else None
    newest = (hour or day or "")[len(prefix) :].rstrip("/") or None
    errors = s3.list_objects_v2(Bucket=bucket, Prefix="errors/", MaxKeys=1).get("KeyCount", 0) > 0
    return ArchiveState(bucket, prefix, newest, _hour_start(newest), errors)


def _hour_start(partition: str | None) -> float | None:
    """Epoch seconds of ``dt=YYYY-MM-DD/hour=HH`` (UTC); None when it does not parse."""
    if not partition:
        return None
    try:
        parts = dict(p.split("=", 1) for p in partition.split("/"))
        moment = time.strptime(f"{parts['dt']} {parts.get('hour', '00')}", "%Y-%m-%d %H")
    except (KeyError, ValueError):
        return None
    return float(calendar.timegm(moment))
