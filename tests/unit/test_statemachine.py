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

import boto3
import pytest
import yaml

from ddbsync.backfill.map_report import raise_map_failures
from ddbsync.errors import MapRunError
from ddbsync_local.stepfunctions import Execution, TaskFailed, run, substitute

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "backfill.asl.json"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:ddbsync-dev-BackfillFunction-abc"
CONCURRENCY = 7
RESULTS_BUCKET = "ddbsync-dev-exportbucket-abc"
PER_BATCH = 3
SUBSTITUTIONS = {
    "BackfillFunctionArn": FUNCTION_ARN,
    "MapConcurrency": str(CONCURRENCY),
    "MapResultsBucket": RESULTS_BUCKET,
    "ArchiveSettleSeconds": "960",
    "ArchiveObjectsPerBatch": str(PER_BATCH),
}

ACTIONS = {
    "prepare",
    "start_export",
    "describe_export",
    "read_manifest",
    "index_file",
    "prepare_rebuild",
    "index_archive_objects",
    "report_map_failures",
    "finalize",
    "abort",
}
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
    loaded = json.loads(substitute(raw, SUBSTITUTIONS))
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
    assert placeholders == set(substitutions) == set(SUBSTITUTIONS)


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
    assert states[definition["StartAt"]]["Next"] == "ChooseSource"
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
    # The archive branch: no floor, a settle wait for Firehose's buffers, then its Map.
    assert states["PrepareRebuild"]["Next"] == "WaitForArchive"
    assert states["WaitForArchive"]["Seconds"] == 960
    assert states["WaitForArchive"]["Next"] == "IndexArchive"
    assert states["IndexArchive"]["Next"] == "Finalize"


def test_the_source_picks_the_branch(states: dict[str, Any]) -> None:
    choice = states["ChooseSource"]
    rules = [
        (c["Variable"], {k: v for k, v in c.items() if k not in ("Variable", "Next")}, c["Next"])
        for c in choice["Choices"]
    ]
    # No source at all is the export backfill; a source without a type is refused before
    # any StringEquals reads it (a missing path there is a runtime error, not a no-match).
    assert rules[0] == ("$.backfill.source", {"IsPresent": False}, "Prepare")
    assert rules[1] == ("$.backfill.source.type", {"IsPresent": False}, "BadSource")
    by_type = {r[1]["StringEquals"]: r[2] for r in rules[2:]}
    assert by_type == {"export": "Prepare", "archive": "PrepareRebuild"}
    assert choice["Default"] == "BadSource"
    assert states["BadSource"]["ResultPath"] == "$.error" and states["BadSource"]["Next"] == "Abort"


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
                "backfill.$": "$.backfill",
                "file.$": "$.file",
                "checkpoint.$": "$.checkpoint",
            }
            assert state["ResultPath"] == "$"
        elif params["action"] == "index_archive_objects":
            assert params == {
                "action": "index_archive_objects",
                "backfill.$": "$.backfill",
                "items.$": "$.items",
                "checkpoint.$": "$.checkpoint",
            }
            assert state["ResultPath"] == "$"
        elif params["action"] == "report_map_failures":
            # It raises; were it to return, its result is the error Abort reports.
            assert params["error.$"] == "$.error" and params["execution.$"] == "$$.Execution.Name"
            assert state["ResultPath"] == "$.error" and state["Next"] == "Abort"
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


MAPS = ("IndexFiles", "IndexArchive")


def test_every_failure_ends_in_abort_then_a_fail_state(states: dict[str, Any]) -> None:
    catch_all = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Abort"}]
    for name, state in states.items():
        if state["Type"] == "Task" and name != "Abort":
            assert state["Catch"] == catch_all, name
    # A failed Map reports its children's errors first (the parent only sees the threshold).
    for name in MAPS:
        assert states[name]["Catch"] == [
            {
                "ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                "ResultPath": "$.error",
                "Next": "ReportFailures",
            },
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ReportFailures"},
        ], name
        # Inside the Map a Catch cannot reach Abort: it fails the child with the task's error.
        inner = states[name]["ItemProcessor"]["States"]
        (task,) = [s for s in inner.values() if s["Type"] == "Task"]
        (catcher,) = task["Catch"]
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


@pytest.mark.parametrize("name", MAPS)
def test_both_maps_are_distributed_with_tolerance_0_and_a_result_writer(
    raw: str, states: dict[str, Any], name: str
) -> None:
    assert raw.count('"MaxConcurrency": ${MapConcurrency}') == 2  # a number once substituted
    state = states[name]
    assert state["MaxConcurrency"] == CONCURRENCY
    assert state["ToleratedFailurePercentage"] == 0
    assert "ToleratedFailureCount" not in state
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert state["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {
            "Bucket": RESULTS_BUCKET,
            "Prefix.$": "States.Format('map-results/{}', $$.Execution.Name)",
        },
    }
    assert state["ResultPath"] is None
    assert "ItemsPath" not in state  # the items come from S3, never from the state


def test_the_export_map_reads_manifest_files_json_as_json_lines(index_files: dict[str, Any]) -> None:
    assert index_files["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSONL"},
        "Parameters": {"Bucket.$": "$.backfill.manifest_bucket", "Key.$": "$.backfill.manifest_files_key"},
    }
    # A manifest line is {"itemCount", "md5Checksum", "etag", "dataFileS3Key"}.
    assert index_files["ItemSelector"] == {
        "file": {"key.$": "$$.Map.Item.Value.dataFileS3Key", "item_count.$": "$$.Map.Item.Value.itemCount"},
        "backfill.$": "$.backfill",
        "checkpoint": None,
    }
    assert "ItemBatcher" not in index_files  # a data file can take a whole invocation


def test_the_archive_map_lists_the_prefix_in_batches(states: dict[str, Any]) -> None:
    archive = states["IndexArchive"]
    assert archive["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket.$": "$.backfill.source.bucket", "Prefix.$": "$.backfill.source.prefix"},
    }
    batcher = {"MaxItemsPerBatch": PER_BATCH, "BatchInput": {"backfill.$": "$.backfill"}}
    assert archive["ItemBatcher"] == batcher
    inner = archive["ItemProcessor"]
    start = inner["States"][inner["StartAt"]]
    assert start["Type"] == "Pass"
    assert start["Parameters"] == {
        "items.$": "$.Items",
        "backfill.$": "$.BatchInput.backfill",
        "checkpoint": {"item": 0, "line": 0},
    }


@pytest.mark.parametrize(
    ("name", "task"), [("IndexFiles", "IndexFile"), ("IndexArchive", "IndexArchiveObjects")]
)
def test_map_children_loop_on_their_task_until_done(states: dict[str, Any], name: str, task: str) -> None:
    inner = states[name]["ItemProcessor"]["States"]
    choice = inner[inner[task]["Next"]]
    assert choice["Type"] == "Choice"
    by_done = {c["BooleanEquals"]: c["Next"] for c in choice["Choices"] if c["Variable"] == "$.done"}
    assert by_done[False] == task
    assert inner[by_done[True]].get("End") is True
    assert inner[by_done[True]]["Type"] == "Pass"  # a small output per child for the ResultWriter
    # Anything but a boolean is a bug in the handler, not "done".
    assert inner[choice["Default"]]["Type"] == "Fail"


# ---------------------------------------------------------------- simulated runs

Handler = Callable[[dict[str, Any]], Any]
FILES = [
    {"key": "exports/AWSDynamoDB/01-x/data/a.json.gz", "item_count": 3},
    {"key": "exports/b", "item_count": 0},
]
MANIFEST_FILES_KEY = "exports/AWSDynamoDB/01-x/manifest-files.json"
ARCHIVE_BUCKET = "ddbsync-dev-archivebucket-xyz"
ARCHIVE_KEYS = [f"arch/table=t/dt=2026-01-01/hour={h:02d}/obj-{h}.gz" for h in range(7)]
ARCHIVE_SOURCE = {"type": "archive", "uri": f"s3://{ARCHIVE_BUCKET}/arch/"}


@pytest.fixture
def s3(aws: None) -> Any:
    """moto S3 with the results bucket (also the export bucket) and an archive of 7 objects."""
    client = boto3.client("s3", region_name="eu-west-1")
    for bucket in (RESULTS_BUCKET, ARCHIVE_BUCKET):
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key in ARCHIVE_KEYS:
        client.put_object(Bucket=ARCHIVE_BUCKET, Key=key, Body=b"{}\n")
    client.put_object(Bucket=ARCHIVE_BUCKET, Key="elsewhere/x.gz", Body=b"{}\n")
    return client


class FakeBackfill:
    """Stands in for ddbsync.backfill.steps.handler: records calls, returns contract-shaped results.

    ``read_manifest`` writes manifest-files.json to (moto) S3 as the export would, and
    ``report_map_failures`` is the real one (ddbsync.backfill.map_report) failing like a Lambda.
    """

    def __init__(self, s3: Any, **overrides: Handler) -> None:
        self.s3 = s3
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
            "read_manifest": self.read_manifest,
            "index_file": lambda e: {**e, "checkpoint": None, "done": True, "indexed": 3, "lines": 3},
            "prepare_rebuild": lambda e: {
                **e["backfill"],
                "source": {**e["backfill"]["source"], "bucket": ARCHIVE_BUCKET, "prefix": "arch/"},
                "new_index": "items-20250101000000",
                "next_alias": "items-next",
            },
            "index_archive_objects": lambda e: {
                **e,
                "checkpoint": {"item": len(e["items"]), "line": 0},
                "done": True,
            },
            "report_map_failures": self.report_map_failures,
            "finalize": lambda e: {**e["backfill"], "swapped": True, "doc_count": 3},
            "abort": lambda e: {**e["backfill"], "aborted": True},
        }
        self.handlers.update(overrides)

    def read_manifest(self, event: dict[str, Any]) -> dict[str, Any]:
        lines = [
            {"itemCount": f["item_count"], "md5Checksum": "x", "etag": "y", "dataFileS3Key": f["key"]}
            for f in FILES
        ]
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        self.s3.put_object(Bucket=RESULTS_BUCKET, Key=MANIFEST_FILES_KEY, Body=body)
        return {
            **event["backfill"],
            "manifest_bucket": RESULTS_BUCKET,
            "manifest_files_key": MANIFEST_FILES_KEY,
            "item_count": 3,
            "output_format": "DYNAMODB_JSON",
        }

    def report_map_failures(self, event: dict[str, Any]) -> Any:
        source = event["backfill"].get("source") or {}
        data_bucket = source.get("bucket", RESULTS_BUCKET)
        try:
            raise_map_failures(self.s3, RESULTS_BUCKET, event["execution"], data_bucket, event["error"])
        except MapRunError as e:
            raise lambda_error("MapRunError", str(e)) from e
        raise AssertionError("raise_map_failures returned")

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


def execute(definition: dict[str, Any], execution_input: Any, fake: FakeBackfill) -> Execution:
    return run(definition, execution_input, fake, name="exec-1", s3=fake.s3)


def lambda_error(error_type: str, message: str) -> TaskFailed:
    """What Step Functions reports for a Lambda function that raised."""
    return TaskFailed(error_type, json.dumps({"errorMessage": message, "errorType": error_type}))


def raising(error: TaskFailed) -> Handler:
    def handler(event: dict[str, Any]) -> Any:
        raise error

    return handler


def test_happy_path_calls_every_action_in_order(definition: dict[str, Any], s3: Any) -> None:
    fake = FakeBackfill(s3)
    execution = execute(definition, {}, fake)
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
    # One child per manifest line, read from S3 by the Map itself.
    assert sorted((p["file"]["key"], p["file"]["item_count"]) for p in fake.payloads("index_file")) == sorted(
        (f["key"], f["item_count"]) for f in FILES
    )
    assert all(p["checkpoint"] is None for p in fake.payloads("index_file"))
    assert execution.trace.count("WaitForExport") == 2
    assert "WaitForDualWrite" in execution.trace
    backfill = execution.output["backfill"]
    assert backfill["swapped"] is True
    assert backfill["export_status"] == "COMPLETED"
    # Each task saw the state built by the ones before it; no file list travels in it.
    assert fake.payloads("finalize")[0]["backfill"]["manifest_files_key"] == MANIFEST_FILES_KEY
    assert "files" not in fake.payloads("finalize")[0]["backfill"]
    assert fake.payloads("start_export")[0]["backfill"]["next_alias"] == "items-next"
    # The Map's ResultWriter wrote its manifest under map-results/<execution name>/.
    listed = s3.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix="map-results/exec-1/")["Contents"]
    assert any(o["Key"].endswith("/manifest.json") for o in listed)


def test_execution_input_becomes_the_backfill_object(definition: dict[str, Any], s3: Any) -> None:
    fake = FakeBackfill(s3)
    execute(definition, {"keep_old_index": True}, fake)
    assert fake.payloads("prepare")[0] == {"action": "prepare", "backfill": {"keep_old_index": True}}
    fake = FakeBackfill(s3)
    execute(definition, {"source": {"type": "export"}}, fake)
    assert fake.actions[0] == "prepare" and fake.actions[-1] == "finalize"


def test_a_file_not_done_resumes_from_the_returned_checkpoint(definition: dict[str, Any], s3: Any) -> None:
    progress = {"a": ["line:1000", "line:2000", None]}

    def index_file(event: dict[str, Any]) -> dict[str, Any]:
        if event["file"]["key"] != FILES[0]["key"]:
            return {**event, "done": True, "indexed": 0, "lines": 0}
        checkpoint = progress["a"].pop(0)
        return {**event, "checkpoint": checkpoint, "done": checkpoint is None, "indexed": 1, "lines": 1}

    fake = FakeBackfill(s3, index_file=index_file)
    execution = execute(definition, {}, fake)
    assert execution.status == "SUCCEEDED", execution
    first_file = [p for p in fake.payloads("index_file") if p["file"] == FILES[0]]
    assert [p["checkpoint"] for p in first_file] == [None, "line:1000", "line:2000"]
    assert all(p["backfill"] == first_file[0]["backfill"] for p in first_file)
    assert len(fake.payloads("index_file")) == 4
    assert fake.actions[-1] == "finalize"


def test_a_failed_finalize_aborts_then_fails_with_its_cause(definition: dict[str, Any], s3: Any) -> None:
    error = lambda_error("CountShortfall", "new index holds 2 documents, manifest says 3")
    fake = FakeBackfill(s3, finalize=raising(error))
    execution = execute(definition, {}, fake)
    assert fake.actions[-2:] == ["finalize", "abort"]
    (abort,) = fake.payloads("abort")
    assert abort["error"] == {"Error": "CountShortfall", "Cause": error.cause}
    assert abort["backfill"]["new_index"] == "items-20250101000000"
    assert (execution.status, execution.error, execution.cause) == ("FAILED", "CountShortfall", error.cause)
    assert execution.trace[-2:] == ["Abort", "BackfillFailed"]


def test_a_failed_export_aborts_with_the_export_failure(definition: dict[str, Any], s3: Any) -> None:
    fake = FakeBackfill(s3)
    fake.statuses = ["IN_PROGRESS", "FAILED"]
    failure = {"code": "S3AccessDenied", "message": "no write to bucket"}
    describe = fake.handlers["describe_export"]
    fake.handlers["describe_export"] = lambda e: {**describe(e), "failure": failure}
    execution = execute(definition, {}, fake)
    assert "read_manifest" not in fake.actions
    assert fake.actions[-1] == "abort"
    assert execution.status == "FAILED"
    assert execution.error == "ExportFailed"
    assert execution.cause is not None
    assert "export/01-x ended FAILED" in execution.cause
    assert "S3AccessDenied" in execution.cause
    assert fake.payloads("abort")[0]["error"]["Cause"] == execution.cause


def test_a_failed_file_is_reported_with_its_s3_uri_and_line(definition: dict[str, Any], s3: Any) -> None:
    # What the backfill Lambda raises for a bad line: BackfillFileError("<key>, line 7: ...").
    error = lambda_error("BackfillFileError", f"{FILES[1]['key']}, line 7: invalid JSON")
    fake = FakeBackfill(s3)
    ok = fake.handlers["index_file"]
    fake.handlers["index_file"] = lambda e: ok(e) if e["file"] == FILES[0] else raising(error)(e)
    execution = execute(definition, {}, fake)
    assert "finalize" not in fake.actions
    assert fake.actions[-2:] == ["report_map_failures", "abort"]
    # The Map itself only says its threshold was exceeded ...
    caught = fake.payloads("report_map_failures")[0]["error"]
    assert caught["Error"] == "States.ExceedToleratedFailureThreshold"
    # ... the report names the child's error, file and line, and that is the execution's cause.
    assert (execution.status, execution.error) == ("FAILED", "MapRunError")
    assert execution.cause is not None
    message = json.loads(execution.cause)["errorMessage"]
    assert f"BackfillFileError: s3://{RESULTS_BUCKET}/{FILES[1]['key']}, line 7: invalid JSON" in message
    assert message.startswith("1 child execution(s) of the Map failed")
    assert execution.trace[-3:] == ["ReportFailures", "Abort", "BackfillFailed"]


def test_lambda_throttling_is_retried_without_aborting(definition: dict[str, Any], s3: Any) -> None:
    throttled = [lambda_error("Lambda.TooManyRequestsException", "Rate exceeded")] * 2
    fake = FakeBackfill(s3)
    ok = fake.handlers["index_file"]

    def index_file(event: dict[str, Any]) -> Any:
        if throttled:
            raise throttled.pop()
        return ok(event)

    fake.handlers["index_file"] = index_file
    execution = execute(definition, {}, fake)
    assert execution.status == "SUCCEEDED", execution
    assert "abort" not in fake.actions
    assert execution.trace.count("retry:Lambda.TooManyRequestsException") == 2


def test_a_failed_abort_names_both_errors(definition: dict[str, Any], s3: Any) -> None:
    first = lambda_error("PrepareError", "index template missing")
    second = lambda_error("ConnectionError", "OpenSearch unreachable")
    fake = FakeBackfill(s3, prepare=raising(first), abort=raising(second))
    execution = execute(definition, {}, fake)
    assert fake.actions == ["prepare", "abort"]
    assert execution.status == "FAILED"
    assert execution.error == "PrepareError"
    assert execution.cause is not None
    assert first.cause in execution.cause and second.cause in execution.cause
    assert execution.trace[-1] == "AbortFailed"


def test_an_index_file_result_without_done_fails_instead_of_skipping_lines(
    definition: dict[str, Any], s3: Any
) -> None:
    fake = FakeBackfill(s3, index_file=lambda e: {**e, "done": "yes"})
    execution = execute(definition, {}, fake)
    assert "finalize" not in fake.actions
    assert fake.actions[-1] == "abort"
    assert execution.error == "MapRunError"
    assert execution.cause is not None and "BadIndexFileResult" in execution.cause


def test_a_map_that_cannot_read_its_items_reports_the_maps_own_error(
    definition: dict[str, Any], s3: Any
) -> None:
    fake = FakeBackfill(s3)
    read = fake.handlers["read_manifest"]
    fake.handlers["read_manifest"] = lambda e: {**read(e), "manifest_files_key": "exports/gone.json"}
    execution = execute(definition, {}, fake)
    assert "index_file" not in fake.actions and fake.actions[-2:] == ["report_map_failures", "abort"]
    assert execution.error == "MapRunError" and execution.cause is not None
    message = json.loads(execution.cause)["errorMessage"]
    assert "the Map failed (States.ItemReaderFailed" in message
    assert "no manifest.json under s3://" in message


# ---------------------------------------------------------------- the archive branch


def test_an_archive_source_rebuilds_from_batches_of_listed_objects(
    definition: dict[str, Any], s3: Any
) -> None:
    fake = FakeBackfill(s3)
    execution = execute(definition, {"source": ARCHIVE_SOURCE}, fake)
    assert execution.status == "SUCCEEDED", execution
    assert fake.actions[0] == "prepare_rebuild" and fake.actions[-1] == "finalize"
    assert not {"prepare", "start_export", "read_manifest", "index_file"} & set(fake.actions)
    assert "WaitForArchive" in execution.trace
    batches = fake.payloads("index_archive_objects")
    # 7 objects under the prefix (not elsewhere/), in batches of at most ArchiveObjectsPerBatch.
    assert sorted(len(b["items"]) for b in batches) == [1, 3, 3]
    keys = sorted(item["Key"] for b in batches for item in b["items"])
    assert keys == sorted(ARCHIVE_KEYS)
    assert set(batches[0]["items"][0]) == {"Key", "Size", "Etag", "LastModified", "StorageClass"}
    assert all(b["checkpoint"] == {"item": 0, "line": 0} for b in batches)
    assert all(b["backfill"]["source"]["bucket"] == ARCHIVE_BUCKET for b in batches)
    assert all(b["backfill"]["next_alias"] == "items-next" for b in batches)


def test_an_archive_batch_not_done_resumes_from_its_checkpoint(definition: dict[str, Any], s3: Any) -> None:
    steps = [{"item": 1, "line": 40}, {"item": 2, "line": 0}]

    def index_archive_objects(event: dict[str, Any]) -> dict[str, Any]:
        if len(event["items"]) != 1 or not steps:
            return {**event, "checkpoint": {"item": len(event["items"]), "line": 0}, "done": True}
        return {**event, "checkpoint": steps.pop(0), "done": False}

    fake = FakeBackfill(s3, index_archive_objects=index_archive_objects)
    execution = execute(definition, {"source": ARCHIVE_SOURCE}, fake)
    assert execution.status == "SUCCEEDED", execution
    single = [b["checkpoint"] for b in fake.payloads("index_archive_objects") if len(b["items"]) == 1]
    assert single == [{"item": 0, "line": 0}, {"item": 1, "line": 40}, {"item": 2, "line": 0}]


def test_a_failed_archive_batch_names_the_archive_object(definition: dict[str, Any], s3: Any) -> None:
    bad = ARCHIVE_KEYS[4]
    error = lambda_error("BackfillFileError", f"{bad}, line 12: not a stream record")

    def index_archive_objects(event: dict[str, Any]) -> dict[str, Any]:
        if any(item["Key"] == bad for item in event["items"]):
            raise error
        return {**event, "checkpoint": {"item": len(event["items"]), "line": 0}, "done": True}

    fake = FakeBackfill(s3, index_archive_objects=index_archive_objects)
    execution = execute(definition, {"source": ARCHIVE_SOURCE}, fake)
    assert execution.error == "MapRunError" and execution.cause is not None
    assert f"s3://{ARCHIVE_BUCKET}/{bad}, line 12: not a stream record" in execution.cause
    assert fake.actions[-1] == "abort" and "finalize" not in fake.actions


@pytest.mark.parametrize("source", [{"type": "tape"}, {"uri": "s3://b/p"}, "archive"])
def test_an_unknown_source_aborts_before_anything_is_created(
    definition: dict[str, Any], s3: Any, source: object
) -> None:
    fake = FakeBackfill(s3)
    execution = execute(definition, {"source": source}, fake)
    assert fake.actions == ["abort"]
    assert execution.error == "BadSource"
    assert execution.cause is not None and "'export' or 'archive'" in execution.cause


def test_the_deployed_definition_is_the_one_the_package_ships() -> None:
    # template.yaml deploys statemachine/backfill.asl.json; `ddbsync backfill` (installed, no
    # checkout) runs the packaged copy. One file: the repo path is a link to the package's.
    from ddbsync_local.backfill_run import ASL_PATH

    assert ASL.is_symlink()
    assert ASL.resolve() == ASL_PATH.resolve()
    assert ASL_PATH.is_file() and ASL_PATH.parent.name == "templates"
