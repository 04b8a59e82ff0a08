"""The repair's incremental export of its window: request, start, describe, wait.

``ExportType=INCREMENTAL_EXPORT``, ``ExportViewType=NEW_AND_OLD_IMAGES``; the table needs
PITR. The calls and the advice for errors a user can fix are the backfill's
(:mod:`ddbsync.backfill.exports`), with what differs for a time window.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ddbsync.backfill.exports import EXPORT_ADVICE, describe_export, export_args, start_export
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.errors import RepairError
from ddbsync.repair.window import Window

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["AwsIncrementalExports", "IncrementalExports", "export_request", "wait_for_export"]


class IncrementalExports(Protocol):
    """Starting and watching an incremental export (AWS, or a local stand-in)."""

    def start(self, bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]: ...

    def describe(self, export_arn: str) -> dict[str, Any]: ...


# The backfill's advice, with what differs for a time window.
_REPAIR_ADVICE = {
    **EXPORT_ADVICE,
    "InvalidExportTimeException": "the window must lie inside the PITR window and end in the past",
    "ExportConflictException": "an export with this client token but other settings exists (pass --token)",
    "ValidationException": "DynamoDB refused the request",
}


def export_request(bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]:
    """The ExportTableToPointInTime arguments for an incremental export of ``window``."""
    args = export_args(bs, client_token)
    args["ExportType"] = "INCREMENTAL_EXPORT"
    args["IncrementalExportSpecification"] = {
        "ExportFromTime": dt.datetime.fromtimestamp(window.start, dt.UTC),
        "ExportToTime": dt.datetime.fromtimestamp(window.end, dt.UTC),
        "ExportViewType": "NEW_AND_OLD_IMAGES",
    }
    return args


class AwsIncrementalExports:
    """:class:`IncrementalExports` over DynamoDB's ExportTableToPointInTime / DescribeExport."""

    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self.dynamodb = dynamodb

    def start(self, bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]:
        args = export_request(bs, window, client_token)
        return start_export(self.dynamodb, args, RepairError, _REPAIR_ADVICE)

    def describe(self, export_arn: str) -> dict[str, Any]:
        return describe_export(self.dynamodb, export_arn, RepairError)


def wait_for_export(
    exports: IncrementalExports,
    arn: str,
    *,
    poll_s: float,
    max_wait_s: float,
    sleep: Callable[[float], None],
    out: TextIO,
) -> dict[str, Any]:
    """Poll DescribeExport, printing the status, until COMPLETED; raise RepairError if it fails."""
    started = time.monotonic()
    while True:
        description = exports.describe(arn)
        status = str(description.get("ExportStatus", "UNKNOWN"))
        waited = time.monotonic() - started
        print(f"   export {status} after {waited:.0f} s", file=out, flush=True)
        if status == "COMPLETED":
            return description
        if status == "FAILED":
            code = description.get("FailureCode", "unknown")
            raise RepairError(f"the export failed ({code}): {description.get('FailureMessage', '')}")
        if waited + poll_s > max_wait_s:
            raise RepairError(f"the export is still {status} after {waited:.0f} s; rerun later (same token)")
        sleep(poll_s)
