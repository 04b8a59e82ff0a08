"""``ddbsync repair --from T1 --to T2``: re-apply a lost stream window from an incremental export.

For the day a window of stream changes never reached the index (retries exhausted and
the stream's 24 h retention passed, a disabled trigger, a bad deploy). The repair:

1. checks the live alias exists (it never creates an index), and also writes to
   ``<alias>-next`` when a backfill is running, as the stream indexer does (both read
   again before every chunk, with the floors of the indices behind them: a record below
   a backfilled index's snapshot floor never creates a document there);
2. asks DynamoDB for an incremental export of ``[T1, T2)``
   (``ExportType=INCREMENTAL_EXPORT``, ``ExportViewType=NEW_AND_OLD_IMAGES``; the
   table needs PITR), with a ClientToken derived from the alias and the window, so a
   retried command does not start a second export;
3. polls DescribeExport, printing the status, until COMPLETED or FAILED; a failed
   export writes nothing and exits non-zero with DynamoDB's FailureCode and message;
4. reads ``manifest-summary.json``/``manifest-files.json`` and each data file line by
   line (bounded memory), and re-applies every record into the live alias: a
   ``NewImage`` is indexed, a record without one writes the same tombstone the
   indexer writes (``_ddbsync.deleted: true``).

The window (AWS facts, see the runbook): ``ExportFromTime`` is inclusive and
``ExportToTime`` exclusive (API reference, IncrementalExportSpecification); the period
is 15 minutes to 24 hours (AWS blog "Introducing incremental export from Amazon
DynamoDB to Amazon S3"); both must lie in the PITR window and in the past. Times
given with fractions of a second are *widened* to whole seconds (T1 down, T2 up):
re-applying a little more is harmless, and a whole-second T2 is what makes the
versions below safe.

Versions (docs/versioning.md). A record written at ``WriteTimeMicros`` in second
``s`` gets ``version = export_version(s + 1) = ((s + 1) << 20) - 1`` and ranks, in
the conflict resolver, like an export item: ``Ordering(s, EXPORT_RANK)``, above
every stream change of second ``s`` and below every change of second ``s + 1``.
Why *above* the same-second stream changes:

* An incremental export is compacted: one record per changed item, its state at
  the end of the window. So no change of that item happened between the record's
  write and ``T2``; as ``T2`` is a whole second and ``s < T2``, ``s + 1 <= T2`` and
  the record's image is exactly the item as a full export taken at time ``s + 1``
  would have it. It is an export item, with the export item's version, and rule 4
  of docs/versioning.md already proves such items converge.
* Ranking it *below* same-second stream changes (``export_version(s)``) would be
  safe but useless: a change indexed earlier in that same second, before the lost
  one, would keep the document stale.
* A stream change after the window is in second ``T2`` or later (``T2`` whole), so
  its version is above every repair version: the repair never overwrites it, and a
  late replay of a change from inside the window loses to the repair (it is older).

Stored repair documents carry ``_ddbsync.source = "repair"`` and ``seq: null``;
``conflicts.stored_ordering`` ranks them like export documents. (Without that, a
repair document would rank as sequence number 0 of its second, and a late replay
of an older same-second change would win the compare-and-set.)

Records of one item that share a second are collapsed to the newest before writing
(AWS's compaction makes that a no-op; it keeps hand-made exports correct within a
chunk). A second run of the same window writes the same versions and bodies: every
write is answered 409 and counted as stale, so repairs are idempotent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from botocore.exceptions import ClientError

from ddbsync.backfill.exports import EXPORT_ADVICE, describe_export, export_args, start_export
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.config import Settings
from ddbsync.dynamodb.decode import JsonValue, decode_item
from ddbsync.dynamodb.export_format import IncrementalRecord, iter_incremental
from ddbsync.dynamodb.export_manifest import read_files, read_summary, summary_key_from_export
from ddbsync.dynamodb.keys import document_id
from ddbsync.errors import ConfigError, DdbsyncError, IndexAdminError
from ddbsync.gcpause import paused_gc
from ddbsync.mapping import META_FIELD, Change
from ddbsync.opensearch.bulk import Deadline, Outcome, make_writes
from ddbsync.opensearch.floors import View
from ddbsync.opensearch.indices import read_view
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import OpenSearchTransport
from ddbsync.versioning import Ordering, export_ordering, export_version

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

__all__ = [
    "MAX_WINDOW_S",
    "MIN_WINDOW_S",
    "SOURCE",
    "AwsIncrementalExports",
    "IncrementalExports",
    "RepairError",
    "RepairSummary",
    "Window",
    "add_arguments",
    "main",
    "parse_time",
    "repair_change",
    "repair_ordering",
    "repair_version",
    "run_repair",
]

SOURCE = "repair"
MIN_WINDOW_S = 15 * 60
MAX_WINDOW_S = 24 * 60 * 60
CHUNK_RECORDS = 500
CHUNK_BUDGET_S = 300.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class RepairError(DdbsyncError):
    """The repair cannot go on; the message says where and why."""


# --- the window ------------------------------------------------------------------------------


def parse_time(text: str) -> float:
    """``--from``/``--to``: epoch seconds (``1767225600``) or ISO-8601 with a zone (``...Z``)."""
    value = text.strip()
    try:
        return float(value) if value.replace(".", "", 1).isdigit() else _iso(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch seconds nor an ISO-8601 time with a zone (e.g. 2026-01-31T14:00:00Z)"
        ) from e


def _iso(value: str) -> float:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in whole epoch seconds, 15 minutes to 24 hours, ending in the past."""

    start: int
    end: int

    @classmethod
    def of(cls, start: float, end: float, now: float | None = None) -> Window:
        """Widen ``[start, end)`` to whole seconds and check it; raise RepairError naming every problem."""
        lo, hi = math.floor(start), math.ceil(end)
        now = time.time() if now is None else now
        problems = []
        if hi <= lo:
            problems.append(f"--to ({_text(end)}) must be after --from ({_text(start)})")
        elif not MIN_WINDOW_S <= hi - lo <= MAX_WINDOW_S:
            problems.append(
                f"the window is {_span(hi - lo)}; an incremental export covers 15 minutes to 24 hours: "
                "split a longer window, widen a shorter one"
            )
        if hi > now:
            problems.append(f"--to ({_text(hi)}) is in the future; an export window must end in the past")
        if problems:
            raise RepairError("; ".join(problems))
        return cls(lo, hi)

    def __str__(self) -> str:
        return f"[{_text(self.start)}, {_text(self.end)})"


def _text(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h {seconds % 3600 // 60} min {seconds % 60} s"


# --- versions and writes -------------------------------------------------------------------


def repair_version(write_time_micros: int) -> int:
    """The version of a record written in second ``s``: ``export_version(s + 1)`` (module doc)."""
    return export_version(write_time_micros // 1_000_000 + 1)


def repair_ordering(write_time_micros: int) -> Ordering:
    """Above every stream change of the record's second, below every later second."""
    return export_ordering(write_time_micros // 1_000_000 + 1)


def repair_change(record: IncrementalRecord, partition_key: str, sort_key: str | None) -> Change:
    """The document write for one incremental-export record: its image, or a tombstone."""
    second = record.write_time_micros // 1_000_000
    meta: dict[str, JsonValue] = {"seq": None, "ts": second, "source": SOURCE}
    doc_id = document_id(record.keys, partition_key, sort_key)
    version, ordering = repair_version(record.write_time_micros), repair_ordering(record.write_time_micros)
    if record.new_image is None:
        meta["deleted"] = True
        return Change(doc_id, "tombstone", version, ordering, {META_FIELD: meta}, {}, (), second)
    body = decode_item(record.new_image)
    if META_FIELD in body:
        raise ValueError(f"item has an attribute named {META_FIELD!r}, reserved by ddbsync")
    body[META_FIELD] = meta
    return Change(doc_id, "index", version, ordering, body, {}, (), second)


# --- the export ------------------------------------------------------------------------------


class IncrementalExports(Protocol):
    """Starting and watching an incremental export (AWS, or a local stand-in)."""

    def start(self, bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]: ...

    def describe(self, export_arn: str) -> dict[str, Any]: ...


# The backfill's advice, with what differs for a time window.
_REPAIR_ADVICE = {
    **EXPORT_ADVICE,
    "InvalidExportTimeException": "the window must lie inside the PITR window and end in the past",
    "ExportConflictException": "an export with this client token but other settings exists (pass --token)",
    "ValidationException": "DynamoDB refused the request",
}


def export_request(bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]:
    """The ExportTableToPointInTime arguments for an incremental export of ``window``."""
    args = export_args(bs, client_token)
    args["ExportType"] = "INCREMENTAL_EXPORT"
    args["IncrementalExportSpecification"] = {
        "ExportFromTime": dt.datetime.fromtimestamp(window.start, dt.UTC),
        "ExportToTime": dt.datetime.fromtimestamp(window.end, dt.UTC),
        "ExportViewType": "NEW_AND_OLD_IMAGES",
    }
    return args


class AwsIncrementalExports:
    """:class:`IncrementalExports` over DynamoDB's ExportTableToPointInTime / DescribeExport."""

    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self.dynamodb = dynamodb

    def start(self, bs: BackfillSettings, window: Window, client_token: str) -> dict[str, Any]:
        args = export_request(bs, window, client_token)
        return start_export(self.dynamodb, args, RepairError, _REPAIR_ADVICE)

    def describe(self, export_arn: str) -> dict[str, Any]:
        return describe_export(self.dynamodb, export_arn, RepairError)


# --- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class RepairSummary:
    """What a repair did. ``stale`` writes met a newer (or the same) change already indexed."""

    window: Window
    export_arn: str = ""
    records: int = 0
    files: int = 0
    applied: int = 0
    stale: int = 0
    tombstones: int = 0
    poison: list[str] = field(default_factory=list)
    duration_s: float = 0.0


def _wait(
    exports: IncrementalExports,
    arn: str,
    *,
    poll_s: float,
    max_wait_s: float,
    sleep: Callable[[float], None],
    out: TextIO,
) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        description = exports.describe(arn)
        status = str(description.get("ExportStatus", "UNKNOWN"))
        waited = time.monotonic() - started
        print(f"   export {status} after {waited:.0f} s", file=out, flush=True)
        if status == "COMPLETED":
            return description
        if status == "FAILED":
            code = description.get("FailureCode", "unknown")
            raise RepairError(f"the export failed ({code}): {description.get('FailureMessage', '')}")
        if waited + poll_s > max_wait_s:
            raise RepairError(f"the export is still {status} after {waited:.0f} s; rerun later (same token)")
        sleep(poll_s)


def _newest_per_document(changes: Iterable[tuple[int, Change, int]]) -> list[Change]:
    newest: dict[str, tuple[int, int, Change]] = {}
    for line, change, micros in changes:
        held = newest.get(change.doc_id)
        if held is None or (micros, line) > held[:2]:
            newest[change.doc_id] = (micros, line, change)
    return [c for _, _, c in newest.values()]


def _chunk_deadline(seconds: float) -> Deadline:
    """No Lambda timeout here: each chunk gets ``seconds`` of retries, then the repair stops."""
    end = time.monotonic() + seconds
    return Deadline(lambda: int((end - time.monotonic()) * 1000), 0)


def _targets(client: OpenSearch, alias: str) -> View:
    """Where the repair writes now: the live alias, and ``<alias>-next`` while a backfill runs.

    Read before every chunk and again after it: a repair runs for as long as its export
    takes, a chunk's retries may last minutes, and every record it writes is older than
    any floor a backfill sets meanwhile (docs/versioning.md, "Snapshot floors").
    """
    try:
        return read_view(client, alias)
    except IndexAdminError as e:
        raise RepairError(str(e)) from e


@paused_gc()  # see ddbsync.gcpause
def _apply_file(
    records: Iterator[tuple[int, IncrementalRecord]],
    key: str,
    settings: Settings,
    client: OpenSearch,
    summary: RepairSummary,
) -> int:
    transport = OpenSearchTransport(client)
    alias = settings.index_alias
    lines = 0
    while chunk := list(islice(records, CHUNK_RECORDS)):
        lines = chunk[-1][0]
        mapped = []
        for line, record in chunk:
            try:
                change = repair_change(record, settings.partition_key, settings.sort_key)
            except (DdbsyncError, ValueError) as e:
                summary.poison.append(f"{key}, line {line}: {e}")
                continue
            mapped.append((line, change, record.write_time_micros))
        summary.records += len(chunk)
        changes = _newest_per_document(mapped)
        summary.tombstones += sum(c.op == "tombstone" for c in changes)
        view = _targets(client, alias)
        report = send(
            settings, make_writes(changes, view.aliases), transport, _chunk_deadline(CHUNK_BUDGET_S),
            view=view, reread=lambda: read_view(client, alias), always_reread=True,
        )  # fmt: skip
        for write in report.writes:
            result = write.result
            if result is None or result.outcome is Outcome.UNSENT:
                reason = result.reason if result else "not sent"
                raise RepairError(f"{key}: OpenSearch did not take {write.change.doc_id} ({reason}); rerun")
            if result.outcome is Outcome.POISON:
                summary.poison.append(f"{key}: {write.change.doc_id}: {result.reason}")
            elif result.outcome is Outcome.STALE:
                summary.stale += 1
            else:
                summary.applied += 1
    return lines


def run_repair(
    settings: Settings,
    bs: BackfillSettings,
    window: Window,
    *,
    client: OpenSearch,
    s3: S3Client,
    exports: IncrementalExports,
    token: str | None = None,
    poll_s: float = 30.0,
    max_wait_s: float = 4 * 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    out: TextIO | None = None,
) -> RepairSummary:
    """Export ``window`` and re-apply it into the live alias; raise RepairError on any failure."""
    out = out or sys.stdout
    started = time.monotonic()
    alias = settings.index_alias
    view = _targets(client, alias)
    if view.live.index is None:
        raise RepairError(f"the live alias {alias!r} does not exist: nothing to repair (run a backfill)")
    summary = RepairSummary(window)
    token = token or f"ddbsync-repair-{alias}-{window.start}-{window.end}"[:64]
    targets = ", ".join(view.aliases)
    print(f"repair {window} -> {targets} (incremental export, {bs.export_format})", file=out)
    description = exports.start(bs, window, token)
    summary.export_arn = str(description["ExportArn"])
    print(f"   export {summary.export_arn}", file=out, flush=True)
    description = _wait(
        exports, summary.export_arn, poll_s=poll_s, max_wait_s=max_wait_s, sleep=sleep, out=out
    )
    manifest = read_summary(s3, bs.export_bucket, summary_key_from_export(description))
    if manifest.export_type != "INCREMENTAL_EXPORT":
        raise RepairError(f"{manifest.export_arn} is a {manifest.export_type}, not an incremental export")
    files = read_files(s3, bs.export_bucket, manifest.manifest_files_key)
    for file in files:
        try:
            body = s3.get_object(Bucket=bs.export_bucket, Key=file.key)["Body"]
        except ClientError as e:
            raise RepairError(f"{file.key}: cannot read the data file listed in the manifest: {e}") from e
        lines = _apply_file(
            iter_incremental(body, manifest.output_format, file.key),
            file.key,
            settings,
            client,
            summary,
        )
        body.close()
        if lines != file.item_count:
            raise RepairError(
                f"{file.key}: the file holds {lines} lines but the manifest says {file.item_count}"
            )
        summary.files += 1
        print(f"   {file.key.rsplit('/', 1)[-1]:<36} {lines} records", file=out, flush=True)
    summary.duration_s = time.monotonic() - started
    print(
        f"   {summary.records} records from {summary.files} files in {summary.duration_s:.1f} s: "
        f"{summary.applied} written ({summary.tombstones} deletes), "
        f"{summary.stale} already newer or equal in the index, {len(summary.poison)} rejected",
        file=out,
    )
    for problem in summary.poison:
        print(f"   REJECTED {problem}", file=out)
    return summary


# --- the CLI ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ddbsync repair``."""
    parser.epilog = (
        "Settings come from the environment, as for the backfill function: OPENSEARCH_*, "
        "INDEX_ALIAS, PARTITION_KEY, SORT_KEY, TABLE_ARN, EXPORT_BUCKET, EXPORT_PREFIX, "
        "EXPORT_FORMAT, EXPORT_KMS_KEY_ID. The table needs point-in-time recovery. "
        "Exit codes: 0 repaired, 1 the repair failed (the reason is printed), 2 bad arguments "
        "or settings. See docs/runbook.md, 'Repair a lost stream window'."
    )
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        type=parse_time,
        metavar="T1",
        help="window start, inclusive: epoch seconds or ISO-8601 with a zone",
    )
    parser.add_argument(
        "--to",
        dest="end",
        required=True,
        type=parse_time,
        metavar="T2",
        help="window end, exclusive (15 min to 24 h after T1, in the past)",
    )
    parser.add_argument(
        "--token", default=None, help="export ClientToken (default: derived from the alias and the window)"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=30.0,
        help="DescribeExport polling interval (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-minutes",
        type=float,
        default=240.0,
        help="give up waiting for the export after this long (default: %(default)s)",
    )


def main(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    exports: IncrementalExports | None = None,
    s3: S3Client | None = None,
    out: TextIO | None = None,
) -> int:
    """Entry point for the CLI. Tests pass ``env``, ``exports`` and ``s3`` (moto stand-ins)."""
    import boto3

    from ddbsync.opensearch.client import build_client

    out = out or sys.stdout
    problems: list[str] = []
    settings = bs = None
    try:
        settings = Settings.from_env(env, require_dlq=False)
    except ConfigError as e:
        problems += e.problems
    try:
        bs = BackfillSettings.from_env(env)
    except ConfigError as e:
        problems += e.problems
    try:
        window = Window.of(args.start, args.end)
    except RepairError as e:
        problems.append(str(e))
    if problems or settings is None or bs is None:
        print("ERROR: " + "\n       ".join(problems), file=out)
        return EXIT_USAGE
    region = settings.region
    try:
        summary = run_repair(
            settings,
            bs,
            window,
            client=build_client(settings),
            s3=s3 or boto3.client("s3", region_name=region),
            exports=exports or AwsIncrementalExports(boto3.client("dynamodb", region_name=region)),
            token=args.token,
            poll_s=args.poll_seconds,
            max_wait_s=args.max_wait_minutes * 60,
            out=out,
        )
    except DdbsyncError as e:
        print(f"ERROR: repair of {window} failed: {e}", file=out)
        return EXIT_FAILED
    return EXIT_FAILED if summary.poison else EXIT_OK
