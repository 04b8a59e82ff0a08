"""Every error ddbsync raises on purpose, in one tree.

::

    DdbsyncError
    ├── ConfigError              bad or missing settings (every problem in one message)
    ├── DecodeError              a DynamoDB-JSON value that cannot be decoded (with its path)
    │   └── UnknownTypeTagError  a type tag outside S N B BOOL NULL M L SS NS BS
    ├── RecordError              a stream record that cannot be mapped to an action (poison)
    ├── ExportFormatError        an export data file that cannot be read (file key and line)
    ├── ManifestError            an export manifest that is missing or malformed (object key)
    ├── RangeUnavailable         the stream no longer holds a batch pointer's range (replay)
    ├── TransportError           a whole OpenSearch request failed (status None: no answer)
    ├── IndexAdminError          the index or alias cannot be created, read or updated
    ├── DeadLetterError          the record DLQ (or the dead-letter bucket) refused a letter or could
    │                            not be reached, or a letter too big for SQS had no bucket
    ├── AccountingError          a record was given two outcomes (a bug: the invocation fails)
    ├── BackfillError            a backfill step cannot go on
    │   ├── BackfillFileError    an export item that cannot be indexed (file key and line)
    │   └── MapRunError          a Distributed Map's children failed (s3 uri and line of the first)
    ├── RepairError              a repair cannot go on
    ├── RebuildError             a rebuild from the archive cannot go on (bad URI, no objects...)
    ├── PurgeError               a tombstone purge cannot go on
    │   └── PurgeWindowError     the purge window is malformed or shorter than the replay window
    ├── StackError               a deployed stack cannot be read (missing, no access, an output
    │                            it should have is not there)
    └── VerifyError              a verify (table against index) cannot go on

Poison, the bad input that goes to the DLQ whole with its reason, is a DecodeError or
a RecordError: nothing else (no ValueError, no TypeError) means "this record is bad".
Errors carry their context as attributes; code never branches on message text.
"""

from __future__ import annotations

__all__ = [
    "AccountingError",
    "BackfillError",
    "BackfillFileError",
    "ConfigError",
    "DdbsyncError",
    "DeadLetterError",
    "DecodeError",
    "ExportFormatError",
    "IndexAdminError",
    "ManifestError",
    "MapRunError",
    "PurgeError",
    "PurgeWindowError",
    "RangeUnavailable",
    "RebuildError",
    "RecordError",
    "RepairError",
    "StackError",
    "TransportError",
    "UnknownTypeTagError",
    "VerifyError",
]


class DdbsyncError(Exception):
    """Root of every error ddbsync raises on purpose."""


class ConfigError(DdbsyncError):
    """The settings are unusable; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid ddbsync configuration:\n  - " + "\n  - ".join(self.problems))


class DecodeError(DdbsyncError):
    """A DynamoDB-JSON value cannot be decoded. ``path`` locates it in the item (``m.tags[2]``)."""

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(reason)

    def within(self, outer: str) -> DecodeError:
        """Locate this error inside ``outer`` (an attribute name, ``[i]`` or ``$``); returns self.

        The decoder builds paths from the inside out, only when an error travels up.
        """
        inner = self.path
        self.path = outer if not inner else outer + inner if inner.startswith("[") else f"{outer}.{inner}"
        return self

    def __str__(self) -> str:
        return f"{self.reason} at {self.path}" if self.path else self.reason


class UnknownTypeTagError(DecodeError):
    """A value carries a type tag DynamoDB does not define."""

    def __init__(self, tag: str, path: str = "") -> None:
        self.tag = tag
        super().__init__(f"unknown DynamoDB type tag {tag!r}", path)


class RecordError(DdbsyncError):
    """A stream record cannot be turned into an OpenSearch action."""

    def __init__(self, reason: str, sequence_number: str | None = None) -> None:
        self.reason = reason
        self.sequence_number = sequence_number
        where = f" (record {sequence_number})" if sequence_number else ""
        super().__init__(f"{reason}{where}")


class ExportFormatError(DdbsyncError):
    """An export data file cannot be read: corrupt gzip, bad line, unknown Ion type.

    ``key`` is the S3 object key of the data file, ``line`` the 1-based line number
    (the line being read when the gzip stream itself broke).
    """

    def __init__(self, key: str, line: int, reason: str) -> None:
        self.key = key
        self.line = line
        self.reason = reason
        super().__init__(f"{key} line {line}: {reason}")


class ManifestError(DdbsyncError):
    """An export manifest is missing, is not valid JSON, or lacks a required field."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class RangeUnavailable(DdbsyncError):
    """The stream no longer holds (all of) a batch pointer's range."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TransportError(DdbsyncError):
    """A whole OpenSearch request failed. ``status`` is None for connection errors and timeouts."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"{reason} (HTTP {status})" if status else reason)


class IndexAdminError(DdbsyncError):
    """Creating, reading or updating the index, its mapping or its alias failed."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"{reason} (HTTP {status})" if status else reason)


class DeadLetterError(DdbsyncError):
    """Sending poison records to the record DLQ failed; they stay unhandled.

    ``failed_ids`` are the sequence numbers of the letters not accepted: refused by SQS,
    SQS or S3 unreachable, or too big for an SQS message with no ``DEAD_LETTER_BUCKET``.
    """

    def __init__(self, reason: str, failed_ids: list[str] | None = None) -> None:
        self.reason = reason
        self.failed_ids = list(failed_ids or [])
        super().__init__(reason)


class AccountingError(DdbsyncError):
    """A record was given two outcomes: a bug, so the invocation fails and Lambda retries it all."""


class BackfillError(DdbsyncError):
    """A backfill step cannot go on; the message says where and why."""


class BackfillFileError(BackfillError):
    """An export item that cannot be indexed: the backfill stops, the alias is not swapped."""

    def __init__(self, key: str, line: int, reason: str) -> None:
        self.key = key
        self.line = line
        self.reason = reason
        super().__init__(f"{key}, line {line}: {reason}")


class MapRunError(BackfillError):
    """A Distributed Map run failed: the message names the file and line of its first failures.

    Step Functions reports only ``States.ExceedToleratedFailureThreshold`` to the parent;
    the backfill's ``report_map_failures`` step reads the children's errors back from the
    Map's ResultWriter files and raises this with them.
    """


class RepairError(DdbsyncError):
    """The repair cannot go on; the message says where and why."""


class RebuildError(DdbsyncError):
    """A rebuild from the archive cannot go on; the message says where and why (one line).

    ``usage`` marks a mistake in what was asked (a bad URI or window, a missing bucket,
    no objects, no live alias to write into): the command exits 2, not 1.
    """

    def __init__(self, reason: str, *, usage: bool = False) -> None:
        self.reason = reason
        self.usage = usage
        super().__init__(reason)


class PurgeError(DdbsyncError):
    """The tombstone purge cannot go on; the message says where and why."""


class PurgeWindowError(PurgeError):
    """The purge window is malformed, or shorter than the replay window without ``--force``."""


class StackError(DdbsyncError):
    """A deployed stack cannot be read or lacks an output; ``str()`` is one line for a person."""


class VerifyError(DdbsyncError):
    """``ddbsync verify`` cannot go on (table or index unreadable); the message says why."""
