"""``ddbsync backfill --stack NAME``: start the deployed state machine, follow it, exit by its end.

moto plays CloudFormation (the stack's outputs) and Step Functions' StartExecution, so the
request is checked by botocore and the started execution's input is read back from moto.
moto does not run executions (DescribeExecution stays RUNNING, the history is canned), so
:class:`Scripted` serves DescribeExecution and GetExecutionHistory from a script of events
shaped like the real state machine's (statemachine/backfill.asl.json), paged newest first
the way GetExecutionHistory pages with reverseOrder.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from ddbsync.backfill.follow import Progress, new_events
from ddbsync.cli import commands
from ddbsync.cli.backfill_stack import run_on_stack

REGION = "eu-west-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILES: list[dict[str, Any]] = [{"key": f"exports/data/{n}.json.gz", "item_count": 1000} for n in "abc"]


class Scripted:
    """Step Functions whose execution goes through ``ticks``: one tick per DescribeExecution."""

    def __init__(self, real: Any, ticks: list[tuple[str, list[dict[str, Any]]]], **end: str) -> None:
        self.real = real
        self.ticks = ticks
        self.end = end
        self.events: list[dict[str, Any]] = []
        self.history_calls = 0

    def start_execution(self, **kwargs: Any) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self.real.start_execution(**kwargs)
        return response

    def describe_execution(self, **kwargs: Any) -> Mapping[str, Any]:
        status, events = self.ticks.pop(0) if self.ticks else ("RUNNING", [])
        self.events.extend(events)
        return {"status": status, **(self.end if status != "RUNNING" else {})}

    def get_execution_history(self, **kwargs: Any) -> Mapping[str, Any]:
        self.history_calls += 1
        assert kwargs["reverseOrder"] is True
        newest_first = sorted(self.events, key=lambda e: -e["id"])
        start = int(kwargs.get("nextToken", 0))
        size = int(kwargs["maxResults"])
        page = {"events": newest_first[start : start + size]}
        return {**page, "nextToken": str(start + size)} if start + size < len(newest_first) else page


def numbered(events: list[dict[str, Any]], first: int) -> list[dict[str, Any]]:
    return [{"id": first + i, **e} for i, e in enumerate(events)]


def entered(name: str, at: float, kind: str = "Task") -> dict[str, Any]:
    return {"type": f"{kind}StateEntered", "timestamp": T0 + timedelta(seconds=at),
            "stateEnteredEventDetails": {"name": name}}  # fmt: skip


def exited(name: str, at: float, output: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "TaskStateExited", "timestamp": T0 + timedelta(seconds=at),
            "stateExitedEventDetails": {"name": name, "output": json.dumps(output)}}  # fmt: skip


def index_file(key: str, at: float, lines: int, done: bool) -> dict[str, Any]:
    backfill = {"files": FILES, "item_count": 3000}
    return exited("IndexFile", at, {"file": {"key": key}, "backfill": backfill, "lines": lines,
                                    "checkpoint": lines, "done": done, "indexed": lines})  # fmt: skip


def backfill_ticks(end: str) -> list[tuple[str, list[dict[str, Any]]]]:
    a, b, c = (str(f["key"]) for f in FILES)
    manifest = {"backfill": {"files": FILES, "item_count": 3000}}
    ticks = [
        [{"type": "ExecutionStarted", "timestamp": T0}, entered("Prepare", 1), exited("Prepare", 2, {})],
        [entered("ReadManifest", 90), exited("ReadManifest", 95, manifest),
         entered("IndexFiles", 100, "Map"), entered("IndexFile", 100)],
        [index_file(a, 110, 1000, True), entered("IndexFile", 110), index_file(b, 110, 500, False)],
        [index_file(b, 120, 1000, True), index_file(c, 120, 1000, True), entered("Finalize", 121),
         exited("Finalize", 125, {}), {"type": f"Execution{end.title()}", "timestamp": T0}],
    ]  # fmt: skip
    first = 1
    script = []
    for i, events in enumerate(ticks):
        script.append(("RUNNING" if i < len(ticks) - 1 else end, numbered(events, first)))
        first += len(events)
    return script


@pytest.fixture
def stack(aws: None) -> Iterator[Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    role = "arn:aws:iam::123456789012:role/r"
    machine = sfn.create_state_machine(name="backfill", definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"BackfillStateMachineArn": {"Value": machine}}}  # fmt: skip
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="ddbsync-dev", TemplateBody=json.dumps(template))
    yield cfn, sfn, machine


def args(*argv: str) -> argparse.Namespace:
    return commands.build_parser().parse_args(["backfill", *argv, "--poll-seconds", "0"])


def test_a_backfill_is_started_followed_with_progress_and_exits_0_when_it_succeeds(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cfn, real, machine = stack
    scripted = Scripted(real, backfill_ticks("SUCCEEDED"))
    assert run_on_stack(args("--stack", "ddbsync-dev"), cloudformation=cfn, sfn=scripted) == 0
    out = capsys.readouterr().out
    # Started on the stack's state machine with input {} (moto kept the request).
    [execution] = real.list_executions(stateMachineArn=machine)["executions"]
    assert real.describe_execution(executionArn=execution["executionArn"])["input"] == "{}"
    assert f"started {execution['executionArn']}" in out
    # 1,500 items 10 s after the first file started: 150 items/s, 1,500 to go: 10 s.
    assert "IndexFile  files 1/3  items 1,500/3,000  150 items/s  ETA 0:00:10" in out
    assert "SUCCEEDED: 3 files, 3,000 items" in out


def test_a_failed_backfill_exits_1_with_the_cause(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cfn, real, _ = stack
    cause = "BackfillFileError: exports/data/c.json.gz, line 7: not DynamoDB JSON"
    scripted = Scripted(real, backfill_ticks("FAILED"), error="BackfillFileError", cause=cause)
    assert run_on_stack(args("--stack", "ddbsync-dev"), cloudformation=cfn, sfn=scripted) == 1
    err = capsys.readouterr().err
    assert f"backfill FAILED after 3 files, 3,000 items: BackfillFileError: {cause}" in err


def test_an_archive_source_is_passed_as_the_execution_input(stack: Any) -> None:
    cfn, real, machine = stack
    source = {"source": {"archive": "s3://archive/table=t/"}}
    scripted = Scripted(real, backfill_ticks("SUCCEEDED"))
    assert run_on_stack(args("--stack", "ddbsync-dev", "--input", json.dumps(source)),
                        cloudformation=cfn, sfn=scripted) == 0  # fmt: skip
    [execution] = real.list_executions(stateMachineArn=machine)["executions"]
    assert json.loads(real.describe_execution(executionArn=execution["executionArn"])["input"]) == source


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--stack", "nope"], "cannot read stack 'nope'"),
        (["--stack", "ddbsync-dev", "--input", "[1]"], "--input must be a JSON object"),
        (["--stack", "ddbsync-dev", "--input", "{bad"], "--input must be a JSON object"),
    ],
)
def test_what_cannot_start_is_one_line_and_exit_2(
    stack: Any, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    cfn, real, _ = stack
    assert run_on_stack(args(*argv), cloudformation=cfn, sfn=Scripted(real, [])) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_stack_without_the_state_machine_output_is_refused(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName="other", TemplateBody=json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    )
    assert run_on_stack(args("--stack", "other"), cloudformation=cfn) == 2
    assert "has no BackfillStateMachineArn output" in capsys.readouterr().err


def test_stack_mode_needs_no_moto_and_goes_through_the_cli(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "moto_is_missing", lambda: True)
    assert commands.main(["backfill", "--stack", "missing-stack", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "cannot read stack 'missing-stack'" in err and "moto" not in err
    assert commands.main(["backfill"]) == commands.EXIT_MISSING_EXTRA  # the local mode still needs it


def test_the_history_is_read_back_only_to_the_last_event_seen(aws: None) -> None:
    events = numbered([entered("IndexFile", i) for i in range(250)], 1)
    scripted = Scripted(None, [])
    scripted.events = events
    assert [e["id"] for e in new_events(scripted, "arn", 240)] == list(range(241, 251))
    assert scripted.history_calls == 1
    assert [e["id"] for e in new_events(scripted, "arn", 0)] == list(range(1, 251))
    assert scripted.history_calls == 1 + 3


def test_progress_counts_each_file_once_however_often_it_is_called() -> None:
    progress = Progress()
    progress.apply({"id": 1, **exited("ReadManifest", 0, {"backfill": {"files": FILES, "item_count": 3000}})})
    for lines, done in [(400, False), (900, False), (1000, True), (1000, True)]:  # a retried last call
        progress.apply({"id": 2, **index_file(str(FILES[0]["key"]), 5, lines, done)})
    assert (len(progress.files_done), progress.items_done) == (1, 1000)
    assert progress.line().startswith("IndexFile") is False  # no state entered yet: still "starting"
    assert "files 1/3  items 1,000/3,000" in progress.line()
