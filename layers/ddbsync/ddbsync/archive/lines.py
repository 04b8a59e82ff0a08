"""One archive line per stream record: the record as the Lambda event carries it, plus its table.

The line is the record unchanged (every field present, the ``dynamodb`` object as it is,
nothing added for a missing field) with one more field, ``tableName``, read from the
record's ``eventSourceARN`` (``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``).
It is compact UTF-8 JSON (orjson) without a newline: the delivery stream's
``AppendDelimiterToRecord`` processor adds one. Since the rest of the line is the record,
``mapping.map_record`` reads a line back as it reads the record (the rebuild does that).

A record that cannot be a line (not an object, no stream ARN, a value JSON cannot hold)
is a :class:`~ddbsync.errors.RecordError`: it goes to the record DLQ whole, like poison.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import orjson

from ddbsync.errors import RecordError
from ddbsync.mapping import sequence_number_of

__all__ = ["MAX_RECORD_BYTES", "TABLE_FIELD", "archive_line", "table_name_of"]

# Firehose's limit for one record's data, before base64: 1,000 KiB (Firehose quotas).
MAX_RECORD_BYTES = 1_024_000
TABLE_FIELD = "tableName"

# A table name: letters, digits, "_", "-", "." (DynamoDB allows 3-255 of them; not checked here).
_STREAM_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/([A-Za-z0-9_.-]+)/stream/.+")


def table_name_of(arn: object) -> str:
    """The table name in a DynamoDB stream ARN; RecordError if it is not one."""
    match = _STREAM_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is None:
        raise RecordError(f"eventSourceARN is not a DynamoDB stream ARN (got {type(arn).__name__})")
    return match.group(1)


def archive_line(record: object) -> bytes:
    """The record's archive line (no trailing newline); RecordError if it cannot be one."""
    seq = sequence_number_of(record) or None
    if not isinstance(record, Mapping):
        raise RecordError(f"record must be an object, got {type(record).__name__}", seq)
    table = table_name_of(record.get("eventSourceARN"))
    try:
        return orjson.dumps({**record, TABLE_FIELD: table})
    except orjson.JSONEncodeError as e:  # an integer over 64 bits, a lone surrogate...
        raise RecordError(f"record cannot be written as JSON: {e}", seq) from e
