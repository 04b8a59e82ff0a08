"""The purge from settings, for ``ddbsync purge-tombstones`` and the scheduled Lambda.

:func:`run_purge` checks the window against the replay window (``ddbsync.purge.window``),
then purges below ``now - window`` (``ddbsync.purge.run``). :func:`make_handler` is the
Lambda's (``functions/purge/app.py``, on an EventBridge schedule): settings and
``TOMBSTONE_RETENTION_DAYS`` are read at cold start, so a bad configuration fails there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ddbsync.config import EnvReader, Settings
from ddbsync.deadline import Deadline
from ddbsync.errors import ConfigError, PurgeError
from ddbsync.indexer import LambdaContextLike
from ddbsync.observability import logger, metrics
from ddbsync.purge.run import PurgeSummary, purge_tombstones
from ddbsync.purge.window import check_window, format_duration, replay_window

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from opensearchpy import OpenSearch

__all__ = ["IN_FLIGHT_S", "make_handler", "run_purge", "settle_seconds"]

# How long a write a writer started before it read the new floor may still be in flight:
# a stream batch lives at most its 60 s Lambda timeout, a replay call its 60 s budget.
IN_FLIGHT_S = 60


def settle_seconds(settings: Settings) -> int:
    """The wait between raising the floor and deleting: a writer's view age plus a request's life."""
    return settings.next_alias_check_seconds + IN_FLIGHT_S


def run_purge(
    settings: Settings,
    window_s: int,
    *,
    client: OpenSearch,
    sqs: SQSClient | None,
    force: bool = False,
    dry_run: bool = False,
    settle_s: float | None = None,
    deadline: Deadline | None = None,
    progress: Callable[[str], None] = lambda line: None,
    clock: Callable[[], float] = time.time,
) -> PurgeSummary:
    """Check the window (PurgeWindowError if too short and not ``force``), then purge below now - window."""
    replay = replay_window(sqs, settings.record_dlq_url or None)
    warning = check_window(window_s, replay, force=force)
    horizon = int(clock()) - window_s
    older, minimum = format_duration(window_s), format_duration(replay.minimum_s)
    progress(f"purging tombstones of {settings.index_alias} older than {older} "
             f"(replay window {minimum}: stream 24h + {replay.source})")  # fmt: skip
    summary = purge_tombstones(
        client,
        settings.index_alias,
        horizon,
        dry_run=dry_run,
        settle_s=settle_seconds(settings) if settle_s is None else settle_s,
        deadline=deadline,
        progress=progress,
    )
    if warning:
        summary.warnings.insert(0, warning)
    return summary


def make_handler(
    env: Mapping[str, str] | None = None,
    *,
    client: OpenSearch | None = None,
    sqs: SQSClient | None = None,
    settle_s: float | None = None,
) -> Callable[[object, LambdaContextLike], dict[str, Any]]:
    """The scheduled purge's handler; settings from ``env`` (default ``os.environ``)."""
    from ddbsync.aws import sqs_client
    from ddbsync.opensearch.client import build_client

    env = os.environ if env is None else env
    settings = Settings.from_env(env, require_dlq=False)
    read = EnvReader(env)
    days = read.integer("TOMBSTONE_RETENTION_DAYS", 15, 1, 3650)
    if read.problems:
        raise ConfigError(read.problems)
    os_client = client or build_client(settings)
    queue = sqs or (sqs_client(settings.region) if settings.record_dlq_url else None)
    # Checked at cold start too, so a retention shorter than the replay window fails the
    # deployment's first run loudly; run_purge checks again (the queue's retention may change).
    check_window(days * 86_400, replay_window(queue, settings.record_dlq_url or None), force=False)

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics(raise_on_empty_metrics=False)
    def handler(event: object, context: LambdaContextLike) -> dict[str, Any]:
        deadline = Deadline(context.get_remaining_time_in_millis, settings.timeout_margin_ms)
        summary = run_purge(settings, days * 86_400, client=os_client, sqs=queue, settle_s=settle_s,
                            deadline=deadline, progress=lambda line: logger.info(line))  # fmt: skip
        deleted = sum(p.deleted for p in summary.indices)
        metrics.add_metric(name="TombstonesPurged", unit=MetricUnit.Count, value=deleted)
        result = summary.as_json()
        logger.info("tombstone purge done", extra={"purge": result})
        if not summary.ok:
            failures = [f"{p.index}: {f}" for p in summary.indices for f in p.failures]
            raise PurgeError(f"the tombstone purge did not finish: {failures}")
        return result

    return handler  # type: ignore[no-any-return]
