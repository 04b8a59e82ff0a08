"""The validating DynamoDB-JSON decoder: slow, thorough, and precise about errors.

:mod:`ddbsync.decode` runs a fast decoder first and falls back to this one when
anything looks wrong, so that a bad value is reported with its exact path (for
example ``m.tags[2]``) and a reason, and an odd-but-valid input (a Mapping that
is not a dict, bytes for B) still decodes. Both produce the same values.

Numbers are judged by :func:`ddbsync.numbers.parse_number`, the one parser every
path uses (syntax, precision and range, one reason per kind of problem).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from decimal import Decimal

from ddbsync.errors import DecodeError, UnknownTypeTagError
from ddbsync.numbers import parse_number

__all__ = ["checked_item", "checked_number", "checked_value"]

def checked_number(text: object, path: str = "$") -> object:
    """Decode one N value (validated by :func:`ddbsync.numbers.parse_number`)."""
    return parse_number(text, path).value


def _decode_s(v: object, path: str) -> object:
    if not isinstance(v, str):
        raise DecodeError(f"S value must be a string, got {type(v).__name__}", path)
    return str(v)  # a plain str, even from a str subclass


def _decode_b(v: object, path: str) -> object:
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, str):
        return str(v)
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
    for i, x in enumerate(_members(v, "NS", path)):
        value, canonical = parse_number(x, f"{path}[{i}]")
        keyed.append((Decimal(canonical), value))
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
