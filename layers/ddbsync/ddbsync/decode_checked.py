"""The validating DynamoDB-JSON decoder: slow, thorough, and precise about errors.

:mod:`ddbsync.decode` runs a fast decoder first and falls back to this one when
anything looks wrong, so that a bad value is reported with its exact path (for
example ``m.tags[2]``) and a reason, and an odd-but-valid input (a Mapping that
is not a dict, bytes for B) still decodes. Both produce the same values.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from ddbsync.errors import DecodeError, UnknownTypeTagError
from ddbsync.numbers import INT64_MIN, UINT64_MAX, BigInt, ExactDecimal, plain_decimal_as_float

__all__ = ["checked_item", "checked_number", "checked_value"]


# DynamoDB numbers: magnitudes from 1E-130 up to (not including) 1E+126.
_RANGE = "1E-130 to 9.99...E+125 in magnitude"
_LIMIT = 10**126
_MAX_DIGITS = 126  # an integer text this short (sign aside) is always below _LIMIT
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _number(text: object, path: str) -> object:
    if not isinstance(text, str):
        raise DecodeError(f"N value must be a string, got {type(text).__name__}", path)
    # Fast path: plain integers (by far the most common) never touch Decimal.
    try:
        as_int = int(text)
    except ValueError:
        pass
    else:
        if len(text) <= _MAX_DIGITS or abs(as_int) < _LIMIT:
            return as_int
        raise DecodeError(f"number {text[:20]!r}... is outside DynamoDB's range ({_RANGE})", path)
    try:
        value = Decimal(text)
    except InvalidOperation as e:
        raise DecodeError(f"invalid number {text!r}", path) from e
    if not value.is_finite():
        raise DecodeError(f"invalid number {text!r}", path)
    # Checked before any arithmetic: "7E731486" would otherwise become an integer of
    # 731,487 digits (seconds of CPU) on its way to an error.
    if value and not -130 <= value.adjusted() <= 125:
        raise DecodeError(f"number {text[:40]!r} is outside DynamoDB's range ({_RANGE})", path)
    if "." not in text and value == value.to_integral_value():
        return int(value)  # "1E+2" is the integer 100
    as_float = plain_decimal_as_float(text)
    if as_float is not None:
        return as_float  # at most 15 significant digits: a double keeps them all
    return ExactDecimal(text if _JSON_NUMBER.fullmatch(text) else str(value))


def checked_number(text: object, path: str = "$") -> object:
    """Decode one N value (validated): int, float when exact, else BigInt / ExactDecimal."""
    value = _number(text, path)
    if type(value) is int and not INT64_MIN <= value <= UINT64_MAX:
        return BigInt(value)
    return value


def _decode_s(v: object, path: str) -> object:
    if not isinstance(v, str):
        raise DecodeError(f"S value must be a string, got {type(v).__name__}", path)
    return v


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
    return {str(k): checked_value(x, f"{path}.{k}") for k, x in v.items()}


def _decode_l(v: object, path: str) -> object:
    if not isinstance(v, list):
        raise DecodeError(f"L value must be a list, got {type(v).__name__}", path)
    return [checked_value(x, f"{path}[{i}]") for i, x in enumerate(v)]


def _members(v: object, tag: str, path: str) -> list[object]:
    if not isinstance(v, list | set | frozenset | tuple):
        raise DecodeError(f"{tag} value must be a list, got {type(v).__name__}", path)
    return list(v)


def _decode_ss(v: object, path: str) -> object:
    return sorted(_decode_s(x, path) for x in _members(v, "SS", path))  # type: ignore[type-var]


def _decode_ns(v: object, path: str) -> object:
    keyed = []
    for x in _members(v, "NS", path):
        value = checked_number(x, path)  # validates the member first
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
    "N": checked_number,
    "B": _decode_b,
    "BOOL": _decode_bool,
    "NULL": _decode_null,
    "M": _decode_m,
    "L": _decode_l,
    "SS": _decode_ss,
    "NS": _decode_ns,
    "BS": _decode_bs,
}


def checked_value(value: object, path: str = "$") -> object:
    """Decode one attribute value, validating everything; raise DecodeError with its path."""
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


def checked_item(item: object) -> dict[str, object]:
    """Decode a whole item, validating everything; raise DecodeError with the value's path."""
    if not isinstance(item, Mapping):
        raise DecodeError(f"item must be an object, got {type(item).__name__}")
    return {str(name): checked_value(value, str(name)) for name, value in item.items()}
