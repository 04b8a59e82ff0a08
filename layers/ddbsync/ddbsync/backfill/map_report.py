"""After a Distributed Map failed: name the file and line of its first failures.

When a child execution of a Distributed Map fails, the parent sees only
``States.ExceedToleratedFailureThreshold`` (or another ``States.*`` error), never the
child's own error. The Map's ``ResultWriter`` writes every child's outcome to S3 under
``<prefix>/<map run id>/`` ("ResultWriter (Map)", AWS Step Functions developer guide):

* ``manifest.json``: ``{"DestinationBucket", "MapRunArn", "ResultFiles": {"FAILED": [{"Key",
  "Size"}], "PENDING": [...], "SUCCEEDED": [...]}}``;
* ``FAILED_<n>.json``: a JSON array with one object per failed child: ``Error``, ``Cause``,
  ``Input`` (the child's input as a JSON string), ``ExecutionArn``, ``Name``, ``Status``, ...

:func:`map_failures` finds the manifests under the execution's prefix (the caught error
does not carry the Map run's id), reads the FAILED files, and describes each failure
with the s3 uri of the file it concerns: the key the child's error message names (our
Lambda errors say ``<key>, line <n>: <reason>``) becomes ``s3://<bucket>/<key>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.errors import MapRunError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["FIRST_FAILURES", "MAP_RESULTS_PREFIX", "MapFailures", "map_failures", "raise_map_failures"]

# Where both Maps' ResultWriter writes (the state machine's Prefix: map-results/<execution name>).
MAP_RESULTS_PREFIX = "map-results"
# How many failures the error message names.
FIRST_FAILURES = 5


@dataclass(slots=True)
class MapFailures:
    """What the ResultWriter files say: how many children failed, the first ones described."""

    manifests: list[str]
    failed: int
    first: list[str]


def _read_json(s3: S3Client, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as e:
        raise MapRunError(f"cannot read the Map's results at s3://{bucket}/{key}: {e}") from e
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MapRunError(f"s3://{bucket}/{key} is not JSON: {e}") from e


def _manifest_keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("/manifest.json")]
    except (ClientError, BotoCoreError) as e:
        raise MapRunError(f"cannot list the Map's results under s3://{bucket}/{prefix}: {e}") from e
    return sorted(keys)


def _failed_children(s3: S3Client, bucket: str, manifest_key: str) -> Iterator[Mapping[str, Any]]:
    manifest = _read_json(s3, bucket, manifest_key)
    files = manifest.get("ResultFiles", {}).get("FAILED", []) if isinstance(manifest, dict) else []
    destination = manifest.get("DestinationBucket") or bucket
    for entry in files:
        children = _read_json(s3, str(destination), str(entry["Key"]))
        for child in children if isinstance(children, list) else []:
            if isinstance(child, Mapping):
                yield child


def _message(cause: object) -> str:
    """The error message a Lambda cause holds (``{"errorMessage": ...}``), else the cause itself."""
    text = cause if isinstance(cause, str) else ""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
        return str(parsed["errorMessage"])
    return text


def _input_keys(child: Mapping[str, Any]) -> list[str]:
    """The object keys a child worked on: an export file, or a batch of archive objects."""
    try:
        data = orjson.loads(child.get("Input") or "{}")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(data, dict):
        return []
    file = data.get("file")
    if isinstance(file, dict) and isinstance(file.get("key"), str):
        return [file["key"]]
    items = data.get("Items") or data.get("items") or []
    return [str(item["Key"]) for item in items if isinstance(item, dict) and "Key" in item]


def describe_failure(child: Mapping[str, Any], bucket: str) -> str:
    """One failed child: ``<Error>: s3://bucket/key, line n: reason``."""
    error = str(child.get("Error") or "Error")
    message = _message(child.get("Cause")) or "(no cause)"
    keys = _input_keys(child)
    named = [k for k in keys if k in message]
    if named:
        key = max(named, key=len)
        message = message.replace(key, f"s3://{bucket}/{key}", 1)
    elif keys:
        more = f" (batch of {len(keys)} objects)" if len(keys) > 1 else ""
        message = f"s3://{bucket}/{keys[0]}{more}: {message}"
    return f"{error}: {message}"


def map_failures(s3: S3Client, results_bucket: str, execution: str, data_bucket: str) -> MapFailures:
    """Read the ResultWriter files of ``execution``'s Map runs; describe the first failures.

    ``data_bucket`` is the bucket of the files the children read (the export bucket, or
    the archive's), for their s3 uris.
    """
    prefix = f"{MAP_RESULTS_PREFIX}/{execution}/"
    manifests = _manifest_keys(s3, results_bucket, prefix)
    failed, first = 0, list[str]()
    for manifest in manifests:
        for child in _failed_children(s3, results_bucket, manifest):
            failed += 1
            if len(first) < FIRST_FAILURES:
                first.append(describe_failure(child, data_bucket))
    return MapFailures([f"s3://{results_bucket}/{m}" for m in manifests], failed, first)


def raise_map_failures(
    s3: S3Client, results_bucket: str, execution: str, data_bucket: str, error: Mapping[str, Any]
) -> NoReturn:
    """Raise :class:`MapRunError` with the first failures, or with the Map's own error."""
    caught = f"{error.get('Error', 'Error')}: {_message(error.get('Cause')) or '(no cause)'}"
    if not execution:
        raise MapRunError(f"the Map failed ({caught}); no execution name to find its results by")
    report = map_failures(s3, results_bucket, execution, data_bucket)
    if report.failed:
        shown = f"first {len(report.first)}" if report.failed > len(report.first) else "each"
        raise MapRunError(
            f"{report.failed} child execution(s) of the Map failed ({caught}); {shown}: "
            + "; ".join(report.first)
        )
    prefix = f"s3://{results_bucket}/{MAP_RESULTS_PREFIX}/{execution}/"
    where = ", ".join(report.manifests) or f"no manifest.json under {prefix}"
    raise MapRunError(f"the Map failed ({caught}) with no failed child in its results ({where})")
