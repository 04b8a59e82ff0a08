"""``ddbsync backfill --stack NAME``: start the deployed backfill and follow it to its end.

The state machine's ARN is the stack's ``BackfillStateMachineArn`` output. The execution
input is ``{}`` (rebuild from a point-in-time export of the table) unless ``--input``
gives another JSON object (docs/backfill-contract.md says what the state machine reads).
One progress line is printed whenever it changes; the end prints the status and, unless
it SUCCEEDED, the error and cause the execution failed with. Ctrl-C stops following, not
the execution (its ARN is printed so it can be followed in the console or stopped).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import aws_error, cloudformation_client, stack_outputs, stepfunctions_client
from ddbsync.backfill.follow import Outcome, StepFunctions, follow, start
from ddbsync.errors import StackError

__all__ = ["STATE_MACHINE_OUTPUT", "add_stack_arguments", "run_on_stack", "state_machine_of"]

STATE_MACHINE_OUTPUT = "BackfillStateMachineArn"
EXIT_USAGE = 2


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("on the deployed stack (AWS credentials of the account)")
    group.add_argument("--stack", metavar="NAME",
                       help="start the backfill state machine of this deployed stack and follow it "
                            "(the local options above are then ignored)")  # fmt: skip
    group.add_argument("--input", default="{}", metavar="JSON",
                       help="execution input, a JSON object (default: %(default)s, a rebuild from "
                            "a point-in-time export)")  # fmt: skip
    group.add_argument("--region", help="the stack's region (default: the AWS SDK's, AWS_REGION)")
    group.add_argument("--poll-seconds", type=float, default=10.0,
                       help="how often to read the execution's progress (default: %(default)s)")  # fmt: skip


def state_machine_of(cloudformation: Any, stack: str) -> str:
    arn = stack_outputs(cloudformation, stack).get(STATE_MACHINE_OUTPUT)
    if not arn:
        raise StackError(f"stack {stack!r} has no {STATE_MACHINE_OUTPUT} output: is it a ddbsync stack?")
    return arn


def _input(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _say(line: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S}  {line}", flush=True)


def run_on_stack(
    args: argparse.Namespace, *, cloudformation: Any = None, sfn: StepFunctions | None = None
) -> int:
    """0 the execution succeeded, 1 it ended otherwise (cause printed), 2 it could not start."""
    execution_input = _input(args.input)
    if execution_input is None:
        print(f"ddbsync backfill: --input must be a JSON object, got {args.input!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        machine = state_machine_of(cloudformation or cloudformation_client(args.region), args.stack)
        sfn = sfn or stepfunctions_client(args.region)
        execution = start(sfn, machine, execution_input)
    except StackError as e:
        print(f"ddbsync backfill: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (BotoCoreError, ClientError) as e:
        print(f"ddbsync backfill: cannot start the backfill of stack {args.stack!r}: {aws_error(e)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    _say(f"started {execution}")
    try:
        outcome = follow(sfn, execution, report=_say, poll_seconds=args.poll_seconds)
    except KeyboardInterrupt:
        print(f"\nstopped following; the backfill goes on: {execution}", file=sys.stderr)
        return 130
    except (BotoCoreError, ClientError) as e:
        print(f"ddbsync backfill: lost track of {execution}: {aws_error(e)}", file=sys.stderr)
        return 1
    return _report(outcome)


def _report(outcome: Outcome) -> int:
    done = outcome.progress
    summary = f"{len(done.files_done)} files, {done.items_done:,} items"
    if outcome.succeeded:
        _say(f"SUCCEEDED: {summary}; the alias now points at the new index")
        return 0
    print(
        f"backfill {outcome.status} after {summary}: {outcome.error or 'no error'}: "
        f"{outcome.cause or 'no cause given'}",
        file=sys.stderr,
    )
    return 1
