"""The validating DynamoDB-JSON decoder: slow, thorough, and precise about errors.

:mod:`ddbsync.dynamodb.decode` runs a fast decoder first and falls back to this one when
anything looks wrong, so that a bad value is reported with its exact path (for
example ``m.tags[2]``) and a reason, and an odd-but-valid input (a Mapping that
is not a dict, bytes for B) still decodes. Both produce the same values, and
the fast decoder never accepts what this one refuses (a property test holds
them against each other, invalid input included).

What is refused, one reason per kind of problem (the same text whichever path
meets it, document ids included):

* a number outside DynamoDB's syntax, precision or range: :func:`ddbsync.dynamodb.numbers.parse_number`;
* B text that is not canonical base64 (:func:`base64_bytes`), in B and BS alike;
* an empty set, or a set with a duplicate member (``"1"`` and ``"1.0"`` are one
  number, B members are compared as bytes): DynamoDB has neither;
* a value that is not an object with one known type tag, or of the wrong JSON type.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from decimal import Decimal

from ddbsync.dynamodb.numbers import parse_number
from ddbsync.errors import DecodeError, UnknownTypeTagError

__all__ = ["base64_bytes", "checked_item", "checked_number", "checked_value"]

_SHOWN = 40  # characters of a bad value quoted in an error


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def checked_number(text: object, path: str = "$") -> object:
    """Decode one N value (validated by :func:`ddbsync.dynamodb.numbers.parse_number`)."""
    return parse_number(text, path).value


def base64_bytes(text: str, path: str = "$") -> bytes:
    """The bytes of a B value or BS member given as text; raise DecodeError unless canonical base64.

    Canonical means what DynamoDB writes: the standard alphabet, ``=`` padding,
    no line breaks or spaces, and zero bits after the last byte (``QQ==``, not
    ``QR==``, for ``A``). Each byte string has exactly one such text, so a B key
    gives one document id and a B value one document whatever tool wrote it.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:  # ValueError: a non-ASCII character
        raise DecodeError(f"{_shown(text)} is not base64 (standard alphabet, '=' padding)", path) from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise DecodeError(
            f"{_shown(text)} is not canonical base64 (bits after the last byte must be zero)", path
        )
    return raw


def _decode_s(v: object, path: str) -> object:
    if not isinstance(v, str):
        raise DecodeError(f"S value must be a string, got {type(v).__name__}", path)
    return str(v)  # a plain str, even from a str subclass


def _decode_b(v: object, path: str) -> object:
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, str):
        base64_bytes(v, path)
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
    """A set's members as a list; a set is a non-empty list (DynamoDB has no empty sets)."""
    if not isinstance(v, list | set | frozenset | tuple):
        raise DecodeError(f"{tag} value must be a list, got {type(v).__name__}", path)
    if not v:
        raise DecodeError(f"{tag} value is empty (DynamoDB has no empty sets)", path)
    return list(v)


def _duplicate(tag: str, member: str, path: str) -> DecodeError:
    # DynamoDB refuses a set with duplicates ("Input collection contains duplicates"),
    # so it never sends one; folding them silently would hide a hand-made mistake.
    return DecodeError(f"{tag} value has a duplicate member {_shown(member)}", path)


def _decode_ss(v: object, path: str) -> object:
    members: list[str] = []
    for i, x in enumerate(_members(v, "SS", path)):
        if not isinstance(x, str):
            raise DecodeError(f"SS members must be strings, got {type(x).__name__}", f"{path}[{i}]")
        members.append(str(x))
    if len(set(members)) != len(members):
        seen: set[str] = set()
        for x in members:
            if x in seen:
                raise _duplicate("SS", x, path)
            seen.add(x)
    return sorted(members)


def _decode_ns(v: object, path: str) -> object:
    keyed: dict[str, tuple[Decimal, object]] = {}  # canonical text: one per numeric value
    for i, x in enumerate(_members(v, "NS", path)):
        value, canonical = parse_number(x, f"{path}[{i}]")
        if canonical in keyed:  # "1" and "1.0" are one number
            raise _duplicate("NS", str(x), path)
        keyed[canonical] = (Decimal(canonical), value)
    return [value for _, value in sorted(keyed.values(), key=lambda pair: pair[0])]


def _decode_bs(v: object, path: str) -> object:
    raw: set[bytes] = set()
    for i, x in enumerate(_members(v, "BS", path)):
        if isinstance(x, str):
            member = base64_bytes(x, f"{path}[{i}]")
        elif isinstance(x, bytes | bytearray | memoryview):
            member = bytes(x)
        else:
            what = type(x).__name__
            raise DecodeError(f"BS members must be base64 text or bytes, got {what}", f"{path}[{i}]")
        if member in raw:
            raise _duplicate("BS", x if isinstance(x, str) else base64.b64encode(member).decode(), path)
        raw.add(member)
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
    except (ValueError, TypeError, ArithmeticError) as e:  # a safety net: the decoders raise DecodeError
        raise DecodeError(f"invalid {tag} value: {e}", path) from e


def checked_item(item: object) -> dict[str, object]:
    """Decode a whole item, validating everything; raise DecodeError with the value's path."""
    if not isinstance(item, Mapping):
        raise DecodeError(f"item must be an object, got {type(item).__name__}")
    return {str(name): checked_value(value, str(name)) for name, value in item.items()}
