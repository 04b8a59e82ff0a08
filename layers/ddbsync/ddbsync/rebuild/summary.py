"""The end of a rebuild: what it counted, and the lines that say so."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from ddbsync.rebuild.files import MAX_POISON_KEPT, ArchiveProgress, PoisonLine

__all__ = ["RebuildSummary", "lines_of", "print_summary"]


@dataclass(slots=True)
class RebuildSummary:
    location: str
    into: str
    objects_total: int = 0
    objects: int = 0
    lines: int = 0
    applied: int = 0
    stale: int = 0
    skipped: int = 0
    outside: int = 0
    poison: int = 0
    first_poison: list[PoisonLine] = field(default_factory=list)
    errors_skipped: int = 0
    failed: list[str] = field(default_factory=list)  # objects that could not be indexed, with why
    new_index: str | None = None
    swapped: bool = False
    seconds: float = 0.0

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def add(self, p: ArchiveProgress) -> None:
        self.applied += p.applied
        self.stale += p.stale
        self.skipped += p.skipped
        self.outside += p.outside
        self.poison += p.poison
        self.lines += lines_of(p)
        self.first_poison.extend(p.first_poison[: MAX_POISON_KEPT - len(self.first_poison)])


def lines_of(p: ArchiveProgress) -> int:
    return p.applied + p.stale + p.skipped + p.outside + p.poison


def print_summary(summary: RebuildSummary, out: TextIO) -> None:
    s = summary
    print(
        f"   {s.objects}/{s.objects_total} objects ({s.errors_skipped} errors/ objects skipped), "
        f"{s.lines:,} lines in {s.seconds:.1f} s ({s.lines_per_s:,.0f} lines/s): {s.applied:,} applied, "
        f"{s.stale:,} stale, {s.skipped:,} skipped (TTL_REMOVES=keep), {s.outside:,} outside the window, "
        f"{s.poison:,} poison",
        file=out,
    )
    if s.swapped:
        print(f"   swapped: {s.new_index} now serves the alias", file=out)
    for p in s.first_poison:
        print(f"   POISON {p.key}, line {p.line}: {p.reason}", file=out)
    for failure in s.failed:
        print(f"   FAILED {failure}", file=out)
