"""Run ddbsync's flows on one machine: a Lambda context, a stream event source mapping, the demo.

Nothing here is used inside Lambda; it stands in for what AWS provides around a
function (README, "Development").
"""

from __future__ import annotations

from ddbsync.dynamodb.stream import StreamEvent, StreamRecord, to_lambda_record
from ddbsync_local.context import LocalContext
from ddbsync_local.esm import (
    BatchInfo,
    EsmConfig,
    EsmStats,
    EventSourceMapping,
    Handler,
    OnFailure,
    OnFailureRecord,
    sqs_on_failure,
)

__all__ = [
    "BatchInfo",
    "EsmConfig",
    "EsmStats",
    "EventSourceMapping",
    "Handler",
    "LocalContext",
    "OnFailure",
    "OnFailureRecord",
    "StreamEvent",
    "StreamRecord",
    "sqs_on_failure",
    "to_lambda_record",
]
