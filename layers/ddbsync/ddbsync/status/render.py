"""Print: the facts and findings of ``ddbsync status`` as one screen of text, or as JSON."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence

from ddbsync.status.facts import (
    AliasState,
    ArchiveState,
    Counts,
    Execution,
    Facts,
    Mapping,
    MetricReading,
    QueueDepth,
    QueueFacts,
    ReaderFacts,
    Skipped,
    Unknown,
    Value,
)
from ddbsync.status.judge import PROBLEM, Finding, duration
from ddbsync.status.targets import Targets

__all__ = ["as_json", "as_text", "jsonable"]


def jsonable(value: object) -> object:
    """Facts as JSON values: an Unknown is ``{"unknown": reason}``, a Skipped ``{"skipped": ...}``."""
    if isinstance(value, Unknown):
        return {"unknown": value.reason}
    if isinstance(value, Skipped):
        return {"skipped": value.reason}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def as_json(facts: Facts, targets: Targets, findings: Sequence[Finding]) -> str:
    """The whole status as one JSON document (``healthy`` mirrors the exit code)."""
    document = {
        "healthy": not any(f.severity == PROBLEM for f in findings),
        "targets": jsonable(targets),
        "facts": jsonable(facts),
        "findings": [jsonable(f) for f in findings],
    }
    return json.dumps(document, indent=2, sort_keys=False)


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch)) if epoch is not None else "-"


def _missing(value: Unknown | Skipped) -> str:
    return f"unknown: {value.reason}" if isinstance(value, Unknown) else value.reason


def _metric(value: Value[MetricReading], unit_s: float, latest: bool) -> str:
    if not isinstance(value, MetricReading):
        return _missing(value)
    point = value.latest if latest else value.maximum
    if point is None:
        return f"unavailable (no CloudWatch datapoint in the last {duration(value.window_s)})"
    return duration(point / unit_s)


def _reader(r: ReaderFacts) -> str:
    age = f"iterator age max 1h: {_metric(r.iterator_age, 1000.0, latest=False)}"
    if not isinstance(r.mapping, Mapping):
        return f"  {r.role:<9} {_missing(r.mapping)}; {age}"
    m = r.mapping
    batch = m.batch_size if m.batch_size is not None else "-"
    result = m.last_result or "-"
    return f"  {r.role:<9} {m.state}, last result {result}, batch size {batch}, {age}  ({m.function})"


def _queue(q: QueueFacts) -> str:
    if not isinstance(q.depth, QueueDepth):
        return f"  {q.role:<19} {_missing(q.depth)}"
    d = q.depth
    if not d.total:
        return f"  {q.role:<19} empty"
    held = f"{d.total} ({d.visible} waiting, {d.in_flight} in flight, {d.delayed} delayed)"
    return f"  {q.role:<19} {held}; oldest message: {_metric(q.oldest_age, 1.0, latest=True)}"


def _count(value: Value[int], note: str) -> str:
    return f"{value:,} {note}" if isinstance(value, int) else _missing(value)


def _index(alias: Value[AliasState], run: Value[Execution | None], counts: Counts) -> list[str]:
    lines = []
    if isinstance(alias, AliasState):
        floor = f" (snapshot floor {_when(alias.floor)})" if alias.floor is not None else ""
        lines.append(f"  alias        {alias.alias} -> {alias.live_index or 'NO INDEX'}{floor}")
        running = f"-> {alias.next_index} (backfill index)" if alias.next_index else "absent (no backfill)"
        lines.append(f"  next alias   {alias.next_alias} {running}")
    else:
        lines.append(f"  alias        {_missing(alias)}")
    if isinstance(run, Execution):
        lines.append(f"  last backfill {run.name}: {run.status}, started {_when(run.started)}, "
                     f"stopped {_when(run.stopped)}")  # fmt: skip
    else:
        lines.append(f"  last backfill {'none yet' if run is None else _missing(run)}")
    lines.append(f"  documents    {_count(counts.documents, '(through the alias: tombstones hidden)')}")
    items = _count(counts.items, "(DescribeTable ItemCount: an estimate, updated about every 6 h)")
    lines.append(f"  table items  {'~' if isinstance(counts.items, int) else ''}{items}")
    lines.append(f"  tombstones   {_count(counts.tombstones, '(_ddbsync.deleted: true, in the live index)')}")
    return lines


def _archive(archive: Value[ArchiveState]) -> str:
    if not isinstance(archive, ArchiveState):
        return f"  {_missing(archive)}"
    newest = archive.newest or "none yet"
    errors = "; objects under errors/" if archive.has_errors else ""
    return f"  newest partition {newest} (s3://{archive.bucket}/{archive.prefix}){errors}"


def _finding(f: Finding) -> list[str]:
    lines = [f"  {f.severity.upper():<7} {f.source}: {f.what}"]
    if f.fix:
        lines.append(f"          fix: {f.fix}")
    if f.runbook:
        where = f.runbook if f.runbook.startswith("docs/") else f"docs/runbook.md, {f.runbook}"
        lines.append(f"          see: {where}")
    return lines


def as_text(facts: Facts, targets: Targets, findings: Sequence[Finding]) -> str:
    """One screen: what each source said, then every finding with its fix."""
    named = ", ".join(f"{k} {v}" for k, v in (("stack", targets.stack), ("table", targets.table),
                                              ("alias", targets.alias)) if v)  # fmt: skip
    lines = [f"ddbsync status at {_when(facts.now)}" + (f" ({named})" if named else ""), "", "Stream readers"]
    lines += [_reader(r) for r in facts.readers]
    lines += ["", "Queues", *(_queue(q) for q in facts.queues)]
    lines += ["", "Index", *_index(facts.alias, facts.execution, facts.counts)]
    lines += ["", "Archive", _archive(facts.archive), ""]
    problems = sum(f.severity == PROBLEM for f in findings)
    for f in findings:
        lines += _finding(f)
    lines.append(f"{problems} problem(s): exit 1" if problems else "Healthy: exit 0")
    return "\n".join(lines)
