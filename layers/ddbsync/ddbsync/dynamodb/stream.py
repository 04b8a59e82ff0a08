"""Wire shapes of a Lambda DynamoDB-stream invocation, and the boto3 -> Lambda conversion.

``GetRecords`` through boto3 and the event Lambda hands a function differ:

* boto3 returns ``B``/``BS`` values as ``bytes``; the Lambda event (JSON) carries
  them as base64 text.
* boto3 returns ``ApproximateCreationDateTime`` as a ``datetime``; the Lambda
  event carries epoch seconds as a number. The API documents the value as
  "rounded down to the closest second", so we floor: two changes in one second
  must look alike here exactly as they do in AWS (docs/versioning.md).
* The Lambda event adds ``eventSourceARN`` (the stream ARN) and uses
  ``eventVersion`` "1.1".
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, NotRequired, TypedDict

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.type_defs import RecordTypeDef

__all__ = [
    "DynamoJson",
    "RawRecord",
    "StreamEvent",
    "StreamRecord",
    "StreamRecordData",
    "UserIdentity",
    "to_lambda_record",
]

# A record as a handler receives it, before ddbsync.mapping.map_record has checked it: any
# JSON object. StreamRecord below is the shape AWS documents (and what ddbsync builds).
RawRecord = Mapping[str, object]

# One DynamoDB-JSON attribute value as JSON: {"S": "x"}, {"B": "<base64>"}, {"M": {...}}, ...
DynamoJson = dict[str, object]


class UserIdentity(TypedDict):
    """Present only on changes made by a service (TTL expiry)."""

    type: str
    principalId: str


class StreamRecordData(TypedDict):
    """The ``dynamodb`` part of one stream record."""

    ApproximateCreationDateTime: int
    Keys: dict[str, DynamoJson]
    NewImage: NotRequired[dict[str, DynamoJson]]
    OldImage: NotRequired[dict[str, DynamoJson]]
    SequenceNumber: str
    SizeBytes: int
    StreamViewType: str


class StreamRecord(TypedDict):
    """One record of a Lambda DynamoDB-stream event."""

    eventID: str
    eventName: str
    eventVersion: str
    eventSource: str
    awsRegion: str
    dynamodb: StreamRecordData
    eventSourceARN: str
    userIdentity: NotRequired[UserIdentity]


class StreamEvent(TypedDict):
    """The event Lambda passes to a function subscribed to a DynamoDB stream."""

    Records: list[StreamRecord]


def _json_value(value: Mapping[str, object]) -> DynamoJson:
    """One attribute value with bytes turned into base64 text (recursively)."""
    out: DynamoJson = {}
    for tag, inner in value.items():
        if tag == "B" and isinstance(inner, bytes | bytearray):
            out[tag] = base64.b64encode(bytes(inner)).decode("ascii")
        elif tag == "BS" and isinstance(inner, list):
            out[tag] = [
                base64.b64encode(bytes(b)).decode("ascii")
                if isinstance(b, bytes | bytearray)
                else b
                for b in inner
            ]
        elif tag == "M" and isinstance(inner, Mapping):
            out[tag] = {k: _json_value(v) if isinstance(v, Mapping) else v for k, v in inner.items()}
        elif tag == "L" and isinstance(inner, list):
            out[tag] = [_json_value(v) if isinstance(v, Mapping) else v for v in inner]
        else:
            out[tag] = inner
    return out


def _json_image(image: Mapping[str, Mapping[str, object]]) -> dict[str, DynamoJson]:
    return {name: _json_value(value) for name, value in image.items()}


def _epoch_seconds(value: object, fallback: float) -> int:
    if isinstance(value, datetime):
        return math.floor(value.timestamp())
    if isinstance(value, int | float):
        return math.floor(value)
    return math.floor(fallback)


def to_lambda_record(record: RecordTypeDef, stream_arn: str, read_at: float) -> StreamRecord:
    """Turn one boto3 ``GetRecords`` record into the record Lambda would deliver.

    ``read_at`` (epoch seconds) is used for ``ApproximateCreationDateTime`` only when
    the source lacks it (moto 5.2 does set it, with millisecond precision).
    """
    data = record.get("dynamodb", {})
    body: StreamRecordData = {
        "ApproximateCreationDateTime": _epoch_seconds(
            data.get("ApproximateCreationDateTime"), read_at
        ),
        "Keys": _json_image(data.get("Keys", {})),
        "SequenceNumber": data.get("SequenceNumber", ""),
        "SizeBytes": data.get("SizeBytes", 0),
        "StreamViewType": data.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
    }
    if "NewImage" in data:
        body["NewImage"] = _json_image(data["NewImage"])
    if "OldImage" in data:
        body["OldImage"] = _json_image(data["OldImage"])
    region = record.get("awsRegion") or stream_arn.split(":")[3]
    out: StreamRecord = {
        "eventID": record.get("eventID", ""),
        "eventName": record.get("eventName", ""),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    identity = record.get("userIdentity")
    if identity is not None:
        out["userIdentity"] = {
            "type": identity.get("Type", ""),
            "principalId": identity.get("PrincipalId", ""),
        }
    return out
