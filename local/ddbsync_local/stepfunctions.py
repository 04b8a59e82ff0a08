"""The local Step Functions runner: a small Amazon States Language interpreter.

``ddbsync backfill`` and the demo run ``statemachine/backfill.asl.json`` with it, and
the unit tests run the same definition against a fake Lambda, so the flow that runs
locally is the one deployed. It runs only what the backfill state machine uses: Task
(a Python callable stands in for the Lambda function), Pass, Wait (never slept: the
caller decides what a wait means locally), Choice (StringEquals, BooleanEquals,
IsPresent), inline Map (sequential, whatever ``MaxConcurrency`` says), distributed Map
(:mod:`ddbsync_local.distributed_map`: S3 item readers, ItemBatcher, threads for
MaxConcurrency, failure tolerance, ResultWriter; its docstring says what it does not
model), Succeed, Fail (ErrorPath/CausePath), Retry (without the backoff sleeps), Catch,
Parameters / ItemSelector with ``.$`` keys, ResultPath, OutputPath, JSONPath of the
``$``, ``$.a.b``, ``$$.Map.Item.Value`` and ``$$.Execution.Name`` kinds, and the
intrinsics ``States.Format`` and ``States.JsonToString``. Anything else raises
:class:`NotImplementedError`, so a state machine that grows a feature fails loudly here
instead of being half-simulated.

Semantics follow https://states-language.net/spec.html (input/output processing:
InputPath -> Parameters -> task -> ResultSelector -> ResultPath -> OutputPath).
A Task that raises :class:`StatesError` fails like a Lambda function would;
:func:`lambda_task` turns a plain Python handler into such a callable.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Execution",
    "Invoke",
    "StatesError",
    "TaskFailed",
    "lambda_task",
    "load_definition",
    "run",
    "substitute",
]

Invoke = Callable[[str, dict[str, Any]], Any]


class StatesError(Exception):
    """An error raised inside the state machine (what a Catch or a Fail state sees)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class TaskFailed(StatesError):
    """Raised by a fake task to fail like a Lambda function (Error = the exception type)."""


@dataclass
class Execution:
    """The outcome of :func:`run`: status, output or error, and every state entered in order."""

    status: str = "RUNNING"
    name: str = "local"
    s3: Any = field(default=None, repr=False)
    output: Any = None
    error: str | None = None
    cause: str | None = None
    trace: list[str] = field(default_factory=list)


_MISSING = object()
LOCAL_EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:ddbsync-local-backfill"
_PATH = re.compile(r"^\$\$?(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _find(path: str, data: Any, context: dict[str, Any]) -> Any:
    """The value at a JSONPath, or ``_MISSING``."""
    if not _PATH.match(path):
        raise NotImplementedError(f"JSONPath {path!r}")
    node = context if path.startswith("$$") else data
    for part in path.lstrip("$").split(".")[1:]:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _get(path: str, data: Any, context: dict[str, Any]) -> Any:
    node = _find(path, data, context)
    if node is _MISSING:
        raise StatesError("States.Runtime", f"path {path} not found in {json.dumps(data)[:200]}")
    return node


def _put(path: str | None, data: Any, value: Any) -> Any:
    """Apply a ResultPath: ``None`` discards the result, ``$`` replaces the input."""
    if path is None:
        return data
    if path == "$":
        return value
    if not _PATH.match(path) or path.startswith("$$"):
        raise NotImplementedError(f"ResultPath {path!r}")
    out = copy.deepcopy(data)
    node = out
    *parents, last = path.split(".")[1:]
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _split_args(text: str) -> list[str]:
    args, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == "'":
                quoted = False
        elif c == "'":
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    if text.strip():
        args.append(text[start:].strip())
    return args


def _evaluate(expr: str, data: Any, context: dict[str, Any]) -> Any:
    """A ``.$`` value: a JSONPath or an intrinsic function call."""
    expr = expr.strip()
    if expr.startswith("'") and expr.endswith("'"):
        return re.sub(r"\\(.)", r"\1", expr[1:-1])
    if expr.startswith("$"):
        return _get(expr, data, context)
    call = re.fullmatch(r"(States\.[A-Za-z]+)\((.*)\)", expr, re.S)
    if call is None:
        raise NotImplementedError(f"expression {expr!r}")
    name, args = call.group(1), [_evaluate(a, data, context) for a in _split_args(call.group(2))]
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.Format":
        template, *values = args
        pieces = template.split("{}")
        if len(pieces) != len(values) + 1:
            raise StatesError("States.IntrinsicFailure", f"{expr}: wrong number of arguments")
        text = pieces[0]
        for value, piece in zip(values, pieces[1:], strict=True):
            text += (value if isinstance(value, str) else json.dumps(value)) + piece
        return text
    raise NotImplementedError(name)


def _template(value: Any, data: Any, context: dict[str, Any]) -> Any:
    """Evaluate a Parameters / ItemSelector / ResultSelector template."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith(".$"):
                out[key[:-2]] = _evaluate(item, data, context)
            else:
                out[key] = _template(item, data, context)
        return out
    if isinstance(value, list):
        return [_template(item, data, context) for item in value]
    return value


def _matches(names: list[str], error: str) -> bool:
    # States.ALL never matches States.Runtime (spec: runtime errors are not catchable).
    return error in names or ("States.ALL" in names and error != "States.Runtime")


def _choose(state: dict[str, Any], data: Any, context: dict[str, Any]) -> str:
    for rule in state["Choices"]:
        ops = set(rule) - {"Variable", "Next"}
        if ops == {"StringEquals"}:
            hit = _get(rule["Variable"], data, context) == rule["StringEquals"]
        elif ops == {"BooleanEquals"}:
            value = _get(rule["Variable"], data, context)
            hit = isinstance(value, bool) and value is rule["BooleanEquals"]
        elif ops == {"IsPresent"}:
            hit = (_find(rule["Variable"], data, context) is not _MISSING) is rule["IsPresent"]
        else:
            raise NotImplementedError(f"choice rule {sorted(ops)}")
        if hit:
            return str(rule["Next"])
    if "Default" not in state:
        raise StatesError("States.NoChoiceMatched", "no choice matched")
    return str(state["Default"])


def _run_task(state: dict[str, Any], payload: Any, invoke: Invoke, execution: Execution) -> Any:
    attempts: dict[int, int] = {}
    while True:
        try:
            return copy.deepcopy(invoke(state["Resource"], copy.deepcopy(payload)))
        except StatesError as e:
            for index, retrier in enumerate(state.get("Retry", [])):
                if _matches(retrier["ErrorEquals"], e.error):
                    attempts[index] = attempts.get(index, 0) + 1
                    if attempts[index] <= retrier.get("MaxAttempts", 3):
                        execution.trace.append(f"retry:{e.error}")
                        break
                    raise
            else:
                raise


def _run_states(
    machine: dict[str, Any], data: Any, invoke: Invoke, context: dict[str, Any], execution: Execution
) -> Any:
    """Run one States block (top level or a Map's ItemProcessor); return its output or raise StatesError."""
    name = machine["StartAt"]
    while True:
        state = machine["States"][name]
        execution.trace.append(name)
        if "InputPath" in state:
            raise NotImplementedError("InputPath")
        try:
            data, following = _run_state(state, data, invoke, context, execution)
        except StatesError as e:
            catcher = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], e.error)), None)
            if catcher is None:
                raise
            data = _put(catcher.get("ResultPath", "$"), data, {"Error": e.error, "Cause": e.cause})
            name = catcher["Next"]
            continue
        if following is None:
            return data
        name = following


def _run_state(
    state: dict[str, Any], data: Any, invoke: Invoke, context: dict[str, Any], execution: Execution
) -> tuple[Any, str | None]:
    """Run one state: (its output, the next state's name, or None when the block ends here)."""
    kind = state["Type"]
    if kind == "Choice":
        return data, _choose(state, data, context)
    if kind == "Succeed":
        return data, None
    if kind == "Fail":
        raise _failure(state, data, context)
    effective = _template(state["Parameters"], data, context) if "Parameters" in state else data
    result = _result(kind, state, data, effective, invoke, context, execution)
    if "ResultSelector" in state:
        result = _template(state["ResultSelector"], result, context)
    output = data if kind == "Wait" else _put(state.get("ResultPath", "$"), data, result)
    if "OutputPath" in state:
        output = {} if state["OutputPath"] is None else _get(state["OutputPath"], output, context)
    return output, None if state.get("End") else state["Next"]


def _failure(state: dict[str, Any], data: Any, context: dict[str, Any]) -> StatesError:
    error = _evaluate(state["ErrorPath"], data, context) if "ErrorPath" in state else state.get("Error")
    cause = _evaluate(state["CausePath"], data, context) if "CausePath" in state else state.get("Cause")
    return StatesError(str(error), str(cause))


def _result(
    kind: str,
    state: dict[str, Any],
    data: Any,
    effective: Any,
    invoke: Invoke,
    context: dict[str, Any],
    execution: Execution,
) -> Any:
    """The result of a Pass, Wait, Task or Map state (before ResultSelector and ResultPath)."""
    if kind == "Pass":
        return state.get("Result", effective)
    if kind == "Wait":
        if "SecondsPath" in state:
            _get(state["SecondsPath"], data, context)  # must resolve, like the real thing
        return data
    if kind == "Task":
        return _run_task(state, effective, invoke, execution)
    if kind == "Map":
        return _run_map(state, data, invoke, context, execution)
    raise NotImplementedError(f"state type {kind}")


def _run_map(
    state: dict[str, Any], data: Any, invoke: Invoke, context: dict[str, Any], execution: Execution
) -> Any:
    processor = state.get("ItemProcessor") or state["Iterator"]
    if processor.get("ProcessorConfig", {}).get("Mode", "INLINE") == "DISTRIBUTED":
        from ddbsync_local.distributed_map import run_distributed_map

        def child(item_input: Any, child_context: dict[str, Any]) -> Any:
            return _run_states(processor, item_input, invoke, child_context, execution)

        return run_distributed_map(state, data, context, child, execution.s3)
    if processor.get("ProcessorConfig", {}).get("Mode", "INLINE") != "INLINE":
        raise NotImplementedError(f"Map mode {processor['ProcessorConfig']['Mode']}")
    result = []
    for index, item in enumerate(_get(state["ItemsPath"], data, context)):
        item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
        item_input = _template(state["ItemSelector"], data, item_context) if "ItemSelector" in state else item
        result.append(_run_states(processor, item_input, invoke, item_context, execution))
    return result


def run(
    definition: dict[str, Any],
    execution_input: Any,
    invoke: Invoke,
    *,
    name: str = "local",
    s3: Any = None,
) -> Execution:
    """Run ``definition`` on ``execution_input``; ``invoke(resource, payload)`` plays every Task.

    ``name`` is the execution's name (``$$.Execution.Name``); ``s3``, a boto3 S3 client,
    is what a distributed Map's ItemReader and ResultWriter use.
    """
    execution = Execution(name=name, s3=s3)
    context = {
        "Execution": {"Id": f"{LOCAL_EXECUTION_ARN}:{name}", "Name": name, "Input": execution_input},
        "StateMachine": {"Id": LOCAL_EXECUTION_ARN.replace(":execution:", ":stateMachine:")},
    }
    try:
        execution.output = _run_states(definition, execution_input, invoke, context, execution)
        execution.status = "SUCCEEDED"
    except StatesError as e:
        execution.status, execution.error, execution.cause = "FAILED", e.error, e.cause
    return execution


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Do what CloudFormation does with ``DefinitionSubstitutions``: plain ``${Name}`` replacement.

    A placeholder without a value raises :class:`KeyError` naming it.
    """
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values[m.group(1)], text)


def load_definition(path: Path, substitutions: Mapping[str, str]) -> dict[str, Any]:
    """Read an ASL file and apply the substitutions, as the deployed state machine does."""
    definition = json.loads(substitute(path.read_text(encoding="utf-8"), substitutions))
    if not isinstance(definition, dict):
        raise ValueError(f"{path}: a state machine definition must be a JSON object")
    return definition


def lambda_task(handler: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """Make a Python handler fail the way a Lambda Task fails in Step Functions.

    An exception becomes ``Error`` = its class name and ``Cause`` = the JSON Lambda
    reports (``errorMessage``, ``errorType``), which is what Catch, Retry and the Fail
    states see. The result goes through JSON, as it would over the wire.
    """

    def task(payload: dict[str, Any]) -> Any:
        try:
            result = handler(payload)
        except StatesError:
            raise
        except Exception as e:
            name = type(e).__name__
            cause = json.dumps({"errorMessage": str(e), "errorType": name})
            raise TaskFailed(name, cause) from e
        return json.loads(json.dumps(result))

    return task
