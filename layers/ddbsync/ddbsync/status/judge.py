"""Judge: a pure function from :class:`Facts` to findings, each with the command that fixes it.

A *problem* makes ``ddbsync status`` exit 1: something is wrong or could not be read (a
status that cannot see a queue must not call it healthy). A *notice* is shown but does not
change the exit code: a backfill running as planned, tombstones piling up, a quiet archive.
Commands and runbook sections are those of docs/runbook.md and docs/backfill.md.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from ddbsync.status.facts import (
    AliasState,
    ArchiveState,
    Execution,
    Facts,
    Mapping,
    MetricReading,
    QueueDepth,
    QueueFacts,
    ReaderFacts,
    Unknown,
    Value,
)
from ddbsync.status.targets import Targets

__all__ = ["DRIFT_RATIO", "NOTICE", "PROBLEM", "Finding", "Thresholds", "duration", "judge"]

PROBLEM, NOTICE = "problem", "notice"
_FAILED_RUNS = ("FAILED", "TIMED_OUT")
DRIFT_RATIO = 0.05


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to look at: ``fix`` is a command to run, ``runbook`` the page section."""

    severity: str
    source: str
    what: str
    fix: str | None = None
    runbook: str | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where normal ends. The iterator age matches the template's IteratorAge alarm."""

    iterator_age_s: float = 60.0
    # Documents vs ItemCount: the estimate lags up to ~6 h, so only a wide gap is drift.
    drift_ratio: float = DRIFT_RATIO
    drift_min: int = 10
    # Tombstones per live document before they are called a pile-up.
    tombstone_ratio: float = 0.5
    tombstone_min: int = 1000
    archive_quiet_s: float = 3 * 3600.0
    # An on-failure pointer this old is close to the stream's 24 h retention.
    replay_deadline_s: float = 18 * 3600.0


def _q(value: str) -> str:
    return shlex.quote(value)


def _log_group(targets: Targets, role: str) -> str | None:
    suffix = {"indexer": "stream-indexer", "archiver": "archiver"}[role]
    return f"/aws/lambda/{targets.stack}-{suffix}" if targets.stack else None


def _reader(r: ReaderFacts, targets: Targets, limits: Thresholds) -> Iterator[Finding]:
    where = f"{r.role} event source mapping"
    section = "Alarm: IteratorAgeAlarm" if r.role == "indexer" else "Archive alarms"
    errors_section = "Alarm: FunctionErrorsAlarm" if r.role == "indexer" else "Archive alarms"
    if isinstance(r.mapping, Unknown):
        yield Finding(PROBLEM, where, f"unknown: {r.mapping.reason}")
    elif isinstance(r.mapping, Mapping):
        m = r.mapping
        if m.state != "Enabled":
            fix = f"aws lambda update-event-source-mapping --uuid {m.uuid} --enabled"
            yield Finding(PROBLEM, where, f"{m.function}: state {m.state}, the stream is not being read",
                          fix if m.state == "Disabled" else None, section)  # fmt: skip
        if (m.last_result or "").startswith("PROBLEM"):
            group = _log_group(targets, r.role)
            yield Finding(PROBLEM, where, f"{m.function}: last processing result {m.last_result!r}",
                          f"aws logs tail {group} --since 1h" if group else None,
                          errors_section)  # fmt: skip
    if isinstance(r.iterator_age, Unknown):
        yield Finding(PROBLEM, f"{r.role} iterator age", f"unknown: {r.iterator_age.reason}")
    elif isinstance(r.iterator_age, MetricReading) and r.iterator_age.maximum is not None:
        age_s = r.iterator_age.maximum / 1000
        if age_s > limits.iterator_age_s:
            yield Finding(PROBLEM, f"{r.role} iterator age",
                          f"up to {duration(age_s)} behind in the last hour "
                          f"(threshold {duration(limits.iterator_age_s)})", None, section)  # fmt: skip


def _queue(q: QueueFacts, limits: Thresholds) -> Iterator[Finding]:
    where = f"{q.role} queue"
    for part in (q.depth, q.oldest_age):
        if isinstance(part, Unknown):
            yield Finding(PROBLEM, where, f"unknown: {part.reason}")
    depth = q.depth.total if isinstance(q.depth, QueueDepth) else 0
    if not depth or q.url is None:
        return
    age = q.oldest_age.latest if isinstance(q.oldest_age, MetricReading) else None
    held = f"{depth} message(s)" + (f", oldest {duration(age)}" if age is not None else "")
    if q.role == "record-dlq":
        yield Finding(PROBLEM, where, f"{held}: poison records not in the index",
                      f"ddbsync replay --queue {_q(q.url)}", "Alarm: RecordDlqDepthAlarm")  # fmt: skip
    elif q.role == "on-failure":
        yield Finding(PROBLEM, where, f"{held}: batches the indexer gave up on, missing from the index",
                      f"ddbsync replay --on-failure-queue {_q(q.url)}",
                      "Alarm: OnFailureQueueDepthAlarm")  # fmt: skip
        if age is not None and age > limits.replay_deadline_s:
            yield Finding(PROBLEM, where, "the oldest pointer nears the stream's 24 h retention: "
                          "replay now; a range already gone needs a repair",
                          "ddbsync repair --from T1 --to T2", "Repair a lost stream window")  # fmt: skip
    else:
        yield Finding(PROBLEM, where, f"{held}: batches missing from the archive (not from the index); "
                      "re-archive them within the stream's 24 h (archiver's environment)",
                      f"ddbsync replay --archive-on-failure-queue {_q(q.url)}", "Archive alarms")  # fmt: skip
        if age is not None and age > limits.replay_deadline_s:
            yield Finding(PROBLEM, where, "the oldest pointer nears the stream's 24 h retention: "
                          "re-archive now; a range already gone leaves a gap in the archive "
                          "(rebuild from a backfill, not from the archive, or accept the gap)",
                          None, "Archive alarms")  # fmt: skip


def _start(machine: str | None) -> str | None:
    """The command that starts a backfill (a full rebuild of the index)."""
    if not machine:
        return None
    return f"aws stepfunctions start-execution --state-machine-arn {_q(machine)} --input '{{}}'"


def _backfill(alias: Value[AliasState], run: Value[Execution | None], targets: Targets) -> Iterator[Finding]:
    machine = targets.state_machine
    execution = run if isinstance(run, Execution) else None
    if isinstance(alias, AliasState) and alias.live_index is None:
        yield Finding(PROBLEM, "alias", f"{alias.alias} points at no index: searches fail",
                      _start(machine), "docs/backfill.md, Run it in AWS")  # fmt: skip
    if isinstance(alias, AliasState) and alias.next_index is not None:
        if execution is not None and execution.status == "RUNNING":
            running = f"running: {alias.next_alias} -> {alias.next_index} (execution {execution.name})"
            yield Finding(
                NOTICE,
                "backfill",
                f"{running}; live writes also go there",
                f"aws stepfunctions describe-execution --execution-arn {_q(execution.arn)}",
            )
        elif alias.next_index != alias.live_index:
            yield Finding(PROBLEM, "backfill", f"{alias.next_alias} -> {alias.next_index} but no backfill "
                          "execution is running: every change is written twice and the next backfill "
                          "will refuse to start", f'curl -X DELETE "$OPENSEARCH_ENDPOINT/{alias.next_index}"',
                          "docs/backfill.md, When it fails")  # fmt: skip
    if execution is not None and execution.status in _FAILED_RUNS:
        yield Finding(PROBLEM, "backfill", f"the last backfill {execution.name} ended {execution.status}; "
                      f"the live index was not replaced (why: aws stepfunctions get-execution-history "
                      f"--execution-arn {_q(execution.arn)} --reverse-order --max-items 5)",
                      _start(machine), "docs/backfill.md, When it fails")  # fmt: skip
    elif execution is not None and execution.status == "ABORTED":
        yield Finding(NOTICE, "backfill", f"the last backfill {execution.name} was stopped by hand",
                      None, "docs/backfill.md, When it fails")  # fmt: skip
    for name, part in (("alias", alias), ("backfill execution", run)):
        if isinstance(part, Unknown):
            yield Finding(PROBLEM, name, f"unknown: {part.reason}")


def _counts(facts: Facts, limits: Thresholds) -> Iterator[Finding]:
    documents, items, tombstones = facts.counts.documents, facts.counts.items, facts.counts.tombstones
    for name, part in (("documents", documents), ("table items", items)):
        if isinstance(part, Unknown) and not isinstance(facts.alias, Unknown):
            yield Finding(PROBLEM, name, f"unknown: {part.reason}")
    if isinstance(tombstones, Unknown) and isinstance(facts.alias, AliasState) and facts.alias.live_index:
        yield Finding(PROBLEM, "tombstones", f"unknown: {tombstones.reason}")
    if isinstance(documents, int) and isinstance(items, int):
        gap = abs(documents - items)
        if gap > max(limits.drift_min, limits.drift_ratio * max(items, documents)):
            waiting = sum(q.depth.total for q in facts.queues if isinstance(q.depth, QueueDepth))
            first = " (replay the queues first: they hold messages)" if waiting else ""
            yield Finding(PROBLEM, "documents", f"{documents} documents vs about {items} items (ItemCount "
                          f"is an estimate, updated about every 6 h): {gap} apart{first}",
                          "ddbsync verify --repair", "Alarm: DriftAlarm")  # fmt: skip
    piled = (
        isinstance(tombstones, int)
        and isinstance(documents, int)
        and tombstones > max(limits.tombstone_min, limits.tombstone_ratio * documents)
    )
    if piled:
        yield Finding(NOTICE, "tombstones", f"{tombstones} tombstones beside {documents} documents",
                      "ddbsync purge-tombstones --older-than 16d", "Index grows with tombstones")  # fmt: skip


def _archive(facts: Facts, limits: Thresholds) -> Iterator[Finding]:
    archive = facts.archive
    if isinstance(archive, Unknown):
        yield Finding(PROBLEM, "archive", f"unknown: {archive.reason}")
        return
    if not isinstance(archive, ArchiveState):
        return
    if archive.newest_hour is not None and facts.now - archive.newest_hour > limits.archive_quiet_s:
        yield Finding(NOTICE, "archive", f"newest partition {archive.newest} is "
                      f"{duration(facts.now - archive.newest_hour)} old (normal if the table had no "
                      "writes since)", None, "Archive alarms")  # fmt: skip
    if archive.has_errors:
        yield Finding(NOTICE, "archive", "objects under errors/: records Firehose could not partition",
                      f"aws s3 ls s3://{archive.bucket}/errors/ --recursive", "Archive alarms")  # fmt: skip


def judge(facts: Facts, targets: Targets, limits: Thresholds | None = None) -> list[Finding]:
    """Every finding, problems first, in the order of the screen."""
    limits = limits or Thresholds()
    found: list[Finding] = []
    for reader in facts.readers:
        found += _reader(reader, targets, limits)
    for queue in facts.queues:
        found += _queue(queue, limits)
    found += _backfill(facts.alias, facts.execution, targets)
    found += _counts(facts, limits)
    found += _archive(facts, limits)
    return sorted(found, key=lambda f: f.severity != PROBLEM)


def duration(seconds: float) -> str:
    """``0.25s``, ``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    if seconds < 10:
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
