"""DynamoDB JSON -> JSON-ready values: the one decoder every path uses.

The stream indexer, export files (JSON and ION), repair, replay, and document ids
all read DynamoDB JSON through this module, so a value means the same thing, or is
refused for the same reason, wherever it comes from.

What comes out, compared with boto3's ``TypeDeserializer``:

* ``N``: exact (:func:`ddbsync.dynamodb.numbers.number_value`, the one number
  parser): ``int`` (:class:`BigInt` beyond 64 bits), a ``float`` only when it prints
  back the very same digits, else an :class:`ExactDecimal` that keeps the text.
  :func:`dumps` writes all of them digit for digit.
* ``B``: base64 text (stream events carry base64; ``bytes`` from boto3 are encoded).
* ``SS``/``NS``/``BS``: sorted lists. Sets have no order; sorting makes the
  document identical whichever path wrote it.

What is refused, with one reason per kind of problem and the value's path (for
example ``m.tags[2]``), as a :class:`~ddbsync.errors.DecodeError`:

* a number outside DynamoDB's syntax, precision or range;
* B text that is not canonical base64 (:func:`base64_bytes`), in B and BS alike;
* an empty set, or a set with a duplicate member (``"1"`` and ``"1.0"`` are one
  number; B members are compared as bytes): DynamoDB has neither;
* a value that is not an object with one known type tag, or of the wrong JSON type.

Speed: one loop serves maps and lists; it handles ``S``, ``N``, ``M`` and ``L`` inline and builds
no path while decoding; a path is assembled only when an error travels up
(:meth:`DecodeError.within`). Odd-but-valid input (a Mapping that is not a dict,
bytes for B) takes the general per-tag functions, which check every value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson

from ddbsync.dynamodb.numbers import BigInt, ExactDecimal, number_value, parse_number
from ddbsync.errors import DecodeError, UnknownTypeTagError

__all__ = [
    "BigInt",
    "ExactDecimal",
    "JsonValue",
    "base64_bytes",
    "decode_item",
    "decode_value",
    "dumps",
    "dumps_bytes",
]

JsonValue = object

_SHOWN = 40  # characters of a bad value quoted in an error


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def base64_bytes(text: str) -> bytes:
    """The bytes of a B value or BS member given as text; raise DecodeError unless canonical base64.

    Canonical means what DynamoDB writes: the standard alphabet, ``=`` padding,
    no line breaks or spaces, and zero bits after the last byte (``QQ==``, not
    ``QR==``, for ``A``). Each byte string has exactly one such text, so a B key
    gives one document id and a B value one document whatever tool wrote it.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:  # ValueError: a non-ASCII character
        raise DecodeError(f"{_shown(text)} is not base64 (standard alphabet, '=' padding)") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise DecodeError(f"{_shown(text)} is not canonical base64 (bits after the last byte must be zero)")
    return raw


# ---- One function per type tag. Each raises DecodeError with a path relative to the value.


def _s(v: object) -> object:
    if not isinstance(v, str):
        raise DecodeError(f"S value must be a string, got {type(v).__name__}")
    return str(v)  # a plain str, even from a str subclass


def _b(v: object) -> object:
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, str):
        base64_bytes(v)
        return str(v)
    raise DecodeError(f"B value must be base64 text or bytes, got {type(v).__name__}")


def _bool(v: object) -> object:
    if not isinstance(v, bool):
        raise DecodeError(f"BOOL value must be true or false, got {v!r}")
    return v


def _null(v: object) -> object:
    if v is not True:
        raise DecodeError(f"NULL value must be true, got {v!r}")
    return None


def _m(v: object) -> object:
    if not isinstance(v, Mapping):
        raise DecodeError(f"M value must be an object, got {type(v).__name__}")
    return _map(v)


def _l(v: object) -> object:
    if not isinstance(v, list):
        raise DecodeError(f"L value must be a list, got {type(v).__name__}")
    return _list(v)


def _members(v: object, tag: str) -> list[object]:
    """A set's members as a list; a set is a non-empty list (DynamoDB has no empty sets)."""
    if not isinstance(v, list | set | frozenset | tuple):
        raise DecodeError(f"{tag} value must be a list, got {type(v).__name__}")
    if not v:
        raise DecodeError(f"{tag} value is empty (DynamoDB has no empty sets)")
    return list(v)


def _duplicate(tag: str, member: str) -> DecodeError:
    # DynamoDB refuses a set with duplicates ("Input collection contains duplicates"),
    # so it never sends one; folding them silently would hide a hand-made mistake.
    return DecodeError(f"{tag} value has a duplicate member {_shown(member)}")


def _ss(v: object) -> object:
    if v.__class__ is list and v and set(map(type, v)) == _ONLY_STR and len(set(v)) == len(v):
        return sorted(v)  # the common case: plain distinct strings
    return _ss_checked(v)


_ONLY_STR = frozenset({str})


def _ss_checked(v: object) -> object:
    """SS, member by member: the same answer as :func:`_ss`'s shortcut, and every refusal's reason."""
    members: list[str] = []
    for i, x in enumerate(_members(v, "SS")):
        if not isinstance(x, str):
            raise DecodeError(f"SS members must be strings, got {type(x).__name__}", f"[{i}]")
        members.append(str(x))
    seen: set[str] = set()
    for x in members:
        if x in seen:
            raise _duplicate("SS", x)
        seen.add(x)
    return sorted(members)


def _ns(v: object) -> object:
    if v.__class__ is list and v:
        # The common case: every member an int or a float (number_value's fast shapes). Python
        # compares and hashes those exactly ("1" == "1.0"; a float only stands for a short
        # decimal, see plain_decimal_as_float), so set and sort give what the canonical texts
        # and Decimals below would. Anything else, refusals included, takes the full path.
        try:
            values = [number_value(x) for x in v]
        except DecodeError:
            values = []
        if values and set(map(type, values)) <= _INT_FLOAT and len(set(values)) == len(values):
            return sorted(values)
    return _ns_checked(v)


_INT_FLOAT = frozenset({int, float})


def _ns_checked(v: object) -> object:
    """NS by canonical texts and Decimals: the same answer as :func:`_ns`'s shortcut, and every refusal."""
    keyed: dict[str, tuple[Decimal, object]] = {}  # canonical text: one per numeric value
    for i, x in enumerate(_members(v, "NS")):
        try:
            value, canonical = parse_number(x)
        except DecodeError as e:
            raise e.within(f"[{i}]") from None
        if canonical in keyed:  # "1" and "1.0" are one number
            raise _duplicate("NS", str(x))
        keyed[canonical] = (Decimal(canonical), value)
    return [value for _, value in sorted(keyed.values(), key=lambda pair: pair[0])]


def _bs(v: object) -> object:
    raw: set[bytes] = set()
    for i, x in enumerate(_members(v, "BS")):
        if isinstance(x, str):
            try:
                member = base64_bytes(x)
            except DecodeError as e:
                raise e.within(f"[{i}]") from None
        elif isinstance(x, bytes | bytearray | memoryview):
            member = bytes(x)
        else:
            raise DecodeError(f"BS members must be base64 text or bytes, got {type(x).__name__}", f"[{i}]")
        if member in raw:
            raise _duplicate("BS", x if isinstance(x, str) else base64.b64encode(member).decode())
        raw.add(member)
    return [base64.b64encode(x).decode("ascii") for x in sorted(raw)]


_BY_TAG: dict[str, Callable[[object], object]] = {
    "S": _s,
    "N": number_value,
    "B": _b,
    "BOOL": _bool,
    "NULL": _null,
    "M": _m,
    "L": _l,
    "SS": _ss,
    "NS": _ns,
    "BS": _bs,
}


def _value(value: object) -> object:
    if (value.__class__ is not dict and not isinstance(value, Mapping)) or len(value) != 1:
        raise DecodeError("attribute value must be an object with exactly one type tag")
    ((tag, inner),) = value.items()
    decode = _BY_TAG.get(tag)
    if decode is None:
        raise UnknownTypeTagError(str(tag))
    return decode(inner)


def _decode_pairs(pairs: Iterable[tuple[Any, Any]], in_list: bool) -> dict[Any, object]:
    """Decode a map's (name, value) pairs, or a list's (index, value) pairs, into a dict.

    The common shapes are inline: a str for S and N, a dict for M, a list for L. Anything
    else, valid or not, goes through :func:`_value` and its per-tag checks. An error gets
    its place in the path here, on its way up.
    """
    out: dict[Any, object] = {}
    for name, value in pairs:
        try:
            (tag,) = value
            inner = value[tag]
        except Exception:
            tag = inner = None
        try:
            if tag == "S" and inner.__class__ is str:
                out[name] = inner
            elif tag == "N" and inner.__class__ is str:
                out[name] = number_value(inner)
            elif tag == "M" and inner.__class__ is dict:
                out[name] = _decode_pairs(inner.items(), False)
            elif tag == "L" and inner.__class__ is list:
                out[name] = list(_decode_pairs(enumerate(inner), True).values())
            else:
                out[name] = _value(value)
        except DecodeError as e:
            raise e.within(f"[{name}]" if in_list else str(name)) from None
    return out


def _map(m: Mapping[Any, Any]) -> dict[str, object]:
    return _decode_pairs(m.items(), False)


def _list(items: list[Any]) -> list[object]:
    return list(_decode_pairs(enumerate(items), True).values())


def decode_value(value: object, path: str = "$") -> JsonValue:
    """Decode one attribute value such as ``{"N": "12"}``; raise DecodeError at ``path``."""
    try:
        return _value(value)
    except DecodeError as e:
        raise e.within(path) from None


def decode_item(item: object) -> dict[str, JsonValue]:
    """Decode a whole item (attribute name -> DynamoDB-JSON value) into JSON-ready values."""
    if not isinstance(item, Mapping):
        raise DecodeError(f"item must be an object, got {type(item).__name__}")
    return _map(item)


# ---- JSON out: exact numbers verbatim.


def _exact(value: object) -> orjson.Fragment:
    if isinstance(value, BigInt):
        return orjson.Fragment(int.__repr__(value))
    if isinstance(value, ExactDecimal):
        return orjson.Fragment(value.digits)
    if isinstance(value, int) and not isinstance(value, bool):  # an int subclass
        return orjson.Fragment(int.__repr__(value))
    if isinstance(value, str):
        return orjson.Fragment(orjson.dumps(str(value)))
    if isinstance(value, Mapping):
        return orjson.Fragment(dumps_bytes(dict(value)))
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps_bytes(doc: object) -> bytes:
    """Serialize decoded values to compact UTF-8 JSON, writing exact numbers verbatim."""
    try:
        return orjson.dumps(doc, default=_exact, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except orjson.JSONEncodeError as e:
        # A plain int beyond 64 bits (built by hand, not by the decoder) ends up here.
        raise DecodeError(f"cannot serialize document: {e}") from e


def dumps(doc: object) -> str:
    """Like :func:`dumps_bytes`, as text."""
    return dumps_bytes(doc).decode("utf-8")
