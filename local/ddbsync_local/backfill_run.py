"""``ddbsync backfill``: the backfill state machine, run on one machine.

The deployed flow is ``statemachine/backfill.asl.json`` driving the backfill Lambda
(:mod:`ddbsync.backfill.steps`). Here the same definition runs in the local Step Functions
runner (:mod:`ddbsync_local.stepfunctions`), every Task calls the same
:class:`~ddbsync.backfill.steps.Backfill` actions with a :class:`~ddbsync_local.context.LocalContext`,
DynamoDB and S3 are moto (in-process, or a moto_server through ``AWS_ENDPOINT_URL``) and
OpenSearch is real.

moto runs ExportTableToPointInTime but writes no manifests and no AWS-format data
files, so :class:`LocalExports` calls it (through :class:`~ddbsync.backfill.steps.AwsExports`,
so a table without PITR fails the same way as in AWS) and then writes the export
AWS would have written with :func:`ddbsync_local.exporter.write_export`: the manifest and
data-file readers under test are the ones that run in AWS.

Waits are not slept. ``WaitForExport`` has nothing to wait for (the local export is
complete when ``start`` returns). ``WaitForDualWrite`` exists so that every stream
indexer container has seen ``<alias>-next`` before the new index's floor; locally the
indexer is built with ``NEXT_ALIAS_CHECK_SECONDS=0`` (it checks the alias on every
batch), so it sees the next alias as soon as ``prepare`` has created it, and the floor
is a second or two away: ``start_export`` waits for it itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ddbsync.backfill.settings import BackfillSettings
from ddbsync.backfill.steps import AwsExports, Backfill
from ddbsync.config import Settings
from ddbsync_local.context import LocalContext
from ddbsync_local.exporter import write_export
from ddbsync_local.stepfunctions import Execution, lambda_task, load_definition, run

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

_T = TypeVar("_T")

__all__ = [
    "ASL_PATH",
    "DEFAULT_BUCKET",
    "DEFAULT_PREFIX",
    "FUNCTION_ARN",
    "BackfillSummary",
    "LocalExports",
    "backfill_table",
    "run_backfill",
    "substitutions",
]

# The deployed definition. It ships in the package (templates/), so an installed
# `ddbsync backfill` runs without a checkout; statemachine/backfill.asl.json, which
# template.yaml deploys, is a symbolic link to this same file.
ASL_PATH = Path(__file__).resolve().parent / "templates" / "backfill.asl.json"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ddbsync-local-BackfillFunction"
DEFAULT_BUCKET = "ddbsync-local-exports"
# moto's ExportTableToPointInTime requires S3Prefix (AWS does not), so local runs always use one.
DEFAULT_PREFIX = "exports"
# template.yaml's defaults for the archive Map (ArchiveSettleSeconds, ArchiveObjectsPerBatch).
ARCHIVE_SETTLE_SECONDS = 960
ARCHIVE_OBJECTS_PER_BATCH = 20
LOCAL_FAILURE = ("S3NoSuchBucket", "local export failure requested (LocalExports(fail=True))")

# A (resource, payload) -> result callable: what the runner calls for every Task.
Invoke = Callable[[str, dict[str, Any]], Any]


@dataclass(slots=True)
class _LocalExport:
    moto_arn: str
    summary_key: str | None
    export_time: dt.datetime


def _shallow(work: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``work(*args, **kwargs)`` in a fresh thread, whose Python stack starts empty.

    Why: the export scans the table through moto, whose response serializer recurses once
    per attribute. Called about 90 frames deep (pytest, the state machine, the task), that
    recursion sat on the boundary between two of CPython 3.11's frame-stack chunks, and
    each crossing allocated and freed a chunk with mmap (CPython issue gh-142183, fixed in
    3.13 and later by keeping one spare chunk): 3.6 million page faults and three to four
    times the time of a 3,000-item test. A fresh thread runs the same code from the top of
    a new stack, which moved the recursion off that boundary (measured on CPython 3.11.7;
    a chunk boundary can still fall elsewhere, so a slow test with high sys time is worth
    the same check). Only the local exporter needs this; the code it runs is unchanged.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-export") as pool:
        return pool.submit(work, *args, **kwargs).result()


class LocalExports:
    """:class:`~ddbsync.backfill.steps.Exports` against moto, writing a real-format export.

    ``items_per_file`` sets the size of the data files (``multipart=False`` writes each with
    one PutObject: see :func:`~ddbsync_local.exporter.write_export`); ``fail=True`` makes
    :meth:`describe` report the export FAILED (with ``FailureCode`` and ``FailureMessage``),
    as AWS does for, say, a bucket it cannot write to.
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        *,
        items_per_file: int = 1000,
        fail: bool = False,
        multipart: bool = True,
    ) -> None:
        self.dynamodb = dynamodb
        self.s3 = s3
        self.items_per_file = items_per_file
        self.fail = fail
        self.multipart = multipart
        self.aws = AwsExports(dynamodb)
        self.exports: dict[str, _LocalExport] = {}

    def start(self, bs: BackfillSettings, client_token: str) -> dict[str, Any]:
        """Start the export in moto (PITR must be on), then write the files and manifests."""
        bs = dataclasses.replace(bs, export_prefix=bs.export_prefix or DEFAULT_PREFIX)
        # The export's point in time: taken before the scan, so every change the scan
        # misses is later than it (and reaches the new index through the next alias).
        moment = dt.datetime.now(dt.UTC)
        description = self.aws.start(bs, client_token)
        # moto's ARN reads ".../table/<table ARN>/import/<id>"; AWS's is "<table ARN>/export/<id>".
        export_arn = f"{bs.table_arn}/export/{str(description['ExportArn']).rsplit('/', 1)[-1]}"
        summary_key = None
        if not self.fail:
            summary_key = _shallow(
                write_export,
                self.dynamodb,
                self.s3,
                bs.table_arn.split(":table/", 1)[1],
                bs.export_bucket,
                bs.export_prefix,
                export_arn,
                moment.timestamp(),
                bs.export_format,
                self.items_per_file,
                multipart=self.multipart,
            )
        self.exports[export_arn] = _LocalExport(str(description["ExportArn"]), summary_key, moment)
        return {**description, "ExportArn": export_arn, "ExportTime": moment, "ExportStatus": "IN_PROGRESS"}

    def describe(self, export_arn: str) -> dict[str, Any]:
        """moto's description plus what it leaves out: ``ExportManifest`` and ``ExportTime``."""
        export = self.exports.get(export_arn)
        if export is None:
            # Let DescribeExport say it does not know the export, as AWS would.
            return self.aws.describe(export_arn)
        description = {**self.aws.describe(export.moto_arn), "ExportArn": export_arn}
        description["ExportTime"] = export.export_time
        if export.summary_key is None:
            code, message = LOCAL_FAILURE
            description.update(ExportStatus="FAILED", FailureCode=code, FailureMessage=message)
        else:
            description.update(ExportStatus="COMPLETED", ExportManifest=export.summary_key)
        return description


@dataclass(slots=True)
class BackfillSummary:
    """What a local backfill did. ``status`` is the execution's (SUCCEEDED or FAILED)."""

    status: str
    alias: str
    new_index: str | None
    old_indices: list[str]
    swapped: bool
    items: int
    files: int
    invocations: int
    duration_s: float
    error: str | None = None
    cause: str | None = None
    execution: Execution = field(default_factory=Execution, repr=False)

    @property
    def rate(self) -> float:
        """Items indexed per second over the whole run."""
        return self.items / self.duration_s if self.duration_s > 0 else 0.0


def _bar(done: int, total: int, width: int = 24) -> str:
    fraction = 1.0 if total <= 0 else min(1.0, done / total)
    filled = round(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


class _Progress:
    """Prints one line per ``index_file`` call (the file's progress bar) or per archive batch call.

    The Map's children run on threads: every update holds the lock.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.files_done = 0
        self.items = 0
        self.invocations = 0
        self.lock = threading.Lock()

    def archive_batch(self, payload: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        with self.lock:
            self.invocations += 1
            done_before = int((payload.get("checkpoint") or {}).get("item") or 0)
            done_now = int(result["checkpoint"]["item"])
            self.files_done += done_now - done_before
            self.items += int(result.get("applied") or 0) + int(result.get("stale") or 0)
            items = result.get("items") or []
            first = str(items[0].get("Key", "?")).rsplit("/", 1)[-1] if items else "?"
            note = "" if result.get("done") else "  (out of time: continues from this line)"
            line = f"   batch {first:<40} {_bar(done_now, len(items))} objects{note}"
            print(line, file=self.out, flush=True)

    def index_file(self, payload: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        with self.lock:
            self._index_file(payload, result)

    def _index_file(self, payload: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        self.invocations += 1
        file = result.get("file") or {}
        name = str(file.get("key", "?")).rsplit("/", 1)[-1]
        lines = int(result.get("lines") or 0)
        start = int(payload.get("checkpoint") or 0)
        self.items += lines - start
        total = int(file.get("item_count") or 0)
        if result.get("done"):
            self.files_done += 1
            note = ""
        else:
            note = "  (out of time: continues from this line)"
        print(f"   {name:<36} {_bar(lines, total)}{note}", file=self.out, flush=True)


def substitutions(results_bucket: str, map_concurrency: int = 4) -> dict[str, str]:
    """The DefinitionSubstitutions of a local run (template.yaml gives the deployed ones).

    The Wait before the archive Map is not slept locally, whatever ArchiveSettleSeconds says.
    """
    return {
        "BackfillFunctionArn": FUNCTION_ARN,
        "MapConcurrency": str(map_concurrency),
        "MapResultsBucket": results_bucket,
        "ArchiveSettleSeconds": str(ARCHIVE_SETTLE_SECONDS),
        "ArchiveObjectsPerBatch": str(ARCHIVE_OBJECTS_PER_BATCH),
    }


def _remaining_time(timeout_ms: int, tick_ms: int | None) -> Callable[[], int]:
    """A fresh invocation's remaining-time function: real time, or a simulated ticking clock."""
    if tick_ms is None:
        context = LocalContext(function_name="BackfillFunction", timeout_ms=timeout_ms)
        return context.get_remaining_time_in_millis
    left = [timeout_ms]

    def remaining() -> int:
        left[0] = max(0, left[0] - tick_ms)
        return left[0]

    return remaining


def run_backfill(
    settings: Settings,
    bs: BackfillSettings,
    *,
    client: OpenSearch,
    s3: S3Client,
    exports: LocalExports,
    timeout_ms: int = 900_000,
    tick_ms: int | None = None,
    map_concurrency: int = 1,
    execution_input: Mapping[str, Any] | None = None,
    after_task: Callable[[str, Mapping[str, Any]], None] | None = None,
    out: TextIO | None = None,
    asl_path: Path = ASL_PATH,
) -> BackfillSummary:
    """Run the backfill state machine locally; print progress and a summary; return the summary.

    Each Task invocation gets a fresh :class:`LocalContext` of ``timeout_ms``, so a small
    value makes ``index_file`` stop early and the state machine resume it from its
    checkpoint. With ``tick_ms`` the clock is simulated instead: every look at the remaining
    time costs ``tick_ms``, so where a call stops does not depend on this machine's speed.
    ``after_task(action, result)`` runs after every successful Task (tests use it to
    interleave table changes with the steps). ``map_concurrency`` is the Maps' MaxConcurrency:
    1 by default locally, so files are indexed and reported in order (the deployed default
    is 4; children then run on that many threads here too).
    """
    out = out or sys.stdout
    definition = load_definition(asl_path, substitutions(bs.export_bucket, map_concurrency))
    backfill = Backfill(settings, bs, client=client, s3=s3, exports=exports)
    progress = _Progress(out)
    stalled: dict[str, int] = {}
    after_lock = threading.Lock()

    def watch(payload: Mapping[str, Any], result: Mapping[str, Any], key: str) -> None:
        moved = result["checkpoint"] != (payload.get("checkpoint") or 0) or result["done"]
        with progress.lock:
            stalled[key] = 0 if moved else stalled.get(key, 0) + 1
            if stalled[key] >= 3:
                # Locally the timeout is ours: never loop forever on a call that cannot progress.
                raise RuntimeError(f"{key}: no progress in 3 calls; raise timeout_ms ({timeout_ms})")

    def handler(payload: dict[str, Any]) -> Any:
        result = backfill(payload, _remaining_time(timeout_ms, tick_ms))
        action = str(payload.get("action"))
        if action == "index_file":
            progress.index_file(payload, result)
            watch(payload, result, str(result["file"]["key"]))
        elif action == "index_archive_objects":
            progress.archive_batch(payload, result)
            watch(payload, result, json.dumps(result["items"][:1]))
        if after_task is not None:
            with after_lock:  # the Map's children call from several threads
                after_task(action, result)
        return result

    task = lambda_task(handler)

    def invoke(resource: str, payload: dict[str, Any]) -> Any:
        if resource != FUNCTION_ARN:
            raise ValueError(f"unknown Task resource {resource!r}")
        return task(payload)

    started = time.monotonic()
    name = f"local-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    execution = run(definition, dict(execution_input or {}), invoke, name=name, s3=s3)
    duration = time.monotonic() - started
    state = (execution.output or {}).get("backfill", {}) if execution.status == "SUCCEEDED" else {}
    summary = BackfillSummary(
        status=execution.status,
        alias=settings.index_alias,
        new_index=state.get("new_index"),
        old_indices=list(state.get("old_indices") or []),
        swapped=bool(state.get("swapped")),
        items=progress.items,
        files=progress.files_done,
        invocations=progress.invocations,
        duration_s=duration,
        error=execution.error,
        cause=execution.cause,
        execution=execution,
    )
    _print_summary(summary, bs.keep_old_index, out)
    return summary


def _print_summary(summary: BackfillSummary, keep_old: bool, out: TextIO) -> None:
    print(
        f"   {summary.items} items from {summary.files} files in {summary.duration_s:.1f} s "
        f"({summary.rate:.0f} items/s, {summary.invocations} index_file calls)",
        file=out,
    )
    if summary.swapped:
        old = ", ".join(summary.old_indices) or "no index"
        fate = "kept" if keep_old else "deleted"
        print(f"   alias {summary.alias}: {old} -> {summary.new_index} (old index {fate})", file=out)
    else:
        print(f"   FAILED ({summary.error}): {summary.cause}", file=out)
        print(f"   alias {summary.alias} unchanged; the backfill index was removed", file=out)


# --- ``ddbsync backfill`` (options: ddbsync.cli.backfill) ---------------------------------------

EXIT_OK, EXIT_FAILED, EXIT_NO_OPENSEARCH, EXIT_BAD_TABLE = 0, 1, 2, 3


def backfill_table(
    *,
    table: str,
    alias: str,
    export_format: str = "DYNAMODB_JSON",
    items_per_file: int = 1000,
    keep_old_index: bool = False,
    seed: int = 0,
    bucket: str = DEFAULT_BUCKET,
    timeout_ms: int = 900_000,
) -> int:
    """Backfill ``table`` into ``alias`` locally (``--seed`` creates the table first); the exit code."""
    from ddbsync_local.demo import aws_backend, aws_defaults
    from ddbsync_local.search import OpenSearchUnavailable, SearchHttp, opensearch_url

    url = opensearch_url()
    try:
        print(f"OpenSearch {SearchHttp(url).version()} at {url}")
    except OpenSearchUnavailable as e:
        print(e.advice())
        return EXIT_NO_OPENSEARCH
    if items_per_file < 1 or seed < 0:
        print("ERROR: --items-per-file must be at least 1 and --seed not negative")
        return EXIT_BAD_TABLE
    with aws_defaults(), aws_backend():
        return _backfill_table(
            url, table, alias, export_format, items_per_file, keep_old_index, seed, bucket, timeout_ms
        )


def _backfill_table(
    url: str,
    table_name: str,
    alias: str,
    export_format: str,
    items_per_file: int,
    keep_old_index: bool,
    seed: int,
    bucket: str,
    timeout_ms: int,
) -> int:
    import boto3

    from ddbsync.observability import quiet_logs
    from ddbsync.opensearch.client import build_client

    ddb = boto3.client("dynamodb")
    s3 = boto3.client("s3")
    if seed:
        seed_table(ddb, table_name, seed)
        print(f"created table {table_name} with {seed} items (PITR on)")
    try:
        table = ddb.describe_table(TableName=table_name)["Table"]
    except ddb.exceptions.ResourceNotFoundException:
        print(f"ERROR: table {table_name!r} not found. moto in-process starts empty: add --seed N, "
              "or set AWS_ENDPOINT_URL to a moto_server that holds the table.")  # fmt: skip
        return EXIT_BAD_TABLE
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    ensure_bucket(s3, bucket)
    env = local_env(url, alias, keys["HASH"], keys.get("RANGE"))
    settings = Settings.from_env(env, require_dlq=False)
    bs = BackfillSettings(
        table_arn=table["TableArn"],
        export_bucket=bucket,
        export_prefix=DEFAULT_PREFIX,
        export_format=export_format,
        export_kms_key_id=None,
        keep_old_index=keep_old_index,
        dual_write_wait_seconds=0,
    )
    print(f"backfill {table_name} -> {alias} ({export_format}, {items_per_file} items per file)")
    exports = LocalExports(ddb, s3, items_per_file=items_per_file)
    with quiet_logs(False):
        summary = run_backfill(
            settings, bs, client=build_client(settings), s3=s3, exports=exports, timeout_ms=timeout_ms
        )
    return EXIT_OK if summary.swapped else EXIT_FAILED


def local_env(url: str, alias: str, partition_key: str, sort_key: str | None) -> dict[str, str]:
    """The backfill function's indexer settings for a local run (Settings.from_env input)."""
    env = {
        "OPENSEARCH_ENDPOINT": url,
        "OPENSEARCH_SERVICE": "none",
        "INDEX_ALIAS": alias,
        "PARTITION_KEY": partition_key,
        "TIMEOUT_MARGIN_MS": "0",
        # Local indexers look for <alias>-next on every batch, so no dual-write wait is needed.
        "NEXT_ALIAS_CHECK_SECONDS": "0",
    }
    if sort_key:
        env["SORT_KEY"] = sort_key
    return env


def ensure_bucket(s3: S3Client, bucket: str) -> None:
    """Create the export bucket unless it exists."""
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        region = s3.meta.region_name
        if region and region != "us-east-1":
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        else:
            s3.create_bucket(Bucket=bucket)


def seed_table(ddb: DynamoDBClient, table: str, count: int) -> None:
    """Create the demo table (pk, sk; stream; PITR on) and write ``count`` items."""
    from ddbsync_local.demo import create_stream_table

    create_stream_table(ddb, table)
    ddb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    for batch in _batches(range(count), 25):
        requests: list[Any] = [{"PutRequest": {"Item": _seed_item(i)}} for i in batch]
        ddb.batch_write_item(RequestItems={table: requests})


def _seed_item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"cat-{i % 10}"},
        "sk": {"S": f"item-{i:07d}"},
        "name": {"S": f"Product {i}"},
        "price": {"N": f"{i % 500}.{i % 100:02d}"},
        "in_stock": {"BOOL": i % 3 != 0},
    }


def _batches(values: range, size: int) -> Iterator[range]:
    for start in range(0, len(values), size):
        yield values[start : start + size]

