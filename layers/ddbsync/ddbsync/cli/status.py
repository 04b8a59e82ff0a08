"""``ddbsync status``: its options, the targets and clients, and the call into :mod:`ddbsync.status`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO, cast

from ddbsync.aws import client_config, stack_outputs
from ddbsync.config import Settings
from ddbsync.errors import ConfigError, StackError
from ddbsync.status import Clients, Targets, Thresholds, Unknown, as_json, as_text, gather, judge
from ddbsync.status.judge import DRIFT_RATIO
from ddbsync.status.sources import MetricReader

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient
    from opensearchpy import OpenSearch

    from ddbsync.status.targets import StackReader

__all__ = ["EXIT_HEALTHY", "EXIT_PROBLEMS", "EXIT_USAGE", "add_arguments", "build_clients", "main"]

EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

# flag -> Targets field (the flags that name one thing each).
_FLAGS: dict[str, tuple[str, str]] = {
    "--table": ("table", "DynamoDB table name"),
    "--alias": ("alias", "the live index alias (IndexAlias)"),
    "--endpoint": ("endpoint", "OpenSearch endpoint URL (default: $OPENSEARCH_ENDPOINT)"),
    "--indexer-function": ("indexer_function", "stream indexer function name"),
    "--archiver-function": ("archiver_function", "archiver function name"),
    "--record-dlq": ("record_dlq", "record DLQ URL"),
    "--on-failure-queue": ("on_failure_queue", "the indexer's on-failure queue URL"),
    "--archive-on-failure-queue": ("archive_on_failure_queue", "the archiver's on-failure queue URL"),
    "--state-machine": ("state_machine", "backfill state machine ARN"),
    "--archive-bucket": ("archive_bucket", "archive bucket name"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync status``."""
    parser.epilog = (
        "With --stack every name comes from the stack's outputs; a flag beside it wins. "
        "Exit codes: 0 healthy, 1 problems found (each printed with the command that fixes it; "
        "a source that cannot be read counts as a problem), 2 bad arguments or no such stack. "
        "See docs/runbook.md, 'ddbsync status'."
    )
    parser.add_argument("--stack", metavar="NAME", help="CloudFormation stack of ddbsync")
    parser.add_argument("--region", help="AWS region (default: $AWS_REGION)")
    for flag, (dest, text) in _FLAGS.items():
        parser.add_argument(flag, dest=dest, metavar="NAME" if "name" in text else "VALUE", help=text)
    parser.add_argument("--service", choices=("es", "aoss", "none"),
                        help="SigV4 service of the endpoint (default: the stack's, $OPENSEARCH_SERVICE, "
                             "else none for http:// and es for https://)")  # fmt: skip
    parser.add_argument("--drift-tolerance", type=float, default=DRIFT_RATIO, metavar="RATIO",
                        help="allowed share of documents vs ItemCount (default: %(default)s)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the screen")


def _targets(args: argparse.Namespace, env: Mapping[str, str], cloudformation: StackReader | None) -> Targets:
    """Flags over stack outputs over the environment (endpoint, service, alias only)."""
    flags = Targets(**{dest: getattr(args, dest, None) or None for dest, _ in _FLAGS.values()},
                    service=args.service)  # fmt: skip
    base = Targets(
        endpoint=env.get("OPENSEARCH_ENDPOINT") or None,
        service=env.get("OPENSEARCH_SERVICE") or None,
        alias=env.get("INDEX_ALIAS") or None,
    )
    if args.stack:
        assert cloudformation is not None
        base = base.merged(Targets.from_outputs(args.stack, stack_outputs(cloudformation, args.stack)))
    return base.merged(flags)


def _opensearch(targets: Targets, region: str | None) -> OpenSearch | Unknown | None:
    from ddbsync.opensearch.client import build_client

    if not targets.endpoint:
        return None
    service = targets.service or ("none" if targets.endpoint.startswith("http://") else "es")
    # build_client reads only the endpoint, the service and the region of a Settings.
    settings = Settings(endpoint=targets.endpoint.rstrip("/"), service=service, region=region,
                        index_alias=targets.alias or "", partition_key="", sort_key=None,
                        record_dlq_url="")  # fmt: skip
    try:
        return build_client(settings, timeout_s=10.0)
    except ConfigError as e:
        return Unknown("; ".join(e.problems))


def build_clients(targets: Targets, region: str | None) -> Clients:
    """boto3 clients (bounded retries and timeouts) and the OpenSearch client."""
    import boto3

    def client(name: str) -> object:
        return boto3.client(name, region_name=region, config=client_config())  # type: ignore[call-overload]

    return Clients(
        lambda_=cast("LambdaClient", client("lambda")),
        cloudwatch=cast(MetricReader, client("cloudwatch")),
        sqs=cast("SQSClient", client("sqs")),
        dynamodb=cast("DynamoDBClient", client("dynamodb")),
        s3=cast("S3Client", client("s3")),
        sfn=cast("SFNClient", client("stepfunctions")),
        opensearch=_opensearch(targets, region),
    )


def main(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    clients: Clients | None = None,
    cloudformation: StackReader | None = None,
    now: float | None = None,
    out: TextIO | None = None,
) -> int:
    """Entry point for the CLI. Tests pass ``clients`` and ``cloudformation`` (moto or stand-ins)."""
    out = out or sys.stdout
    env = os.environ if env is None else env
    region = args.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    if not region:
        print("ERROR: no AWS region: pass --region or set AWS_REGION", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.drift_tolerance < 1:
        print("ERROR: --drift-tolerance must be a share between 0 and 1, e.g. 0.05", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.stack and cloudformation is None:
            import boto3

            cloudformation = boto3.client("cloudformation", region_name=region, config=client_config())
        targets = _targets(args, env, cloudformation)
    except StackError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return EXIT_USAGE
    if targets == Targets(service=targets.service):
        print("ERROR: nothing to check: pass --stack NAME, or --table/--alias/--record-dlq/... "
              "(ddbsync status --help)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    clients = clients or build_clients(targets, region)
    facts = gather(targets, clients, time.time() if now is None else now)
    findings = judge(facts, targets, Thresholds(drift_ratio=args.drift_tolerance))
    print(as_json(facts, targets, findings) if args.json else as_text(facts, targets, findings), file=out)
    return EXIT_PROBLEMS if any(f.severity == "problem" for f in findings) else EXIT_HEALTHY
