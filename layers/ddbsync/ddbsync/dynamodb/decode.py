"""A fast, exact decoder for DynamoDB JSON (stream records, exports, archive).

Compared with boto3's ``TypeDeserializer`` the output is JSON-ready and exact:

* ``N``: integers stay exact (``int``, or :class:`BigInt` beyond 64 bits); a
  decimal becomes a ``float`` only when the float prints back the very same
  digits, otherwise an :class:`ExactDecimal`. :func:`dumps` writes both digit
  for digit (OpenSearch keeps the original text in ``_source``).
* ``B``: base64 text (stream events already carry base64; ``bytes`` from boto3
  are encoded).
* ``SS``/``NS``/``BS``: sorted lists (sets have no order; sorting makes the
  document identical whichever path wrote it).

The decoder is the contract: it accepts what DynamoDB can hold and nothing
else, identically on every path. Numbers must be DynamoDB number text within
its precision and range (:func:`ddbsync.dynamodb.numbers.parse_number`, the one judge),
B text must be canonical base64, sets must be non-empty without duplicates.
The details and reasons are in :mod:`ddbsync.dynamodb.decode_checked`.

Speed: the common case runs a tight decoder with no per-value bookkeeping
(``_map``). On anything unexpected it falls back to
:mod:`ddbsync.dynamodb.decode_checked`, which validates every value and raises
:class:`DecodeError` with the exact path, or returns the same result for
odd-but-valid input. So every error, and its reason, comes from the checked
decoder; the fast one only has to never accept what the checked one refuses,
and to agree with it on values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ddbsync.dynamodb.decode_checked import base64_bytes, checked_item, checked_value
from ddbsync.dynamodb.numbers import (
    BigInt,
    ExactDecimal,
    canonical_number,
    parse_number,
    plain_decimal_as_float,
)
from ddbsync.errors import DecodeError

__all__ = [
    "BigInt",
    "ExactDecimal",
    "JsonValue",
    "canonical_number",
    "decode_item",
    "decode_value",
    "dumps",
    "dumps_bytes",
]

JsonValue = object


class _Slow(Exception):
    """The fast decoder met something it does not handle: use the checked decoder."""


# The inline integer test in _map and _list,
#     inner.isdigit() and inner.isascii() and len(inner) < 19 and (inner >= "1" or inner == "0")
# accepts exactly 1 to 18 ASCII digits without a leading zero (for digits-only text,
# ``>= "1"`` means "does not start with 0"). That is DynamoDB number syntax, at most
# 18 significant digits, below 10**18 (in range, and within 64 bits), and
# parse_number's value for it is int(inner): so answering int(inner) directly cannot
# differ from parse_number. _num applies the same test to the digits after an optional '-'.
# Anything but a str fails it by raising (bytes have isdigit() but cannot be compared
# with "1"), which sends the item to the checked decoder like any other surprise.


def _num(text: Any) -> object:
    body = text[1:] if text[:1] == "-" else text
    if body.isdigit() and body.isascii() and len(body) < 19 and (body >= "1" or body == "0"):
        return int(text)
    as_float = plain_decimal_as_float(text)  # parse_number gives this very float for such text
    if as_float is not None:
        return as_float
    return parse_number(text).value


def _map(m: Any) -> dict[str, object]:
    # The hot loop: S, N, M and L inline, everything else through _value. Anything
    # malformed raises (AttributeError, TypeError, ValueError, DecodeError, _Slow) and
    # decode_item falls back to the checked decoder, which explains the problem.
    out: dict[str, object] = {}
    for name, value in m.items():
        (tag,) = value  # exactly one type tag, or ValueError
        inner = value[tag]
        if tag == "S":
            if inner.__class__ is not str:
                raise _Slow
            out[name] = inner
        elif tag == "N":
            if inner.isdigit() and inner.isascii() and len(inner) < 19 and (inner >= "1" or inner == "0"):
                out[name] = int(inner)  # see the proof above _num
            else:
                out[name] = _num(inner)
        elif tag == "M":
            out[name] = _map(inner)
        elif tag == "L":
            out[name] = _list(inner)
        else:
            out[name] = _value(tag, inner)
    return out


def _list(items: Any) -> list[object]:
    if items.__class__ is not list:
        raise _Slow
    out: list[object] = []
    for value in items:
        (tag,) = value
        inner = value[tag]
        if tag == "S":
            if inner.__class__ is not str:
                raise _Slow
            out.append(inner)
        elif tag == "N":
            if inner.isdigit() and inner.isascii() and len(inner) < 19 and (inner >= "1" or inner == "0"):
                out.append(int(inner))
            else:
                out.append(_num(inner))
        elif tag == "M":
            out.append(_map(inner))
        else:
            out.append(_value(tag, inner))
    return out


def _value(tag: str, inner: Any) -> object:  # noqa: C901 - to be split in the decode.py rewrite
    if tag == "S":
        if inner.__class__ is str:
            return inner
    elif tag == "N":
        if inner.__class__ is str:
            return _num(inner)
    elif tag == "M":
        if inner.__class__ is dict:
            return _map(inner)
    elif tag == "L":
        return _list(inner)
    elif tag == "BOOL":
        if inner is True or inner is False:
            return inner
    elif tag == "NULL":
        if inner is True:
            return None
    elif tag == "SS":
        if (
            inner.__class__ is list
            and inner
            and all(x.__class__ is str for x in inner)
            and len(set(inner)) == len(inner)
        ):
            return sorted(inner)
    elif tag == "B":
        if inner.__class__ is str:
            base64_bytes(inner)
            return inner
    elif tag == "NS" and inner.__class__ is list and inner:
        numbers = [_num(x) for x in inner]
        # Ints and floats here are exact or hold at most 15 digits, so == and < on
        # them agree with the exact decimal values: distinct numbers stay distinct
        # (a duplicate goes to the checked decoder, which names it) and sort alike.
        if all(n.__class__ is int or n.__class__ is float for n in numbers) and len(set(numbers)) == len(
            numbers
        ):
            return sorted(numbers)  # type: ignore[type-var]
    raise _Slow


def decode_value(value: object, path: str = "$") -> JsonValue:
    """Decode one attribute value such as ``{"N": "12"}``; raise DecodeError with its path."""
    fast: Any = value
    try:
        (tag,) = fast
        return _value(tag, fast[tag])
    except Exception:  # anything unusual: let the checked decoder decide and explain
        return checked_value(value, path)


def decode_item(item: Mapping[str, object]) -> dict[str, JsonValue]:
    """Decode a whole item (attribute name -> DynamoDB-JSON value) into JSON-ready values."""
    if item.__class__ is dict:
        try:
            return _map(item)
        except Exception:
            pass
    return checked_item(item)



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


_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps_bytes(doc: object) -> bytes:
    """Serialize decoded values to compact UTF-8 JSON, writing exact numbers verbatim."""
    try:
        return orjson.dumps(doc, default=_exact, option=_OPTIONS)
    except orjson.JSONEncodeError as e:
        # A plain int beyond 64 bits (built by hand, not by the decoder) ends up here.
        raise DecodeError(f"cannot serialize document: {e}") from e


def dumps(doc: object) -> str:
    """Like :func:`dumps_bytes`, as text."""
    return dumps_bytes(doc).decode("utf-8")

