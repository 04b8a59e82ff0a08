"""Every template parameter tells what it is and refuses what cannot work (issue #10 part 5).

``sam deploy --guided`` and the CloudFormation console build their questions from the
parameters: each has a Description, a constraint (AllowedPattern, AllowedValues, or both
MinValue and MaxValue), and a default only where one is safe. A required parameter has no
default and a pattern that refuses a blank answer, so a forgotten value is refused by
CloudFormation's parameter check (CreateChangeSet), before anything is created. The
``[default]`` environment of samconfig.toml marks what the user must answer with
``<placeholders>`` that those same patterns refuse.

CloudFormation matches AllowedPattern against the whole value (Java regular expressions);
these patterns use nothing Python's ``re.fullmatch`` reads differently. The check is
:func:`ddbsync_local.guided_deploy.refusal`, the one scripts/deploy-guided asks with.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ddbsync_local.guided_deploy import refusal
from tests.support import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
REQUIRED = sorted(name for name, p in PARAMETERS.items() if "Default" not in p)
with (ROOT / "samconfig.toml").open("rb") as _f:
    SAMCONFIG = tomllib.load(_f)


def accepts(param: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation's parameter check lets ``value`` through (scripts/deploy-guided's rule)."""
    return refusal(param, value) is None


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_parameter_is_described_constrained_and_its_default_allowed(name: str) -> None:
    param = PARAMETERS[name]
    assert len(param.get("Description", "")) >= 20, f"{name}: a Description that says what to give"
    constrained = {"AllowedPattern", "AllowedValues"} & set(param) or {"MinValue", "MaxValue"} <= set(param)
    assert constrained, f"{name}: needs AllowedPattern, AllowedValues or MinValue and MaxValue"
    if "AllowedPattern" in param:
        assert "ConstraintDescription" in param, f"{name}: say in words what the pattern wants"
    if "Default" in param:
        assert accepts(param, str(param["Default"])), f"{name}: its Default breaks its own constraint"


@pytest.mark.parametrize("name", REQUIRED)
def test_a_required_parameter_refuses_a_blank_answer(name: str) -> None:
    param = PARAMETERS[name]
    assert "AllowedPattern" in param or "AllowedValues" in param, name
    for blank in ("", " "):
        assert not accepts(param, blank), f"{name} accepts {blank!r}"


def test_the_required_parameters_are_the_ones_only_the_user_knows() -> None:
    assert REQUIRED == ["IndexAlias", "OpenSearchEndpoint", "OpenSearchResourceArn", "PartitionKey"]


def test_every_parameter_is_in_one_console_group() -> None:
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(PARAMETERS)


def default_overrides() -> dict[str, str]:
    items = SAMCONFIG["default"]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in items)


def test_samconfig_default_marks_every_required_answer_with_a_placeholder_the_template_refuses() -> None:
    overrides = default_overrides()
    assert set(overrides) <= set(PARAMETERS)
    for name in REQUIRED:
        value = overrides[name]
        assert value.startswith("<") and value.endswith(">"), f"{name}: mark the answer as a <placeholder>"
        assert not accepts(PARAMETERS[name], value), f"{name}: the placeholder {value!r} would deploy"
    for name, value in overrides.items():
        if name not in REQUIRED:
            assert accepts(PARAMETERS[name], value), f"{name}={value!r} is refused by the template"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("s3://my-templates/ddbsync/index.json", True),
        ("s3://my-templates/", False),
        ("https://my-templates.s3.amazonaws.com/index.json", False),
        ("/var/task/index.json", False),
    ],
)
def test_index_template_is_empty_or_an_s3_object(value: str, ok: bool) -> None:
    assert accepts(PARAMETERS["IndexTemplate"], value) is ok


@pytest.mark.parametrize("owner", ["StreamIndexerFunction", "BackfillFunction"])
def test_the_index_template_reaches_the_functions_that_create_indices_with_read_access(owner: str) -> None:
    props = TEMPLATE["Resources"][owner]["Properties"]
    assert props["Environment"]["Variables"]["INDEX_TEMPLATE"] == {"Ref": "IndexTemplate"}
    [grant] = [
        s["Fn::If"]
        for policy in props["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for s in policy["Statement"]
        if isinstance(s, dict) and "Fn::If" in s and s["Fn::If"][1].get("Sid") == "ReadIndexTemplate"
    ]
    condition, statement, otherwise = grant
    assert condition == "HasIndexTemplate" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "s3:GetObject"  # that object only, nothing else in the bucket
    assert statement["Resource"] == {
        "Fn::Sub": [
            "arn:${AWS::Partition}:s3:::${Object}",
            {"Object": {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "IndexTemplate"}]}]}},
        ]
    }
    assert TEMPLATE["Conditions"]["HasIndexTemplate"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "IndexTemplate"}, ""]}]
    }
