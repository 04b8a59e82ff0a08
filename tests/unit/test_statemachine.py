"""statemachine/backfill.asl.json: the flow of docs/backfill-contract.md, checked as data and run.

The first half reads the definition (after the CloudFormation DefinitionSubstitutions)
and checks its shape; the second half runs it in a small interpreter
(ddbsync_local.stepfunctions, the local Step Functions runner) against a fake backfill Lambda.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ddbsync_local.stepfunctions import TaskFailed, run, substitute

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "backfill.asl.json"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:ddbsync-dev-BackfillFunction-abc"
CONCURRENCY = 7

ACTIONS = {"prepare", "start_export", "describe_export", "read_manifest", "index_file", "finalize", "abort"}
RETRIED_ERRORS = {
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.SdkClientException",
    "ThrottlingException",
}


@pytest.fixture(scope="module")
def raw() -> str:
    return ASL.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def definition(raw: str) -> dict[str, Any]:
    loaded = json.loads(
        substitute(raw, {"BackfillFunctionArn": FUNCTION_ARN, "MapConcurrency": str(CONCURRENCY)})
    )
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def states(definition: dict[str, Any]) -> dict[str, Any]:
    result = definition["States"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def index_files(states: dict[str, Any]) -> dict[str, Any]:
    result = states["IndexFiles"]
    assert isinstance(result, dict)
    return result


def blocks(machine: dict[str, Any], where: str = "top") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every States block: the top level and each Map's ItemProcessor."""
    yield where, machine
    for name, state in machine["States"].items():
        if state["Type"] == "Map":
            yield from blocks(state["ItemProcessor"], name)


def all_states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for _, block in blocks(machine):
        yield from block["States"].items()


def targets(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


def follow(states: dict[str, Any], name: str) -> str:
    """Follow Pass states to the first state that does something."""
    while states[name]["Type"] == "Pass":
        name = states[name]["Next"]
    return name


# ---------------------------------------------------------------- shape


def test_placeholders_are_exactly_the_template_substitutions(raw: str) -> None:
    with (ROOT / "template.yaml").open(encoding="utf-8") as f:
        # Only the keys matter here: CloudFormation short tags (!GetAtt ...) load as None.
        class Loader(yaml.SafeLoader):
            pass

        Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
        template = yaml.load(f, Loader=Loader)
    substitutions = template["Resources"]["BackfillStateMachine"]["Properties"]["DefinitionSubstitutions"]
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", raw))
    assert placeholders == set(substitutions) == {"BackfillFunctionArn", "MapConcurrency"}


def test_every_state_is_reachable_and_every_transition_exists(definition: dict[str, Any]) -> None:
    for where, block in blocks(definition):
        names = set(block["States"])
        assert block["StartAt"] in names, where
        seen, todo = set(), [block["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for target in targets(block["States"][name]):
                assert target in names, f"{where}/{name} -> {target} does not exist"
                todo.append(target)
        assert seen == names, f"{where}: unreachable {sorted(names - seen)}"


def test_only_succeed_fail_and_end_states_stop(definition: dict[str, Any]) -> None:
    for where, block in blocks(definition):
        for name, state in block["States"].items():
            if state["Type"] in ("Succeed", "Fail"):
                assert not targets(state), name
            elif state["Type"] != "Choice":
                assert ("Next" in state) != bool(state.get("End")), f"{where}/{name}"
    assert [n for n, s in definition["States"].items() if s["Type"] == "Succeed"] == ["Done"]
    assert definition["States"]["Finalize"]["Next"] == "Done"


def test_flow_follows_the_contract(definition: dict[str, Any], states: dict[str, Any]) -> None:
    assert follow(states, definition["StartAt"]) == "Prepare"
    assert states["Prepare"]["Next"] == "WaitForDualWrite"
    assert states["WaitForDualWrite"] == {
        "Type": "Wait",
        "Comment": states["WaitForDualWrite"]["Comment"],
        "SecondsPath": "$.backfill.wait_seconds",
        "Next": "StartExport",
    }
    assert states["StartExport"]["Next"] == "WaitForExport"
    assert states["WaitForExport"]["Seconds"] == 60
    assert states["WaitForExport"]["Next"] == "DescribeExport"
    assert states[states["DescribeExport"]["Next"]]["Type"] == "Choice"
    assert states["ReadManifest"]["Next"] == "IndexFiles"
    assert states["IndexFiles"]["Next"] == "Finalize"


def test_every_task_calls_the_backfill_function_with_its_action(definition: dict[str, Any]) -> None:
    seen = set()
    for name, state in all_states(definition):
        if state["Type"] != "Task":
            continue
        assert state["Resource"] == FUNCTION_ARN, name
        params = state["Parameters"]
        seen.add(params["action"])
        assert params["backfill.$"] == "$.backfill", name
        if params["action"] == "index_file":
            # The iteration state is the result itself: file, backfill, checkpoint, done ...
            assert params == {
                "action": "index_file",
                "file.$": "$.file",
                "backfill.$": "$.backfill",
                "checkpoint.$": "$.checkpoint",
            }
            assert state["ResultPath"] == "$"
        else:
            # Every other action returns the whole updated backfill object.
            assert state["ResultPath"] == "$.backfill", name
    assert seen == ACTIONS


def test_every_task_retries_lambda_throttling_with_backoff(definition: dict[str, Any]) -> None:
    tasks = [(n, s) for n, s in all_states(definition) if s["Type"] == "Task"]
    assert len(tasks) == len(ACTIONS)
    for name, state in tasks:
        (retrier,) = state["Retry"]
        assert set(retrier["ErrorEquals"]) == RETRIED_ERRORS, name
        assert (retrier["IntervalSeconds"], retrier["BackoffRate"], retrier["MaxAttempts"]) == (2, 2, 6), name


def test_every_failure_ends_in_abort_then_a_fail_state(
    states: dict[str, Any], index_files: dict[str, Any]
) -> None:
    catch_all = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Abort"}]
    for name, state in states.items():
        if state["Type"] in ("Task", "Map") and name != "Abort":
            assert state["Catch"] == catch_all, name
    # Inside the Map a Catch cannot reach Abort: it re-raises to the Map, whose Catch does.
    inner = index_files["ItemProcessor"]["States"]
    (catcher,) = inner["IndexFile"]["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    rethrow = inner[catcher["Next"]]
    assert rethrow == {
        "Type": "Fail",
        "Comment": rethrow["Comment"],
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }
    abort = states["Abort"]
    assert abort["Parameters"] == {"action": "abort", "backfill.$": "$.backfill", "error.$": "$.error"}
    assert states[abort["Next"]]["Type"] == "Fail"
    assert states[abort["Next"]]["CausePath"] == "$.error.Cause"
    (abort_catcher,) = abort["Catch"]
    assert abort_catcher["ResultPath"] != "$.error"  # keep the original error for the Fail state
    assert states[abort_catcher["Next"]]["Type"] == "Fail"


def test_export_status_loops_while_in_progress_and_aborts_on_failure(states: dict[str, Any]) -> None:
    choice = states[states["DescribeExport"]["Next"]]
    by_status = {c["StringEquals"]: c["Next"] for c in choice["Choices"]}
    assert {c["Variable"] for c in choice["Choices"]} == {"$.backfill.export_status"}
    assert by_status["COMPLETED"] == "ReadManifest"
    assert by_status["IN_PROGRESS"] == "WaitForExport"
    assert follow(states, by_status["FAILED"]) == "Abort"
    assert follow(states, choice["Default"]) == "Abort"
    assert states[by_status["FAILED"]]["ResultPath"] == "$.error"


def test_map_fans_out_over_files_with_the_substituted_concurrency(
    raw: str, index_files: dict[str, Any]
) -> None:
    assert '"MaxConcurrency": ${MapConcurrency}' in raw  # a number once substituted, not a string
    assert index_files["MaxConcurrency"] == CONCURRENCY
    assert index_files["ItemsPath"] == "$.backfill.files"
    assert index_files["ItemSelector"] == {
        "file.$": "$$.Map.Item.Value",
        "backfill.$": "$.backfill",
        "checkpoint": None,
    }
    assert index_files["ResultPath"] is None
    assert index_files["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}


def test_map_iteration_loops_on_index_file_until_done(index_files: dict[str, Any]) -> None:
    inner = index_files["ItemProcessor"]["States"]
    assert index_files["ItemProcessor"]["StartAt"] == "IndexFile"
    choice = inner[inner["IndexFile"]["Next"]]
    assert choice["Type"] == "Choice"
    by_done = {c["BooleanEquals"]: c["Next"] for c in choice["Choices"] if c["Variable"] == "$.done"}
    assert by_done[False] == "IndexFile"
    assert inner[by_done[True]].get("End") is True
    # Anything but a boolean is a bug in the handler, not "done".
    assert inner[choice["Default"]]["Type"] == "Fail"


# ---------------------------------------------------------------- simulated runs

Handler = Callable[[dict[str, Any]], Any]
FILES = [
    {"key": "exports/AWSDynamoDB/01-x/data/a.json.gz", "item_count": 3},
    {"key": "exports/b", "item_count": 0},
]


class FakeBackfill:
    """Stands in for ddbsync.backfill.steps.handler: records calls, returns contract-shaped results."""

    def __init__(self, **overrides: Handler) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.statuses = ["IN_PROGRESS", "COMPLETED"]
        self.handlers: dict[str, Handler] = {
            "prepare": lambda e: {
                **e["backfill"],
                "new_index": "items-20250101000000",
                "next_alias": "items-next",
                "live_index": "items-20240101000000",
                "wait_seconds": 65,
            },
            "start_export": lambda e: {
                **e["backfill"],
                "export_arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/t/export/01-x",
                "export_time": 1735689600.5,
            },
            "describe_export": lambda e: {
                **e["backfill"],
                "export_status": self.statuses.pop(0),
                "manifest_summary_key": "exports/AWSDynamoDB/01-x/manifest-summary.json",
                "failure": None,
            },
            "read_manifest": lambda e: {
                **e["backfill"],
                "files": FILES,
                "item_count": 3,
                "output_format": "DYNAMODB_JSON",
            },
            "index_file": lambda e: {**e, "checkpoint": None, "done": True, "indexed": 3, "lines": 3},
            "finalize": lambda e: {**e["backfill"], "swapped": True, "doc_count": 3},
            "abort": lambda e: {**e["backfill"], "aborted": True},
        }
        self.handlers.update(overrides)

    def __call__(self, resource: str, payload: dict[str, Any]) -> Any:
        assert resource == FUNCTION_ARN
        event = {k: v for k, v in payload.items() if k != "action"}
        self.calls.append((payload["action"], payload))
        return self.handlers[payload["action"]](event)

    @property
    def actions(self) -> list[str]:
        return [action for action, _ in self.calls]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.calls if name == action]


def lambda_error(error_type: str, message: str) -> TaskFailed:
    """What Step Functions reports for a Lambda function that raised."""
    return TaskFailed(error_type, json.dumps({"errorMessage": message, "errorType": error_type}))


def raising(error: TaskFailed) -> Handler:
    def handler(event: dict[str, Any]) -> Any:
        raise error

    return handler


def test_happy_path_calls_every_action_in_order(definition: dict[str, Any]) -> None:
    fake = FakeBackfill()
    execution = run(definition, {}, fake)
    assert execution.status == "SUCCEEDED", execution
    assert fake.actions == [
        "prepare",
        "start_export",
        "describe_export",
        "describe_export",  # IN_PROGRESS once: WaitForExport again
        "read_manifest",
        "index_file",
        "index_file",
        "finalize",
    ]
    assert [p["file"] for p in fake.payloads("index_file")] == FILES
    assert all(p["checkpoint"] is None for p in fake.payloads("index_file"))
    assert execution.trace.count("WaitForExport") == 2
    assert "WaitForDualWrite" in execution.trace
    backfill = execution.output["backfill"]
    assert backfill["swapped"] is True
    assert backfill["export_status"] == "COMPLETED"
    # Each task saw the state built by the ones before it.
    assert fake.payloads("finalize")[0]["backfill"]["files"] == FILES
    assert fake.payloads("start_export")[0]["backfill"]["next_alias"] == "items-next"


def test_execution_input_becomes_the_backfill_object(definition: dict[str, Any]) -> None:
    fake = FakeBackfill()
    run(definition, {"keep_old_index": True}, fake)
    assert fake.payloads("prepare")[0] == {"action": "prepare", "backfill": {"keep_old_index": True}}


def test_a_file_not_done_resumes_from_the_returned_checkpoint(definition: dict[str, Any]) -> None:
    progress = {"a": ["line:1000", "line:2000", None]}

    def index_file(event: dict[str, Any]) -> dict[str, Any]:
        if event["file"]["key"] != FILES[0]["key"]:
            return {**event, "done": True, "indexed": 0, "lines": 0}
        checkpoint = progress["a"].pop(0)
        return {**event, "checkpoint": checkpoint, "done": checkpoint is None, "indexed": 1, "lines": 1}

    fake = FakeBackfill(index_file=index_file)
    execution = run(definition, {}, fake)
    assert execution.status == "SUCCEEDED", execution
    first_file = [p for p in fake.payloads("index_file") if p["file"] == FILES[0]]
    assert [p["checkpoint"] for p in first_file] == [None, "line:1000", "line:2000"]
    assert all(p["backfill"] == first_file[0]["backfill"] for p in first_file)
    assert len(fake.payloads("index_file")) == 4
    assert fake.actions[-1] == "finalize"


def test_a_failed_finalize_aborts_then_fails_with_its_cause(definition: dict[str, Any]) -> None:
    error = lambda_error("CountShortfall", "new index holds 2 documents, manifest says 3")
    fake = FakeBackfill(finalize=raising(error))
    execution = run(definition, {}, fake)
    assert fake.actions[-2:] == ["finalize", "abort"]
    (abort,) = fake.payloads("abort")
    assert abort["error"] == {"Error": "CountShortfall", "Cause": error.cause}
    assert abort["backfill"]["new_index"] == "items-20250101000000"
    assert (execution.status, execution.error, execution.cause) == ("FAILED", "CountShortfall", error.cause)
    assert execution.trace[-2:] == ["Abort", "BackfillFailed"]


def test_a_failed_export_aborts_with_the_export_failure(definition: dict[str, Any]) -> None:
    fake = FakeBackfill()
    fake.statuses = ["IN_PROGRESS", "FAILED"]
    failure = {"code": "S3AccessDenied", "message": "no write to bucket"}
    describe = fake.handlers["describe_export"]
    fake.handlers["describe_export"] = lambda e: {**describe(e), "failure": failure}
    execution = run(definition, {}, fake)
    assert "read_manifest" not in fake.actions
    assert fake.actions[-1] == "abort"
    assert execution.status == "FAILED"
    assert execution.error == "ExportFailed"
    assert execution.cause is not None
    assert "export/01-x ended FAILED" in execution.cause
    assert "S3AccessDenied" in execution.cause
    assert fake.payloads("abort")[0]["error"]["Cause"] == execution.cause


def test_a_failed_file_aborts_the_whole_backfill(definition: dict[str, Any]) -> None:
    error = lambda_error("ExportFormatError", "exports/b line 7: truncated line")
    fake = FakeBackfill()
    ok = fake.handlers["index_file"]
    fake.handlers["index_file"] = lambda e: ok(e) if e["file"] == FILES[0] else raising(error)(e)
    execution = run(definition, {}, fake)
    assert "finalize" not in fake.actions
    assert fake.actions[-1] == "abort"
    assert (execution.status, execution.error, execution.cause) == (
        "FAILED",
        "ExportFormatError",
        error.cause,
    )


def test_lambda_throttling_is_retried_without_aborting(definition: dict[str, Any]) -> None:
    throttled = [lambda_error("Lambda.TooManyRequestsException", "Rate exceeded")] * 2
    fake = FakeBackfill()
    ok = fake.handlers["index_file"]

    def index_file(event: dict[str, Any]) -> Any:
        if throttled:
            raise throttled.pop()
        return ok(event)

    fake.handlers["index_file"] = index_file
    execution = run(definition, {}, fake)
    assert execution.status == "SUCCEEDED", execution
    assert "abort" not in fake.actions
    assert execution.trace.count("retry:Lambda.TooManyRequestsException") == 2


def test_a_failed_abort_names_both_errors(definition: dict[str, Any]) -> None:
    first = lambda_error("PrepareError", "index template missing")
    second = lambda_error("ConnectionError", "OpenSearch unreachable")
    fake = FakeBackfill(prepare=raising(first), abort=raising(second))
    execution = run(definition, {}, fake)
    assert fake.actions == ["prepare", "abort"]
    assert execution.status == "FAILED"
    assert execution.error == "PrepareError"
    assert execution.cause is not None
    assert first.cause in execution.cause and second.cause in execution.cause
    assert execution.trace[-1] == "AbortFailed"


def test_an_index_file_result_without_done_fails_instead_of_skipping_lines(
    definition: dict[str, Any],
) -> None:
    fake = FakeBackfill(index_file=lambda e: {**e, "done": "yes"})
    execution = run(definition, {}, fake)
    assert "finalize" not in fake.actions
    assert fake.actions[-1] == "abort"
    assert execution.error == "BadIndexFileResult"


def test_the_deployed_definition_is_the_one_the_package_ships() -> None:
    # template.yaml deploys statemachine/backfill.asl.json; `ddbsync backfill` (installed, no
    # checkout) runs the packaged copy. One file: the repo path is a link to the package's.
    from ddbsync_local.backfill_run import ASL_PATH

    assert ASL.is_symlink()
    assert ASL.resolve() == ASL_PATH.resolve()
    assert ASL_PATH.is_file() and ASL_PATH.parent.name == "templates"
