"""The local Step Functions runner's Distributed Map (``ProcessorConfig.Mode: DISTRIBUTED``).

:mod:`ddbsync_local.stepfunctions` calls :func:`run_distributed_map` for a Map state in
distributed mode. What it models, after "Distributed Map state", "ItemReader (Map)",
"ItemBatcher (Map)" and "ResultWriter (Map)" in the AWS Step Functions developer guide:

* ``ItemReader`` with ``arn:aws:states:::s3:getObject`` (``ReaderConfig.InputType`` ``JSONL``:
  one item per non-empty line; ``JSON``: the array in the object) and
  ``arn:aws:states:::s3:listObjectsV2`` (every object under ``Prefix``, paginated, each item
  ``{"Etag", "Key", "LastModified" (epoch seconds), "Size", "StorageClass"}``), with
  ``Parameters`` (``.$`` paths and intrinsics) and ``ReaderConfig.MaxItems``; an S3 error is
  ``States.ItemReaderFailed``. Without an ItemReader, the items are at ``ItemsPath``.
* ``ItemSelector`` per item (``$`` is the Map's input, ``$$.Map.Item.Index``/``Value`` the item);
* ``ItemBatcher`` with ``MaxItemsPerBatch`` and ``BatchInput`` (``.$`` paths on the Map's
  input): a child's input is then ``{"Items": [...], "BatchInput": {...}}``;
* ``MaxConcurrency``: children run on a thread pool of that size (0, or none given, means 40
  here, not AWS's 10,000);
* ``ToleratedFailurePercentage`` / ``ToleratedFailureCount`` (default 0): once the failed
  children exceed either, no further child starts (the ones not started are ``PENDING``),
  the running ones finish, and the Map fails with ``States.ExceedToleratedFailureThreshold``;
* ``ResultWriter`` with ``arn:aws:states:::s3:putObject`` and ``Parameters`` ``Bucket`` /
  ``Prefix``: ``<Prefix>/<map run id>/manifest.json`` (``DestinationBucket``, ``MapRunArn``,
  ``ResultFiles`` by status: ``[{"Key", "Size"}]``) and ``SUCCEEDED_0.json``, ``FAILED_0.json``,
  ``PENDING_0.json`` (JSON arrays of child executions: ``ExecutionArn``, ``Name``, ``Input``
  as a JSON string, ``Output`` or ``Error``/``Cause``, ``Status``, dates), written whether
  the Map succeeds or fails; an S3 error is ``States.ResultWriterFailed``;
* the Map's output: ``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`` with a
  ResultWriter, else the array of child outputs.

What it does not model: execution history and its 25,000-event limit, the 256 KiB
payload limit (inputs, outputs, batches: ``MaxInputBytesPerBatch`` raises
NotImplementedError), the real naming of child executions and Map run ids (uuid4 here),
``Label``, redrive, Express children (every child runs to completion in-process whatever
``ExecutionType`` says), aborting children already running when the threshold is
exceeded, CSV / manifest / inventory readers, ``WriterConfig`` transformations, result
files split at AWS's size limits, and the exact text of ``Cause`` for the Map's own errors.
S3 is whatever boto3 client the caller gives (moto in tests and local runs).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync_local.stepfunctions import StatesError, _get, _template

__all__ = ["DEFAULT_CONCURRENCY", "ChildResult", "run_distributed_map"]

DEFAULT_CONCURRENCY = 40
MAP_RUN_ARN = "arn:aws:states:us-east-1:123456789012:mapRun:ddbsync-local-backfill/{label}:{run_id}"
STATES = ("FAILED", "PENDING", "SUCCEEDED")
LIST_OBJECTS = "arn:aws:states:::s3:listObjectsV2"
GET_OBJECT = "arn:aws:states:::s3:getObject"

Child = Callable[[Any, dict[str, Any]], Any]


@dataclass(slots=True)
class ChildResult:
    """One child execution's outcome, as the ResultWriter files record it."""

    name: str
    input: Any
    status: str = "PENDING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    start: str | None = None
    stop: str | None = None

    def record(self, map_run_arn: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ExecutionArn": map_run_arn.replace(":mapRun:", ":execution:") + f":{self.name}",
            "Name": self.name,
            "Input": json.dumps(self.input, separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Status": self.status,
        }
        if self.start:
            entry["StartDate"], entry["StopDate"] = self.start, self.stop
        if self.status == "SUCCEEDED":
            entry["Output"] = json.dumps(self.output, separators=(",", ":"))
            entry["OutputDetails"] = {"Included": True}
        elif self.status == "FAILED":
            entry["Error"], entry["Cause"] = self.error, self.cause
        return entry


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _s3_call(s3: Any, error: str, what: str, call: Callable[[], Any]) -> Any:
    if s3 is None:
        raise NotImplementedError(f"a distributed Map {what} needs an S3 client: run(..., s3=client)")
    try:
        return call()
    except (ClientError, BotoCoreError) as e:
        raise StatesError(error, f"{what}: {e}") from e


def _listed(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield {
                "Etag": obj["ETag"],
                "Key": obj["Key"],
                "LastModified": int(obj["LastModified"].timestamp()),
                "Size": obj["Size"],
                "StorageClass": obj.get("StorageClass", "STANDARD"),
            }


def _read_object(s3: Any, params: dict[str, Any], input_type: str) -> list[Any]:
    body = s3.get_object(Bucket=params["Bucket"], Key=params["Key"])["Body"].read()
    if input_type == "JSONL":
        return [json.loads(line) for line in body.splitlines() if line.strip()]
    if input_type == "JSON":
        items = json.loads(body)
        if not isinstance(items, list):
            where = f"s3://{params['Bucket']}/{params['Key']}"
            raise StatesError("States.ItemReaderFailed", f"{where}: not a JSON array")
        return items
    raise NotImplementedError(f"ItemReader InputType {input_type!r}")


def _items(state: dict[str, Any], data: Any, context: dict[str, Any], s3: Any) -> list[Any]:
    reader = state.get("ItemReader")
    if reader is None:
        found = _get(state.get("ItemsPath", "$"), data, context)
        if not isinstance(found, list):
            raise StatesError("States.Runtime", "the Map's items are not an array")
        return found
    params = _template(reader.get("Parameters", {}), data, context)
    config = reader.get("ReaderConfig", {})
    resource = reader["Resource"]
    if resource not in (LIST_OBJECTS, GET_OBJECT):
        raise NotImplementedError(f"ItemReader {resource}")

    def read() -> list[Any]:
        if resource == LIST_OBJECTS:
            return list(_listed(s3, params["Bucket"], params.get("Prefix", "")))
        return _read_object(s3, params, config.get("InputType", "JSON"))

    items: list[Any] = _s3_call(s3, "States.ItemReaderFailed", "ItemReader", read)
    return items[: config["MaxItems"]] if "MaxItems" in config else items


def _inputs(state: dict[str, Any], data: Any, context: dict[str, Any], items: list[Any]) -> list[Any]:
    """Each child's input: the selected items, one by one or in batches."""
    selected = [
        _template(state["ItemSelector"], data, {**context, "Map": {"Item": {"Index": i, "Value": v}}})
        if "ItemSelector" in state
        else v
        for i, v in enumerate(items)
    ]
    batcher = state.get("ItemBatcher")
    if batcher is None:
        return selected
    unknown = set(batcher) - {"MaxItemsPerBatch", "BatchInput"}
    if unknown:
        raise NotImplementedError(f"ItemBatcher {sorted(unknown)}")
    size = int(batcher.get("MaxItemsPerBatch") or len(selected) or 1)
    batch_input = _template(batcher["BatchInput"], data, context) if "BatchInput" in batcher else None
    batches = []
    for start in range(0, len(selected), size):
        batch: dict[str, Any] = {"Items": selected[start : start + size]}
        if batch_input is not None:
            batch["BatchInput"] = batch_input
        batches.append(batch)
    return batches


class _Tolerance:
    """Counts failures; ``exceeded`` once they pass the Map's count or percentage."""

    def __init__(self, state: dict[str, Any], total: int) -> None:
        # Neither given: none tolerated. One given: that one alone decides.
        self.percentage = state.get("ToleratedFailurePercentage")
        self.count = state.get("ToleratedFailureCount", 0 if self.percentage is None else None)
        self.total = total
        self.failed = 0
        self.lock = threading.Lock()
        self.exceeded = threading.Event()

    def fail(self) -> None:
        with self.lock:
            self.failed += 1
            over_count = self.count is not None and self.failed > self.count
            over_share = self.percentage is not None and self.failed * 100 > self.percentage * self.total
            if over_count or over_share:
                self.exceeded.set()


def _run_children(state: dict[str, Any], inputs: list[Any], child: Child, run_id: str) -> list[ChildResult]:
    results = [ChildResult(f"{run_id[:8]}-{i}", value) for i, value in enumerate(inputs)]
    tolerance = _Tolerance(state, len(inputs))

    def one(result: ChildResult) -> None:
        if tolerance.exceeded.is_set():
            return  # never started: PENDING
        result.start = _now()
        context = {"Execution": {"Name": result.name, "Input": result.input}}
        try:
            result.output = child(result.input, context)
            result.status = "SUCCEEDED"
        except StatesError as e:
            result.status, result.error, result.cause = "FAILED", e.error, e.cause
            tolerance.fail()
        result.stop = _now()

    workers = int(state.get("MaxConcurrency") or DEFAULT_CONCURRENCY)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(inputs) or 1))) as pool:
        for future in [pool.submit(one, r) for r in results]:
            future.result()  # re-raise what is not a StatesError (a bug, or NotImplementedError)
    if tolerance.exceeded.is_set():
        raise _Exceeded(results)
    return results


class _Exceeded(Exception):
    def __init__(self, results: list[ChildResult]) -> None:
        super().__init__("tolerated failure threshold exceeded")
        self.results = results


def _write_results(
    s3: Any, state: dict[str, Any], data: Any, context: dict[str, Any], arn: str, run_id: str,
    results: list[ChildResult],
) -> dict[str, Any]:  # fmt: skip
    writer = state["ResultWriter"]
    if writer.get("Resource") != "arn:aws:states:::s3:putObject" or "WriterConfig" in writer:
        raise NotImplementedError(f"ResultWriter {json.dumps(writer)[:200]}")
    params = _template(writer["Parameters"], data, context)
    bucket, prefix = params["Bucket"], str(params.get("Prefix", ""))
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = f"{prefix}{run_id}/"
    manifest: dict[str, Any] = {"DestinationBucket": bucket, "MapRunArn": arn, "ResultFiles": {}}

    def put(key: str, body: bytes) -> None:
        _s3_call(s3, "States.ResultWriterFailed", "ResultWriter",
                 lambda: s3.put_object(Bucket=bucket, Key=key, Body=body))  # fmt: skip

    for status in STATES:
        records = [r.record(arn) for r in results if r.status == status]
        manifest["ResultFiles"][status] = []
        if records:
            body = json.dumps(records).encode()
            put(f"{base}{status}_0.json", body)
            manifest["ResultFiles"][status].append({"Key": f"{base}{status}_0.json", "Size": len(body)})
    put(f"{base}manifest.json", json.dumps(manifest).encode())
    return {"MapRunArn": arn, "ResultWriterDetails": {"Bucket": bucket, "Key": f"{base}manifest.json"}}


def run_distributed_map(
    state: dict[str, Any], data: Any, context: dict[str, Any], child: Child, s3: Any
) -> Any:
    """Run a distributed Map state on ``data``; ``child(input, context)`` runs one child execution."""
    for name in ("ItemsPointer", "MaxInputBytesPerBatch", "Label"):
        if name in state or name in state.get("ItemBatcher", {}):
            raise NotImplementedError(f"distributed Map {name}")
    inputs = _inputs(state, data, context, _items(state, data, context, s3))
    run_id = str(uuid.uuid4())
    arn = MAP_RUN_ARN.format(label="Map", run_id=run_id)
    try:
        results = _run_children(state, inputs, child, run_id)
    except _Exceeded as e:
        if "ResultWriter" in state:
            _write_results(s3, state, data, context, arn, run_id, e.results)
        raise StatesError(
            "States.ExceedToleratedFailureThreshold",
            f"the Map run {arn} failed: its failed child executions exceed the tolerated failure threshold",
        ) from None
    if "ResultWriter" in state:
        return _write_results(s3, state, data, context, arn, run_id, results)
    return [r.output if r.status == "SUCCEEDED" else {"Error": r.error, "Cause": r.cause} for r in results]
