"""``verify --repair``: fix confirmed drift under the versioning rules (docs/versioning.md).

**The version.** Every repair write of a verify that started at time T gets
``newest = export_version(T) = (floor(T) << 20) - 1``, the version of an export item
taken at T (rule 4), ranked like one (``export_ordering(T)``; stored as
``_ddbsync.source = "repair"`` with ``ts = floor(T) - 1``, which ``conflicts`` ranks the
same way).

* Why it is sound: the item is read again (``BatchGetItem``, strongly consistent) after
  T, so its image reflects every change of a second before ``floor(T)``: every change
  whose version is below ``newest``. Winning over those is right. Every change made
  later is of second ``floor(T)`` or later, so its version is above ``newest``: the
  repair never overwrites it, and when it arrives it wins. In particular a write made
  between the scan and the repair is left alone (the tests show it).
* Why not ``repair_version``: it stands for an incremental-export record's write time,
  and relies on the export's compaction (nothing changed the item after it within the
  window); a Scan gives no write time, only the time it was read.
* Missing and stale: the item's current image is written. An item gone by the time of
  the repair read was deleted after T: its delete reaches the index through the stream.
* Extra: a tombstone at ``newest``. It beats the live document (which is below
  ``newest``, else it was not judged) and loses to any real write of second ``floor(T)``
  or later, such as the item being created again.

Writes go through :func:`ddbsync.opensearch.sending.send` with the live alias's view, so
the snapshot-floor rule applies (and ``<alias>-next`` gets the same writes while a
backfill runs), and are accounted with :mod:`ddbsync.accounting`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.accounting import Disposition, Ledger, settle_writes
from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.dynamodb.keys import document_id
from ddbsync.errors import DdbsyncError, IndexAdminError, VerifyError
from ddbsync.mapping import Change, document_meta, image_body, tombstone_body
from ddbsync.opensearch.bulk import Outcome, make_writes
from ddbsync.opensearch.indices import read_view
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import OpenSearchTransport
from ddbsync.verify.compare import Drift
from ddbsync.versioning import export_ordering, export_version

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from opensearchpy import OpenSearch

__all__ = ["Candidate", "FixCounts", "repair_drift"]

BATCH_GET = 100  # DynamoDB's BatchGetItem limit
CHUNK_BUDGET_S = 120.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A confirmed drift: its kind, document id and (for missing/stale) the item's key."""

    kind: Drift
    doc_id: str
    key: dict[str, Any] | None


@dataclass(slots=True)
class FixCounts:
    """What ``--repair`` did: written, lost to a newer write, gone since the scan, rejected."""

    written: int = 0
    newer_kept: int = 0
    gone: int = 0
    rejected: int = 0
    unsent: int = 0


def _batch_get(ddb: DynamoDBClient, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET):
        request: dict[str, Any] = {table: {"Keys": keys[start : start + BATCH_GET], "ConsistentRead": True}}
        for attempt in range(10):
            try:
                got = ddb.batch_get_item(RequestItems=request)
            except (ClientError, BotoCoreError) as e:
                raise VerifyError(f"cannot read items of {table!r} for the repair: {e}") from e
            items += got.get("Responses", {}).get(table, [])
            request = got.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise VerifyError(f"DynamoDB kept {table!r} keys unprocessed: rerun the repair")
    return items


def _changes(
    candidates: Sequence[Candidate], items: list[dict[str, Any]], settings: Settings, started: float,
) -> list[Change]:  # fmt: skip
    newest, ordering = export_version(started), export_ordering(started)
    second = math.floor(started) - 1
    tombstone = tombstone_body(document_meta("repair", second, deleted=True))
    extras = [c.doc_id for c in candidates if c.kind is Drift.EXTRA]
    changes = [Change(doc_id, "tombstone", newest, ordering, tombstone, None) for doc_id in extras]
    for item in items:
        doc_id = document_id(item, settings.partition_key, settings.sort_key)
        body = image_body(item, document_meta("repair", second))
        changes.append(Change(doc_id, "index", newest, ordering, body, None))
    return changes


def repair_drift(
    candidates: Sequence[Candidate], *, settings: Settings, table: str, ddb: DynamoDBClient,
    client: OpenSearch, started: float,
) -> FixCounts:  # fmt: skip
    """Write the fixes for one chunk of confirmed drift; see the module docstring for the version."""
    counts = FixCounts()
    keys = [c.key for c in candidates if c.kind is not Drift.EXTRA and c.key is not None]
    items = _batch_get(ddb, table, keys)
    counts.gone = len(keys) - len(items)
    try:
        changes = _changes(candidates, items, settings, started)
    except DdbsyncError as e:  # the item became undecodable since the scan
        raise VerifyError(f"an item cannot be made a document: {e}") from e
    for position, change in enumerate(changes):
        change.members = (position,)
    try:
        view = read_view(client, settings.index_alias)
    except IndexAdminError as e:
        raise VerifyError(str(e)) from e
    end = time.monotonic() + CHUNK_BUDGET_S
    report = send(
        settings, make_writes(changes, view.aliases), OpenSearchTransport(client),
        Deadline(lambda: int((end - time.monotonic()) * 1000), 0),
        view=view, reread=lambda: read_view(client, settings.index_alias), always_reread=True,
    )  # fmt: skip
    ledger = Ledger.of(len(changes))
    for done in settle_writes(ledger, report.writes):
        if done.outcome is Outcome.POISON:
            counts.rejected += 1
    counts.written += ledger.count(Disposition.APPLIED)
    counts.newer_kept += ledger.count(Disposition.STALE)
    counts.unsent += ledger.count(Disposition.FAILED)
    return counts
