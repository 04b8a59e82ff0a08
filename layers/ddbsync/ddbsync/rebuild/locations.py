"""Where the archive is: ``s3://bucket/prefix`` parsed, and its objects listed for a window.

Firehose writes the archive as ``table=<t>/dt=YYYY-MM-DD/hour=HH/<name>.gz`` (UTC hour of
each record's ``ApproximateCreationDateTime``) and its failures under ``errors/...``. The
prefix given may be the bucket root, ``table=<t>/``, or deeper (a day, an hour).

With a window ``[since, until)`` the listing walks the partitions level by level
(``ListObjectsV2`` with ``Delimiter="/"``) and only descends into the ``dt=`` days and
``hour=`` hours that overlap the window: a one-hour window lists one hour's objects plus a
handful of folder names, never the whole archive. A day wholly inside the window is listed
flat. Without a window everything under the prefix is listed flat. Objects under an
``errors/`` folder are never indexed; they are counted for the summary.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from ddbsync.errors import RebuildError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ArchiveListing",
    "ArchiveLocation",
    "ArchiveObject",
    "is_archive_object",
    "list_archive",
    "parse_archive_uri",
]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DAY = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_HOUR = re.compile(r"hour=(\d{2})")
_ERRORS = "errors"
HOUR_S = 3600
DAY_S = 24 * HOUR_S


@dataclass(frozen=True, slots=True)
class ArchiveLocation:
    """An archive prefix: ``prefix`` is "" (bucket root) or ends with "/" when it names a folder."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class ArchiveObject:
    key: str
    size: int


@dataclass(slots=True)
class ArchiveListing:
    """The objects to index (sorted by key) and how many ``errors/`` objects were left out."""

    objects: list[ArchiveObject] = field(default_factory=list)
    errors_skipped: int = 0
    requests: int = 0


def parse_archive_uri(text: str) -> ArchiveLocation:
    """``s3://bucket[/prefix]``; RebuildError (one line) for anything else.

    A prefix whose last part is a whole partition (``table=t``, ``dt=2026-01-31``,
    ``hour=05``) gets its "/" so that ``table=t`` does not also match ``table=t2``.
    """
    value = text.strip()
    if not value.startswith("s3://"):
        raise RebuildError(f"--from-archive must be an s3://bucket/prefix URI, got {text!r}", usage=True)
    bucket, _, prefix = value[len("s3://"):].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise RebuildError(f"--from-archive: {bucket!r} is not an S3 bucket name (in {text!r})", usage=True)
    last = prefix.rsplit("/", 1)[-1]
    if last and (last.startswith("table=") or _DAY.fullmatch(last) or _HOUR.fullmatch(last)):
        prefix += "/"
    return ArchiveLocation(bucket, prefix)


def _overlaps(start: float, end: float, since: float | None, until: float | None) -> bool:
    """Whether ``[start, end)`` meets ``[since, until)`` (None: unbounded)."""
    return (until is None or start < until) and (since is None or end > since)


def _day_start(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def partition_span(key: str) -> tuple[float, float] | None:
    """The time span ``[start, end)`` a key's ``dt=``/``hour=`` folders cover, None if it has no ``dt=``."""
    parts = key.split("/")[:-1]
    day = next((_day_start(m.group(1)) for p in parts if (m := _DAY.fullmatch(p))), None)
    if day is None:
        return None
    hour = next((int(m.group(1)) for p in parts if (m := _HOUR.fullmatch(p))), None)
    if hour is None or hour > 23:
        return day, day + DAY_S
    return day + hour * HOUR_S, day + (hour + 1) * HOUR_S


def _is_error(key: str) -> bool:
    return _ERRORS in key.split("/")[:-1]


def is_archive_object(key: str) -> bool:
    """False for a "folder" key and for Firehose's error output (anything under an ``errors/`` folder)."""
    return not key.endswith("/") and not _is_error(key)


class _Lister:
    def __init__(self, s3: S3Client, bucket: str, since: float | None, until: float | None) -> None:
        self.s3, self.bucket, self.since, self.until = s3, bucket, since, until
        self.listing = ArchiveListing()

    def pages(self, prefix: str, delimiter: bool) -> Iterator[tuple[list[ArchiveObject], list[str]]]:
        kwargs: dict[str, str] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = "/"
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):  # type: ignore[arg-type]
                self.listing.requests += 1
                objects = [ArchiveObject(o["Key"], int(o.get("Size", 0))) for o in page.get("Contents", [])]
                yield objects, [str(p["Prefix"]) for p in page.get("CommonPrefixes", [])]
        except ClientError as e:
            error = e.response.get("Error", {})
            code = error.get("Code", "")
            if code == "NoSuchBucket":
                raise RebuildError(
                    f"the archive bucket {self.bucket!r} does not exist (NoSuchBucket)", usage=True
                ) from None
            message = f"{code or 'error'} {error.get('Message', '')}".strip()
            raise RebuildError(f"cannot list s3://{self.bucket}/{prefix}: {message}") from None

    def keep(self, obj: ArchiveObject, root: str) -> None:
        if obj.key.endswith("/"):
            return  # a folder marker made by a console, not an object Firehose wrote
        span = partition_span(obj.key)
        if span is not None and not _overlaps(*span, self.since, self.until):
            return
        if _is_error(obj.key):
            self.listing.errors_skipped += 1
        else:
            self.listing.objects.append(obj)

    def flat(self, prefix: str, root: str) -> None:
        for objects, _ in self.pages(prefix, delimiter=False):
            for obj in objects:
                self.keep(obj, root)

    def walk(self, prefix: str, root: str) -> None:
        """List ``prefix`` (a folder or the root) one level down, descending only where the window is."""
        for objects, folders in self.pages(prefix, delimiter=True):
            for obj in objects:
                self.keep(obj, root)
            for folder in folders:
                span = partition_span(folder + "x")
                if span is None:
                    self.walk(folder, root)  # table=..., errors/..., any other folder
                elif not _overlaps(*span, self.since, self.until):
                    continue
                elif _within(span, self.since, self.until) or _HOUR.fullmatch(folder.split("/")[-2]):
                    self.flat(folder, root)
                else:
                    self.walk(folder, root)  # a day the window cuts: list its hours


def _within(span: tuple[float, float], since: float | None, until: float | None) -> bool:
    return (since is None or span[0] >= since) and (until is None or span[1] <= until)


def list_archive(
    s3: S3Client, location: ArchiveLocation, since: float | None = None, until: float | None = None
) -> ArchiveListing:
    """The archive objects under ``location`` that may hold records of ``[since, until)``, by key."""
    lister = _Lister(s3, location.bucket, since, until)
    prefix = location.prefix
    span = partition_span(prefix + "x")
    if since is None and until is None:
        lister.flat(prefix, prefix)
    elif span is not None and not _overlaps(*span, since, until):
        for _ in lister.pages(prefix, delimiter=True):  # a day or an hour outside the window:
            break  # nothing to list, but a missing bucket is still said
    elif prefix == "" or prefix.endswith("/"):
        lister.walk(prefix, prefix)
    else:
        lister.flat(prefix, prefix)  # a partial name ("table=t/dt=2026-01"): keys filtered one by one
    lister.listing.objects.sort(key=lambda o: o.key)
    return lister.listing
