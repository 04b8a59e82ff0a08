"""``ddbsync doctor``: its options and the printing of :func:`ddbsync.doctor.run_checkup`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO
from urllib.parse import urlparse

from ddbsync.doctor import FEATURES, Checkup, run_checkup, scratch_index_name
from ddbsync.doctor.features import feature
from ddbsync.errors import ConfigError, TransportError

__all__ = ["EXIT_MISSING", "EXIT_OK", "EXIT_USAGE", "add_arguments", "main", "service_of"]

EXIT_OK, EXIT_MISSING, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync doctor``."""
    parser.epilog = (
        "Probes, in a scratch index ddbsync-doctor-<random> that is always deleted: "
        + ", ".join(f.name for f in FEATURES)
        + ". Each is reported as works, refused (the server answered an error), absent (no such "
        "endpoint, or the request was accepted and the feature ignored) or untested (a probe it "
        "needs failed). Exit codes: 0 every feature works, 1 something is missing (the mode "
        "says what ddbsync can still run), 2 bad arguments. See docs/deploy.md, 'Check the target first'."
    )
    parser.add_argument(
        "--endpoint", required=True, metavar="URL", help="the OpenSearch endpoint (http or https)"
    )
    parser.add_argument(
        "--service",
        choices=("es", "aoss", "none"),
        default=None,
        help="how to sign: es (managed domain), aoss (Serverless) or none (default: from the "
        "host name: *.aoss.amazonaws.com is aoss, *.es.amazonaws.com es, anything else none)",
    )
    parser.add_argument("--region", default=None, help="AWS region to sign for (default: AWS_REGION)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=30.0,
        help="how long to wait for written documents to become searchable (default: %(default)s)",
    )


def service_of(endpoint: str) -> str:
    """The signing service a host name implies (Serverless, managed domain, or neither)."""
    host = (urlparse(endpoint).hostname or "").lower()
    if host.endswith(".aoss.amazonaws.com"):
        return "aoss"
    if host.endswith(".es.amazonaws.com"):
        return "es"
    return "none"


def _target(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """(endpoint, service, region), or ConfigError naming every problem."""
    endpoint = str(args.endpoint).strip().rstrip("/")
    parsed = urlparse(endpoint)
    problems = []
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(
            f"--endpoint must be an http(s) URL such as https://search-x.eu-west-1.es.amazonaws.com, "
            f"got {args.endpoint!r}"
        )
    service = args.service or service_of(endpoint)
    region = args.region or os.environ.get("AWS_REGION", "").strip() or None
    if service != "none" and region is None:
        problems.append(f"--region (or AWS_REGION) is required to sign requests for {service}")
    if service != "none" and parsed.scheme == "http":
        problems.append("--endpoint must use https with SigV4 signing")
    if args.wait_seconds < 0:
        problems.append(f"--wait-seconds must not be negative, got {args.wait_seconds}")
    if problems:
        raise ConfigError(problems)
    return endpoint, service, region


def to_json(checkup: Checkup) -> dict[str, object]:
    """The report as data (``--json``)."""
    return {
        "endpoint": checkup.endpoint,
        "index": checkup.index,
        "features": [
            {
                "name": f.name,
                "status": f.status,
                "http_status": f.http_status,
                "reason": f.reason,
                "used_by": feature(f.name).used_by,
                "without": feature(f.name).without,
            }
            for f in checkup.findings
        ],
        "mode": checkup.mode.name,
        "summary": checkup.mode.summary,
        "missing": list(checkup.mode.missing),
        "scratch_index_deleted": checkup.cleanup_error is None,
        "cleanup_error": checkup.cleanup_error,
    }


def render(checkup: Checkup, out: TextIO) -> None:
    """The report for a person: one line per feature, then what is missing and the mode."""
    print(f"ddbsync doctor: {checkup.endpoint} (scratch index {checkup.index})", file=out)
    width = max(len(f.name) for f in checkup.findings)
    for f in checkup.findings:
        detail = "" if f.works else f" ({f'HTTP {f.http_status}: ' if f.http_status else ''}{f.reason})"
        print(f"  {f.name:<{width}}  {f.status}{detail}", file=out)
    for name in checkup.mode.missing:
        print(f"  without {name}: {feature(name).without} [used by {feature(name).used_by}]", file=out)
    print(f"mode: {checkup.mode.summary}", file=out)
    if checkup.cleanup_error:
        print(f"WARNING: {checkup.cleanup_error}", file=out)


def main(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Entry point for the CLI; tests pass ``out``."""
    from ddbsync.opensearch.client import client_for

    out = out or sys.stdout
    try:
        endpoint, service, region = _target(args)
        client = client_for(endpoint, service, region, timeout_s=30.0)
    except ConfigError as e:
        print("ERROR: " + "\n       ".join(e.problems), file=sys.stderr)
        return EXIT_USAGE
    index = scratch_index_name()
    try:
        checkup = run_checkup(client, endpoint, index=index, wait_s=args.wait_seconds)
    except TransportError as e:
        print(f"ERROR: {e} (if {index} was created, delete it)", file=sys.stderr)
        return EXIT_MISSING
    if args.json:
        print(json.dumps(to_json(checkup), indent=2), file=out)
    else:
        render(checkup, out)
    return EXIT_OK if checkup.mode.ok and checkup.cleanup_error is None else EXIT_MISSING
