"""What ``ddbsync doctor`` probes: each feature ddbsync relies on, where it is used, what is lost without it.

The catalogue is data: the probes (:mod:`ddbsync.doctor.probes`) fill in a :class:`Finding` per
feature, and :func:`mode_of` names the mode the findings allow. ``used_by`` points at the
code that calls the feature (grep for it there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CORE", "FEATURES", "WORKS", "Feature", "Finding", "Mode", "feature", "mode_of"]

WORKS, REFUSED, ABSENT, UNTESTED = "works", "refused", "absent", "untested"

# Groups: without a core feature nothing works; without a backfill or purge feature that
# command cannot run, and the stream indexer, replay and repair still can.
CORE, BACKFILL, PURGE = "core", "backfill", "purge"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    group: str
    probe: str  # what the probe does, in one line
    used_by: str
    without: str


FEATURES: tuple[Feature, ...] = (
    Feature(
        "create_index",
        CORE,
        "PUT <index> with ddbsync's _ddbsync mapping",
        "opensearch/indices.py ensure_index, create_backfill_index",
        "ddbsync cannot create its index: nothing can run",
    ),
    Feature(
        "mapping_meta",
        BACKFILL,
        "PUT <index>/_mapping with _meta.ddbsync.floor, read back",
        "opensearch/indices.py create_backfill_index (writes the floor), read_view (reads it)",
        "a backfill index cannot carry its snapshot floor: no backfill",
    ),
    Feature(
        "settings_replicas",
        BACKFILL,
        "PUT <index>/_settings number_of_replicas=0, read back",
        "opensearch/indices.py create_backfill_index, finalize_backfill",
        "the backfill cannot create or finalize its index: no backfill",
    ),
    Feature(
        "settings_refresh_interval",
        BACKFILL,
        "PUT <index>/_settings refresh_interval=-1 then 1s, read back",
        "opensearch/indices.py create_backfill_index, finalize_backfill",
        "the backfill cannot create or finalize its index: no backfill",
    ),
    Feature(
        "filtered_alias",
        CORE,
        "POST _aliases: a write alias with the tombstone filter, read back",
        "opensearch/indices.py ensure_index (the live alias), finalize_backfill (the swap)",
        "the live alias cannot hide tombstones (ensure_index fails with MANAGE_INDEX=true)",
    ),
    Feature(
        "require_alias",
        CORE,
        "_bulk require_alias=true: lands through an alias, refused on a concrete index",
        "opensearch/bulk.py (every write), opensearch/conflicts.py and opensearch/floors.py",
        "refused: no write lands; ignored: a write to a missing alias creates a concrete index",
    ),
    Feature(
        "external_version",
        CORE,
        "_bulk version_type=external: version 5, then 3 (must be 409), then 7",
        "opensearch/bulk.py: every write of every flow (docs/versioning.md)",
        "writes cannot be ordered: an older change could overwrite a newer one; nothing can run",
    ),
    Feature(
        "mget",
        CORE,
        "_mget of a stored id and a missing one, with _version, _seq_no, _primary_term",
        "opensearch/transport.py mget, for opensearch/conflicts.py and opensearch/floors.py",
        "same-second conflicts cannot be settled: such writes stay unsent and retry",
    ),
    Feature(
        "if_seq_no",
        CORE,
        "_bulk if_seq_no/if_primary_term: lands once, the same pair again is 409",
        "opensearch/conflicts.py (same-second conflicts), opensearch/floors.py (floor tombstones)",
        "same-second conflicts cannot be settled: such writes stay unsent and retry",
    ),
    Feature(
        "refresh",
        BACKFILL,
        "POST <index>/_refresh",
        "opensearch/indices.py finalize_backfill (before counting the new index)",
        "the backfill cannot count its index before the swap: no backfill",
    ),
    Feature(
        "alias_filter_search",
        CORE,
        "a search through that alias leaves out a tombstone the index holds",
        "every search through the live alias (your users)",
        "searches through the alias return deleted items",
    ),
    Feature(
        "delete_by_query",
        PURGE,
        "POST <index>/_delete_by_query on _ddbsync.deleted: true",
        "ddbsync purge-tombstones (issue #10, part 3)",
        "tombstones cannot be purged: the index grows with every delete",
    ),
)

_BY_NAME = {f.name: f for f in FEATURES}


def feature(name: str) -> Feature:
    return _BY_NAME[name]


@dataclass(frozen=True, slots=True)
class Finding:
    """What the probe of one feature found: works, refused, absent or untested."""

    name: str
    status: str
    http_status: int | None = None
    reason: str = ""

    @property
    def works(self) -> bool:
        return self.status == WORKS


@dataclass(frozen=True, slots=True)
class Mode:
    """The mode the findings allow: ``full``, ``partial`` or ``unsupported``."""

    name: str
    summary: str
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.name == "full"


def mode_of(findings: Sequence[Finding]) -> Mode:
    """Name the mode: every feature works (full), only backfill/purge ones miss (partial), or not."""
    missing = tuple(f.name for f in findings if not f.works)
    if not missing:
        return Mode("full", "full: stream indexer, backfill, replay, repair and purge can all run", ())
    core = [name for name in missing if feature(name).group == CORE]
    if core:
        return Mode(
            "unsupported",
            f"unsupported: ddbsync cannot keep this target in step (missing {', '.join(core)})",
            missing,
        )
    lost = sorted({feature(name).group for name in missing})
    return Mode(
        "partial",
        f"partial: the stream indexer, replay and repair can run; do not run {' or '.join(lost)} "
        f"(missing {', '.join(missing)})",
        missing,
    )
