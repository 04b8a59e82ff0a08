"""The backfill Lambda: one handler, one action per state machine step.

See docs/backfill-contract.md for the flow. Every action takes the state
machine's ``backfill`` object and returns it updated (``index_file`` returns its
own iteration state: :mod:`~ddbsync.backfill.file_step`; the archive branch's actions are in
:mod:`~ddbsync.backfill.rebuild_steps`, the failure report after a Map in
:mod:`~ddbsync.backfill.map_report`). Failures raise; the state machine catches them and runs
``abort``, which leaves the live index untouched and serving.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import boto3

from ddbsync.backfill import file_step, rebuild_steps
from ddbsync.backfill.exports import AwsExports, Exports
from ddbsync.backfill.map_report import raise_map_failures
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.config import Settings
from ddbsync.dynamodb.export_manifest import read_files, read_summary, summary_key_from_export
from ddbsync.errors import BackfillError, ConfigError
from ddbsync.observability import logger
from ddbsync.opensearch.client import build_client
from ddbsync.opensearch.indices import abort_backfill, create_backfill_index, finalize_backfill

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

__all__ = [
    "AwsExports",
    "Backfill",
    "BackfillError",
    "Exports",
    "handler",
    "snapshot_floor",
]

State = dict[str, Any]


# Time allowed for the create call that makes the next alias visible: the floor is at least
# this much (plus the dual-write wait) after prepare starts, and prepare checks it was enough.
CREATE_ALLOWANCE_S = 1.0
# How early StartExport may run and still just wait for the floor (Wait states are not exact).
FLOOR_SLACK_S = 5.0


def snapshot_floor(prepare_started: float, wait_seconds: int) -> int:
    """The new index's floor F (docs/versioning.md, "Snapshot floors").

    A whole second at least ``CREATE_ALLOWANCE_S + wait_seconds`` after prepare starts: once
    the next alias exists, every indexer sees it within NEXT_ALIAS_CHECK_SECONDS (at most the
    wait), so every change of second F or later reaches the new index.
    """
    return math.ceil(prepare_started + CREATE_ALLOWANCE_S) + wait_seconds


def _epoch(value: object) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    raise BackfillError(f"export has no usable ExportTime: {value!r}")


class Backfill:
    """The actions. Clients are built once per container and injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        bs: BackfillSettings,
        *,
        client: OpenSearch,
        s3: S3Client,
        exports: Exports,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.bs = bs
        self.client = client
        self.s3 = s3
        self.exports = exports
        self.now = now
        self.sleep = sleep
        self.actions: dict[str, Callable[[Mapping[str, Any], Callable[[], int]], Any]] = {
            "prepare": self.prepare,
            "start_export": self.start_export,
            "describe_export": self.describe_export,
            "read_manifest": self.read_manifest,
            "index_file": lambda event, left: file_step.index_file(self, event, left),
            "prepare_rebuild": lambda event, _: rebuild_steps.prepare_rebuild(self, event),
            "index_archive_objects": lambda e, left: rebuild_steps.index_archive_objects(self, e, left),
            "report_map_failures": self.report_map_failures,
            "finalize": self.finalize,
            "abort": self.abort,
        }

    def __call__(self, event: Mapping[str, Any], remaining_ms: Callable[[], int]) -> Any:
        action = event.get("action")
        run = self.actions.get(str(action))
        if run is None:
            raise BackfillError(f"unknown backfill action {action!r}; known: {', '.join(self.actions)}")
        logger.info("backfill action", extra={"action": action})
        return run(event, remaining_ms)

    @staticmethod
    def _state(event: Mapping[str, Any]) -> State:
        state = event.get("backfill")
        return dict(state) if isinstance(state, Mapping) else {}

    def prepare(self, event: Mapping[str, Any], _: Callable[[], int]) -> State:
        """Create the new index with its snapshot floor and the next alias (docs/backfill.md)."""
        state = self._state(event)
        wait, check = self.bs.dual_write_wait_seconds, self.settings.next_alias_check_seconds
        if check > wait:
            raise BackfillError(
                f"DUAL_WRITE_WAIT_SECONDS ({wait}) is shorter than NEXT_ALIAS_CHECK_SECONDS ({check}): "
                "stream indexers could miss the new index after the export time; raise the wait "
                "(the backfill function's NEXT_ALIAS_CHECK_SECONDS must equal the indexer's)"
            )
        started = self.now()
        floor = snapshot_floor(started.timestamp(), wait)
        alias, stamp = self.settings.index_alias, started.strftime("%Y%m%d%H%M%S")
        state.update(
            create_backfill_index(self.client, alias, self.settings.index_template, stamp, floor=floor)
        )
        ready = self.now().timestamp()
        if ready + check > floor:
            # A writer may not see the next alias before the floor: drop the index now (the
            # state machine's Abort would not know its name) and let the execution fail.
            abort_backfill(self.client, alias, str(state["new_index"]))
            raise BackfillError(
                f"creating {state['new_index']} took {ready - started.timestamp():.1f} s, too long for "
                f"its floor {floor}; nothing was kept: start the backfill again"
            )
        state["floor"] = floor
        state["wait_seconds"] = max(0, math.ceil(floor - ready))
        return state

    def start_export(self, event: Mapping[str, Any], _: Callable[[], int]) -> State:
        """Start the export, never at a time before the new index's floor."""
        state = self._state(event)
        floor = state.get("floor")
        if isinstance(floor, int):
            early = floor - self.now().timestamp()
            if early > FLOOR_SLACK_S:
                raise BackfillError(
                    f"StartExport ran {early:.1f} s before the new index's floor {floor}: the export "
                    "would miss changes that reach the new index by no other way (did WaitForDualWrite "
                    "wait wait_seconds?)"
                )
            if early > 0:
                self.sleep(early)  # Wait states are not exact to the second
        # One token per backfill: a retried StartExport does not start a second export.
        token = f"ddbsync-{state.get('new_index', 'backfill')}"[:64]
        description = self.exports.start(self.bs, token)
        export_time = _epoch(description.get("ExportTime"))
        if isinstance(floor, int) and export_time < floor:
            raise BackfillError(
                f"the export's time {export_time} is before the new index's floor {floor}: "
                "changes between them could be lost; start the backfill again"
            )
        state["export_arn"] = description["ExportArn"]
        state["export_time"] = export_time
        return state

    def describe_export(self, event: Mapping[str, Any], _: Callable[[], int]) -> State:
        state = self._state(event)
        description = self.exports.describe(str(state["export_arn"]))
        status = str(description.get("ExportStatus", "UNKNOWN"))
        state["export_status"] = status
        if status == "COMPLETED":
            state["manifest_summary_key"] = summary_key_from_export(description)
        elif status == "FAILED":
            code = description.get("FailureCode", "unknown")
            state["failure"] = f"{code}: {description.get('FailureMessage', '')}"
        return state

    def read_manifest(self, event: Mapping[str, Any], _: Callable[[], int]) -> State:
        """Check the manifests; the Map reads manifest-files.json itself (no file list in the state)."""
        state = self._state(event)
        bucket = self.bs.export_bucket
        summary = read_summary(self.s3, bucket, str(state["manifest_summary_key"]))
        files = read_files(self.s3, bucket, summary.manifest_files_key)
        listed = sum(f.item_count for f in files)
        if listed != summary.item_count:
            raise BackfillError(
                f"manifest-files.json lists {listed} items, "
                f"manifest-summary.json says {summary.item_count}"
            )
        state["manifest_bucket"] = bucket
        state["manifest_files_key"] = summary.manifest_files_key
        state["file_count"] = len(files)
        state["item_count"] = summary.item_count
        state["output_format"] = summary.output_format
        state["export_time"] = summary.export_time
        return state

    def report_map_failures(self, event: Mapping[str, Any], _: Callable[[], int]) -> NoReturn:
        """After a Map failed: raise MapRunError naming the file and line of the first failures."""
        state = self._state(event)
        source = state.get("source")
        data_bucket = self.bs.export_bucket
        if isinstance(source, Mapping) and source.get("type") == "archive":
            data_bucket = str(source.get("bucket"))
        error = event.get("error")
        raise_map_failures(
            self.s3, self.bs.export_bucket, str(event.get("execution") or ""), data_bucket,
            error if isinstance(error, Mapping) else {},
        )  # fmt: skip

    def finalize(self, event: Mapping[str, Any], _: Callable[[], int]) -> State:
        state = self._state(event)
        state.update(
            finalize_backfill(
                self.client,
                self.settings.index_alias,
                str(state["new_index"]),
                int(state.get("item_count") or 0),
                self.settings.index_template,
                keep_old=self.bs.keep_old_index,
            )
        )
        return state

    def abort(self, event: Mapping[str, Any], _: Callable[[], int]) -> State:
        state = self._state(event)
        new_index = state.get("new_index")
        abort_backfill(self.client, self.settings.index_alias, str(new_index) if new_index else None)
        state["aborted"] = True
        logger.error("backfill aborted; the live index is untouched", extra={"error": event.get("error")})
        return state


def make_backfill(exports: Exports | None = None) -> Backfill:
    """Build the actions from the environment (fails fast with every problem named)."""
    problems: list[str] = []
    settings = bs = None
    try:
        settings = Settings.from_env(require_dlq=False)
    except ConfigError as e:
        problems += e.problems
    try:
        bs = BackfillSettings.from_env()
    except ConfigError as e:
        problems += e.problems
    if problems or settings is None or bs is None:
        raise ConfigError(problems)
    region = settings.region
    return Backfill(
        settings,
        bs,
        client=build_client(settings),
        s3=boto3.client("s3", region_name=region),
        exports=exports or AwsExports(boto3.client("dynamodb", region_name=region)),
    )


_BACKFILL: Backfill | None = None


def handler(event: Mapping[str, Any], context: Any) -> Any:
    """Lambda entry point: ``event["action"]`` picks the step (docs/backfill-contract.md)."""
    global _BACKFILL
    if _BACKFILL is None:
        _BACKFILL = make_backfill()
    return _BACKFILL(event, context.get_remaining_time_in_millis)
