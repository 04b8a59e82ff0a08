"""DynamoDB's export calls, as the backfill and ``ddbsync repair`` both make them.

ExportTableToPointInTime (a full export for the backfill, an incremental one for the
repair) and DescribeExport, with the arguments every export shares and DynamoDB's errors
a user can fix turned into advice. Each flow raises its own error type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import error_code
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.errors import BackfillError, DdbsyncError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["EXPORT_ADVICE", "AwsExports", "Exports", "describe_export", "export_args", "start_export"]

# DynamoDB's own words for the export errors a user can fix, turned into advice.
EXPORT_ADVICE = {
    "PointInTimeRecoveryUnavailableException": "point-in-time recovery is off: turn PITR on for the table",
    "InvalidExportTimeException": "the export time is outside the PITR window",
    "ExportConflictException": "an export with this client token but other settings exists",
    "LimitExceededException": "too many exports are running (DynamoDB allows 300 at once): retry later",
    "TableNotFoundException": "the table does not exist",
}


def export_args(bs: BackfillSettings, client_token: str) -> dict[str, Any]:
    """The ExportTableToPointInTime arguments every export shares (table, bucket, format, KMS)."""
    args: dict[str, Any] = {
        "TableArn": bs.table_arn,
        "S3Bucket": bs.export_bucket,
        "ExportFormat": bs.export_format,
        "ClientToken": client_token,
    }
    if bs.export_prefix:
        args["S3Prefix"] = bs.export_prefix
    if bs.export_kms_key_id:
        args["S3SseAlgorithm"] = "KMS"
        args["S3SseKmsKeyId"] = bs.export_kms_key_id
    return args


def start_export(
    dynamodb: DynamoDBClient,
    args: Mapping[str, Any],
    error: type[DdbsyncError],
    advice: Mapping[str, str] = EXPORT_ADVICE,
) -> dict[str, Any]:
    """Call ExportTableToPointInTime; raise ``error`` with advice for the errors a user can fix."""
    try:
        return dict(dynamodb.export_table_to_point_in_time(**args)["ExportDescription"])
    except ClientError as e:
        code = error_code(e)
        hint = advice.get(code)
        raise error(f"ExportTableToPointInTime failed ({code}): {f'{hint}: ' if hint else ''}{e}") from e
    except BotoCoreError as e:
        raise error(f"ExportTableToPointInTime failed: {e}") from e


def describe_export(dynamodb: DynamoDBClient, export_arn: str, error: type[DdbsyncError]) -> dict[str, Any]:
    """Call DescribeExport; raise ``error`` naming the export when it fails."""
    try:
        return dict(dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"])
    except (BotoCoreError, ClientError) as e:
        raise error(f"DescribeExport failed for {export_arn}: {e}") from e


class Exports(Protocol):
    """Starting and watching a point-in-time export (AWS, or the local stand-in)."""

    def start(self, bs: BackfillSettings, client_token: str) -> dict[str, Any]: ...

    def describe(self, export_arn: str) -> dict[str, Any]: ...


class AwsExports:
    """:class:`Exports` over DynamoDB's ExportTableToPointInTime / DescribeExport."""

    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self.dynamodb = dynamodb

    def start(self, bs: BackfillSettings, client_token: str) -> dict[str, Any]:
        return start_export(self.dynamodb, export_args(bs, client_token), BackfillError)

    def describe(self, export_arn: str) -> dict[str, Any]:
        return describe_export(self.dynamodb, export_arn, BackfillError)
