"""template.yaml as data: a YAML loader for CloudFormation's short tags.

The local Firehose (:mod:`ddbsync_local.firehose`) reads the delivery stream's settings
from the template, and the tests and the cold-start bench read it to check it; all of them
use this one loader (``tests/support.py`` re-exports it). ``!Ref x`` becomes
``{"Ref": "x"}``, ``!GetAtt a.b`` becomes ``{"Fn::GetAtt": ["a", "b"]}`` and every other
short tag ``!Name v`` becomes ``{"Fn::Name": v}``. Nothing is evaluated except where a
caller resolves a parameter itself (:func:`parameter_default`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["TEMPLATE", "CfnLoader", "load_template", "parameter_default"]

# The repository's template (a checkout or an editable install: local/ddbsync_local/ -> root).
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


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


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """A CloudFormation/SAM template as data, short tags (``!Ref x``) in their long form."""
    with path.open(encoding="utf-8") as f:
        loaded = yaml.load(f, Loader=CfnLoader)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a template (its top level is not a mapping)")
    return loaded


def parameter_default(template: dict[str, Any], value: object) -> object:
    """``value`` itself, or the Default of the template parameter it names with ``{"Ref": name}``."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        parameter = template.get("Parameters", {}).get(name)
        if not isinstance(parameter, dict) or "Default" not in parameter:
            raise ValueError(f"!Ref {name} is not a template parameter with a Default")
        return parameter["Default"]
    return value
