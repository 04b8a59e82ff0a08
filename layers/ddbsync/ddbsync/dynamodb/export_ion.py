"""The Ion side of DynamoDB export files: Ion values -> DynamoDB JSON.

AWS writes S as string, N as decimal (or int), B as blob, BOOL as bool, NULL as null,
M as struct, L as list, and SS/NS/BS as lists annotated ``$dynamodb_SS``/``$dynamodb_NS``/
``$dynamodb_BS``. This module turns each into the DynamoDB-JSON value a DYNAMODB_JSON
export would hold, so :func:`ddbsync.dynamodb.decode.decode_item` then judges both
formats alike. :mod:`ddbsync.dynamodb.export_format` imports it only when it reads an
Ion file: the stream indexer never loads ``amazon.ion``.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from amazon.ion import simpleion  # type: ignore[import-untyped]
from amazon.ion.core import IonType  # type: ignore[import-untyped]
from amazon.ion.exceptions import IonException  # type: ignore[import-untyped]
from amazon.ion.simple_types import IonPyNull  # type: ignore[import-untyped]

from ddbsync.dynamodb.export_format import Item
from ddbsync.dynamodb.numbers import canonical_number
from ddbsync.errors import DecodeError, ExportFormatError

__all__ = ["ion_number_text", "item_map", "line_item", "line_object"]


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
        raise DecodeError(f"not a DynamoDB number: {value}")
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
        raise DecodeError(f"{tag} annotation on a {value.ion_type.name.lower()}", path)
    members: list[object] = []
    for member in value:
        kind = member.ion_type
        if isinstance(member, IonPyNull) or member.ion_annotations:
            raise DecodeError(f"invalid {tag} member", path)
        if tag == "SS" and kind is IonType.STRING:
            members.append(str(member))
        elif tag == "NS" and kind in (IonType.INT, IonType.DECIMAL):
            members.append(ion_number_text(member))
        elif tag == "BS" and kind is IonType.BLOB:
            members.append(base64.b64encode(bytes(member)).decode("ascii"))
        else:
            raise DecodeError(f"{tag} member of Ion type {kind.name.lower()}", path)
    return {tag: members}


_SET_ANNOTATIONS = {"$dynamodb_SS": "SS", "$dynamodb_NS": "NS", "$dynamodb_BS": "BS"}


def _ion_value(value: Any, path: str) -> dict[str, object]:
    """One Ion value -> one DynamoDB-JSON attribute value (raises DecodeError with the path)."""
    annotations = value.ion_annotations
    if annotations:
        return _ion_annotated(value, annotations, path)
    kind = value.ion_type
    if isinstance(value, IonPyNull):
        if kind is IonType.NULL:
            return {"NULL": True}
        raise DecodeError(f"typed Ion null null.{kind.name.lower()}", path)
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
    raise DecodeError(f"unsupported Ion type {kind.name.lower()}", path)


def _ion_annotated(value: Any, annotations: Any, path: str) -> dict[str, object]:
    """An annotated Ion value: only a set, with exactly one $dynamodb_SS/NS/BS annotation."""
    names = [_text(a) for a in annotations]
    tag = _SET_ANNOTATIONS.get(names[0]) if len(names) == 1 else None
    if tag is None:
        raise DecodeError(f"unknown Ion annotation {'::'.join(names)}", path)
    return _ion_set(tag, value, path)


def _ion_struct(struct: Any, path: str) -> Item:
    out: Item = {}
    for name, v in struct.items():
        if not isinstance(name, str):  # symbol zero, or an unresolved symbol id
            raise DecodeError("field name without text", path or "$")
        out[name] = _ion_value(v, f"{path}.{name}" if path else name)
    return out


def line_object(raw: bytes, key: str, number: int) -> Any:
    """One line of an Ion export file: a struct."""
    try:
        doc = simpleion.loads(raw, single_value=True)
    except IonException as e:
        raise ExportFormatError(key, number, f"invalid Ion (truncated line?): {e}") from e
    if doc.ion_type is not IonType.STRUCT or isinstance(doc, IonPyNull) or doc.ion_annotations:
        raise ExportFormatError(key, number, "expected an Ion struct")
    return doc


def item_map(value: object, what: str, key: str, number: int) -> Item:
    """An Ion struct (Item, Keys, NewImage) as DynamoDB JSON."""
    if getattr(value, "ion_type", None) is not IonType.STRUCT or isinstance(value, IonPyNull):
        raise ExportFormatError(key, number, f"{what} must be a struct")
    try:
        return _ion_struct(value, "")
    except DecodeError as e:
        raise ExportFormatError(key, number, f"{what}: {e}") from e


def line_item(raw: bytes, key: str, number: int) -> Item:
    """The ``Item`` of one line of a full Ion export, as DynamoDB JSON."""
    return item_map(line_object(raw, key, number).get("Item"), "Item", key, number)
