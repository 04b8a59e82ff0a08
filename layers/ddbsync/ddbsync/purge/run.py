"""Delete the tombstones older than a horizon H, after making sure nothing they guard can land.

For each physical index behind the live alias (and ``<alias>-next`` while a backfill runs,
since it becomes the live index at the swap and the stream writes tombstones there too):

1. raise the index's **purge floor** (``_meta.ddbsync.purged``) to ``H + 1`` (never lower
   it: the higher floor wins), then read it back through the writers' own view;
2. wait ``settle_s``: a writer may use a view up to ``NEXT_ALIAS_CHECK_SECONDS`` old, and a
   request it started may still be in flight;
3. delete-by-query, on the physical index (the alias hides tombstones from queries, so a
   delete-by-query through it would match nothing), the documents with
   ``_ddbsync.deleted: true`` and ``_ddbsync.ts < H``, as a task whose progress is polled;
   ``conflicts=proceed``: a tombstone rewritten meanwhile by a newer change is kept;
4. read the floors again: a concurrent purge that lowered ours (``_meta`` is replaced as a
   whole) is undone and reported.

Every write a purged tombstone would have beaten is below ``floor_version(H + 1)``, so it is
refused as stale instead of bringing the item back (docs/versioning.md, "Purging tombstones").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from opensearchpy import exceptions as os_exc

from ddbsync.deadline import Deadline
from ddbsync.errors import IndexAdminError, PurgeError
from ddbsync.mapping import META_FIELD
from ddbsync.opensearch.floors import Target, purged_of_mappings
from ddbsync.opensearch.indices import read_view

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

__all__ = ["IndexPurge", "PurgeSummary", "purge_tombstones", "raise_purge_floor", "tombstone_query"]

_META_KEY = "ddbsync"
_ROUND = 1000  # tombstones per round where the server has no _delete_by_query


def tombstone_query(horizon: int | None = None) -> dict[str, object]:
    """Tombstones (``_ddbsync.deleted: true``); with ``horizon``, only those of a second before it."""
    found: list[dict[str, object]] = [{"term": {f"{META_FIELD}.deleted": True}}]
    if horizon is not None:
        found.append({"range": {f"{META_FIELD}.ts": {"lt": horizon, "format": "epoch_second"}}})
    return {"query": {"bool": {"filter": found}}}


@dataclass(slots=True)
class IndexPurge:
    """What the purge did on one physical index."""

    alias: str
    index: str
    tombstones: int = 0  # every tombstone in the index when counted
    older: int = 0  # tombstones of a second before the horizon, when counted
    purge_floor_before: int | None = None
    purge_floor: int | None = None
    deleted: int = 0
    conflicts: int = 0  # rewritten by a newer change meanwhile: kept
    task: str | None = None
    done: bool = False
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PurgeSummary:
    """The whole run: what ``--json`` prints and the Lambda returns."""

    alias: str
    horizon: int
    dry_run: bool
    indices: list[IndexPurge] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.dry_run or all(p.done and not p.failures for p in self.indices)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def raise_purge_floor(client: OpenSearch, index: str, floor: int) -> tuple[int | None, int]:
    """Set ``_meta.ddbsync.purged`` of ``index`` to at least ``floor``; (before, after).

    ``_meta`` is replaced as a whole by a mapping update, so every other key (the snapshot
    floor among them) is read and written back unchanged.
    """
    found = client.indices.get_mapping(index=index)
    mappings = found.get(index, {}).get("mappings", {}) if isinstance(found, dict) else {}
    before = purged_of_mappings(mappings)
    if before is not None and before >= floor:
        return before, before
    meta = mappings.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    ours = meta.get(_META_KEY)
    ours = ours if isinstance(ours, dict) else {}
    client.indices.put_mapping(index=index, body={"_meta": {**meta, _META_KEY: {**ours, "purged": floor}}})
    return before, floor


def purge_tombstones(
    client: OpenSearch,
    alias: str,
    horizon: int,
    *,
    dry_run: bool = False,
    settle_s: float = 0.0,
    deadline: Deadline | None = None,
    progress: Callable[[str], None] = lambda line: None,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> PurgeSummary:
    """Purge the tombstones older than ``horizon`` (epoch seconds) behind ``alias``; see the module doc.

    Raises PurgeError when the alias cannot be read or a floor cannot be raised (nothing
    was deleted then); a failed or unfinished delete is reported in the summary.
    """
    summary = PurgeSummary(alias, horizon, dry_run)
    try:
        targets = _targets(client, alias)
        for target in targets:
            summary.indices.append(_counted(client, target, horizon))
        if dry_run:
            return summary
        floor = horizon + 1
        for purge in summary.indices:
            purge.purge_floor_before, purge.purge_floor = raise_purge_floor(client, purge.index, floor)
            progress(f"{purge.index}: purge floor {purge.purge_floor} (was {purge.purge_floor_before})")
        _check_floors(client, alias, summary, floor)
        if settle_s > 0:
            progress(f"waiting {settle_s:g}s for every writer to read the new floor")
            sleep(settle_s)
    except os_exc.TransportError as e:
        raise PurgeError(f"cannot prepare the purge of {alias!r}: {e.error} (HTTP {e.status_code})") from e
    for purge in summary.indices:
        _delete(client, purge, horizon, deadline, progress, poll_s, sleep)
    summary.warnings += _floors_kept(client, alias, summary, floor)
    return summary


def _targets(client: OpenSearch, alias: str) -> list[Target]:
    view = read_view(client, alias)
    if view.live.index is None:
        raise PurgeError(f"the alias {alias!r} does not exist (or has no write index): nothing to purge")
    return [t for t in view.targets if t.index is not None]


def _counted(client: OpenSearch, target: Target, horizon: int) -> IndexPurge:
    assert target.index is not None
    # A backfill's index does not refresh on its own (refresh_interval -1) until its swap.
    client.indices.refresh(index=target.index)
    purge = IndexPurge(target.alias, target.index, purge_floor_before=target.purged)
    purge.purge_floor = target.purged
    purge.tombstones = int(client.count(index=target.index, body=tombstone_query())["count"])
    purge.older = int(client.count(index=target.index, body=tombstone_query(horizon))["count"])
    return purge


def _check_floors(client: OpenSearch, alias: str, summary: PurgeSummary, floor: int) -> None:
    """Read the floors back as a writer does; refuse to delete anything if one is missing."""
    seen = {t.index: t for t in read_view(client, alias).targets if t.index is not None}
    for purge in summary.indices:
        target = seen.get(purge.index)
        if target is None:  # a backfill swapped the alias and deleted the index meanwhile
            summary.warnings.append(f"{purge.index} no longer serves {purge.alias}: skipped")
            purge.done = True
            purge.older = 0
        elif (target.purged or 0) < floor:
            raise PurgeError(
                f"{purge.index}: the purge floor reads {target.purged}, not {floor}: nothing deleted"
            )


def _delete(
    client: OpenSearch,
    purge: IndexPurge,
    horizon: int,
    deadline: Deadline | None,
    progress: Callable[[str], None],
    poll_s: float,
    sleep: Callable[[float], None],
) -> None:
    if purge.done:
        return
    params = {"wait_for_completion": "false", "conflicts": "proceed", "refresh": "true"}
    try:
        client.indices.refresh(index=purge.index)  # what was written before the wait is seen
        try:
            started = client.delete_by_query(index=purge.index, body=tombstone_query(horizon), params=params)
        except os_exc.RequestError as e:
            if "no handler found" not in str(e.error):
                raise
            progress(f"{purge.index}: the server has no _delete_by_query; deleting in rounds of {_ROUND}")
            _delete_in_rounds(client, purge, horizon, deadline, progress)
            return
        purge.task = str(started["task"])
        _follow_task(client, purge, deadline, progress, poll_s, sleep)
    except os_exc.TransportError as e:
        purge.failures.append(f"delete-by-query failed: {e.error} (HTTP {e.status_code})")


def _follow_task(
    client: OpenSearch,
    purge: IndexPurge,
    deadline: Deadline | None,
    progress: Callable[[str], None],
    poll_s: float,
    sleep: Callable[[float], None],
) -> None:
    assert purge.task is not None
    while True:
        task = client.tasks.get(task_id=purge.task)
        status = task.get("task", {}).get("status", {})
        purge.deleted = int(status.get("deleted", 0))
        purge.conflicts = int(status.get("version_conflicts", 0))
        progress(f"{purge.index}: {purge.deleted}/{status.get('total', '?')} tombstones deleted")
        if task.get("completed"):
            _finished(purge, task)
            return
        if deadline is not None and deadline.left_s() <= poll_s:
            purge.failures.append(f"still running as task {purge.task} when time ran out")
            return
        sleep(poll_s)


def _delete_in_rounds(
    client: OpenSearch,
    purge: IndexPurge,
    horizon: int,
    deadline: Deadline | None,
    progress: Callable[[str], None],
) -> None:
    """What delete-by-query does, for a server without it (the reindex module).

    Each round searches the first :data:`_ROUND` matching tombstones with their sequence
    numbers and deletes them with ``if_seq_no``/``if_primary_term`` (a tombstone rewritten
    meanwhile is kept: 409), refreshing so the next round does not see them again.
    """
    body = {**tombstone_query(horizon), "size": _ROUND, "seq_no_primary_term": True, "_source": False}
    while deadline is None or not deadline.expired():
        hits = client.search(index=purge.index, body=body)["hits"]["hits"]
        lines = [
            {"delete": {"_index": purge.index, "_id": h["_id"], "if_seq_no": h["_seq_no"],
                        "if_primary_term": h["_primary_term"]}}
            for h in hits
        ]  # fmt: skip
        if not lines:
            purge.done = True
            return
        answer = client.bulk(body=lines, index=purge.index, params={"refresh": "true"})
        statuses = [next(iter(item.values())).get("status") for item in answer["items"]]
        deleted = statuses.count(200)
        purge.deleted += deleted
        purge.conflicts += statuses.count(409) + statuses.count(404)
        purge.failures += [f"delete answered HTTP {s}" for s in statuses if s not in (200, 404, 409)][:5]
        progress(f"{purge.index}: {purge.deleted} tombstones deleted")
        if purge.failures or deleted == 0:  # only conflicts: the rest was rewritten meanwhile
            purge.done = not purge.failures
            return
    purge.failures.append("time ran out before every old tombstone was deleted")


def _finished(purge: IndexPurge, task: dict[str, Any]) -> None:
    response = task.get("response") or {}
    purge.deleted = int(response.get("deleted", purge.deleted))
    purge.conflicts = int(response.get("version_conflicts", purge.conflicts))
    failures = list(response.get("failures") or [])
    if task.get("error"):
        failures.append(task["error"])
    purge.failures += [str(f.get("cause", f) if isinstance(f, dict) else f)[:300] for f in failures[:5]]
    purge.done = True


def _floors_kept(client: OpenSearch, alias: str, summary: PurgeSummary, floor: int) -> list[str]:
    """Raise again a purge floor that a concurrent purge lowered (``_meta`` is replaced whole)."""
    warnings = []
    try:
        for target in read_view(client, alias).targets:
            ours = next((p for p in summary.indices if p.index == target.index), None)
            if ours is not None and (target.purged or 0) < floor:
                raise_purge_floor(client, ours.index, floor)
                warnings.append(f"{ours.index}: the purge floor was lowered meanwhile and raised again")
    except (os_exc.TransportError, IndexAdminError) as e:
        warnings.append(f"cannot read the purge floors back: {e}")
    return warnings
