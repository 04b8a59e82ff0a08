"""A local stand-in for incremental exports, so ``ddbsync repair`` runs against moto.

moto runs ExportTableToPointInTime but ignores ``INCREMENTAL_EXPORT`` and writes no
files. :class:`LocalIncrementalExports` calls it anyway (through
:class:`~ddbsync.repair.exports.AwsIncrementalExports`, so a table without PITR fails as in
AWS), then writes the export AWS would have written with
:func:`~ddbsync_local.exporter.write_incremental_export`: compacted to one record per
item (its last change in the window), in the real file and manifest format.

The window's changes come from the test (``changes``) or, by default, from the table's
moto stream (records whose ``ApproximateCreationDateTime`` falls in the window).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import orjson

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.repair import AwsIncrementalExports, Window
from ddbsync_local.exporter import TableChange, write_incremental_export

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

__all__ = ["LOCAL_FAILURE", "LocalIncrementalExports", "compact", "stream_changes"]

DEFAULT_PREFIX = "exports"
LOCAL_FAILURE = ("S3NoSuchBucket", "local export failure requested (LocalIncrementalExports(fail=True))")


def compact(changes: Iterable[TableChange]) -> list[TableChange]:
    """One change per item, the last one (AWS's incremental exports are compacted)."""
    last: dict[bytes, TableChange] = {}
    for change in sorted(changes, key=lambda c: c.write_time_micros):
        last[orjson.dumps(change.keys, option=orjson.OPT_SORT_KEYS)] = change
    return list(last.values())


def stream_changes(dynamodb: DynamoDBClient, table_name: str) -> Iterator[TableChange]:
    """Every change in the table's (moto) stream, as incremental-export changes."""
    streams = boto3.client("dynamodbstreams", region_name=dynamodb.meta.region_name)
    arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator: str | None = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                ddb: Any = record["dynamodb"]
                created = ddb["ApproximateCreationDateTime"]
                seconds = created.timestamp() if isinstance(created, dt.datetime) else float(created)
                micros = int(seconds * 1_000_000)
                yield TableChange(ddb["Keys"], ddb.get("NewImage"), ddb.get("OldImage"), micros)
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")


@dataclass(slots=True)
class _LocalExport:
    moto_arn: str
    summary_key: str | None
    polls_left: int


class LocalIncrementalExports:
    """:class:`~ddbsync.repair.exports.IncrementalExports` against moto, writing a real-format export.

    ``in_progress_polls`` DescribeExport calls answer IN_PROGRESS before COMPLETED (or
    FAILED with ``fail=True``), so the polling loop runs as in AWS.
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        *,
        changes: Callable[[Window], Sequence[TableChange]] | None = None,
        items_per_file: int = 1000,
        in_progress_polls: int = 1,
        fail: bool = False,
    ) -> None:
        self.dynamodb = dynamodb
        self.s3 = s3
        self.changes = changes
        self.items_per_file = items_per_file
        self.in_progress_polls = in_progress_polls
        self.fail = fail
        self.aws = AwsIncrementalExports(dynamodb)
        self.exports: dict[str, _LocalExport] = {}
        self.started = 0

    def _window_changes(self, bs: BackfillSettings, window: Window) -> list[TableChange]:
        if self.changes is not None:
            picked: Iterable[TableChange] = self.changes(window)
        else:
            picked = stream_changes(self.dynamodb, bs.table_arn.split(":table/", 1)[1])
        lo, hi = window.start * 1_000_000, window.end * 1_000_000
        return compact(c for c in picked if lo <= c.write_time_micros < hi)

    def start(self, bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]:
        """Start the export in moto (PITR must be on), then write the files and manifests."""
        bs = dataclasses.replace(bs, export_prefix=bs.export_prefix or DEFAULT_PREFIX)
        self.started += 1
        description = self.aws.start(bs, window, client_token)
        # moto's ARN reads ".../table/<table ARN>/import/<id>"; AWS's is "<table ARN>/export/<id>".
        export_arn = f"{bs.table_arn}/export/{str(description['ExportArn']).rsplit('/', 1)[-1]}"
        summary_key = None
        if not self.fail:
            summary_key = write_incremental_export(
                self.s3,
                bs.export_bucket,
                bs.export_prefix,
                export_arn,
                bs.table_arn,
                window.start,
                window.end,
                self._window_changes(bs, window),
                bs.export_format,
                self.items_per_file,
            )
        self.exports[export_arn] = _LocalExport(
            str(description["ExportArn"]), summary_key, self.in_progress_polls
        )
        return {
            **description,
            "ExportArn": export_arn,
            "ExportStatus": "IN_PROGRESS",
            "ExportType": "INCREMENTAL_EXPORT",
        }

    def describe(self, export_arn: str) -> dict[str, Any]:
        """moto's description plus what it leaves out: the status and ``ExportManifest``."""
        export = self.exports.get(export_arn)
        if export is None:
            return self.aws.describe(export_arn)
        description = {**self.aws.describe(export.moto_arn), "ExportArn": export_arn}
        if export.polls_left > 0:
            export.polls_left -= 1
            description.update(ExportStatus="IN_PROGRESS")
            description.pop("ExportManifest", None)
        elif export.summary_key is None:
            code, message = LOCAL_FAILURE
            description.update(ExportStatus="FAILED", FailureCode=code, FailureMessage=message)
        else:
            description.update(ExportStatus="COMPLETED", ExportManifest=export.summary_key)
        return description
