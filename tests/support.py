"""Test helpers: build Lambda DynamoDB-stream records and events programmatically.

Sample events live in events/ (see load_event); these builders are for generated
histories (property tests) where a file cannot list every case.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# template.yaml as data: the one loader lives in ddbsync_local (the local Firehose reads the
# template too); re-exported here for the tests and the cold-start bench.
from ddbsync_local.cfn import CfnLoader as CfnLoader
from ddbsync_local.cfn import load_template as load_template

OPENSEARCH_URL = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200").rstrip("/")
EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


def load_event(name: str) -> dict[str, Any]:
    """An event file from events/ (the same files `sam local invoke -e` uses)."""
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return loaded


def ddb_json(value: Any) -> dict[str, Any]:
    """Python value -> DynamoDB JSON (enough for tests: str, int, float, bool, None, dict, list)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: ddb_json(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [ddb_json(v) for v in value]}
    raise TypeError(type(value))


@dataclass
class RecordFactory:
    """Makes stream records with increasing 21-digit sequence numbers."""

    pk: str = "pk"
    sk: str | None = "sk"
    start_seq: int = 100000000000000000000
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_seq(self) -> str:
        return str(self.start_seq + next(self.counter) * 7)

    def keys(self, pk: Any, sk: Any = None) -> dict[str, Any]:
        keys = {self.pk: ddb_json(pk)}
        if self.sk is not None:
            keys[self.sk] = ddb_json(sk if sk is not None else "s")
        return keys

    def record(
        self,
        event_name: str,
        pk: Any,
        sk: Any = None,
        image: dict[str, Any] | None = None,
        *,
        created: int | None = None,
        seq: str | None = None,
        ttl: bool = False,
        raw_image: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        keys = self.keys(pk, sk)
        ddb: dict[str, Any] = {
            "ApproximateCreationDateTime": created if created is not None else int(time.time()),
            "Keys": keys,
            "SequenceNumber": seq or self.next_seq(),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if event_name != "REMOVE":
            new = dict(keys)
            if raw_image is not None:
                new.update(raw_image)
            else:
                new.update({k: ddb_json(v) for k, v in (image or {}).items()})
            ddb["NewImage"] = new
        rec: dict[str, Any] = {
            "eventID": ddb["SequenceNumber"][-8:],
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": ddb,
            "eventSourceARN": STREAM_ARN,
        }
        if ttl:
            rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        return rec


def order_item(i: int, version: int = 0, *, customers: int = 37, digits: int = 5) -> dict[str, Any]:
    """A DynamoDB item (pk customer, sk order) with S, N, SS, BOOL and, every 4th, an M value."""
    item: dict[str, Any] = {
        "pk": {"S": f"customer-{i % customers}"},
        "sk": {"S": f"order-{i:0{digits}d}"},
        "n": {"N": str(i * 10 + version)},
        "name": {"S": f"order {i} v{version}"},
        "tags": {"SS": ["new", f"t{i % 5}"]},
        "paid": {"BOOL": i % 2 == 0},
    }
    if i % 4 == 0:
        item["address"] = {"M": {"city": {"S": "Lyon"}, "zip": {"N": str(69000 + i % 10)}}}
    return item


def event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def archive_object(records: list[dict[str, Any]], lines: list[bytes] | None = None) -> bytes:
    """An archive object as the delivery stream writes it: gzip of archive lines, each + "\\n".

    ``lines`` (raw bytes, newline added) are appended after the records: broken lines for tests.
    """
    import gzip

    from ddbsync.archive.lines import archive_line

    raw = [archive_line(r) for r in records] + list(lines or [])
    return gzip.compress(b"".join(line + b"\n" for line in raw), compresslevel=1)


def partition_of(created: int, table: str = "t") -> str:
    """The archive partition (``table=/dt=/hour=/``) of a record made in second ``created``."""
    moment = time.gmtime(created)
    return f"table={table}/dt={time.strftime('%Y-%m-%d', moment)}/hour={moment.tm_hour:02d}/"


@dataclass
class FakeContext:
    """A Lambda context whose remaining time is fixed or counts down from a deadline."""

    remaining_ms: int = 60_000
    function_name: str = "stream-indexer-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:stream-indexer-test"
    aws_request_id: str = "test-request"
    deadline: float | None = None

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is not None:
            return max(0, int((self.deadline - time.monotonic()) * 1000))
        return self.remaining_ms


def base_env(alias: str, dlq_url: str, **extra: str) -> dict[str, str]:
    env = {
        "OPENSEARCH_ENDPOINT": OPENSEARCH_URL,
        "OPENSEARCH_SERVICE": "none",
        "INDEX_ALIAS": alias,
        "PARTITION_KEY": "pk",
        "SORT_KEY": "sk",
        "RECORD_DLQ_URL": dlq_url,
        "AWS_REGION": "eu-west-1",
        "RETRY_BASE_MS": "10",
        "RETRY_MAX_MS": "200",
        "TIMEOUT_MARGIN_MS": "1000",
    }
    env.update(extra)
    return env

