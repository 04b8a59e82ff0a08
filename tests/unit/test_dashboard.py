"""template.yaml's dashboard and the alarms of issue #10 part 4.

The dashboard body is a JSON string inside ``!Sub``: every ``${...}`` must name a resource,
an attribute, a parameter or a pseudo parameter, and the text must be JSON once they are
substituted. Every metric it draws must be one something emits: the package's Powertools
metrics (found in the code), the template's metric filters, or AWS's own metrics of the
namespaces it uses (listed here from the AWS documentation of each service).
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from tests.support import load_template

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "ddbsync" / "ddbsync"
SERVICE = {"service": "ddbsync"}  # Powertools: namespace and service from the function environment

# AWS's metrics used here, with the dimension each is drawn by (CloudWatch metrics pages of
# Lambda, SQS, Firehose and Step Functions).
AWS_METRICS = {
    ("AWS/Lambda", "IteratorAge"): "FunctionName",
    ("AWS/Lambda", "Errors"): "FunctionName",
    ("AWS/Lambda", "Throttles"): "FunctionName",
    ("AWS/Lambda", "Duration"): "FunctionName",
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): "QueueName",
    ("AWS/SQS", "ApproximateAgeOfOldestMessage"): "QueueName",
    ("AWS/Firehose", "DeliveryToS3.Success"): "DeliveryStreamName",
    ("AWS/Firehose", "DeliveryToS3.Records"): "DeliveryStreamName",
    ("AWS/Firehose", "DeliveryToS3.DataFreshness"): "DeliveryStreamName",
    ("AWS/States", "ExecutionsStarted"): "StateMachineArn",
    ("AWS/States", "ExecutionsSucceeded"): "StateMachineArn",
    ("AWS/States", "ExecutionsFailed"): "StateMachineArn",
}
# Published by the scheduled `ddbsync verify` (issue #10 part 2, built beside this part):
# a Powertools metric like the others. Once that code is in, code_metrics() finds it.
VERIFY_METRICS = {"DriftDocuments"}

Metric = tuple[str, str, frozenset[tuple[str, str]]]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = template["Resources"]
    return res


def code_metrics() -> set[str]:
    """Names of every metric the package adds with Powertools (add_metric(name="...")."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r"add_metric\(\s*name=\"(\w+)\"", path.read_text()))
    return names


def filter_metrics(resources: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (t["MetricNamespace"], t["MetricName"])
        for res in resources.values()
        if res["Type"] == "AWS::Logs::MetricFilter"
        for t in res["Properties"]["MetricTransformations"]
    }


def substituted(template: dict[str, Any], text: str) -> str:
    """``text`` with every ${...} replaced by a marker; fails on a name the template lacks."""
    names = set(template["Resources"]) | set(template["Parameters"])

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        assert name.startswith("AWS::") or name.split(".")[0] in names, f"${{{name}}} names nothing"
        return f"<{name}>"

    return re.sub(r"\$\{([^}]+)\}", replace, text)


@pytest.fixture(scope="module")
def body(template: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    dashboard = resources["Dashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    loaded: dict[str, Any] = json.loads(substituted(template, text))
    return loaded


def drawn(body: dict[str, Any]) -> list[Metric]:
    """(namespace, name, dimensions) of every metric row, in the long form (no "." shorthand)."""
    metrics = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            fields = [f for f in row if not isinstance(f, dict)]
            assert "." not in fields and len(fields) % 2 == 0, row
            namespace, name, *dims = fields
            metrics.append((namespace, name, frozenset(zip(dims[::2], dims[1::2], strict=True))))
    return metrics


def test_the_body_is_json_after_sub_and_every_widget_fits_the_grid(body: dict[str, Any]) -> None:
    widgets = body["widgets"]
    for w in widgets:
        assert w["x"] >= 0 and w["x"] + w["width"] <= 24, w
        assert w["type"] == "text" or w["properties"]["region"] == "<AWS::Region>"
    for a, b in combinations(widgets, 2):
        apart = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
        assert apart or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"], (a, b)


def test_every_metric_drawn_is_one_the_code_the_template_or_aws_emits(
    body: dict[str, Any], resources: dict[str, Any]
) -> None:
    ours = code_metrics()
    assert {"RecordsReceived", "PoisonRecords", "RecordsArchived"} <= ours  # the scan finds them
    filtered = filter_metrics(resources)
    for namespace, name, dims in drawn(body):
        if namespace == "ddbsync" and (namespace, name) in filtered:
            assert dims == frozenset(), name  # a metric filter here sets no dimension
        elif namespace == "ddbsync":
            assert name in ours | VERIFY_METRICS, f"no code emits ddbsync/{name}"
            assert dims == frozenset(SERVICE.items()), name
        else:
            assert (namespace, name) in AWS_METRICS, f"{namespace}/{name} is not an AWS metric listed here"
            [(dimension, _)] = dims
            assert dimension == AWS_METRICS[namespace, name]


def test_the_dashboard_covers_the_pipeline(body: dict[str, Any], resources: dict[str, Any]) -> None:
    # (namespace, name, value of its one dimension or "")
    metrics = {(ns, name, next((v for _, v in dims), "")) for ns, name, dims in drawn(body)}
    pairs = {(ns, name) for ns, name, _ in metrics}
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    events = {n: resources[n]["Properties"].get("Events", {}).values() for n in functions}
    readers = [n for n in functions if any(e["Type"] == "DynamoDB" for e in events[n])]
    assert set(readers) == {"StreamIndexerFunction", "ArchiverFunction"}
    # Every function, also one added later; but a conditional one (VerifyFunction, only with a
    # VerifySchedule) cannot be named in the body: its drift shows in the DriftDocuments widget.
    for fn in (f for f in functions if "Condition" not in resources[f]):
        for metric in ("Errors", "Throttles", "Duration"):
            assert ("AWS/Lambda", metric, f"<{fn}>") in metrics, (fn, metric)
    for fn in readers:
        assert ("AWS/Lambda", "IteratorAge", f"<{fn}>") in metrics, fn
    for queue in (n for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue"):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"<{queue}.QueueName>") in metrics, queue
    for machine in (n for n, r in resources.items() if r["Type"] == "AWS::Serverless::StateMachine"):
        for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"):
            assert ("AWS/States", metric, f"<{machine}>") in metrics
    for metric in ("DeliveryToS3.Success", "DeliveryToS3.Records", "DeliveryToS3.DataFreshness"):
        assert ("AWS/Firehose", metric, "<ArchiveDeliveryStream>") in metrics
    wanted = {"RecordsReceived", "DocumentsIndexed", "DocumentsDeleted", "StaleConflicts", "PoisonRecords",
              "UnsentRecords", "DriftDocuments", "ArchiveDeliveryErrors"}  # fmt: skip
    assert {("ddbsync", name) for name in wanted} <= pairs


# ---------------------------------------------------------------- alarms (part 4)


def alarm(resources: dict[str, Any], name: str) -> dict[str, Any]:
    assert resources[name]["Type"] == "AWS::CloudWatch::Alarm"
    props: dict[str, Any] = resources[name]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}] == props["OKActions"]
    description = props["AlarmDescription"]
    assert "docs/runbook.md" in (description["Fn::Sub"] if isinstance(description, dict) else description)
    return props


def test_the_archiver_has_iterator_age_and_error_alarms(resources: dict[str, Any]) -> None:
    for name, metric in [("ArchiverIteratorAgeAlarm", "IteratorAge"), ("ArchiverErrorsAlarm", "Errors")]:
        props = alarm(resources, name)
        assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", metric)
        assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ArchiverFunction"}}]


def test_firehose_errors_to_the_error_prefix_alarm_on_the_first_one(resources: dict[str, Any]) -> None:
    metric_filter = resources["ArchiveDeliveryErrorsMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "ArchiveDeliveryLogGroup"}
    assert metric_filter["FilterPattern"] == ""  # Firehose's error log holds only errors: count each
    stream = resources["ArchiveDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert stream["CloudWatchLoggingOptions"]["LogGroupName"] == {"Ref": "ArchiveDeliveryLogGroup"}
    assert stream["ErrorOutputPrefix"].startswith("errors/")
    [transform] = metric_filter["MetricTransformations"]
    props = alarm(resources, "ArchiveDeliveryErrorsAlarm")
    assert (props["Namespace"], props["MetricName"]) == (
        transform["MetricNamespace"],
        transform["MetricName"],
    )
    assert "Dimensions" not in props
    assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
        "Sum", "GreaterThanThreshold", 0)  # fmt: skip
    assert "errors/" in props["AlarmDescription"]["Fn::Sub"]


def test_failed_s3_deliveries_alarm_when_any_put_fails(resources: dict[str, Any]) -> None:
    props = alarm(resources, "ArchiveDeliveryToS3Alarm")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Firehose", "DeliveryToS3.Success")
    assert props["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": {"Ref": "ArchiveDeliveryStream"}}]
    assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
        "Minimum", "LessThanThreshold", 1)  # fmt: skip


def test_drift_alarms_on_any_drift_and_keeps_its_state_between_scheduled_runs(
    resources: dict[str, Any],
) -> None:
    props = alarm(resources, "DriftAlarm")
    assert (props["Namespace"], props["MetricName"]) == ("ddbsync", "DriftDocuments")
    assert props["Dimensions"] == [{"Name": "service", "Value": "ddbsync"}]
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    assert props["TreatMissingData"] == "ignore"
    assert "ddbsync verify --repair" in props["AlarmDescription"]


def test_the_dashboard_name_is_an_output(template: dict[str, Any]) -> None:
    assert template["Outputs"]["DashboardName"]["Value"] == {"Ref": "Dashboard"}
