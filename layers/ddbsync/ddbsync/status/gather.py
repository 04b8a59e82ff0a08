"""Gather: read every source ``ddbsync status`` knows of into :class:`Facts`.

Each source is read on its own; a failure becomes ``Unknown(reason)`` for that source
only, so one refused permission never hides the rest of the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from opensearchpy import exceptions as os_exc

from ddbsync.aws import aws_error
from ddbsync.errors import DdbsyncError
from ddbsync.status import sources
from ddbsync.status.facts import (
    AliasState,
    ArchiveState,
    Counts,
    Execution,
    Facts,
    Mapping,
    MetricReading,
    QueueFacts,
    ReaderFacts,
    Skipped,
    Unknown,
    Value,
)
from ddbsync.status.targets import OUTPUT_OF, Targets

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient
    from opensearchpy import OpenSearch

__all__ = ["Clients", "attempt", "gather"]

T = TypeVar("T")
_LAMBDA, _SQS, _OLDEST = "AWS/Lambda", "AWS/SQS", "ApproximateAgeOfOldestMessage"


@dataclass(frozen=True, slots=True)
class Clients:
    """The clients status reads with (boto3 clients, or stand-ins in tests)."""

    lambda_: LambdaClient
    cloudwatch: sources.MetricReader
    sqs: SQSClient
    dynamodb: DynamoDBClient
    s3: S3Client
    sfn: SFNClient
    # None when no endpoint is named; Unknown when the client could not be built.
    opensearch: OpenSearch | Unknown | None


def attempt(read: Callable[[], T]) -> Value[T]:
    """``read()``, or an Unknown with one line saying why it failed.

    The last clause is deliberately broad: a status screen must still show every other
    source when one answers with a shape nobody expected; the type name keeps it findable.
    """
    try:
        return read()
    except (BotoCoreError, ClientError) as e:
        return Unknown(aws_error(e))
    except DdbsyncError as e:
        return Unknown(str(e).splitlines()[0])
    except os_exc.ConnectionError as e:
        return Unknown(f"cannot reach OpenSearch: {e.error}")
    except os_exc.TransportError as e:
        return Unknown(f"OpenSearch answered {e.status_code}: {e.error}")
    except Exception as e:
        return Unknown(f"{type(e).__name__}: {e}")


def _missing(what: str, flag: str, attr: str) -> Skipped:
    return Skipped(f"not checked: no {what} (--{flag}, or stack output {OUTPUT_OF[attr]})")


def _reader(role: str, uuid: str | None, function: str | None, clients: Clients, now: float) -> ReaderFacts:
    mapping: Value[Mapping]
    if uuid:
        mapping = attempt(lambda: sources.mapping_by_id(clients.lambda_, uuid))
    elif function:
        mapping = attempt(lambda: sources.mapping_of_function(clients.lambda_, function))
    else:
        mapping = _missing(f"{role} function", f"{role}-function", f"{role}_function")
    name = mapping.function if isinstance(mapping, Mapping) else function
    age: Value[MetricReading] = Skipped("not checked: no function name")
    if name:
        dimension = ("FunctionName", name)
        age = attempt(lambda: sources.metric(clients.cloudwatch, _LAMBDA, "IteratorAge", dimension, now=now))
    return ReaderFacts(role, mapping, age)


def _queue(role: str, url: str | None, flag: str, attr: str, clients: Clients, now: float) -> QueueFacts:
    if not url:
        missing = _missing(f"{role} queue URL", flag, attr)
        return QueueFacts(role, None, missing, missing)
    depth = attempt(lambda: sources.queue_depth(clients.sqs, url))
    dimension = ("QueueName", sources.queue_name(url))
    age = attempt(lambda: sources.metric(clients.cloudwatch, _SQS, _OLDEST, dimension, now=now))
    return QueueFacts(role, url, depth, age)


def _opensearch_facts(targets: Targets, clients: Clients) -> tuple[Value[AliasState], Counts]:
    client = clients.opensearch
    if not targets.alias or client is None or isinstance(client, Unknown):
        why: Unknown | Skipped = (
            client if isinstance(client, Unknown)
            else _missing("alias", "alias", "alias") if not targets.alias
            else _missing("OpenSearch endpoint", "endpoint", "endpoint")
        )  # fmt: skip
        return why, Counts(why, _items(targets, clients), why)
    alias = targets.alias
    state = attempt(lambda: sources.read_alias(client, alias))
    documents = attempt(lambda: sources.count_documents(client, alias))
    tombstones: Value[int]
    if isinstance(state, AliasState) and state.live_index:
        live = state.live_index
        tombstones = attempt(lambda: sources.count_tombstones(client, live))
    else:
        tombstones = state if not isinstance(state, AliasState) else Unknown(f"{alias} points at no index")
    return state, Counts(documents, _items(targets, clients), tombstones)


def _items(targets: Targets, clients: Clients) -> Value[int]:
    table = targets.table
    if not table:
        return _missing("table", "table", "table")
    return attempt(lambda: sources.item_count(clients.dynamodb, table))


def _execution(targets: Targets, clients: Clients) -> Value[Execution | None]:
    machine = targets.state_machine
    if not machine:
        return _missing("backfill state machine", "state-machine", "state_machine")
    return attempt(lambda: sources.newest_execution(clients.sfn, machine))


def _archive(targets: Targets, clients: Clients) -> Value[ArchiveState]:
    bucket, table = targets.archive_bucket, targets.table
    if not bucket:
        return _missing("archive bucket", "archive-bucket", "archive_bucket")
    if not table:
        return _missing("table", "table", "table")
    return attempt(lambda: sources.newest_partition(clients.s3, bucket, table))


def gather(targets: Targets, clients: Clients, now: float) -> Facts:
    """Every fact status shows, each source read once."""
    readers = (
        _reader("indexer", targets.indexer_mapping, targets.indexer_function, clients, now),
        _reader("archiver", targets.archiver_mapping, targets.archiver_function, clients, now),
    )
    queues = (
        _queue("record-dlq", targets.record_dlq, "record-dlq", "record_dlq", clients, now),
        _queue("on-failure", targets.on_failure_queue, "on-failure-queue", "on_failure_queue", clients, now),
        _queue(
            "archive-on-failure",
            targets.archive_on_failure_queue,
            "archive-on-failure-queue",
            "archive_on_failure_queue",
            clients,
            now,
        ),
    )
    alias, counts = _opensearch_facts(targets, clients)
    return Facts(
        now=now,
        readers=readers,
        queues=queues,
        alias=alias,
        execution=_execution(targets, clients),
        counts=counts,
        archive=_archive(targets, clients),
    )
