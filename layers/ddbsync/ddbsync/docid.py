"""Document ids from key attributes: the same id on every path that writes documents.

``pk`` alone, or ``pk|sk``. Numbers are canonical (``"1.50"`` and ``"1.5"`` give
one id), binary keys are canonical base64 (validated as in an image), ``\\``
and ``|`` inside a key are escaped so two different keys never join into one id,
and ids over OpenSearch's 512-byte limit are replaced by ``sha256:<hex>`` of the
full id.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

from ddbsync.decode_checked import base64_bytes
from ddbsync.errors import RecordError
from ddbsync.numbers import canonical_number

__all__ = ["MAX_ID_BYTES", "document_id", "key_part"]

MAX_ID_BYTES = 512


def key_part(value: object, name: str) -> str:
    """Text of one key attribute (DynamoDB JSON ``{"S"|"N"|"B": ...}``) for a document id."""
    if value.__class__ is dict and len(value) == 1:
        text = value.get("S")
        if text.__class__ is str:  # the common case, kept short
            if "|" in text or "\\" in text:
                return text.replace("\\", "\\\\").replace("|", "\\|")
            return text
    if not isinstance(value, Mapping) or len(value) != 1:
        raise RecordError(f"key attribute {name!r} is not a DynamoDB-JSON value")
    ((tag, inner),) = value.items()
    if tag == "S" and isinstance(inner, str):
        text = inner
    elif tag == "N" and isinstance(inner, str):
        text = canonical_number(inner, name)  # refused like the same number in an image
    elif tag == "B" and isinstance(inner, str):
        base64_bytes(inner, name)  # canonical, so one text per byte string
        text = inner
    elif tag == "B" and isinstance(inner, bytes | bytearray):
        text = base64.b64encode(bytes(inner)).decode("ascii")
    else:
        raise RecordError(f"key attribute {name!r} must be S, N or B, got {tag!r}")
    return text.replace("\\", "\\\\").replace("|", "\\|")


def document_id(keys: Mapping[str, object], partition_key: str, sort_key: str | None) -> str:
    """The document id for an item's ``Keys`` (DynamoDB JSON)."""
    if partition_key not in keys:
        raise RecordError(f"record has no partition key attribute {partition_key!r}")
    doc_id = key_part(keys[partition_key], partition_key)
    if sort_key is not None:
        if sort_key not in keys:
            raise RecordError(f"record has no sort key attribute {sort_key!r}")
        doc_id = f"{doc_id}|{key_part(keys[sort_key], sort_key)}"
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        return "sha256:" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()
    return doc_id
