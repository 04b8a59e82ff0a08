"""``ddbsync repair --from T1 --to T2``: re-apply a lost stream window from an incremental export.

For the day a window of stream changes never reached the index (retries exhausted and
the stream's 24 h retention passed, a disabled trigger, a bad deploy). The repair:

1. checks the live alias exists (it never creates an index), and also writes to
   ``<alias>-next`` when a backfill is running, as the stream indexer does (both read
   again before every chunk, with the floors of the indices behind them: a record below
   a backfilled index's snapshot floor never creates a document there);
2. asks DynamoDB for an incremental export of ``[T1, T2)``
   (:mod:`ddbsync.repair.exports`; the window's rules are in :mod:`ddbsync.repair.window`),
   with a ClientToken derived from the alias and the window, so a retried command does
   not start a second export;
3. polls DescribeExport, printing the status, until COMPLETED or FAILED; a failed
   export writes nothing and exits non-zero with DynamoDB's FailureCode and message;
4. reads ``manifest-summary.json``/``manifest-files.json`` and each data file line by
   line (bounded memory), and re-applies every record into the live alias: a
   ``NewImage`` is indexed, a record without one writes the same tombstone the
   indexer writes (``_ddbsync.deleted: true``), at the versions
   :mod:`ddbsync.repair.changes` explains.

Records of one item that share a second are collapsed to the newest before writing
(AWS's compaction makes that a no-op; it keeps hand-made exports correct within a
chunk). A second run of the same window writes the same versions and bodies: every
write is answered 409 and counted as stale, so repairs are idempotent.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, TextIO

from botocore.exceptions import ClientError

from ddbsync.accounting import Disposition, Ledger, settle_writes
from ddbsync.backfill.settings import BackfillSettings
from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.dynamodb.export_format import IncrementalRecord, iter_incremental
from ddbsync.dynamodb.export_manifest import read_files, read_summary, summary_key_from_export
from ddbsync.errors import DdbsyncError, IndexAdminError, RepairError
from ddbsync.gcpause import paused_gc
from ddbsync.mapping import Change
from ddbsync.opensearch.bulk import Outcome, make_writes
from ddbsync.opensearch.floors import View
from ddbsync.opensearch.indices import read_view
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import OpenSearchTransport
from ddbsync.repair.changes import repair_change
from ddbsync.repair.exports import IncrementalExports, wait_for_export
from ddbsync.repair.window import Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from opensearchpy import OpenSearch

__all__ = ["CHUNK_BUDGET_S", "CHUNK_RECORDS", "RepairSummary", "run_repair"]

CHUNK_RECORDS = 500
CHUNK_BUDGET_S = 300.0


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


def _newest_per_document(changes: Iterable[tuple[int, Change, int]]) -> list[Change]:
    newest: dict[str, tuple[int, int, Change]] = {}
    for line, change, micros in changes:
        held = newest.get(change.doc_id)
        if held is None or (micros, line) > held[:2]:
            newest[change.doc_id] = (micros, line, change)
    return [c for _, _, c in newest.values()]


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
            except DdbsyncError as e:  # DecodeError, RecordError: poison
                summary.poison.append(f"{key}, line {line}: {e}")
                continue
            mapped.append((line, change, record.write_time_micros))
        summary.records += len(chunk)
        changes = _newest_per_document(mapped)
        for position, change in enumerate(changes):
            change.members = (position,)  # its slot in the chunk's ledger
        summary.tombstones += sum(c.op == "tombstone" for c in changes)
        view = _targets(client, alias)
        # No Lambda timeout here: each chunk gets CHUNK_BUDGET_S of retries, then the repair stops.
        report = send(
            settings, make_writes(changes, view.aliases), transport, Deadline.within(CHUNK_BUDGET_S),
            view=view, reread=lambda: read_view(client, alias), always_reread=True,
        )  # fmt: skip
        # Accounted as every writer's writes are (ddbsync.accounting); a change OpenSearch
        # rejected is listed, one it did not take stops the repair (rerun: nothing is lost).
        ledger = Ledger.of(len(changes))
        for done in settle_writes(ledger, report.writes):
            if done.outcome is Outcome.UNSENT:
                reason = done.reason or "not sent"
                raise RepairError(f"{key}: OpenSearch did not take {done.change.doc_id} ({reason}); rerun")
            if done.outcome is Outcome.POISON:
                summary.poison.append(f"{key}: {done.change.doc_id}: {done.reason}")
        summary.stale += ledger.count(Disposition.STALE)
        summary.applied += ledger.count(Disposition.APPLIED)
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
    description = wait_for_export(
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
