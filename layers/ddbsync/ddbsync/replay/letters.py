"""Dead letters during a replay: the sink that holds still-poison letters, and letters in S3.

A record-DLQ record that is *still* poison is not sent to the DLQ again (the run would
receive it straight back): :class:`HeldLetters` keeps it, so its reason can be printed and
its message kept. A letter too big for SQS is read back from its S3 object with
:class:`StoredLetters`, and that object is deleted once its message is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from ddbsync.aws import LazyS3, aws_error, error_code
from ddbsync.dlq import DeadLetter
from ddbsync.replay.messages import StoredLetter

__all__ = ["HeldLetters", "Loaded", "StoredLetters"]


class HeldLetters:
    """The record-DLQ replay's dead-letter sink: keeps letters instead of sending them."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A stored letter read back: its record, or None and why not (the message is kept)."""

    record: object | None
    problem: str = ""


class StoredLetters(LazyS3):
    """Reads dead letters stored in S3 (``DEAD_LETTER_BUCKET``) and deletes them once replayed."""

    def load(self, letter: StoredLetter) -> Loaded:
        """The letter's record, read from its object."""
        bucket, key = letter.bucket, letter.key
        if bucket is None or key is None:
            return Loaded(None, "a record-DLQ pointer without an S3 bucket and key")
        place = letter.place
        try:
            data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            code = error_code(e)
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                return Loaded(None, (
                    f"the dead letter {place} is missing ({code}): the message holds only the "
                    "reason, not the record; delete the message by hand once the item is checked "
                    "or repaired (docs/runbook.md)"
                ))  # fmt: skip
            return Loaded(None, f"cannot read the dead letter {place}: {aws_error(e)}")
        except BotoCoreError as e:
            return Loaded(None, f"cannot read the dead letter {place}: {aws_error(e)}")
        try:
            whole = json.loads(data)
        except ValueError:
            whole = None
        if not isinstance(whole, dict) or "record" not in whole:
            return Loaded(None, f"{place} is not a ddbsync dead letter")
        return Loaded(whole["record"])

    def discard(self, letter: StoredLetter) -> str:
        """Delete the object of a letter whose message was deleted; '' or what went wrong."""
        bucket, key = str(letter.bucket), str(letter.key)
        try:
            self.s3.delete_object(Bucket=bucket, Key=key)
        except (BotoCoreError, ClientError) as e:
            return (f"its dead letter s3://{bucket}/{key} could not be deleted ({aws_error(e)}); "
                    "delete it by hand")  # fmt: skip
        return ""
