"""A fast, exact decoder for DynamoDB JSON (stream records, exports, archive).

Every type tag has one small function; an unknown tag raises. Compared with
boto3's ``TypeDeserializer`` the output is JSON-ready:

* ``N``: integers of any size stay exact ``int``; a decimal becomes a ``float``
  only when the float prints back to the very same digits, otherwise an
  :class:`ExactDecimal` that :func:`dumps` writes out digit for digit
  (OpenSearch keeps the original text in ``_source``).
* ``B``: base64 text (stream events already carry base64; ``bytes`` from boto3
  are encoded).
* ``SS``/``NS``/``BS``: sorted lists (sets have no order; sorting makes the
  document identical whichever path wrote it).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from ddbsync.errors import DecodeError, UnknownTypeTagError

__all__ = [
    "DynamoValue",
    "ExactDecimal",
    "JsonValue",
    "canonical_number",
    "decode_item",
    "decode_value",
    "dumps",
]

# A DynamoDB-JSON attribute value: {"S": "x"}, {"M": {...}}, ... (loosely typed on purpose:
# the decoder validates it).
DynamoValue = Mapping[str, object]
JsonValue = object

# Marks an exact decimal inside a str until dumps() turns it into a bare JSON number.
# A NUL can only reach the output escaped as \u0000, so the marker cannot appear by accident
# in serialized user text unless a string starts with these very characters, which
# decode rejects (see _decode_s).
_MARK = "\x00ddbsync-num\x00"
_MARK_JSON = re.compile(r'"\\u0000ddbsync-num\\u0000([-+0-9.eE]+)"')


class ExactDecimal(str):
    """A decimal number whose digits must survive serialization unchanged."""

    __slots__ = ()

    def __new__(cls, digits: str) -> ExactDecimal:
        return super().__new__(cls, _MARK + digits)

    @property
    def digits(self) -> str:
        return str.__str__(self)[len(_MARK) :]

    def __repr__(self) -> str:
        return f"ExactDecimal({self.digits!r})"


def canonical_number(text: str) -> str:
    """Canonical text of a DynamoDB number: ``"1.50"`` -> ``"1.5"``, ``"1E+2"`` -> ``"100"``.

    Used for document ids so that a key written as ``"100"`` by one path and
    ``"1E+2"`` by another gives the same id.
    """
    try:
        value = Decimal(text)
    except InvalidOperation as e:
        raise DecodeError(f"invalid number {text!r}") from e
    if not value.is_finite():
        raise DecodeError(f"invalid number {text!r}")
    if value == 0:
        return "0"
    normalized = value.normalize()
    return format(normalized, "f")


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _number(text: object, path: str) -> object:
    if not isinstance(text, str):
        raise DecodeError(f"N value must be a string, got {type(text).__name__}", path)
    # Fast path: plain integers (by far the most common) never touch Decimal.
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = Decimal(text)
    except InvalidOperation as e:
        raise DecodeError(f"invalid number {text!r}", path) from e
    if not value.is_finite():
        raise DecodeError(f"invalid number {text!r}", path)
    if "." not in text and value == value.to_integral_value():
        return int(value)  # "1E+2" is the integer 100
    as_float = float(text)
    if repr(as_float) == text:
        return as_float  # the float prints back the same digits: nothing to lose
    return ExactDecimal(text if _JSON_NUMBER.fullmatch(text) else str(value))


def _decode_s(v: object, path: str) -> object:
    if not isinstance(v, str):
        raise DecodeError(f"S value must be a string, got {type(v).__name__}", path)
    if _MARK in v:
        raise DecodeError("string value contains ddbsync's internal number marker", path)
    return v


def _check_name(name: str, path: str) -> None:
    if _MARK in name:
        raise DecodeError("attribute name contains ddbsync's internal number marker", path)


def _decode_b(v: object, path: str) -> object:
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, str):
        return v
    raise DecodeError(f"B value must be base64 text or bytes, got {type(v).__name__}", path)


def _decode_bool(v: object, path: str) -> object:
    if not isinstance(v, bool):
        raise DecodeError(f"BOOL value must be true or false, got {v!r}", path)
    return v


def _decode_null(v: object, path: str) -> object:
    if v is not True:
        raise DecodeError(f"NULL value must be true, got {v!r}", path)
    return None


def _decode_m(v: object, path: str) -> object:
    if not isinstance(v, Mapping):
        raise DecodeError(f"M value must be an object, got {type(v).__name__}", path)
    out = {}
    for k, x in v.items():
        _check_name(k, path)
        out[k] = decode_value(x, f"{path}.{k}")
    return out


def _decode_l(v: object, path: str) -> object:
    if not isinstance(v, list):
        raise DecodeError(f"L value must be a list, got {type(v).__name__}", path)
    return [decode_value(x, f"{path}[{i}]") for i, x in enumerate(v)]


def _members(v: object, tag: str, path: str) -> list[object]:
    if not isinstance(v, list | set | frozenset | tuple):
        raise DecodeError(f"{tag} value must be a list, got {type(v).__name__}", path)
    return list(v)


def _decode_ss(v: object, path: str) -> object:
    return sorted(_decode_s(x, path) for x in _members(v, "SS", path))  # type: ignore[type-var]


def _decode_ns(v: object, path: str) -> object:
    keyed = []
    for x in _members(v, "NS", path):
        value = _number(x, path)  # validates the member first
        keyed.append((Decimal(x), value))  # type: ignore[arg-type]
    keyed.sort(key=lambda pair: pair[0])
    return [value for _, value in keyed]


def _as_bytes(x: object, path: str) -> bytes:
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    raise DecodeError(f"BS members must be base64 text or bytes, got {type(x).__name__}", path)


def _decode_bs(v: object, path: str) -> object:
    raw = [
        base64.b64decode(x, validate=True) if isinstance(x, str) else _as_bytes(x, path)
        for x in _members(v, "BS", path)
    ]
    return [base64.b64encode(x).decode("ascii") for x in sorted(raw)]


_DECODERS: dict[str, Callable[[object, str], object]] = {
    "S": _decode_s,
    "N": _number,
    "B": _decode_b,
    "BOOL": _decode_bool,
    "NULL": _decode_null,
    "M": _decode_m,
    "L": _decode_l,
    "SS": _decode_ss,
    "NS": _decode_ns,
    "BS": _decode_bs,
}


def decode_value(value: object, path: str = "$") -> JsonValue:
    """Decode one attribute value such as ``{"N": "12"}``; raise DecodeError with its path."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise DecodeError("attribute value must be an object with exactly one type tag", path)
    ((tag, inner),) = value.items()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise UnknownTypeTagError(str(tag), path)
    try:
        return decoder(inner, path)
    except DecodeError:
        raise
    except (ValueError, TypeError, ArithmeticError) as e:  # e.g. bad base64, unorderable members
        raise DecodeError(f"invalid {tag} value: {e}", path) from e


def decode_item(item: Mapping[str, object]) -> dict[str, JsonValue]:
    """Decode a whole item (attribute name -> DynamoDB-JSON value) into plain JSON values."""
    if not isinstance(item, Mapping):
        raise DecodeError(f"item must be an object, got {type(item).__name__}")
    out = {}
    for name, value in item.items():
        _check_name(name, name)
        out[name] = decode_value(value, name)
    return out


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(doc: object) -> str:
    """Serialize decoded values to compact JSON, writing :class:`ExactDecimal` digits verbatim."""
    text = _ENCODER.encode(doc)
    if "\\u0000ddbsync-num" in text:
        text = _MARK_JSON.sub(r"\1", text)
    return text
