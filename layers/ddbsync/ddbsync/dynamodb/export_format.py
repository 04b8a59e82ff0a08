"""Read the data files of a DynamoDB export to S3, line by line, in bounded memory.

The format is AWS's ("DynamoDB table export output format",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
every data file is gzip-compressed, one item per line.

* ``DYNAMODB_JSON``: JSON lines ``{"Item": {"pk": {"S": "a"}, ...}}``.
* ``ION``: Ion text lines ``$ion_1_0 {Item:{pk:"a",n:6d2,tags:$dynamodb_SS::["x"]}}``;
  S -> string, N -> decimal, B -> blob, BOOL -> bool, NULL -> null, M -> struct,
  L -> list, and SS/NS/BS -> lists annotated ``$dynamodb_SS``/``$dynamodb_NS``/``$dynamodb_BS``.

Both yield the item in DynamoDB JSON, so :func:`ddbsync.dynamodb.decode.decode_item` gives the
same values whichever format the export used. Ion numbers become the text DynamoDB
itself returns (``2d3`` -> ``"2000"``, ``1.50`` -> ``"1.5"``), with every digit kept, by
the same number parser as everywhere else (:func:`ion_number_text`).

Incremental exports (``ExportType=INCREMENTAL_EXPORT``) write one change per line:
``Metadata.WriteTimeMicros``, ``Keys``, ``NewImage`` (absent for a delete) and, with the
``NEW_AND_OLD_IMAGES`` view, ``OldImage``.

The stream is read through :class:`gzip.GzipFile` one line at a time, so memory stays
flat whatever the file size (an item is at most 400 KB; a line over
:data:`MAX_LINE_BYTES` is reported, not buffered). A broken file raises
:class:`ExportFormatError` naming the object key and the line.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Protocol, cast

import orjson
from amazon.ion import simpleion  # type: ignore[import-untyped]
from amazon.ion.core import IonType  # type: ignore[import-untyped]
from amazon.ion.exceptions import IonException  # type: ignore[import-untyped]
from amazon.ion.simple_types import IonPyNull  # type: ignore[import-untyped]

from ddbsync.dynamodb.numbers import canonical_number
from ddbsync.errors import DecodeError, ExportFormatError

__all__ = [
    "FORMATS",
    "MAX_LINE_BYTES",
    "ByteSource",
    "IncrementalRecord",
    "Item",
    "ion_number_text",
    "iter_export_items",
    "iter_incremental",
]

FORMATS = ("DYNAMODB_JSON", "ION")

# DynamoDB items are at most 400 KB; even as escaped JSON a real line stays far below.
MAX_LINE_BYTES = 16 * 1024 * 1024

# One item in DynamoDB JSON: attribute name -> {"S": "..."} / {"N": "..."} / ...
Item = dict[str, object]


class ByteSource(Protocol):
    """What the reader needs from the S3 object body: ``read(n)`` (botocore's StreamingBody)."""

    def read(self, amt: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class IncrementalRecord:
    """One change from an incremental export. ``new_image`` is None for a delete."""

    keys: Item
    new_image: Item | None
    write_time_micros: int


def _check_format(fmt: str, key: str) -> None:
    if fmt not in FORMATS:
        raise ExportFormatError(key, 0, f"unknown export format {fmt!r} (expected one of {FORMATS})")


def _lines(stream: ByteSource, key: str, start_line: int) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw line) after ``start_line``; blank lines are counted, not yielded."""
    number = 0
    # GzipFile's stub asks for seek() too, but sequential reading only ever calls read().
    with gzip.GzipFile(fileobj=cast("IO[bytes]", stream), mode="rb") as gz:
        while True:
            try:
                raw = gz.readline(MAX_LINE_BYTES + 1)
            except (gzip.BadGzipFile, EOFError, zlib.error) as e:
                # EOFError: the compressed stream ends before its end-of-stream marker.
                raise ExportFormatError(key, number + 1, f"corrupt gzip data: {e}") from e
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise ExportFormatError(key, number, f"line longer than {MAX_LINE_BYTES} bytes")
            if number <= start_line or (len(raw) < 3 and not raw.strip()):
                continue
            yield number, raw


# --- DYNAMODB_JSON ------------------------------------------------------------------------


def _json_object(raw: bytes, key: str, number: int) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ExportFormatError(key, number, f"invalid JSON (truncated line?): {e}") from e
    if doc.__class__ is not dict:
        raise ExportFormatError(key, number, f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _json_map(value: object, what: str, key: str, number: int) -> Item:
    if value.__class__ is not dict:
        raise ExportFormatError(key, number, f"{what} must be an object, got {type(value).__name__}")
    return value


# --- ION --------------------------------------------------------------------------------------


def ion_number_text(value: Decimal | int) -> str:
    """The N text DynamoDB returns for an Ion int or decimal: canonical digits, every digit kept.

    The text comes from :func:`ddbsync.dynamodb.numbers.canonical_number`, the parser the
    decoder and document ids use, so an Ion export gives the same text, value and
    id as a DYNAMODB_JSON one. A number DynamoDB cannot hold (over 38 digits,
    outside its range) is not judged here: it is passed on exactly, in exponent
    form (``1E+999``), and the decoder refuses it with the same reason as in a
    DYNAMODB_JSON export. Nothing here builds the digits of a huge exponent.
    """
    exact = Decimal(value)  # an Ion int may have any number of digits: no str() of it
    if not exact.is_finite():
        raise ValueError(f"not a DynamoDB number: {value}")
    sign, digits, exponent = exact.as_tuple()
    text = f"{'-' if sign else ''}{''.join(map(str, digits))}E{exponent}"
    try:
        return canonical_number(text)
    except DecodeError:
        return text


def _text(annotation: object) -> str:
    # The C extension gives SymbolToken(text=...), the pure-Python reader plain strings.
    text = getattr(annotation, "text", annotation)
    return str(text)


def _ion_set(tag: str, value: Any, path: str) -> dict[str, object]:
    if value.ion_type is not IonType.LIST or isinstance(value, IonPyNull):
        raise ValueError(f"{tag} annotation on a {value.ion_type.name.lower()} at {path}")
    members: list[object] = []
    for member in value:
        kind = member.ion_type
        if isinstance(member, IonPyNull) or member.ion_annotations:
            raise ValueError(f"invalid {tag} member at {path}")
        if tag == "SS" and kind is IonType.STRING:
            members.append(str(member))
        elif tag == "NS" and kind in (IonType.INT, IonType.DECIMAL):
            members.append(ion_number_text(member))
        elif tag == "BS" and kind is IonType.BLOB:
            members.append(base64.b64encode(bytes(member)).decode("ascii"))
        else:
            raise ValueError(f"{tag} member of Ion type {kind.name.lower()} at {path}")
    return {tag: members}


_SET_ANNOTATIONS = {"$dynamodb_SS": "SS", "$dynamodb_NS": "NS", "$dynamodb_BS": "BS"}


def _ion_value(value: Any, path: str) -> dict[str, object]:
    """One Ion value -> one DynamoDB-JSON attribute value (raises ValueError with the path)."""
    annotations = value.ion_annotations
    if annotations:
        return _ion_annotated(value, annotations, path)
    kind = value.ion_type
    if isinstance(value, IonPyNull):
        if kind is IonType.NULL:
            return {"NULL": True}
        raise ValueError(f"typed Ion null null.{kind.name.lower()} at {path}")
    if kind is IonType.STRING:
        return {"S": str(value)}
    if kind is IonType.DECIMAL or kind is IonType.INT:
        return {"N": ion_number_text(value)}
    if kind is IonType.STRUCT:
        return {"M": _ion_struct(value, path)}
    if kind is IonType.LIST:
        return {"L": [_ion_value(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if kind is IonType.BOOL:
        return {"BOOL": bool(value)}
    if kind is IonType.BLOB:
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    raise ValueError(f"unsupported Ion type {kind.name.lower()} at {path}")


def _ion_annotated(value: Any, annotations: Any, path: str) -> dict[str, object]:
    """An annotated Ion value: only a set, with exactly one $dynamodb_SS/NS/BS annotation."""
    names = [_text(a) for a in annotations]
    tag = _SET_ANNOTATIONS.get(names[0]) if len(names) == 1 else None
    if tag is None:
        raise ValueError(f"unknown Ion annotation {'::'.join(names)} at {path}")
    return _ion_set(tag, value, path)


def _ion_struct(struct: Any, path: str) -> Item:
    out: Item = {}
    for name, v in struct.items():
        if not isinstance(name, str):  # symbol zero, or an unresolved symbol id
            raise ValueError(f"field name without text at {path or '$'}")
        out[name] = _ion_value(v, f"{path}.{name}" if path else name)
    return out


def _ion_object(raw: bytes, key: str, number: int) -> Any:
    try:
        doc = simpleion.loads(raw, single_value=True)
    except IonException as e:
        raise ExportFormatError(key, number, f"invalid Ion (truncated line?): {e}") from e
    if doc.ion_type is not IonType.STRUCT or isinstance(doc, IonPyNull) or doc.ion_annotations:
        raise ExportFormatError(key, number, "expected an Ion struct")
    return doc


def _ion_map(value: object, what: str, key: str, number: int) -> Item:
    if getattr(value, "ion_type", None) is not IonType.STRUCT or isinstance(value, IonPyNull):
        raise ExportFormatError(key, number, f"{what} must be a struct")
    try:
        return _ion_struct(value, "")
    except ValueError as e:
        raise ExportFormatError(key, number, f"{what}: {e}") from e


# --- public readers ---------------------------------------------------------------------------


def iter_export_items(
    stream: ByteSource, fmt: str, key: str, start_line: int = 0
) -> Iterator[tuple[int, Item]]:
    """Yield ``(line_number, item)`` for each item of a full-export data file.

    ``stream`` is the gzip-compressed object body; ``key`` names the file in errors.
    Lines up to and including ``start_line`` are skipped unparsed (resume from a
    checkpoint: pass the last line number handled). ``item`` is DynamoDB JSON.
    """
    _check_format(fmt, key)
    # The parsed line is not bound to a name: while this generator waits to be resumed
    # (a whole chunk being sent) it holds nothing but the raw line.
    if fmt == "DYNAMODB_JSON":
        for number, raw in _lines(stream, key, start_line):
            yield number, _json_map(_json_object(raw, key, number).get("Item"), "Item", key, number)
    else:
        for number, raw in _lines(stream, key, start_line):
            yield number, _ion_map(_ion_object(raw, key, number).get("Item"), "Item", key, number)


def _micros(value: object, key: str, number: int) -> int:
    # AWS's example shows the number as a JSON string; accept a bare number or {"N": ...} too.
    if isinstance(value, dict) and len(value) == 1 and "N" in value:
        value = value["N"]
    if isinstance(value, bool):
        value = None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ExportFormatError(
            key, number, f"Metadata.WriteTimeMicros must be a whole number, got {value!r}"
        )
    return int(value)


def iter_incremental(
    stream: ByteSource, fmt: str, key: str, start_line: int = 0
) -> Iterator[tuple[int, IncrementalRecord]]:
    """Yield ``(line_number, IncrementalRecord)`` for each change of an incremental-export file."""
    _check_format(fmt, key)
    for number, raw in _lines(stream, key, start_line):
        if fmt == "DYNAMODB_JSON":
            doc: Any = _json_object(raw, key, number)
            as_map = _json_map
        else:
            doc = _ion_object(raw, key, number)
            as_map = _ion_map
        metadata = doc.get("Metadata")
        if not hasattr(metadata, "get"):
            raise ExportFormatError(key, number, "missing Metadata")
        micros = _micros(metadata.get("WriteTimeMicros"), key, number)
        keys = as_map(doc.get("Keys"), "Keys", key, number)
        if not keys:
            raise ExportFormatError(key, number, "Keys is empty")
        new = doc.get("NewImage")
        new_image = None if new is None else as_map(new, "NewImage", key, number)
        del doc, new, metadata  # the parsed line (OldImage too): not held while suspended
        yield number, IncrementalRecord(keys=keys, new_image=new_image, write_time_micros=micros)
