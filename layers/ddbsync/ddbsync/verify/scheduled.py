"""The scheduled, read-only verify: a Lambda on an EventBridge schedule (``VerifySchedule``).

It runs :func:`ddbsync.verify.run.run_verify` without ``repair`` and publishes, in the
``ddbsync`` namespace, ``DriftDocuments`` (missing + extra + stale) and one metric per
kind (``DriftMissing``, ``DriftExtra``, ``DriftStale``); ``DriftAlarm`` watches the first.
It logs the counts and example ids only, never item data. Fixing is the on-call's call:
``ddbsync verify --repair`` (docs/runbook.md, "Alarm: DriftAlarm").

Settings are the indexer's (OPENSEARCH_*, INDEX_ALIAS, PARTITION_KEY, SORT_KEY) plus
TABLE_NAME (or TABLE_ARN) and VERIFY_SEGMENTS (1 to 64, default 4); the sorted runs go to
``/tmp`` (about 100 bytes an item). The whole table must be read within the function's
15 minutes: for larger tables run the command instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ddbsync.config import EnvReader, Settings
from ddbsync.errors import ConfigError
from ddbsync.observability import logger, metrics
from ddbsync.verify.run import VerifySummary, run_verify, table_name

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from opensearchpy import OpenSearch

__all__ = ["Handler", "emit", "make_handler"]

Handler = Callable[[Mapping[str, Any], object], dict[str, Any]]


def emit(summary: VerifySummary) -> None:
    """Add the drift metrics of one run."""
    metrics.add_metric(name="DriftDocuments", unit=MetricUnit.Count, value=summary.drift)
    for kind, count in summary.counts.items():
        metrics.add_metric(name=f"Drift{kind.capitalize()}", unit=MetricUnit.Count, value=count)


def make_handler(
    env: Mapping[str, str] | None = None,
    *,
    ddb: DynamoDBClient | None = None,
    client: OpenSearch | None = None,
) -> Handler:
    """Read and check the settings (cold start), return the handler. Tests pass moto and a client."""
    import boto3

    from ddbsync.opensearch.client import build_client

    env = os.environ if env is None else env
    settings = Settings.from_env(env, require_dlq=False)
    read = EnvReader(env)
    segments = read.integer("VERIFY_SEGMENTS", 4, 1, 64)
    table = table_name(None, env)
    read.check(table is not None, "TABLE_NAME (or TABLE_ARN) must name the table to verify")
    if read.problems or table is None:
        raise ConfigError(read.problems)
    ddb = ddb or boto3.client("dynamodb", region_name=settings.region)
    client = client or build_client(settings)

    def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
        summary = run_verify(settings, table, ddb=ddb, client=client, segments=segments, workdir="/tmp")
        emit(summary)
        report = summary.as_json()
        shown = ("drift", "counts", "examples", "items", "documents")
        logger.info("verify", extra={k: report[k] for k in shown})
        return report

    logged: Handler = metrics.log_metrics(handler, raise_on_empty_metrics=False)
    return logged
