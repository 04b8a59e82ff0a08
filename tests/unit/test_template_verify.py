"""template.yaml: the scheduled drift check (VerifySchedule, VerifyFunction, DriftAlarm)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_the_schedule_is_optional_and_off_by_default(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["VerifySchedule"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("", "rate(1 day)", "cron(0 3 * * ? *)"):
        assert pattern.match(good)
    for bad in ("daily", "rate(", " rate(1 day)"):
        assert not pattern.match(bad)
    for name in ("VerifyFunction", "VerifyLogGroup", "DriftAlarm"):
        assert template["Resources"][name]["Condition"] == "HasVerifySchedule"


def test_the_function_reads_only(template: dict[str, Any]) -> None:
    function = template["Resources"]["VerifyFunction"]["Properties"]
    assert function["CodeUri"] == "functions/verify/" and function["Handler"] == "app.handler"
    (policy,) = function["Policies"]
    statements = policy["Statement"]
    assert statements[0]["Action"] == "dynamodb:Scan"
    domain = statements[1]["Fn::If"][2]
    assert domain["Action"] == ["es:ESHttpGet", "es:ESHttpPost"]
    assert function["Events"]["Schedule"]["Properties"]["Schedule"] == {"Ref": "VerifySchedule"}
    assert set(function["Environment"]["Variables"]) >= {"TABLE_ARN", "INDEX_ALIAS", "VERIFY_SEGMENTS"}


def test_the_drift_alarm_watches_drift_documents(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["DriftAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("ddbsync", "DriftDocuments")
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert "ddbsync verify --repair" in alarm["AlarmDescription"]
