"""template.yaml and samconfig.toml: the settings that keep the pipeline lossless and observable.

These read the files as data (no network, no AWS account), load each function's handler
the way Lambda finds it, and run the layer's makefile build with stand-ins for uv and pip.
The last test runs ``sam validate --lint`` when the SAM CLI is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ddbsync
import ddbsync.backfill.steps
from ddbsync.config import Settings
from ddbsync_local.backfill_run import ASL_PATH
from ddbsync_local.stepfunctions import load_definition
from tests.support import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

FOURTEEN_DAYS = 14 * 24 * 3600




@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res = template["Resources"]
    assert isinstance(res, dict)
    return res


def _properties(resources: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    """The Properties of resource ``name``, checked to be of type ``kind``."""
    assert resources[name]["Type"] == kind
    props = resources[name]["Properties"]
    assert isinstance(props, dict)
    return props


def _function_properties(resources: dict[str, Any], name: str) -> dict[str, Any]:
    return _properties(resources, name, "AWS::Serverless::Function")


def _stream_event(function: dict[str, Any]) -> dict[str, Any]:
    event = function["Events"]["Stream"]
    assert event["Type"] == "DynamoDB"
    props = event["Properties"]
    assert isinstance(props, dict)
    return props


@pytest.fixture(scope="module")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    return _function_properties(resources, "StreamIndexerFunction")


@pytest.fixture(scope="module")
def stream_event(function: dict[str, Any]) -> dict[str, Any]:
    return _stream_event(function)


def of_type(resources: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res["Type"] == type_}


def function_setting(template: dict[str, Any], function: dict[str, Any], key: str) -> Any:
    """A function property, falling back to Globals.Function like SAM does."""
    return function.get(key, template.get("Globals", {}).get("Function", {}).get(key))


def parameter(template: dict[str, Any], ref: Any) -> dict[str, Any]:
    assert isinstance(ref, dict) and set(ref) == {"Ref"}, f"expected a !Ref to a parameter, got {ref!r}"
    param = template["Parameters"][ref["Ref"]]
    assert isinstance(param, dict)
    return param


def if_branches(value: Any) -> Iterator[Any]:
    """Every value an (possibly nested) Fn::If can take."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        yield from if_branches(when_true)
        yield from if_branches(when_false)
    else:
        yield value


NO_VALUE = {"Ref": "AWS::NoValue"}


def iam_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every identity-policy statement: SAM Policies and IAM resources.

    SAM policy templates (SQSSendMessagePolicy, LambdaInvokePolicy ...) are not expanded;
    an ``!If`` branch of ``AWS::NoValue`` is no statement.
    """
    for owner, document in (*sam_policy_documents(resources), *iam_policy_documents(resources)):
        for statement in document["Statement"]:
            for branch in if_branches(statement):
                if branch != NO_VALUE:
                    yield owner, branch


def sam_policy_documents(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, document) for every policy document in a SAM function's or state machine's Policies."""
    for sam_type in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for name, res in of_type(resources, sam_type).items():
            for policy in res["Properties"].get("Policies", []):
                for document in if_branches(policy):
                    if isinstance(document, dict) and "Statement" in document:
                        yield name, document


def iam_policy_documents(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, document) for every policy document of an IAM role or policy."""
    for iam_type in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, res in of_type(resources, iam_type).items():
            props = res["Properties"]
            for policy in props.get("Policies", []):
                yield name, policy["PolicyDocument"]
            if "PolicyDocument" in props:
                yield name, props["PolicyDocument"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def lambda_handler(code_uri: str, handler: str) -> object:
    """What Lambda calls for a CodeUri and a Handler: ``module.py`` there, loaded; its attribute."""
    module_name, attribute = handler.rsplit(".", 1)
    path = ROOT / code_uri / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{module_name}", path)
    assert spec is not None and spec.loader is not None, (code_uri, handler)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


# ---------------------------------------------------------------- function and layer


def test_template_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_function_runs_python313_on_arm64(template: dict[str, Any], function: dict[str, Any]) -> None:
    assert function_setting(template, function, "Runtime") == "python3.13"
    assert function_setting(template, function, "Architectures") == ["arm64"]
    assert function_setting(template, function, "Timeout") == 60
    assert function_setting(template, function, "MemorySize") == 512
    assert function_setting(template, function, "Tracing") == "Active"


def test_function_is_the_thin_handler_on_the_ddbsync_layer(
    function: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert function["CodeUri"] == "functions/stream_indexer/"
    assert function["Handler"] == "app.handler"
    # The handler Lambda finds there is the one ddbsync.handler.make_handler builds, at import.
    built = object()
    monkeypatch.setattr("ddbsync.handler.make_handler", lambda: built)
    assert lambda_handler(function["CodeUri"], function["Handler"]) is built
    assert function["Layers"] == [{"Ref": "DdbsyncLayer"}]


def test_function_names_are_never_hard_coded(resources: dict[str, Any]) -> None:
    for name, res in of_type(resources, "AWS::Serverless::Function").items():
        assert "FunctionName" not in res["Properties"], name


def test_layer_is_built_by_sam_for_python313_on_arm64(resources: dict[str, Any]) -> None:
    layer = resources["DdbsyncLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    # makefile: the layer's build script installs the locked aarch64/cp313 wheels and the
    # pure-Python package (docs/deploy.md, "Building the layer").
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/ddbsync/"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    # The layer is built from the package these tests import.
    assert Path(ddbsync.__file__).resolve().parent.parent == (ROOT / props["ContentUri"]).resolve()


LAYER_SOURCE = ROOT / "layers" / "ddbsync"


def scratch_copy_of_the_layer(tmp_path: Path) -> Path:
    """What sam build does first: copy the layer's ContentUri to a scratch directory."""
    scratch = tmp_path / "scratch"
    shutil.copytree(LAYER_SOURCE, scratch, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return scratch


def make_layer(scratch: Path, *options: str, env: dict[str, str] | None = None) -> str:
    """``make --makefile <repo's layer Makefile> build-DdbsyncLayer`` in ``scratch``, as sam build runs it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DDBSYNC_", "MAKE"))}
    result = subprocess.run(
        ["make", *options, "--no-print-directory", "--makefile", str(LAYER_SOURCE / "Makefile"),
         "build-DdbsyncLayer"],
        cwd=scratch, env={**base, **(env or {})}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_layer_target_runs_the_build_script_with_the_repository_as_project_root(tmp_path: Path) -> None:
    (command,) = make_layer(scratch_copy_of_the_layer(tmp_path), "-n").splitlines()
    assignment, *argv = shlex.split(command)
    assert argv == ["bash", "./build-layer.sh"]  # the scratch copy's script: nothing else runs
    name, value = assignment.split("=", 1)
    assert name == "DDBSYNC_PROJECT_ROOT"
    # sam build's copy has no pyproject.toml or uv.lock: the root is found from the Makefile's own path.
    default = value.removeprefix("${DDBSYNC_PROJECT_ROOT:-").removesuffix("}")
    assert default != value and Path(default).resolve() == ROOT


FAKE_TOOL = """\
import json, os, sys
args = sys.argv[1:]
entry = {"tool": os.path.basename(sys.argv[0]), "args": args}
if "-r" in args:
    entry["requirements"] = open(args[args.index("-r") + 1]).read()
if "pip" in args and "compile" in args:
    entry["input"] = open(args[-1]).read()
    open(args[args.index("--output-file") + 1], "w").write(os.environ["FAKE_COMPILED"])
elif args and args[0] == "export":
    sys.stdout.write(os.environ["FAKE_EXPORTED"])
if "install" in args:
    target = args[args.index("--target") + 1]
    for module in ("orjson", "amazon/ionbenchmark", "amazon/objects-Release",
                   "aws_lambda_powertools/event_handler", "aws_lambda_powertools/utilities/jmespath_utils",
                   "aws_lambda_powertools/utilities/typing", "aws_lambda_powertools/utilities/batch",
                   "opensearchpy/_async/client", "opensearchpy/_async/plugins",
                   "opensearchpy/_async/helpers"):
        os.makedirs(os.path.join(target, module))
        open(os.path.join(target, module, "__init__.py"), "w").close()
    open(os.path.join(target, "aws_lambda_powertools", "utilities", "__init__.py"), "w").close()
    os.makedirs(os.path.join(target, "bin"))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
"""


def test_the_layer_build_installs_the_locked_arm64_wheels_and_the_package_as_source(tmp_path: Path) -> None:
    # The real build script, run by make from sam build's scratch copy; uv and pip are
    # stand-ins that log their arguments (no network), so what is checked is what the
    # script asks of them and what it leaves in ARTIFACTS_DIR.
    scratch = scratch_copy_of_the_layer(tmp_path)
    (scratch / "ddbsync" / "__pycache__").mkdir()
    (scratch / "ddbsync" / "__pycache__" / "config.cpython-313.pyc").write_bytes(b"left by a local run")
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("uv", "pip-python"):
        (tools / name).write_text(f"#!{sys.executable}\n{FAKE_TOOL}")
        (tools / name).chmod(0o755)
    artifacts, log = tmp_path / "artifacts", tmp_path / "calls.jsonl"
    exported = "opensearch-py==3.0.0\norjson==3.10.18 ; sys_platform == 'linux'\n"
    compiled = "opensearch-py==3.0.0\norjson==3.10.18\n"
    make_layer(scratch, env={
        "ARTIFACTS_DIR": str(artifacts), "UV": str(tools / "uv"), "PIP_PYTHON": str(tools / "pip-python"),
        "FAKE_LOG": str(log), "FAKE_EXPORTED": exported, "FAKE_COMPILED": compiled,
    })  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    pip_version, export, compile_, install = calls[:4]
    assert all(call["args"][0] == "-c" for call in calls[4:])  # then only measures the layer's size

    # The versions: uv.lock's, refusing a lock out of date with pyproject.toml, without the dev
    # groups, and without what the Lambda runtime provides or ddbsync never imports.
    args = export["args"]
    assert (export["tool"], args[0]) == ("uv", "export")
    assert "--locked" in args and "--no-default-groups" in args
    assert args[args.index("--project") + 1] == str(ROOT)
    prunes = {args[i + 1] for i, a in enumerate(args) if a == "--prune"}
    assert prunes == {"boto3", "botocore", "opensearch-protobufs", "jsonconversion"}
    # ...narrowed to the target's markers (no new resolution)...
    args = compile_["args"]
    assert args[:2] == ["pip", "compile"] and "--no-deps" in args and compile_["input"] == exported
    assert args[args.index("--python-platform") + 1] == "aarch64-unknown-linux-gnu"
    assert args[args.index("--python-version") + 1] == "3.13"
    # ...and installed as they are: binary wheels for Lambda's arm64 Linux, nothing compiled here.
    assert pip_version["args"] == ["-m", "pip", "--version"]
    args = install["args"]
    assert args[:3] == ["-m", "pip", "install"] and install["requirements"] == compiled
    assert {"--only-binary=:all:", "--no-deps"} <= set(args)
    assert args[args.index("--target") + 1] == str(artifacts / "python")
    assert args[args.index("--python-version") + 1] == "3.13"
    platforms = {args[i + 1] for i, a in enumerate(args) if a == "--platform"}
    assert platforms == {f"manylinux{v}_aarch64" for v in ("2014", "_2_17", "_2_28", "_2_34")}

    # The package goes in as its source, pure Python, without what a local run left behind;
    # with a Python 3.13 on this machine, next to its bytecode for Lambda's python3.13.
    layer = artifacts / "python"
    assert sorted(p.name for p in layer.iterdir()) == [
        "amazon", "aws_lambda_powertools", "ddbsync", "opensearchpy", "orjson"]  # fmt: skip
    source_files = {
        p.relative_to(LAYER_SOURCE)
        for p in (LAYER_SOURCE / "ddbsync").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    shipped = {p.relative_to(layer) for p in (layer / "ddbsync").rglob("*") if p.is_file()}
    assert {p for p in shipped if p.suffix != ".pyc"} == source_files
    assert {p.suffix for p in source_files} == {".py", ".typed", ".json"}
    bytecode = {p for p in shipped if p.suffix == ".pyc"}
    assert all(p.name.endswith(".cpython-313.pyc") and p.parent.name == "__pycache__" for p in bytecode)
    assert not any(p.name.startswith("config.") and b"left by a local run" in (layer / p).read_bytes()
                   for p in bytecode)  # fmt: skip
    # What nothing imports is left out of the installed wheels; what Powertools' Logger,
    # Metrics and Tracer use stays.
    kept = {p.relative_to(layer).as_posix() for p in layer.rglob("*") if p.is_dir()}
    for gone in ("amazon/ionbenchmark", "amazon/objects-Release", "aws_lambda_powertools/event_handler",
                 "aws_lambda_powertools/utilities/batch", "opensearchpy/_async/client",
                 "opensearchpy/_async/plugins"):
        assert gone not in kept
    powertools = "aws_lambda_powertools/utilities"
    assert {f"{powertools}/jmespath_utils", f"{powertools}/typing", "opensearchpy/_async/helpers"} <= kept


# ---------------------------------------------------------------- stream event source mapping


def test_stream_event_reports_batch_item_failures_and_bisects(stream_event: dict[str, Any]) -> None:
    assert stream_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream_event["BisectBatchOnFunctionError"] is True


def test_stream_event_retries_are_bounded(template: dict[str, Any], stream_event: dict[str, Any]) -> None:
    # -1 (the AWS default) retries until the record expires: one poison batch would block the shard for 24 h.
    retries = parameter(template, stream_event["MaximumRetryAttempts"])
    assert retries["Type"] == "Number"
    assert 0 <= retries["MinValue"] <= retries["Default"] <= retries["MaxValue"] <= 10_000
    assert retries["Default"] == 10


def test_stream_event_record_age_is_bounded_within_stream_retention(
    template: dict[str, Any], stream_event: dict[str, Any]
) -> None:
    age = parameter(template, stream_event["MaximumRecordAgeInSeconds"])
    assert age["Type"] == "Number"
    assert 60 <= age["MinValue"] <= age["Default"] <= age["MaxValue"] <= 86_400


def test_exhausted_batches_go_to_the_on_failure_queue(stream_event: dict[str, Any]) -> None:
    on_failure = stream_event["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["OnFailureQueue", "Arn"]}


def test_stream_event_reads_the_created_or_the_existing_stream_from_the_start(
    template: dict[str, Any], stream_event: dict[str, Any]
) -> None:
    assert stream_event["Stream"] == {
        "Fn::If": [
            "CreateTable",
            {"Fn::GetAtt": ["Table", "StreamArn"]},
            {"Ref": "ExistingTableStreamArn"},
        ]
    }
    assert template["Conditions"]["CreateTable"] == {"Fn::Equals": [{"Ref": "ExistingTableStreamArn"}, ""]}
    assert stream_event["StartingPosition"] == "TRIM_HORIZON"
    assert stream_event["MaximumBatchingWindowInSeconds"] == 1
    assert parameter(template, stream_event["BatchSize"])["Default"] == 100


# ---------------------------------------------------------------- queues


@pytest.mark.parametrize("queue", ["RecordDlq", "OnFailureQueue", "ArchiveOnFailureQueue"])
def test_queue_is_encrypted_and_keeps_messages_14_days(resources: dict[str, Any], queue: str) -> None:
    props = resources[queue]["Properties"]
    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == FOURTEEN_DAYS


@pytest.mark.parametrize("queue", ["RecordDlq", "OnFailureQueue", "ArchiveOnFailureQueue"])
def test_queue_denies_access_without_tls(resources: dict[str, Any], queue: str) -> None:
    denials = [
        statement
        for policy in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert denials, f"{queue} has no policy denying aws:SecureTransport=false"
    assert any({"Fn::GetAtt": [queue, "Arn"]} in as_list(statement["Resource"]) for statement in denials)


# ---------------------------------------------------------------- table


def test_table_has_pitr_both_images_encryption_and_is_retained(resources: dict[str, Any]) -> None:
    table = resources["Table"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["Condition"] == "CreateTable"
    assert table["DeletionPolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_table_key_schema_follows_the_key_parameters(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    props = resources["Table"]["Properties"]
    condition, with_sort, without_sort = props["KeySchema"]["Fn::If"]
    assert condition == "HasSortKey"
    assert with_sort == [
        {"AttributeName": {"Ref": "PartitionKey"}, "KeyType": "HASH"},
        {"AttributeName": {"Ref": "SortKey"}, "KeyType": "RANGE"},
    ]
    assert without_sort == [{"AttributeName": {"Ref": "PartitionKey"}, "KeyType": "HASH"}]
    for definitions in if_branches(props["AttributeDefinitions"]):
        assert all(d["AttributeType"] == "S" for d in definitions)
    assert template["Parameters"]["SortKey"]["Default"] == ""


# ---------------------------------------------------------------- alarms

ALARMS = {
    # alarm: (namespace, metric, dimension name, dimension value)
    "IteratorAgeAlarm": ("AWS/Lambda", "IteratorAge", "FunctionName", {"Ref": "StreamIndexerFunction"}),
    "FunctionErrorsAlarm": ("AWS/Lambda", "Errors", "FunctionName", {"Ref": "StreamIndexerFunction"}),
    "RecordDlqDepthAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        {"Fn::GetAtt": ["RecordDlq", "QueueName"]},
    ),
    "OnFailureQueueDepthAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        {"Fn::GetAtt": ["OnFailureQueue", "QueueName"]},
    ),
    # Powertools EMF: namespace POWERTOOLS_METRICS_NAMESPACE, dimension service=POWERTOOLS_SERVICE_NAME.
    "PoisonRecordsAlarm": ("ddbsync", "PoisonRecords", "service", "ddbsync"),
    "BackfillFailedAlarm": (
        "AWS/States",
        "ExecutionsFailed",
        "StateMachineArn",
        {"Ref": "BackfillStateMachine"},
    ),
    "ArchiverIteratorAgeAlarm": ("AWS/Lambda", "IteratorAge", "FunctionName", {"Ref": "ArchiverFunction"}),
    "ArchiverErrorsAlarm": ("AWS/Lambda", "Errors", "FunctionName", {"Ref": "ArchiverFunction"}),
    "ArchiveOnFailureQueueDepthAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        {"Fn::GetAtt": ["ArchiveOnFailureQueue", "QueueName"]},
    ),
}
ITERATOR_AGE_ALARMS = {"IteratorAgeAlarm", "ArchiverIteratorAgeAlarm"}


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_alarm_watches_its_metric(resources: dict[str, Any], alarm: str) -> None:
    namespace, metric, dimension, value = ALARMS[alarm]
    props = resources[alarm]["Properties"]
    assert resources[alarm]["Type"] == "AWS::CloudWatch::Alarm"
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert props["Dimensions"] == [{"Name": dimension, "Value": value}]


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_alarm_notifies_the_topic_and_tells_on_call_what_to_do(resources: dict[str, Any], alarm: str) -> None:
    props = resources[alarm]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    description = props["AlarmDescription"]
    text = description["Fn::Sub"] if isinstance(description, dict) else description
    assert "docs/runbook.md" in text


@pytest.mark.parametrize("alarm", [a for a in sorted(ALARMS) if a not in ITERATOR_AGE_ALARMS])
def test_failure_alarms_fire_on_the_first_occurrence(resources: dict[str, Any], alarm: str) -> None:
    props = resources[alarm]["Properties"]
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Threshold"] == 0
    assert props["EvaluationPeriods"] == 1


@pytest.mark.parametrize("alarm", sorted(ITERATOR_AGE_ALARMS))
def test_iterator_age_alarm_fires_after_five_minutes_over_one_minute(
    resources: dict[str, Any], alarm: str
) -> None:
    props = resources[alarm]["Properties"]
    assert props["Statistic"] == "Maximum"
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Threshold"] == 60_000
    assert props["Period"] * props["EvaluationPeriods"] == 300


def test_replay_alarms_name_the_queue_to_replay(resources: dict[str, Any]) -> None:
    for alarm, queue in [
        ("RecordDlqDepthAlarm", "RecordDlq"),
        ("OnFailureQueueDepthAlarm", "OnFailureQueue"),
    ]:
        text = resources[alarm]["Properties"]["AlarmDescription"]["Fn::Sub"]
        assert f"ddbsync replay --queue ${{{queue}}}" in text


def test_alarm_topic_key_lets_cloudwatch_publish(resources: dict[str, Any]) -> None:
    # alias/aws/sns cannot be used: its key policy does not let CloudWatch alarms encrypt.
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = resources["AlarmTopicKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    grants = [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(grants) == 1
    assert set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_alarm_email_is_subscribed_only_when_set(template: dict[str, Any], resources: dict[str, Any]) -> None:
    subscriptions = of_type(resources, "AWS::SNS::Subscription")
    assert [s["Condition"] for s in subscriptions.values()] == ["HasAlarmEmail"]
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""


# ---------------------------------------------------------------- permissions


@pytest.fixture
def purge(resources: dict[str, Any]) -> dict[str, Any]:
    return _function_properties(resources, "PurgeFunction")


def test_the_purge_runs_on_a_schedule_that_can_be_turned_off(
    template: dict[str, Any], purge: dict[str, Any]
) -> None:
    schedule = purge["Events"]["Schedule"]
    assert schedule["Type"] == "Schedule"
    assert schedule["Properties"]["State"] == {"Fn::If": ["PurgeScheduled", "ENABLED", "DISABLED"]}
    parameter = template["Parameters"]["TombstonePurgeSchedule"]
    assert parameter["Default"] == "rate(1 day)"
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("off", "rate(1 day)", "rate(12 hours)", "cron(0 3 * * ? *)"):
        assert pattern.fullmatch(good), good
    for bad in ("", "daily", "rate(1 fortnight)", "on"):
        assert not pattern.fullmatch(bad), bad


def test_the_purge_window_cannot_be_shorter_than_the_stream_plus_the_dlq_retention(
    template: dict[str, Any], resources: dict[str, Any], purge: dict[str, Any]
) -> None:
    days = template["Parameters"]["TombstoneRetentionDays"]
    retention_s = int(_properties(resources, "RecordDlq", "AWS::SQS::Queue")["MessageRetentionPeriod"])
    assert days["MinValue"] * 86_400 >= 24 * 3600 + retention_s
    assert days["Default"] > days["MinValue"]
    env = purge["Environment"]["Variables"]
    assert env["TOMBSTONE_RETENTION_DAYS"] == {"Ref": "TombstoneRetentionDays"}
    assert env["RECORD_DLQ_URL"] == {"Ref": "RecordDlq"}
    assert purge["Timeout"] == 900


def test_the_purge_may_only_touch_the_alias_indices_and_read_the_dlq_retention(
    resources: dict[str, Any],
) -> None:
    grants = {s["Sid"]: s for owner, s in iam_statements(resources) if owner == "PurgeFunction"}
    assert set(grants) == {"ReadRecordDlqRetention", "OpenSearchServerlessData", "OpenSearchAliasIndices",
                           "OpenSearchPurgeTask"}  # fmt: skip
    assert grants["ReadRecordDlqRetention"]["Action"] == "sqs:GetQueueAttributes"
    alias_paths = {"Fn::Sub": "${OpenSearchResourceArn}/${IndexAlias}*"}
    assert grants["OpenSearchAliasIndices"]["Resource"] == alias_paths
    assert "es:ESHttpDelete" not in grants["OpenSearchAliasIndices"]["Action"]


# The only wildcards allowed: HTTP paths under the OpenSearch domain, the exports of
# the table, the export files under the bucket's exports/ prefix.
ALLOWED_WILDCARDS = {
    "${OpenSearchResourceArn}/*",
    "${OpenSearchResourceArn}/${IndexAlias}-*",
    # The purge: the alias, "<alias>,<alias>-next" (one GET reads both), their indices.
    "${OpenSearchResourceArn}/${IndexAlias}*",
    # The purge follows its _delete_by_query task.
    "${OpenSearchResourceArn}/_tasks/*",
    "${Table.Arn}/export/*",
    "${ExistingTableArn}/export/*",
    "${ExportBucket.Arn}/exports/*",
    "${DeadLetterBucket.Arn}/dead-letters/*",
    # Firehose writes the archive under its Prefix and its ErrorOutputPrefix only.
    "${ArchiveBucket.Arn}/table=*",
    "${ArchiveBucket.Arn}/errors/*",
    # The Distributed Maps' results (ResultWriter), read back by report_map_failures.
    "${ExportBucket.Arn}/map-results/*",
    # The Distributed Maps' child executions: <state machine>/<map run label>:<id>.
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-backfill/*",
}
# Vended-log delivery actions have no resource-level permissions (Step Functions
# developer guide, "Logging using CloudWatch Logs"): the one statement on "*".
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def test_no_iam_statement_grants_every_resource(resources: dict[str, Any]) -> None:
    statements = list(iam_statements(resources))
    assert statements
    for owner, statement in statements:
        if statement.get("Sid") == "DeliverExecutionLogs":
            assert owner == "BackfillStateMachine"
            assert set(statement["Action"]) == LOG_DELIVERY_ACTIONS
            continue
        for resource in if_branches(statement["Resource"]):
            assert resource != "*", f"{owner}: {statement}"
            if isinstance(resource, str):
                assert "*" not in resource, f"{owner}: {statement}"
            elif "Fn::Sub" in resource:
                assert "*" not in resource["Fn::Sub"] or resource["Fn::Sub"] in ALLOWED_WILDCARDS, resource
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{owner}: {statement}"


@pytest.mark.parametrize("owner", ["StreamIndexerFunction", "BackfillFunction"])
def test_opensearch_access_follows_the_service(resources: dict[str, Any], owner: str) -> None:
    grants = {
        statement["Sid"]: statement
        for name, statement in iam_statements(resources)
        if name == owner and statement.get("Sid", "").startswith("OpenSearch")
    }
    # The backfill also deletes (test_backfill_deletes_only_indices_of_its_alias).
    extra = {"OpenSearchDeleteAliasIndices"} if owner == "BackfillFunction" else set()
    assert set(grants) == {"OpenSearchDomainHttp", "OpenSearchServerlessData"} | extra
    es = grants["OpenSearchDomainHttp"]
    assert set(es["Action"]) == {"es:ESHttpPost", "es:ESHttpPut", "es:ESHttpGet", "es:ESHttpHead"}
    assert es["Resource"] == {"Fn::Sub": "${OpenSearchResourceArn}/*"}
    aoss = grants["OpenSearchServerlessData"]
    assert aoss["Action"] == "aoss:APIAccessAll"
    assert aoss["Resource"] == {"Ref": "OpenSearchResourceArn"}


def test_function_may_write_both_queues_and_read_the_stream(function: dict[str, Any]) -> None:
    policies = function["Policies"]
    assert policies[0] == {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["RecordDlq", "QueueName"]}}}
    statements = {
        statement["Sid"]: statement
        for document in policies
        if "Statement" in document
        for statement in document["Statement"]
        if "Sid" in statement
    }
    assert statements["SendBatchPointersOnFailure"]["Action"] == "sqs:SendMessage"
    assert statements["SendBatchPointersOnFailure"]["Resource"] == {"Fn::GetAtt": ["OnFailureQueue", "Arn"]}
    assert statements["ReadTableStream"]["Resource"] == {
        "Fn::If": ["CreateTable", {"Fn::GetAtt": ["Table", "StreamArn"]}, {"Ref": "ExistingTableStreamArn"}]
    }


# ---------------------------------------------------------------- configuration and logs

SETTINGS_VARIABLES = {
    "OPENSEARCH_ENDPOINT",
    "OPENSEARCH_SERVICE",
    "INDEX_ALIAS",
    "PARTITION_KEY",
    "SORT_KEY",
    "RECORD_DLQ_URL",
    "DEAD_LETTER_BUCKET",
    "TTL_REMOVES",
    "BULK_MAX_BYTES",
    "TIMEOUT_MARGIN_MS",
    "MANAGE_INDEX",
    "INDEX_TEMPLATE",
    "NEXT_ALIAS_CHECK_SECONDS",
}
POWERTOOLS_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME": "ddbsync",
    "POWERTOOLS_METRICS_NAMESPACE": "ddbsync",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def function_environment(template: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(function["Environment"]["Variables"])
    return merged


def test_function_environment_has_every_setting(template: dict[str, Any], function: dict[str, Any]) -> None:
    env = function_environment(template, function)
    assert set(env) == SETTINGS_VARIABLES | set(POWERTOOLS_VARIABLES)
    assert {k: env[k] for k in POWERTOOLS_VARIABLES} == POWERTOOLS_VARIABLES
    assert env["RECORD_DLQ_URL"] == {"Ref": "RecordDlq"}  # Ref of a queue is its URL
    assert env["DEAD_LETTER_BUCKET"] == {"Ref": "DeadLetterBucket"}  # Ref of a bucket is its name
    assert "AWS_REGION" not in env  # Lambda sets it


@pytest.mark.parametrize("config_env", ["dev", "prod"])
def test_deployed_environment_is_accepted_by_settings(
    template: dict[str, Any], function: dict[str, Any], samconfig: dict[str, Any], config_env: str
) -> None:
    overrides = dict(
        item.split("=", 1) for item in samconfig[config_env]["deploy"]["parameters"]["parameter_overrides"]
    )
    env = {"AWS_REGION": "eu-west-1"}
    for name, value in function_environment(template, function).items():
        if isinstance(value, str):
            env[name] = value
        elif value == {"Ref": "RecordDlq"}:
            env[name] = "https://sqs.eu-west-1.amazonaws.com/123456789012/ddbsync-RecordDlq"
        elif value == {"Ref": "DeadLetterBucket"}:
            env[name] = "ddbsync-dev-deadletterbucket-1a2b3c4d5e6f"
        else:
            param = value["Ref"]
            env[name] = str(overrides.get(param, template["Parameters"][param].get("Default")))
    settings = Settings.from_env(env)
    assert settings.bulk_max_bytes == template["Parameters"]["BulkMaxBytes"]["Default"]


def test_function_logs_to_its_own_log_group_with_retention(
    resources: dict[str, Any], function: dict[str, Any]
) -> None:
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "StreamIndexerLogGroup"}
    group = resources["StreamIndexerLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_outputs_cover_what_operators_and_tests_look_up(template: dict[str, Any]) -> None:
    assert {
        "StreamIndexerFunctionName",
        "StreamIndexerFunctionArn",
        "TableName",
        "TableStreamArn",
        "RecordDlqUrl",
        "OnFailureQueueUrl",
        "AlarmTopicArn",
        "DdbsyncLayerArn",
    } <= set(template["Outputs"])


# ---------------------------------------------------------------- backfill


@pytest.fixture(scope="module")
def backfill(resources: dict[str, Any]) -> dict[str, Any]:
    return _properties(resources, "BackfillFunction", "AWS::Serverless::Function")


@pytest.fixture(scope="module")
def backfill_grants(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The backfill function's own statements by Sid (both branches of an !If)."""
    grants: dict[str, dict[str, Any]] = {}
    for owner, statement in iam_statements(resources):
        if owner == "BackfillFunction":
            assert statement["Sid"] not in grants or statement["Sid"].startswith("OpenSearch")
            grants[statement["Sid"]] = statement
    return grants


@pytest.fixture(scope="module")
def bucket(resources: dict[str, Any]) -> dict[str, Any]:
    return _properties(resources, "ExportBucket", "AWS::S3::Bucket")


@pytest.fixture(scope="module")
def state_machine(resources: dict[str, Any]) -> dict[str, Any]:
    return _properties(resources, "BackfillStateMachine", "AWS::Serverless::StateMachine")


TABLE_ARN = {"Fn::If": ["CreateTable", {"Fn::GetAtt": ["Table", "Arn"]}, {"Ref": "ExistingTableArn"}]}


def test_backfill_function_is_the_thin_handler_with_a_long_timeout(
    template: dict[str, Any], resources: dict[str, Any], backfill: dict[str, Any]
) -> None:
    assert backfill["CodeUri"] == "functions/backfill/"
    assert backfill["Handler"] == "app.handler"
    assert lambda_handler(backfill["CodeUri"], backfill["Handler"]) is ddbsync.backfill.steps.handler
    assert backfill["Layers"] == [{"Ref": "DdbsyncLayer"}]
    assert function_setting(template, backfill, "Runtime") == "python3.13"
    assert function_setting(template, backfill, "Architectures") == ["arm64"]
    assert function_setting(template, backfill, "Tracing") == "Active"
    assert (backfill["Timeout"], backfill["MemorySize"]) == (900, 1024)
    assert backfill["LoggingConfig"]["LogGroup"] == {"Ref": "BackfillLogGroup"}
    group = resources["BackfillLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-backfill"}


def test_backfill_environment_matches_the_indexer_and_the_contract(
    template: dict[str, Any], function: dict[str, Any], backfill: dict[str, Any]
) -> None:
    indexer = function["Environment"]["Variables"]
    env = backfill["Environment"]["Variables"]
    shared = ("OPENSEARCH_ENDPOINT", "OPENSEARCH_SERVICE", "INDEX_ALIAS", "PARTITION_KEY", "SORT_KEY")
    for name in (*shared, "INDEX_TEMPLATE"):
        assert env[name] == indexer[name], name
    assert env["TABLE_ARN"] == TABLE_ARN
    assert env["EXPORT_BUCKET"] == {"Ref": "ExportBucket"}
    assert env["EXPORT_KMS_KEY_ID"] == {"Ref": "ExportKmsKeyId"}
    export_format = parameter(template, env["EXPORT_FORMAT"])
    assert (export_format["AllowedValues"], export_format["Default"]) == (
        ["DYNAMODB_JSON", "ION"],
        "DYNAMODB_JSON",
    )
    keep = parameter(template, env["KEEP_OLD_INDEX"])
    assert (keep["AllowedValues"], keep["Default"]) == (["false", "true"], "false")
    assert parameter(template, {"Ref": "ExportKmsKeyId"})["Default"] == ""
    # Every change after the export time must reach the new index through <alias>-next.
    assert int(env["DUAL_WRITE_WAIT_SECONDS"]) == 65
    assert int(env["DUAL_WRITE_WAIT_SECONDS"]) > int(indexer["NEXT_ALIAS_CHECK_SECONDS"]) == 30


def test_existing_table_arn_is_required_with_an_existing_stream(template: dict[str, Any]) -> None:
    param = template["Parameters"]["ExistingTableArn"]
    assert param["Default"] == ""
    assert "/stream/" not in param["AllowedPattern"]
    (rule,) = template["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingTableStreamArn"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingTableArn"}, ""]}]}


def test_export_bucket_is_encrypted_with_the_given_key_or_aes256(bucket: dict[str, Any]) -> None:
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["BucketKeyEnabled"] is True
    condition, with_key, without_key = rule["ServerSideEncryptionByDefault"]["Fn::If"]
    assert condition == "HasExportKmsKey"
    assert with_key == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "ExportKmsKeyId"}}
    assert without_key == {"SSEAlgorithm": "AES256"}


def test_export_bucket_is_private_and_owner_enforced(bucket: dict[str, Any]) -> None:
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_export_bucket_denies_access_without_tls(resources: dict[str, Any]) -> None:
    denials = [
        statement
        for policy in of_type(resources, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "ExportBucket"}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denials) == 1
    assert denials[0]["Principal"] == "*"
    assert denials[0]["Action"] == "s3:*"
    assert denials[0]["Resource"] == [
        {"Fn::GetAtt": ["ExportBucket", "Arn"]},
        {"Fn::Sub": "${ExportBucket.Arn}/*"},
    ]


def test_export_bucket_expires_old_exports(template: dict[str, Any], bucket: dict[str, Any]) -> None:
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert parameter(template, rule["ExpirationInDays"])["Default"] == 14
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_backfill_may_export_the_table_and_describe_only_its_exports(
    backfill_grants: dict[str, dict[str, Any]],
) -> None:
    assert backfill_grants["ExportTable"]["Action"] == "dynamodb:ExportTableToPointInTime"
    assert backfill_grants["ExportTable"]["Resource"] == TABLE_ARN
    describe = backfill_grants["DescribeTableExports"]
    assert describe["Action"] == "dynamodb:DescribeExport"
    assert describe["Resource"] == {
        "Fn::If": [
            "CreateTable",
            {"Fn::Sub": "${Table.Arn}/export/*"},
            {"Fn::Sub": "${ExistingTableArn}/export/*"},
        ]
    }
    dynamodb_actions = {
        action
        for statement in backfill_grants.values()
        for action in as_list(statement["Action"])
        if action.startswith("dynamodb:")
    }
    assert dynamodb_actions == {"dynamodb:ExportTableToPointInTime", "dynamodb:DescribeExport"}


def test_backfill_s3_access_is_the_export_prefix_of_the_export_bucket(
    backfill: dict[str, Any], backfill_grants: dict[str, dict[str, Any]]
) -> None:
    objects = {"Fn::Sub": "${ExportBucket.Arn}/exports/*"}
    assert backfill["Environment"]["Variables"]["EXPORT_PREFIX"] == "exports"
    # DynamoDB writes the export with the caller's permissions ("Requesting a table export in DynamoDB").
    write = backfill_grants["WriteExportFiles"]
    assert set(write["Action"]) == {"s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectAcl"}
    assert write["Resource"] == objects
    assert backfill_grants["ReadExportFiles"]["Action"] == "s3:GetObject"
    assert backfill_grants["ReadExportFiles"]["Resource"] == objects
    assert backfill_grants["ListExportBucket"]["Action"] == "s3:ListBucket"
    assert backfill_grants["ListExportBucket"]["Resource"] == {"Fn::GetAtt": ["ExportBucket", "Arn"]}
    s3_actions = {
        action
        for statement in backfill_grants.values()
        for action in as_list(statement["Action"])
        if action.startswith("s3:")
    }
    assert s3_actions == {
        "s3:AbortMultipartUpload",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:GetObject",
        "s3:ListBucket",
    }


def test_backfill_uses_the_kms_key_only_when_one_is_given(backfill: dict[str, Any]) -> None:
    kms = [
        statement
        for document in backfill["Policies"]
        for statement in document.get("Statement", [])
        if isinstance(statement, dict)
        and "Fn::If" in statement
        and statement["Fn::If"][0] == "HasExportKmsKey"
    ]
    (statement,) = kms
    _, grant, otherwise = statement["Fn::If"]
    assert otherwise == NO_VALUE
    assert set(grant["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert grant["Resource"] == {"Ref": "ExportKmsKeyId"}


def states_of(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state of a definition, inside Map and Parallel states too."""
    for state in block["States"].values():
        yield state
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if inner is not None:
                yield from states_of(inner)


def test_state_machine_runs_the_backfill_definition_with_its_substitutions(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    assert state_machine["Type"] == "STANDARD"
    assert state_machine["DefinitionUri"] == "statemachine/backfill.asl.json"
    assert state_machine["DefinitionSubstitutions"] == {
        "BackfillFunctionArn": {"Fn::GetAtt": ["BackfillFunction", "Arn"]},
        "MapConcurrency": {"Ref": "BackfillMapConcurrency"},
        "MapResultsBucket": {"Ref": "ExportBucket"},
        "ArchiveSettleSeconds": {"Ref": "ArchiveSettleSeconds"},
        "ArchiveObjectsPerBatch": {"Ref": "ArchiveObjectsPerBatch"},
    }
    # The deployed definition is the one `ddbsync backfill` and the state machine tests run;
    # the two substitutions fill every placeholder in it (load_definition raises KeyError on
    # another), and every task calls the backfill function.
    deployed = ROOT / state_machine["DefinitionUri"]
    assert deployed.resolve() == ASL_PATH.resolve()
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:BackfillFunction"
    values = {
        "BackfillFunctionArn": arn,
        "MapConcurrency": "4",
        "MapResultsBucket": "exports",
        "ArchiveSettleSeconds": "960",
        "ArchiveObjectsPerBatch": "20",
    }
    definition = load_definition(deployed, values)
    tasks = [state for state in states_of(definition) if state["Type"] == "Task"]
    assert tasks and {task["Resource"] for task in tasks} == {arn}
    assert [s["MaxConcurrency"] for s in states_of(definition) if s["Type"] == "Map"] == [4, 4]
    concurrency = template["Parameters"]["BackfillMapConcurrency"]
    assert (concurrency["Type"], concurrency["Default"], concurrency["MinValue"]) == ("Number", 4, 1)
    settle = template["Parameters"]["ArchiveSettleSeconds"]
    buffer = template["Parameters"]["ArchiveBufferIntervalSeconds"]
    # Firehose may hold a record for its whole buffer interval: the settle wait outlasts the longest.
    assert settle["Default"] >= buffer["MaxValue"] + 60
    assert template["Parameters"]["ArchiveObjectsPerBatch"]["Default"] == 20
    assert state_machine["Policies"][0] == {
        "LambdaInvokePolicy": {"FunctionName": {"Ref": "BackfillFunction"}}
    }


def test_state_machine_runs_its_distributed_maps_with_least_privilege(
    resources: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    grants = {
        statement["Sid"]: statement
        for owner, statement in iam_statements(resources)
        if owner == "BackfillStateMachine" and statement["Sid"] != "DeliverExecutionLogs"
    }
    own = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    own += ":stateMachine:${AWS::StackName}-backfill"
    # The policy names the state machine by the name it is given (a !Ref would be circular).
    assert state_machine["Name"] == {"Fn::Sub": "${AWS::StackName}-backfill"}
    expected = {
        # Children are executions of this same state machine ...
        "StartMapChildren": ("states:StartExecution", {"Fn::Sub": own}),
        "WatchMapChildren": (
            ["states:DescribeExecution", "states:StopExecution"],
            {"Fn::Sub": own.replace(":stateMachine:", ":execution:") + "/*"},
        ),
        # ... the ItemReaders read manifest-files.json or list the archive ...
        "ReadExportManifest": ("s3:GetObject", {"Fn::Sub": "${ExportBucket.Arn}/exports/*"}),
        "ListArchive": ("s3:ListBucket", {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}),
        # ... and the ResultWriters write under map-results/ only.
        "WriteMapResults": (
            ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            {"Fn::Sub": "${ExportBucket.Arn}/map-results/*"},
        ),
        "UseExportKey": (["kms:GenerateDataKey", "kms:Decrypt"], {"Ref": "ExportKmsKeyId"}),
    }
    assert {sid: (g["Action"], g["Resource"]) for sid, g in grants.items()} == expected
    assert all(g["Effect"] == "Allow" and "Condition" not in g for g in grants.values())


def test_state_machine_logs_errors_without_execution_data_and_traces(
    resources: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    logging = state_machine["Logging"]
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is False
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["BackfillStateMachineLogGroup", "Arn"]}}}
    ]
    group = resources["BackfillStateMachineLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["LogGroupName"]["Fn::Sub"].startswith("/aws/vendedlogs/states/")
    assert state_machine["Tracing"] == {"Enabled": True}


def test_backfill_outputs_name_the_state_machine_function_and_bucket(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["BackfillStateMachineArn"]["Value"] == {"Ref": "BackfillStateMachine"}
    assert outputs["BackfillFunctionName"]["Value"] == {"Ref": "BackfillFunction"}
    assert outputs["ExportBucketName"]["Value"] == {"Ref": "ExportBucket"}


# ---------------------------------------------------------------- hardening: three policies


def test_backfill_deletes_only_indices_of_its_alias(resources: dict[str, Any]) -> None:
    # DELETE drops whole indices: the backfill may drop <alias>-NNNNNN / <alias>-<stamp>
    # (the old index after the swap, the new one on abort) and nothing else on the domain.
    deletes = [
        (owner, statement)
        for owner, statement in iam_statements(resources)
        if "es:ESHttpDelete" in as_list(statement["Action"]) or "es:*" in as_list(statement["Action"])
    ]
    assert len(deletes) == 1, deletes
    owner, statement = deletes[0]
    assert owner == "BackfillFunction"
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["es:ESHttpDelete"]
    assert statement["Resource"] == {"Fn::Sub": "${OpenSearchResourceArn}/${IndexAlias}-*"}


def test_alarm_topic_denies_every_request_without_tls(resources: dict[str, Any]) -> None:
    policies = [
        policy["Properties"]
        for policy in of_type(resources, "AWS::SNS::TopicPolicy").values()
        if {"Ref": "AlarmTopic"} in policy["Properties"]["Topics"]
    ]
    assert len(policies) == 1
    denials = [
        statement
        for statement in policies[0]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denials) == 1
    deny = denials[0]
    assert deny["Principal"] == "*"
    assert deny["Resource"] == {"Ref": "AlarmTopic"}
    assert {"sns:Publish", "sns:Subscribe"} <= set(as_list(deny["Action"]))


def test_alarm_topic_key_serves_cloudwatch_only_for_this_account(resources: dict[str, Any]) -> None:
    statements = resources["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s.get("Principal", {})]
    assert [s["Principal"] for s in services] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert services[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_alarm_topic_policy_lets_this_accounts_alarms_publish(resources: dict[str, Any]) -> None:
    # A topic policy replaces SNS's default one: without this grant no alarm is delivered.
    (policy,) = [
        p["Properties"]
        for p in of_type(resources, "AWS::SNS::TopicPolicy").values()
        if {"Ref": "AlarmTopic"} in p["Properties"]["Topics"]
    ]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": "AlarmTopic"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


# ---------------------------------------------------------------- checkov skips


def checkov_skips(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, skip)
        for name, res in resources.items()
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]


def test_every_checkov_skip_names_a_check_and_says_why(resources: dict[str, Any]) -> None:
    skips = checkov_skips(resources)
    assert skips
    for name, skip in skips:
        assert set(skip) == {"id", "comment"}, (name, skip)
        assert skip["id"].startswith("CKV_AWS_"), (name, skip)
        assert len(skip["comment"].split()) >= 12, f"{name} {skip['id']}: say why, in a sentence or two"
    ids = [(name, skip["id"]) for name, skip in skips]
    assert len(ids) == len(set(ids)), "a check skipped twice on one resource"


# ---------------------------------------------------------------- dead-letter bucket


@pytest.fixture(scope="module")
def dead_letters(resources: dict[str, Any]) -> dict[str, Any]:
    return _properties(resources, "DeadLetterBucket", "AWS::S3::Bucket")


def test_dead_letter_bucket_is_private_versioned_and_encrypted_with_the_stack_key(
    resources: dict[str, Any], dead_letters: dict[str, Any]
) -> None:
    assert resources["DeadLetterBucket"]["DeletionPolicy"] == "Retain"
    (rule,) = dead_letters["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]},
    }
    assert rule["BucketKeyEnabled"] is True
    assert dead_letters["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert dead_letters["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert dead_letters["VersioningConfiguration"] == {"Status": "Enabled"}


def test_dead_letter_bucket_denies_access_without_tls(resources: dict[str, Any]) -> None:
    denials = [
        statement
        for policy in of_type(resources, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "DeadLetterBucket"}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denials) == 1
    assert (denials[0]["Principal"], denials[0]["Action"]) == ("*", "s3:*")
    assert denials[0]["Resource"] == [
        {"Fn::GetAtt": ["DeadLetterBucket", "Arn"]},
        {"Fn::Sub": "${DeadLetterBucket.Arn}/*"},
    ]


def test_dead_letters_expire_no_sooner_than_the_dlq_message_pointing_at_them(
    template: dict[str, Any], resources: dict[str, Any], dead_letters: dict[str, Any]
) -> None:
    rules = {rule["Id"]: rule for rule in dead_letters["LifecycleConfiguration"]["Rules"]}
    expire = rules["ExpireDeadLetters"]
    assert (expire["Status"], expire["Prefix"]) == ("Enabled", "dead-letters/")
    days = parameter(template, expire["ExpirationInDays"])
    assert expire["ExpirationInDays"] == {"Ref": "DeadLetterRetentionDays"}
    dlq_days = resources["RecordDlq"]["Properties"]["MessageRetentionPeriod"] // 86_400
    assert days["Default"] == dlq_days == 14
    assert days["MinValue"] >= dlq_days
    # Versioning keeps what a replay deleted for a while, not for ever.
    assert expire["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 7
    assert rules["RemoveExpiredDeleteMarkers"]["ExpiredObjectDeleteMarker"] is True


def test_indexer_may_only_put_dead_letters_under_the_prefix(resources: dict[str, Any]) -> None:
    bucket_refs = ("DeadLetterBucket", "${DeadLetterBucket")
    touching = [
        (owner, statement)
        for owner, statement in iam_statements(resources)
        if any(ref in str(resource) for resource in if_branches(statement["Resource"]) for ref in bucket_refs)
    ]
    # Both stream Lambdas write their oversized dead letters there, and only that.
    assert [(owner, statement["Sid"]) for owner, statement in touching] == [
        ("StreamIndexerFunction", "WriteOversizedDeadLetters"),
        ("ArchiverFunction", "WriteOversizedDeadLetters"),
    ]
    for _, grant in touching:
        assert grant["Action"] == "s3:PutObject"
        assert grant["Resource"] == {"Fn::Sub": "${DeadLetterBucket.Arn}/dead-letters/*"}
    # SSE-KMS: a data key from the stack key, through S3 only.
    key_grants = [
        (owner, statement)
        for owner, statement in iam_statements(resources)
        if statement["Resource"] == {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}
    ]
    assert [(owner, statement["Action"]) for owner, statement in key_grants] == [
        ("StreamIndexerFunction", "kms:GenerateDataKey"),
        ("ArchiverFunction", "kms:GenerateDataKey"),
    ]
    for _, grant in key_grants:
        assert grant["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}
        }


def test_dead_letter_bucket_is_an_output(template: dict[str, Any]) -> None:
    assert template["Outputs"]["DeadLetterBucketName"]["Value"] == {"Ref": "DeadLetterBucket"}


# ---------------------------------------------------------------- samconfig.toml


def test_samconfig_defines_dev_and_prod_stacks(samconfig: dict[str, Any]) -> None:
    assert samconfig["version"] == 0.1
    # Not cached: SAM's cache key ignores uv.lock, which decides the layer's dependencies.
    assert samconfig["default"]["build"]["parameters"] == {"cached": False, "parallel": True}
    assert samconfig["default"]["validate"]["parameters"]["lint"] is True
    for env, stack in [("dev", "ddbsync-dev"), ("prod", "ddbsync-prod")]:
        deploy = samconfig[env]["deploy"]["parameters"]
        assert deploy["stack_name"] == stack
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
    assert samconfig["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


@pytest.mark.parametrize("config_env", ["dev", "prod"])
def test_samconfig_overrides_name_real_parameters_and_fill_every_required_one(
    template: dict[str, Any], samconfig: dict[str, Any], config_env: str
) -> None:
    overrides = dict(
        item.split("=", 1) for item in samconfig[config_env]["deploy"]["parameters"]["parameter_overrides"]
    )
    parameters = template["Parameters"]
    assert set(overrides) <= set(parameters)
    required = {name for name, p in parameters.items() if "Default" not in p}
    assert required <= set(overrides)
    for name, value in overrides.items():
        if "AllowedValues" in parameters[name]:
            assert value in [str(v) for v in parameters[name]["AllowedValues"]], name


# ---------------------------------------------------------------- SAM CLI


# The dev environment's sam (uv.lock), also when pytest runs as .venv/bin/python -m pytest.
_VENV_FIRST = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
SAM = shutil.which("sam", path=_VENV_FIRST)


@pytest.mark.skipif(SAM is None, reason="SAM CLI not installed (make setup installs it)")
def test_sam_validate_lint_is_clean() -> None:
    assert SAM is not None
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [SAM, "validate", "--lint", "--region", "eu-west-1", "--template-file", str(TEMPLATE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output, output


# ---------------------------------------------------------------- archive (issue #9, section 2)


@pytest.fixture(scope="module")
def archiver(resources: dict[str, Any]) -> dict[str, Any]:
    return _function_properties(resources, "ArchiverFunction")


@pytest.fixture(scope="module")
def archive_event(archiver: dict[str, Any]) -> dict[str, Any]:
    return _stream_event(archiver)


@pytest.fixture(scope="module")
def s3_destination(resources: dict[str, Any]) -> dict[str, Any]:
    stream = resources["ArchiveDeliveryStream"]
    assert stream["Type"] == "AWS::KinesisFirehose::DeliveryStream"
    assert stream["Properties"]["DeliveryStreamType"] == "DirectPut"
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert isinstance(destination, dict)
    return destination


@pytest.fixture(scope="module")
def archive_bucket(resources: dict[str, Any]) -> dict[str, Any]:
    return _properties(resources, "ArchiveBucket", "AWS::S3::Bucket")


def grants_of(resources: dict[str, Any], owner: str) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for name, statement in iam_statements(resources) if name == owner}


def test_archiver_is_the_thin_handler_on_the_layer_like_the_indexer(
    template: dict[str, Any],
    archiver: dict[str, Any],
    function: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert archiver["CodeUri"] == "functions/archiver/"
    assert archiver["Handler"] == "app.handler"
    assert archiver["Layers"] == [{"Ref": "DdbsyncLayer"}]
    built = object()
    monkeypatch.setattr("ddbsync.archive.handler.make_handler", lambda: built)
    assert lambda_handler(archiver["CodeUri"], archiver["Handler"]) is built
    for key in ("Runtime", "Architectures", "Timeout", "Tracing"):
        assert function_setting(template, archiver, key) == function_setting(template, function, key), key
    assert archiver["LoggingConfig"]["LogGroup"] == {"Ref": "ArchiverLogGroup"}
    group = template["Resources"]["ArchiverLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_archiver_environment_is_accepted_by_its_settings(
    template: dict[str, Any], archiver: dict[str, Any]
) -> None:
    from ddbsync.archive.settings import ArchiveSettings

    env = function_environment(template, archiver)
    assert set(env) == {
        "ARCHIVE_STREAM_NAME",
        "RECORD_DLQ_URL",
        "DEAD_LETTER_BUCKET",
        "TIMEOUT_MARGIN_MS",
    } | set(POWERTOOLS_VARIABLES)
    assert env["ARCHIVE_STREAM_NAME"] == {
        "Ref": "ArchiveDeliveryStream"
    }  # Ref of a delivery stream is its name
    assert env["RECORD_DLQ_URL"] == {"Ref": "RecordDlq"}
    assert env["DEAD_LETTER_BUCKET"] == {"Ref": "DeadLetterBucket"}
    margin = parameter(template, env["TIMEOUT_MARGIN_MS"])
    # A PutRecordBatch call may wait 10 s to read its response: 30 s leaves room for it and a retry.
    assert margin["MinValue"] >= 30_000
    assert margin["MaxValue"] < function_setting(template, archiver, "Timeout") * 1000
    settings = ArchiveSettings.from_env(
        {
            "ARCHIVE_STREAM_NAME": "ddbsync-dev-ArchiveDeliveryStream-AbCdEf012345",
            "RECORD_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/ddbsync-RecordDlq",
            "DEAD_LETTER_BUCKET": "ddbsync-dev-deadletterbucket-1a2b3c4d5e6f",
            "TIMEOUT_MARGIN_MS": str(margin["Default"]),
            "AWS_REGION": "eu-west-1",
        }
    )
    assert settings.timeout_margin_ms == margin["Default"] >= 30_000


def test_archiver_reads_the_same_stream_with_the_indexers_safeguards(
    template: dict[str, Any], archive_event: dict[str, Any], stream_event: dict[str, Any]
) -> None:
    assert archive_event["Stream"] == stream_event["Stream"]
    assert archive_event["StartingPosition"] == "TRIM_HORIZON"
    assert archive_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert archive_event["BisectBatchOnFunctionError"] is True
    retries = parameter(template, archive_event["MaximumRetryAttempts"])
    assert retries["MinValue"] >= 0  # -1 (for ever) is not allowed
    age = parameter(template, archive_event["MaximumRecordAgeInSeconds"])
    assert 60 <= age["Default"] < age["MaxValue"] <= 86_400
    # Its own queue: `ddbsync replay` re-indexes what OnFailureQueue points at, which is
    # not what an archive gap needs.
    assert archive_event["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["ArchiveOnFailureQueue", "Arn"]}}
    }
    assert parameter(template, archive_event["BatchSize"])["MaxValue"] <= 10_000


def test_archiver_may_put_to_its_delivery_stream_and_nothing_else_new(resources: dict[str, Any]) -> None:
    grants = grants_of(resources, "ArchiverFunction")
    assert set(grants) == {
        "ReadTableStream",
        "SendBatchPointersOnFailure",
        "PutArchiveRecords",
        "WriteOversizedDeadLetters",
        "EncryptDeadLetters",
    }
    assert grants["PutArchiveRecords"]["Action"] == "firehose:PutRecordBatch"
    assert grants["PutArchiveRecords"]["Resource"] == {"Fn::GetAtt": ["ArchiveDeliveryStream", "Arn"]}
    assert grants["SendBatchPointersOnFailure"]["Action"] == "sqs:SendMessage"
    assert grants["SendBatchPointersOnFailure"]["Resource"] == {
        "Fn::GetAtt": ["ArchiveOnFailureQueue", "Arn"]
    }
    assert grants["ReadTableStream"] == grants_of(resources, "StreamIndexerFunction")["ReadTableStream"]
    policies = resources["ArchiverFunction"]["Properties"]["Policies"]
    assert policies[0] == {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["RecordDlq", "QueueName"]}}}


def test_delivery_stream_partitions_by_table_day_and_hour(s3_destination: dict[str, Any]) -> None:
    assert s3_destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert s3_destination["Prefix"] == (
        "table=!{partitionKeyFromQuery:table}/dt=!{partitionKeyFromQuery:dt}/hour=!{partitionKeyFromQuery:hour}/"
    )
    # Records the query cannot partition land here, by error type (processing-failed ...).
    assert "!{firehose:error-output-type}" in s3_destination["ErrorOutputPrefix"]
    assert s3_destination["ErrorOutputPrefix"].startswith("errors/")
    assert s3_destination["CompressionFormat"] == "GZIP"
    processing = s3_destination["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    extraction, delimiter = processing["Processors"]
    assert extraction["Type"] == "MetadataExtraction"
    params = {p["ParameterName"]: p["ParameterValue"] for p in extraction["Parameters"]}
    assert params["JsonParsingEngine"] == "JQ-1.6"
    for key in ("table", "dt", "hour"):
        assert f"{key}:" in params["MetadataExtractionQuery"]
    # The archiver writes lines without a newline (ddbsync.archive.lines); Firehose adds it.
    assert delimiter["Type"] == "AppendDelimiterToRecord"


def test_delivery_stream_buffers_within_dynamic_partitionings_limits(
    template: dict[str, Any], s3_destination: dict[str, Any]
) -> None:
    size = parameter(template, s3_destination["BufferingHints"]["SizeInMBs"])
    interval = parameter(template, s3_destination["BufferingHints"]["IntervalInSeconds"])
    assert 64 <= size["MinValue"] <= size["Default"] <= size["MaxValue"] <= 128
    assert 60 <= interval["MinValue"] <= interval["Default"] <= interval["MaxValue"] <= 900


def test_delivery_stream_and_bucket_use_the_archive_key(
    resources: dict[str, Any], s3_destination: dict[str, Any], archive_bucket: dict[str, Any]
) -> None:
    key = {"Fn::GetAtt": ["ArchiveKey", "Arn"]}
    stream = resources["ArchiveDeliveryStream"]["Properties"]
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": key,
    }
    assert s3_destination["EncryptionConfiguration"] == {"KMSEncryptionConfig": {"AWSKMSKeyARN": key}}
    assert s3_destination["BucketARN"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
    (rule,) = archive_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True,
    }
    archive_key = resources["ArchiveKey"]
    assert archive_key["Properties"]["EnableKeyRotation"] is True
    # The bucket is retained, so is the key its objects are encrypted with.
    assert resources["ArchiveBucket"]["DeletionPolicy"] == archive_key["DeletionPolicy"] == "Retain"


def test_archive_bucket_is_private_versioned_and_tls_only(
    resources: dict[str, Any], archive_bucket: dict[str, Any]
) -> None:
    assert archive_bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert archive_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert archive_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (policy,) = [
        p
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "ArchiveBucket"}
    ]
    (denial,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (denial["Effect"], denial["Principal"], denial["Action"]) == ("Deny", "*", "s3:*")
    assert denial["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert denial["Resource"] == [
        {"Fn::GetAtt": ["ArchiveBucket", "Arn"]},
        {"Fn::Sub": "${ArchiveBucket.Arn}/*"},
    ]


def test_archive_ages_into_cheaper_classes_and_expires_only_when_asked(
    template: dict[str, Any], archive_bucket: dict[str, Any]
) -> None:
    rules = {rule["Id"]: rule for rule in archive_bucket["LifecycleConfiguration"]["Rules"]}
    tier = rules["TierArchive"]
    assert tier["Status"] == "Enabled"
    ia, glacier = tier["Transitions"]
    assert ia["StorageClass"] == "STANDARD_IA"
    assert glacier["StorageClass"] == "GLACIER_IR"
    ia_days = parameter(template, ia["TransitionInDays"])
    glacier_days = parameter(template, glacier["TransitionInDays"])
    assert ia_days["MinValue"] >= 30  # S3 refuses Standard-IA sooner
    # Objects must stay 30 days in Standard-IA before the next transition.
    assert glacier_days["Default"] >= ia_days["Default"] + 30
    assert glacier_days["MinValue"] >= ia_days["MinValue"] + 30
    assert tier["ExpirationInDays"] == {
        "Fn::If": ["HasArchiveExpiration", {"Ref": "ArchiveExpirationDays"}, {"Ref": "AWS::NoValue"}]
    }
    assert template["Conditions"]["HasArchiveExpiration"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ArchiveExpirationDays"}, "0"]}]
    }
    assert parameter(template, {"Ref": "ArchiveExpirationDays"})["Default"] == 0  # keep for ever
    assert rules["RemoveExpiredDeleteMarkers"]["ExpiredObjectDeleteMarker"] is True


def test_firehose_role_is_assumed_by_this_accounts_firehose_only(resources: dict[str, Any]) -> None:
    role = resources["ArchiveDeliveryRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    assert resources["ArchiveDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"][
        "RoleARN"
    ] == {"Fn::GetAtt": ["ArchiveDeliveryRole", "Arn"]}


def test_firehose_role_writes_only_the_archive_prefixes_with_the_archive_key_through_s3(
    resources: dict[str, Any],
) -> None:
    grants = grants_of(resources, "ArchiveDeliveryRole")
    assert set(grants) == {
        "ListArchiveBucket",
        "WriteArchiveObjects",
        "EncryptArchiveObjects",
        "LogDeliveryErrors",
    }
    assert set(grants["ListArchiveBucket"]["Action"]) == {
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
    }
    assert grants["ListArchiveBucket"]["Resource"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
    assert set(grants["WriteArchiveObjects"]["Action"]) == {
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:PutObject",
    }
    assert grants["WriteArchiveObjects"]["Resource"] == [
        {"Fn::Sub": "${ArchiveBucket.Arn}/table=*"},
        {"Fn::Sub": "${ArchiveBucket.Arn}/errors/*"},
    ]
    destination = resources["ArchiveDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"].startswith("table=") and destination["ErrorOutputPrefix"].startswith(
        "errors/"
    )
    kms = grants["EncryptArchiveObjects"]
    assert set(kms["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert kms["Resource"] == {"Fn::GetAtt": ["ArchiveKey", "Arn"]}
    assert kms["Condition"]["StringEquals"] == {
        "kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}
    }
    assert kms["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:s3:arn": [
            {"Fn::GetAtt": ["ArchiveBucket", "Arn"]},
            {"Fn::Sub": "${ArchiveBucket.Arn}/*"},
        ]
    }
    assert grants["LogDeliveryErrors"]["Action"] == "logs:PutLogEvents"
    # Nobody else touches the archive key but the backfill, which (a rebuild reads the
    # archive) may only decrypt, and only through S3.
    uses = [
        (owner, statement)
        for owner, statement in iam_statements(resources)
        if {"Fn::GetAtt": ["ArchiveKey", "Arn"]} in as_list(statement["Resource"])
    ]
    assert {owner for owner, _ in uses} == {"ArchiveDeliveryRole", "BackfillFunction"}
    (decrypt,) = [statement for owner, statement in uses if owner == "BackfillFunction"]
    assert decrypt["Action"] == "kms:Decrypt"
    via_s3 = {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}
    assert decrypt["Condition"]["StringEquals"] == via_s3


def test_archive_outputs_name_the_function_stream_bucket_and_queue(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ArchiverFunctionName"]["Value"] == {"Ref": "ArchiverFunction"}
    assert outputs["ArchiveDeliveryStreamName"]["Value"] == {"Ref": "ArchiveDeliveryStream"}
    assert outputs["ArchiveBucketName"]["Value"] == {"Ref": "ArchiveBucket"}
    assert outputs["ArchiveOnFailureQueueUrl"]["Value"] == {"Ref": "ArchiveOnFailureQueue"}
    assert outputs["ArchiveEventSourceMappingId"]["Value"] == {"Ref": "ArchiverFunctionStream"}
