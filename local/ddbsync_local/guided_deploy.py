"""The deploy questions, asked the way ``sam deploy --guided`` does not: with each
parameter's Description, and refusing an answer the template refuses.

``sam deploy --guided`` (SAM CLI 1.170, uv.lock's) prompts ``Parameter NAME [default]:``
for every template parameter: no Description, and any answer is taken, a blank one for a
required parameter included; CloudFormation refuses it only at CreateChangeSet, after the
code is packaged and uploaded (docs/deploy-guided-transcript.md shows both). This asks the
same parameters first, in the console's groups (Metadata ParameterGroups), shows each
Description and what is allowed, checks every answer against AllowedPattern, AllowedValues
and MinValue/MaxValue, and asks again until the answer is allowed. The answers go to a
file (YAML) that ``sam deploy --guided --parameter-overrides file://FILE`` then offers as
its defaults (SAM still asks for the stack name, region and capabilities, and saves all
of it to samconfig.toml).

Starting answers: samconfig.toml's ``parameter_overrides`` of the chosen environment, else
the template's Default. ``<placeholders>`` (samconfig.toml's ``[default]``) are refused by
their parameter's pattern, so they are asked again.

CloudFormation matches AllowedPattern against the whole value as a Java regular
expression; the template's patterns use nothing that Python's ``re.fullmatch`` reads
differently (tests/unit/test_template_parameters.py uses :func:`refusal` too).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ddbsync_local.cfn import TEMPLATE, load_template

__all__ = ["answers_from_samconfig", "ask_all", "groups", "main", "refusal"]

ROOT = TEMPLATE.parent
Parameter = Mapping[str, Any]


def refusal(param: Parameter, value: str) -> str | None:
    """Why CloudFormation's parameter check would refuse ``value`` (None: it is allowed)."""
    why = str(param.get("ConstraintDescription") or "")
    allowed = [str(v) for v in param.get("AllowedValues", [])]
    if allowed and value not in allowed:
        return f"must be one of {', '.join(allowed)}"
    pattern = param.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        return why or f"must match {pattern}"
    if param.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        low, high = param.get("MinValue"), param.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            return f"must be between {low} and {high}"
    return None


def groups(template: Mapping[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(label, parameter names) in the console's order; parameters in no group come last."""
    interface = template.get("Metadata", {}).get("AWS::CloudFormation::Interface", {})
    listed: list[str] = []
    for group in interface.get("ParameterGroups", []):
        names = [str(n) for n in group["Parameters"]]
        listed += names
        yield str(group["Label"]["default"]), names
    rest = [n for n in template["Parameters"] if n not in listed]
    if rest:
        yield "Other", rest


def answers_from_samconfig(path: Path, env: str) -> dict[str, str]:
    """``parameter_overrides`` of ``[env.deploy.parameters]`` as {name: value} (none: {})."""
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        config = tomllib.load(f)
    overrides = config.get(env, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", [])
    items = overrides.split() if isinstance(overrides, str) else overrides
    return dict(str(item).split("=", 1) for item in items if "=" in str(item))


def _explain(name: str, param: Parameter, say: Callable[[str], None]) -> None:
    say("")
    say(f"  {name}" + ("  (required)" if "Default" not in param else ""))
    for line in textwrap.wrap(
        " ".join(str(param.get("Description", "")).split()), 88, break_on_hyphens=False
    ):
        say(f"    {line}")
    if "AllowedValues" in param:
        say(f"    allowed: {', '.join(str(v) for v in param['AllowedValues'])}")
    elif "ConstraintDescription" in param:
        say(f"    allowed: {param['ConstraintDescription']}")
    elif "MinValue" in param or "MaxValue" in param:
        say(f"    allowed: {param.get('MinValue', '')} to {param.get('MaxValue', '')}")


def ask_one(
    name: str, param: Parameter, start: str, ask: Callable[[str], str], say: Callable[[str], None]
) -> str:
    """Ask until the answer is allowed; Enter keeps ``start`` (when it is allowed), ``-`` is empty."""
    _explain(name, param, say)
    while True:
        typed = ask(f"  {name} [{start}]: ").strip()
        answer = "" if typed == "-" else typed or start
        why = refusal(param, answer)
        if why is None:
            return answer
        shown = "a blank answer" if not answer else repr(answer)
        say(f"    refused: {shown}: {why}")


def ask_all(
    template: Mapping[str, Any],
    current: Mapping[str, str],
    ask: Callable[[str], str],
    say: Callable[[str], None],
) -> dict[str, str]:
    """Every parameter's answer, group by group."""
    params: Mapping[str, Parameter] = template["Parameters"]
    answers: dict[str, str] = {}
    for label, names in groups(template):
        say("")
        say(f"== {label}")
        for name in names:
            start = current.get(name, str(params[name].get("Default", "")))
            answers[name] = ask_one(name, params[name], start, ask, say)
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/deploy-guided",
        description="Ask the template's parameters with their descriptions and constraints, then "
        "write the answers for `sam deploy --guided --parameter-overrides file://FILE`.",
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--config-file", type=Path, default=ROOT / "samconfig.toml")
    parser.add_argument(
        "--config-env", default="default", help="samconfig.toml environment (default: %(default)s)"
    )
    # SAM reads file:// overrides from .toml or .yaml (its JSON reader is disabled); JSON is YAML.
    parser.add_argument("--out", type=Path, default=ROOT / ".aws-sam" / "deploy-parameters.yaml")
    args = parser.parse_args(argv)
    template = load_template(args.template)
    print("ddbsync deploy questions: Enter keeps the answer in [brackets], - makes it empty.")
    print(f"Each answer is checked against {args.template.name} now, not by CloudFormation after the upload.")
    try:
        answers = ask_all(template, answers_from_samconfig(args.config_file, args.config_env), input, print)
    except (EOFError, KeyboardInterrupt):
        print("\nstopped: nothing written", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(answers, indent=2) + "\n", encoding="utf-8")
    print(f"\nanswers written to {args.out}; now run (it asks for the stack, region and capabilities):")
    print(f"  sam deploy --guided --parameter-overrides file://{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
