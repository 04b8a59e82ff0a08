"""Document ids from key attributes: the same id on every path, and never one id for two keys.

Why injective: an id is the only thing that tells two items apart in the index.
If two keys shared an id, one item's writes would replace the other's document
(and their versions would fight). So the id must be a function of the key that
no two keys share, and it must be the same function on every path (stream,
backfill, repair, replay).

The rule
--------
1. Each key attribute becomes text: ``S`` as is, ``N`` in canonical digits
   (:func:`ddbsync.dynamodb.numbers.canonical_number`: ``1.50`` and ``1.5`` are one
   DynamoDB key and give one text, different numbers give different texts),
   ``B`` as canonical base64 (one text per byte string). Numbers and B values
   are validated exactly as in an item image, with the same reasons.
2. In that text, ``\\`` becomes ``\\\\`` and ``|`` becomes ``\\|`` (escaping).
3. The *plain id* is the escaped partition key, or ``<pk>|<sk>`` with a sort key.
4. A plain id of at most :data:`MAX_ID_BYTES` UTF-8 bytes (OpenSearch's limit)
   is the id. A longer one is replaced by the *hashed id*
   ``\\#sha256:<hex of SHA-256 of the plain id's UTF-8 bytes>``.

Why no two keys share an id
---------------------------
* Plain ids are injective. Read an escaped text left to right: a ``\\`` always
  starts a pair (``\\\\`` or ``\\|``), so the text decodes back to exactly one
  key text. In ``<pk>|<sk>`` the separator is the first ``|`` that is not the
  second half of a pair, so the split is unique too. The key's type is fixed by
  the table schema, and step 1 is injective per type.
* A hashed id never equals a plain id. In a plain id every ``\\`` is the first
  half of ``\\\\`` or ``\\|``, so a plain id that starts with ``\\`` continues
  with ``\\`` or ``|``, never ``#``. A hashed id starts with ``\\#``.
* Two hashed ids are equal only if their plain ids are (barring a SHA-256
  collision, which nobody knows how to find).

Before this rule, hashed ids were ``sha256:<hex>``: an item whose key was that
literal text got the same id as the long-keyed item and replaced its document.
Plain ids are unchanged, so existing indexes keep working; an index that holds
hashed ids (items whose plain id is over 512 bytes) needs a backfill after the
upgrade (docs/versioning.md, "Document ids").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ddbsync.dynamodb.decode import decode_value
from ddbsync.dynamodb.numbers import canonical_number
from ddbsync.errors import RecordError

__all__ = ["HASHED_ID_PREFIX", "MAX_ID_BYTES", "document_id", "key_part"]

MAX_ID_BYTES = 512
# Starts with a backslash that is not the first half of an escape pair: no plain id can.
HASHED_ID_PREFIX = "\\#sha256:"


def key_part(value: object, name: str) -> str:
    """Text of one key attribute (DynamoDB JSON ``{"S"|"N"|"B": ...}``) for a document id, escaped."""
    if value.__class__ is dict and len(value) == 1:
        text = value.get("S")
        if text.__class__ is str:  # the common case, kept short
            if "|" in text or "\\" in text:
                return text.replace("\\", "\\\\").replace("|", "\\|")
            return text
    if not isinstance(value, Mapping) or len(value) != 1:
        raise RecordError(f"key attribute {name!r} is not a DynamoDB-JSON value")
    ((tag, inner),) = value.items()
    # Wrong values are refused by the decoder's own checks, with the reason an image gets.
    if tag == "N":
        return canonical_number(inner, name)  # digits, '-' and '.': nothing to escape
    if tag == "B":
        return str(decode_value(value, name))  # canonical base64: no '\\' or '|'
    if tag != "S":
        raise RecordError(f"key attribute {name!r} must be S, N or B, got {tag!r}")
    text = str(decode_value(value, name))
    return text.replace("\\", "\\\\").replace("|", "\\|")


def document_id(keys: Mapping[str, object], partition_key: str, sort_key: str | None) -> str:
    """The document id for an item's ``Keys`` (DynamoDB JSON); see the module's rule."""
    if partition_key not in keys:
        raise RecordError(f"record has no partition key attribute {partition_key!r}")
    doc_id = key_part(keys[partition_key], partition_key)
    if sort_key is not None:
        if sort_key not in keys:
            raise RecordError(f"record has no sort key attribute {sort_key!r}")
        doc_id = f"{doc_id}|{key_part(keys[sort_key], sort_key)}"
    try:
        encoded = doc_id.encode("utf-8")
    except UnicodeEncodeError:
        raise _not_unicode(keys, partition_key, sort_key) from None
    if len(encoded) > MAX_ID_BYTES:
        return HASHED_ID_PREFIX + hashlib.sha256(encoded).hexdigest()
    return doc_id


def _not_unicode(keys: Mapping[str, object], partition_key: str, sort_key: str | None) -> RecordError:
    """Name the key attribute holding a lone surrogate (JSON allows ``"\\ud800"``, UTF-8 does not).

    Only S text can hold one: N and B parts were validated as ASCII.
    """
    for name in (partition_key, sort_key):
        value = keys[name] if name is not None else None
        text = value.get("S") if isinstance(value, Mapping) else None
        if not isinstance(text, str):
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            return RecordError(
                f"key attribute {name!r} is not valid Unicode: {e.reason}"
                f" ({text[e.start : e.end]!r} at character {e.start})"
            )
    return RecordError("key is not valid Unicode")  # not reached: only S text can fail
