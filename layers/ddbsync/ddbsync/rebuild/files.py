"""Index one archive object: its stream records, read as the indexer reads them, resumably.

An archive object is the gzip of newline-separated archive lines, each one stream record
as Lambda delivered it (plus ``tableName``, :mod:`ddbsync.archive.lines`). The object is
read as it is gunzipped (:func:`ddbsync.dynamodb.export_format.gzip_lines`: one line at a
time, whatever the object's size), cut into chunks mapped by the stream indexer's own
steps (:mod:`ddbsync.rebuild.chunks`: stream versions, rule 1 of docs/versioning.md, and
the window), and each chunk is sent with ``sending.send`` and settled with
``accounting.settle_writes``. The next chunk is read and decoded while the current one is
sent (:mod:`ddbsync.prefetch`).

Every line ends exactly once: applied, stale (the index holds a newer or equal change, or
the floor refused it), skipped by configuration (``TTL_REMOVES=keep``), outside the window,
poison, or failed (not sent: the object stops there). ``checkpoint`` is the last line whose
chunk OpenSearch fully acknowledged, so a call that runs out of time (or meets a write it
could not send) is resumed from there by the next one: no line is skipped, none is counted
twice. Poison (a line that is not JSON, a record that cannot be mapped or decoded, a
reserved attribute, a document OpenSearch rejects) raises
:class:`~ddbsync.errors.BackfillFileError` naming ``s3://bucket/key`` and the line, unless
``skip_poison``: then it is counted and the first 20 are kept for the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import ClientError

from ddbsync.accounting import ChangeOutcome, Disposition, Ledger, settle_writes
from ddbsync.config import Settings
from ddbsync.deadline import Deadline
from ddbsync.dynamodb.export_format import gzip_lines
from ddbsync.errors import BackfillFileError, ExportFormatError
from ddbsync.gcpause import paused_gc
from ddbsync.opensearch.bulk import Outcome, Write
from ddbsync.opensearch.floors import FLOOR_ERROR, View
from ddbsync.opensearch.sending import send
from ddbsync.opensearch.transport import Transport
from ddbsync.prefetch import prefetched
from ddbsync.rebuild.chunks import Chunk, Window, chunks

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MAX_POISON_KEPT", "ArchiveProgress", "PoisonLine", "ViewSource", "index_archive_object", "index_object",
]

MAX_POISON_KEPT = 20
# A fixed view, or a function that reads it again (before every chunk, and after writing).
ViewSource = View | Callable[[], View]


class PoisonLine(NamedTuple):
    key: str  # s3://bucket/key
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ArchiveProgress:
    """Where an object stands after one call; ``checkpoint`` is the last acknowledged line.

    ``skipped`` counts lines skipped by configuration, ``outside`` lines whose change is
    outside ``[since, until)`` (the partition of an hour holds the whole hour).
    """

    done: bool
    checkpoint: int
    applied: int
    stale: int
    skipped: int
    poison: int
    first_poison: tuple[PoisonLine, ...]
    outside: int = 0


@dataclass(slots=True)
class _Tally:
    checkpoint: int
    applied: int = 0
    stale: int = 0
    skipped: int = 0
    poison: int = 0
    outside: int = 0
    first_poison: list[PoisonLine] = field(default_factory=list)

    def progress(self, done: bool) -> ArchiveProgress:
        return ArchiveProgress(
            done, self.checkpoint, self.applied, self.stale, self.skipped, self.poison,
            tuple(self.first_poison), self.outside,
        )  # fmt: skip


def _retarget(writes: list[Write], aliases: list[str]) -> list[Write]:
    """The chunk's writes (made for one alias) for every alias of the view, the source shared."""
    if len(aliases) == 1 and all(w.target == aliases[0] for w in writes):
        return writes
    return [Write(alias, w.change, w.source, w.result) for w in writes for alias in aliases]


@dataclass(slots=True)
class _Object:
    """One object's run: where it is, how it writes, and its tally."""

    uri: str
    settings: Settings
    transport: Transport
    deadline: Deadline
    view: ViewSource | None
    skip_poison: bool
    tally: _Tally
    on_written: Callable[[str], None] | None = None
    ledger: Ledger = field(default_factory=Ledger)  # the chunk being sent

    def send(self, chunk: Chunk) -> bool:
        """Send one chunk and account for every line; False when a line is left unsent."""
        if chunk.writes:
            self.ledger = chunk.ledger
            for done in self._send(chunk.writes):
                # Applied, or stale (not by the floor): a document with this id is in the index.
                there = done.outcome in (Outcome.APPLIED, Outcome.STALE) and done.error_type != FLOOR_ERROR
                if done.outcome is Outcome.POISON:
                    for position in done.change.members:
                        chunk.reasons[position] = f"OpenSearch rejected the item: {done.reason}"
                elif there and self.on_written is not None:
                    self.on_written(done.change.doc_id)
        return self._account(chunk)

    def _send(self, writes: list[Write]) -> list[ChangeOutcome]:
        read = None if self.view is None or isinstance(self.view, View) else self.view
        now = read() if read is not None else self.view if isinstance(self.view, View) else None
        report = send(
            self.settings, writes if now is None else _retarget(writes, now.aliases), self.transport,
            self.deadline, view=now, reread=read, always_reread=read is not None,
        )  # fmt: skip
        return settle_writes(self.ledger, report.writes)

    def _account(self, chunk: Chunk) -> bool:
        tally = self.tally
        for position, line in enumerate(chunk.lines):
            reason = chunk.reasons.get(position)
            disposition = chunk.ledger.dispositions[position]
            if reason is not None:
                if not self.skip_poison:
                    raise BackfillFileError(self.uri, line, reason)
                tally.poison += 1
                if len(tally.first_poison) < MAX_POISON_KEPT:
                    tally.first_poison.append(PoisonLine(self.uri, line, reason))
            elif disposition is Disposition.FAILED or disposition is None:
                return False
            elif position in chunk.outside:
                tally.outside += 1
            elif disposition is Disposition.SKIPPED:
                tally.skipped += 1
            elif disposition is Disposition.STALE:
                tally.stale += 1
            else:
                tally.applied += 1
            tally.checkpoint = line
        return True


def index_archive_object(
    s3: S3Client, bucket: str, key: str, *, start_line: int, since: float | None,
    until: float | None, target: str, settings: Settings, transport: Transport,
    deadline: Deadline, view: View | None = None, skip_poison: bool = False,
) -> ArchiveProgress:  # fmt: skip
    """Index the lines after ``start_line`` of ``s3://bucket/key`` into ``target`` (see the module doc).

    Without ``view`` every write goes to ``target`` (a new index's ``<alias>-next``: no
    floor). With ``view`` the writes go to every alias in it (the live alias, and the next
    alias while a backfill runs), under the floor rule; ``target`` is its live alias.
    """
    return index_object(
        s3, bucket, key, start_line=start_line, since=since, until=until, target=target,
        settings=settings, transport=transport, deadline=deadline, view=view, skip_poison=skip_poison,
    )  # fmt: skip


@paused_gc()  # decoding makes no cycles; see ddbsync.gcpause
def index_object(
    s3: S3Client, bucket: str, key: str, *, start_line: int, since: float | None,
    until: float | None, target: str, settings: Settings, transport: Transport,
    deadline: Deadline, view: ViewSource | None = None, skip_poison: bool = False,
    on_chunk: Callable[[ArchiveProgress], None] | None = None,
    on_written: Callable[[str], None] | None = None,
) -> ArchiveProgress:  # fmt: skip
    """:func:`index_archive_object` for the runner: ``view`` may be a function that reads it
    again before every chunk (a long rebuild into the live alias); ``on_chunk`` sees the
    progress after every chunk, ``on_written`` the id of every document a write leaves."""
    uri = f"s3://{bucket}/{key}"
    run = _Object(uri, settings, transport, deadline, view, skip_poison, _Tally(start_line), on_written)
    first = view if view is None or isinstance(view, View) else view()
    chunk_target = first.aliases[0] if first is not None else target
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "error")
        raise BackfillFileError(uri, 0, f"cannot read the archive object: {code}") from None
    try:
        cut = chunks(gzip_lines(body, uri, start_line), settings, Window(since, until), chunk_target)
        with prefetched(cut) as ready:
            while True:
                if deadline.expired():
                    return run.tally.progress(False)
                prepared = next(ready, None)
                if prepared is None:
                    return run.tally.progress(True)
                sent = run.send(prepared)
                prepared = None  # let this chunk go before waiting for the next one
                if on_chunk is not None:
                    on_chunk(run.tally.progress(False))
                if not sent:
                    return run.tally.progress(False)
    except ExportFormatError as e:  # corrupt gzip, a line too long: the object cannot be read on
        raise BackfillFileError(uri, e.line, e.reason) from e
    finally:
        body.close()
