"""template.yaml and samconfig.toml: the settings that keep the pipeline lossless and observable.

These read the files as data (no network, no AWS account). The last test runs
``sam validate --lint`` when the SAM CLI is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ddbsync.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

FOURTEEN_DAYS = 14 * 24 * 3600


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (!Ref, !GetAtt, !Sub ...) into their long form."""


def _construct_short_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


CfnLoader.add_multi_constructor("!", _construct_short_tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    with TEMPLATE.open(encoding="utf-8") as f:
        loaded = yaml.load(f, Loader=CfnLoader)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res = template["Resources"]
    assert isinstance(res, dict)
    return res


@pytest.fixture(scope="module")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    props = resources["StreamIndexerFunction"]["Properties"]
    assert isinstance(props, dict)
    return props


@pytest.fixture(scope="module")
def stream_event(function: dict[str, Any]) -> dict[str, Any]:
    event = function["Events"]["Stream"]
    assert event["Type"] == "DynamoDB"
    props = event["Properties"]
    assert isinstance(props, dict)
    return props


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


def iam_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every identity-policy statement: function Policies and IAM resources."""
    for name, res in of_type(resources, "AWS::Serverless::Function").items():
        for policy in res["Properties"].get("Policies", []):
            for document in if_branches(policy):
                if isinstance(document, dict) and "Statement" in document:
                    for statement in document["Statement"]:
                        for branch in if_branches(statement):
                            yield name, branch
    for iam_type in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, res in of_type(resources, iam_type).items():
            props = res["Properties"]
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
            if "PolicyDocument" in props:
                documents.append(props["PolicyDocument"])
            for document in documents:
                for statement in document["Statement"]:
                    for branch in if_branches(statement):
                        yield name, branch


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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


def test_function_is_the_thin_handler_on_the_ddbsync_layer(function: dict[str, Any]) -> None:
    assert function["CodeUri"] == "functions/stream_indexer/"
    assert function["Handler"] == "app.handler"
    assert (ROOT / function["CodeUri"] / "app.py").is_file()
    assert function["Layers"] == [{"Ref": "DdbsyncLayer"}]


def test_function_names_are_never_hard_coded(resources: dict[str, Any]) -> None:
    for name, res in of_type(resources, "AWS::Serverless::Function").items():
        assert "FunctionName" not in res["Properties"], name


def test_layer_is_built_by_sam_for_python313_on_arm64(resources: dict[str, Any]) -> None:
    layer = resources["DdbsyncLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/ddbsync/"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    # SAM's python BuildMethod installs the ContentUri's requirements.txt and copies
    # the package next to its dependencies under python/.
    assert (ROOT / props["ContentUri"] / "requirements.txt").is_file()
    assert (ROOT / props["ContentUri"] / "ddbsync" / "config.py").is_file()


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


@pytest.mark.parametrize("queue", ["RecordDlq", "OnFailureQueue"])
def test_queue_is_encrypted_and_keeps_messages_14_days(resources: dict[str, Any], queue: str) -> None:
    props = resources[queue]["Properties"]
    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == FOURTEEN_DAYS


@pytest.mark.parametrize("queue", ["RecordDlq", "OnFailureQueue"])
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
}


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


@pytest.mark.parametrize("alarm", [a for a in sorted(ALARMS) if a != "IteratorAgeAlarm"])
def test_failure_alarms_fire_on_the_first_occurrence(resources: dict[str, Any], alarm: str) -> None:
    props = resources[alarm]["Properties"]
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Threshold"] == 0
    assert props["EvaluationPeriods"] == 1


def test_iterator_age_alarm_fires_after_five_minutes_over_one_minute(resources: dict[str, Any]) -> None:
    props = resources["IteratorAgeAlarm"]["Properties"]
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


def test_no_iam_statement_grants_every_resource(resources: dict[str, Any]) -> None:
    statements = list(iam_statements(resources))
    assert statements
    for owner, statement in statements:
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{owner}: {statement}"
            if isinstance(resource, str):
                assert "*" not in resource, f"{owner}: {statement}"
            elif "Fn::Sub" in resource:
                # The only wildcard allowed: HTTP paths under the OpenSearch domain.
                assert "*" not in resource["Fn::Sub"] or resource == {"Fn::Sub": "${OpenSearchResourceArn}/*"}
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{owner}: {statement}"


def test_opensearch_access_follows_the_service(resources: dict[str, Any]) -> None:
    grants = {
        statement["Sid"]: statement
        for _, statement in iam_statements(resources)
        if statement.get("Sid", "").startswith("OpenSearch")
    }
    assert set(grants) == {"OpenSearchDomainHttp", "OpenSearchServerlessData"}
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
    "TTL_REMOVES",
    "BULK_MAX_BYTES",
    "TIMEOUT_MARGIN_MS",
    "MANAGE_INDEX",
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


# ---------------------------------------------------------------- samconfig.toml


def test_samconfig_defines_dev_and_prod_stacks(samconfig: dict[str, Any]) -> None:
    assert samconfig["version"] == 0.1
    assert samconfig["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
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


@pytest.mark.skipif(shutil.which("sam") is None, reason="SAM CLI not installed")
def test_sam_validate_lint_is_clean() -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        ["sam", "validate", "--lint", "--region", "eu-west-1", "--template-file", str(TEMPLATE)],
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
