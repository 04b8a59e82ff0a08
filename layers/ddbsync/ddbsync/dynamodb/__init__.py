"""Everything DynamoDB: its values, keys, stream records, export files and stream ranges.

* :mod:`~ddbsync.dynamodb.numbers`: the one number parser (DynamoDB's syntax, precision, range).
* :mod:`~ddbsync.dynamodb.decode`: the one decoder, DynamoDB JSON -> JSON-ready values, strict.
* :mod:`~ddbsync.dynamodb.keys`: document ids from key attributes.
* :mod:`~ddbsync.dynamodb.stream`: the Lambda stream record's shape (and boto3 -> Lambda).
* :mod:`~ddbsync.dynamodb.stream_range`: reading a shard range again (replay of on-failure pointers).
* :mod:`~ddbsync.dynamodb.export_format`: export data files, DYNAMODB_JSON and ION, full and incremental.
* :mod:`~ddbsync.dynamodb.export_manifest`: export manifests (the list of data files).

Nothing here talks to OpenSearch or knows about documents' ``_ddbsync`` metadata.
"""

from ddbsync.dynamodb.decode import (
    BigInt,
    ExactDecimal,
    JsonValue,
    base64_bytes,
    decode_item,
    decode_value,
    dumps,
    dumps_bytes,
)
from ddbsync.dynamodb.export_format import IncrementalRecord, iter_export_items, iter_incremental
from ddbsync.dynamodb.export_manifest import DataFile, ManifestSummary, read_files, read_summary
from ddbsync.dynamodb.keys import document_id, key_part
from ddbsync.dynamodb.numbers import canonical_number, number_value, parse_number
from ddbsync.dynamodb.stream import StreamEvent, StreamRecord, to_lambda_record
from ddbsync.dynamodb.stream_range import read_range

__all__ = [
    "BigInt",
    "DataFile",
    "ExactDecimal",
    "IncrementalRecord",
    "JsonValue",
    "ManifestSummary",
    "StreamEvent",
    "StreamRecord",
    "base64_bytes",
    "canonical_number",
    "decode_item",
    "decode_value",
    "document_id",
    "dumps",
    "dumps_bytes",
    "iter_export_items",
    "iter_incremental",
    "key_part",
    "number_value",
    "parse_number",
    "read_files",
    "read_range",
    "read_summary",
    "to_lambda_record",
]
