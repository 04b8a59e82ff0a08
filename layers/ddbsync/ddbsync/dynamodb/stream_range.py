"""Read a range of one DynamoDB stream shard again, in the shape Lambda delivers.

Used by ``ddbsync replay`` for Lambda's on-failure batch pointers (shard id, first
and last sequence number). The stream keeps records for 24 hours; a range that is
gone, or cannot be read to its end, raises :class:`RangeUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from ddbsync.dynamodb.stream import StreamRecord, to_lambda_record
from ddbsync.errors import RangeUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

__all__ = ["RangeUnavailable", "read_range"]

# GetRecords may answer empty pages on an open shard; give up after this many in a row.
_MAX_EMPTY_PAGES = 10


def read_range(
    streams: DynamoDBStreamsClient, stream_arn: str, shard_id: str, start: str, end: str
) -> list[StreamRecord]:
    """The records ``start..end`` (inclusive) of one shard, in the shape Lambda delivers.

    Raises :class:`RangeUnavailable` when the stream no longer has the shard or the range's
    first record (trimmed after 24 hours), or when the range cannot be read to its end.
    """
    first, last = int(start), int(end)
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=start,
        ).get("ShardIterator")  # fmt: skip
        out: list[StreamRecord] = []
        empty_pages = 0
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            raw = page.get("Records", [])
            read_at = time.time()
            for record in raw:
                seq = int(record.get("dynamodb", {}).get("SequenceNumber", "0"))
                if seq > last:
                    return _checked(out, first, last)
                out.append(to_lambda_record(record, stream_arn, read_at))
                if seq == last:
                    return _checked(out, first, last)
            empty_pages = 0 if raw else empty_pages + 1
            if empty_pages >= _MAX_EMPTY_PAGES:
                break
            iterator = page.get("NextShardIterator")
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            raise RangeUnavailable(f"{code} on shard {shard_id}") from e
        raise
    return _checked(out, first, last)


def _checked(records: list[StreamRecord], first: int, last: int) -> list[StreamRecord]:
    seqs = [int(str(cast(Mapping[str, object], r["dynamodb"])["SequenceNumber"])) for r in records]
    if not seqs or seqs[0] != first:
        raise RangeUnavailable(f"its first record {first} is gone")
    if seqs[-1] != last:
        raise RangeUnavailable(f"it ends at {seqs[-1]}, before {last}")
    return records
