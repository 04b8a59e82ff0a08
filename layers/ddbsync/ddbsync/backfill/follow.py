"""``ddbsync backfill --stack NAME``: start the deployed backfill state machine and follow it.

The state machine (statemachine/backfill.asl.json, docs/backfill-contract.md) reports its
progress only through its execution history, so that is what is read, a few events at a
time: ReadManifest's output gives the files and items to index; each IndexFile task's
output gives its file's acknowledged lines (``lines``, the checkpoint) and whether the file
is ``done``. Files done/total, items, rate and ETA come from those alone; nothing is
guessed from time or from state names. The history is read newest first and only back to
the last event already seen, so a long backfill (thousands of IndexFile events) costs one
short call per poll. The Map is an inline Map (no Map Run to ask for counts).

The clients are protocols: boto3's Step Functions client in use; tests give moto's (it
starts executions but never runs them: its history is canned) or a scripted one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["Outcome", "Progress", "StepFunctions", "follow", "new_events", "start"]

Event = Mapping[str, Any]


class StepFunctions(Protocol):
    """The calls used, as boto3's ``stepfunctions`` client makes them."""

    def start_execution(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def describe_execution(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_execution_history(self, **kwargs: Any) -> Mapping[str, Any]: ...


def start(sfn: StepFunctions, state_machine_arn: str, execution_input: Mapping[str, Any]) -> str:
    """Start an execution with ``execution_input``; return its ARN."""
    response = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(execution_input))
    return str(response["executionArn"])


def new_events(sfn: StepFunctions, execution_arn: str, after_id: int) -> list[Event]:
    """The history events with an id above ``after_id``, oldest first (read newest first)."""
    found: list[Event] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn,
            reverseOrder=True,
            maxResults=100,
            **({"nextToken": token} if token else {}),
        )
        events = list(page.get("events", []))
        found.extend(e for e in events if int(e["id"]) > after_id)
        token = page.get("nextToken")
        if not token or any(int(e["id"]) <= after_id for e in events):
            return sorted(found, key=lambda e: int(e["id"]))


def _output(event: Event) -> Mapping[str, Any] | None:
    """A state's output as JSON, or None (history outputs over the quota come truncated)."""
    try:
        output = json.loads(event["stateExitedEventDetails"]["output"])
    except (KeyError, TypeError, ValueError):
        return None
    return output if isinstance(output, Mapping) else None


@dataclass
class Progress:
    """What the events seen so far say about the backfill."""

    phase: str = "starting"
    files_total: int | None = None
    items_total: int | None = None
    files_done: set[str] = field(default_factory=set)
    lines: dict[str, int] = field(default_factory=dict)  # file key -> lines acknowledged
    indexing_since: datetime | None = None
    last_at: datetime | None = None

    def apply(self, event: Event) -> None:
        kind = str(event.get("type", ""))
        at = event.get("timestamp")
        if isinstance(at, datetime):
            self.last_at = at
        if kind.endswith("StateEntered"):
            self.phase = str(event["stateEnteredEventDetails"]["name"])
            if self.phase == "IndexFile" and self.indexing_since is None and isinstance(at, datetime):
                self.indexing_since = at
        elif kind == "TaskStateExited":
            self._task_exited(str(event["stateExitedEventDetails"]["name"]), _output(event))

    def _task_exited(self, name: str, output: Mapping[str, Any] | None) -> None:
        if output is None:
            return
        if name == "ReadManifest":
            backfill = output.get("backfill") or {}
            self.files_total = len(backfill.get("files") or [])
            self.items_total = int(backfill.get("item_count") or 0)
        elif name == "IndexFile":
            key = str((output.get("file") or {}).get("key", ""))
            self.lines[key] = max(self.lines.get(key, 0), int(output.get("lines") or 0))
            if output.get("done") is True:
                self.files_done.add(key)

    @property
    def items_done(self) -> int:
        return sum(self.lines.values())

    def rate(self) -> float | None:
        """Items per second since the first file started (None before there is one)."""
        if self.indexing_since is None or self.last_at is None:
            return None
        seconds = (self.last_at - self.indexing_since).total_seconds()
        return self.items_done / seconds if seconds > 0 and self.items_done else None

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        if rate is None or self.items_total is None:
            return None
        return max(self.items_total - self.items_done, 0) / rate

    def line(self) -> str:
        """One status line: phase, files done/total, items, rate, ETA (what is known yet)."""
        parts = [self.phase]
        if self.files_total is not None:
            parts.append(f"files {len(self.files_done)}/{self.files_total}")
            parts.append(f"items {self.items_done:,}/{self.items_total or 0:,}")
        rate, eta = self.rate(), self.eta_seconds()
        if rate is not None:
            parts.append(f"{rate:,.0f} items/s")
        if eta is not None:
            parts.append(f"ETA {_clock(eta)}")
        return "  ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class Outcome:
    """How the execution ended: its status, and for anything but SUCCEEDED the error and cause."""

    status: str
    error: str
    cause: str
    progress: Progress

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def _polls(
    sfn: StepFunctions, arn: str, sleep: Callable[[float], None], every: float
) -> Iterator[Mapping[str, Any]]:
    """DescribeExecution once per poll, until the execution is no longer RUNNING (that one included)."""
    while True:
        described = sfn.describe_execution(executionArn=arn)
        yield described
        if described["status"] != "RUNNING":
            return
        sleep(every)


def follow(
    sfn: StepFunctions,
    execution_arn: str,
    *,
    report: Callable[[str], None],
    poll_seconds: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Poll the execution until it ends; ``report`` each new progress line; return the outcome."""
    progress = Progress()
    seen = 0
    shown = ""
    final: Mapping[str, Any] = {}
    for described in _polls(sfn, execution_arn, sleep, poll_seconds):
        final = described
        # Read the history after describe: an execution that just ended has its last events in.
        for event in new_events(sfn, execution_arn, seen):
            seen = int(event["id"])
            progress.apply(event)
        if progress.line() != shown:
            shown = progress.line()
            report(shown)
    return Outcome(
        status=str(final["status"]),
        error=str(final.get("error", "")),
        cause=str(final.get("cause", "")),
        progress=progress,
    )
