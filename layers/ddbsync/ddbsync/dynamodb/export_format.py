"""Read the data files of a DynamoDB export to S3, line by line, in bounded memory.

The format is AWS's ("DynamoDB table export output format",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
every data file is gzip-compressed, one item per line.

* ``DYNAMODB_JSON``: JSON lines ``{"Item": {"pk": {"S": "a"}, ...}}``.
* ``ION``: Ion text lines ``$ion_1_0 {Item:{pk:"a",n:6d2,tags:$dynamodb_SS::["x"]}}``;
  S -> string, N -> decimal, B -> blob, BOOL -> bool, NULL -> null, M -> struct,
  L -> list, and SS/NS/BS -> lists annotated ``$dynamodb_SS``/``$dynamodb_NS``/``$dynamodb_BS``.

Both yield the item in DynamoDB JSON (the Ion side is :mod:`ddbsync.dynamodb.export_ion`,
imported only when an Ion file is read), so :func:`ddbsync.dynamodb.decode.decode_item` gives the
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

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Protocol, cast

import orjson

from ddbsync.errors import ExportFormatError

__all__ = [
    "FORMATS",
    "MAX_LINE_BYTES",
    "ByteSource",
    "IncrementalRecord",
    "Item",
    "gzip_lines",
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


def gzip_lines(stream: ByteSource, key: str, start_line: int = 0) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw line) after ``start_line``; blank lines are counted, not yielded.

    The one gzip line reader: export data files here, archive objects in
    :mod:`ddbsync.rebuild.files`. It gunzips as it reads (a line split across two reads of
    ``stream`` comes out whole), holds one line at a time, and raises ExportFormatError
    (``key``, line) for a corrupt stream or a line over :data:`MAX_LINE_BYTES`.
    """
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
        for number, raw in gzip_lines(stream, key, start_line):
            yield number, _json_map(_json_object(raw, key, number).get("Item"), "Item", key, number)
    else:
        from ddbsync.dynamodb import export_ion  # amazon.ion: imported only for an Ion export

        for number, raw in gzip_lines(stream, key, start_line):
            yield number, export_ion.line_item(raw, key, number)


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
    read_object: Callable[[bytes, str, int], Any] = _json_object
    as_map: Callable[[object, str, str, int], Item] = _json_map
    if fmt == "ION":
        from ddbsync.dynamodb import export_ion  # amazon.ion: imported only for an Ion export

        read_object, as_map = export_ion.line_object, export_ion.item_map
    for number, raw in gzip_lines(stream, key, start_line):
        doc: Any = read_object(raw, key, number)
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
