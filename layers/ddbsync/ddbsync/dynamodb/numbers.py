"""DynamoDB numbers: the one parser every path uses, and the types that keep every digit.

Why one parser: a number is read in several places (attribute values, sets, document
ids for ``N`` keys, export files). Python's ``int()`` and
``Decimal()`` are lenient (``" 1"``, ``"1_000"``, ``"+5"``, full-width digits,
``"NaN"``), so each place used to accept a slightly different language, and a
value could be refused in an image but accepted as a key. :func:`parse_number`
is now the only judge; :func:`number_value` answers first only for texts it can
prove :func:`parse_number` would accept with the same value.

The language (what DynamoDB itself emits)
-----------------------------------------
``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?`` -- exactly a JSON number
(RFC 8259, section 6), ASCII only, nothing around it. Choices:

* No leading ``+``, no ``.5`` or ``5.``, no leading zeros (``"007"``):
  DynamoDB's API accepts some of these on input but stores numbers trimmed
  ("Leading and trailing zeroes are trimmed", see below), so streams, exports
  and ``GetItem`` never carry them. Rejecting them keeps every accepted text a
  valid JSON number, which the decoder may therefore write out verbatim.
* The exponent may carry ``+`` or ``-`` (``1E+2``): JSON allows it and it is
  how Java's ``BigDecimal`` (and Python's ``Decimal``) print exponents.
* Trailing zeros in a fraction (``1.50``) are accepted: a hand-made event may
  have them, the value is unambiguous, and the id uses the canonical ``1.5``.
* Zero may have any exponent (``0E+1000`` is zero); ``-0`` is zero.

Limits (Amazon DynamoDB Developer Guide, "Supported data types and naming
rules", Number: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number
and "Quotas ... Data types": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-data-types):
"Numbers can have up to 38 digits of precision. Exceeding this results in an
exception", positive range 1E-130 to 9.9999999999999999999999999999999999999E+125,
negative range -9.9999999999999999999999999999999999999E+125 to -1E-130.
Significant digits are counted with leading and trailing zeros removed (DynamoDB
trims them), so ``1`` followed by 125 zeros is one digit at exponent 125. With
at most 38 digits, "in range" is exactly "the leading digit's exponent is in
-130..125".

Decoded values
--------------
An integer (no ``.``, a whole value) is an ``int`` (:class:`BigInt` beyond
orjson's 64-bit range); a plain short decimal is a ``float`` when the float
prints back the same value (:func:`plain_decimal_as_float`); anything else is an
:class:`ExactDecimal` holding the text as given, which is valid JSON by the
grammar above.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ddbsync.errors import DecodeError

__all__ = [
    "INT64_MIN",
    "MAX_EXPONENT",
    "MAX_SIGNIFICANT_DIGITS",
    "MIN_EXPONENT",
    "UINT64_MAX",
    "BigInt",
    "ExactDecimal",
    "ParsedNumber",
    "canonical_number",
    "number_value",
    "parse_number",
    "plain_decimal_as_float",
]

# orjson serializes integers in [-2**63, 2**64 - 1] natively.
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1

MAX_SIGNIFICANT_DIGITS = 38
MIN_EXPONENT = -130  # exponent of the leading digit: 1E-130
MAX_EXPONENT = 125  # 9.99...E+125

# [0-9], not \d: \d also matches other scripts' digits.
_SYNTAX = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]+))?")
_SHOWN = 40  # characters of a bad number quoted in an error


class BigInt(int):
    """An integer beyond 64 bits: still an ``int``, written digit for digit."""

    __slots__ = ()


class ExactDecimal(str):
    """A decimal number (its digits as text) that a float would round."""

    __slots__ = ()

    @property
    def digits(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"ExactDecimal({self.digits!r})"


class ParsedNumber(NamedTuple):
    """A validated DynamoDB number: its decoded value and its canonical text (for ids)."""

    value: int | float | ExactDecimal
    canonical: str


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def plain_decimal_as_float(text: str) -> float | None:
    """The float for a short plain decimal (``-12.5``), else None; safe on any text.

    Returns a float only for ``-?(0|[1-9][0-9]*)\\.[0-9]+`` with at most 16
    characters after the sign, a fraction that does not end in ``0`` (except
    ``x.0`` itself) -- a subset of :func:`parse_number`'s language. Such a text
    has at most 15 significant digits, so it is within DynamoDB's precision and
    range, and the double nearest to it prints back the same value (DBL_DIG =
    15): no digit is lost. Trailing zeros (``1.50``) would not survive the trip
    as text, so those stay exact. ``16.0`` is kept: Python and orjson both
    write that float as ``16.0``.

    :func:`number_value` calls this before :func:`parse_number`, which applies the
    very same function to decide float or not: the two cannot disagree.
    """
    body = text[1:] if text[:1] == "-" else text
    dot = body.find(".")
    if (
        0 < dot < len(body) - 1 <= 15
        and body.isascii()
        and (body[0] != "0" or dot == 1)
        and (body[-1] != "0" or body[-2] == ".")
        and body.replace(".", "", 1).isdigit()
    ):
        return float(text)
    return None


def parse_number(text: object, path: str = "") -> ParsedNumber:
    """Validate one DynamoDB ``N`` text; return its value and canonical text.

    Raises :class:`DecodeError` at ``path`` with one reason per kind of problem:
    not a string, not DynamoDB number syntax, more than 38 significant digits,
    outside DynamoDB's range. Never does arithmetic on a number before its size
    is known to be sane (``"7E731486"`` is refused without building it).
    """
    if not isinstance(text, str):
        raise DecodeError(f"N value must be a string, got {type(text).__name__}", path)
    match = _SYNTAX.fullmatch(text)
    if match is None:
        raise DecodeError(
            f"invalid number {_shown(text)} (DynamoDB writes an optional '-', ASCII digits without"
            " leading zeros, an optional .fraction and an optional exponent, nothing else)",
            path,
        )
    minus, whole, fraction, exponent_text = match.groups()
    fraction = fraction or ""
    coefficient = (whole + fraction).lstrip("0")
    if not coefficient:  # zero, whatever its sign, fraction or exponent
        return ParsedNumber(_value(text, 1, "", 0), "0")
    digits = coefficient.rstrip("0")
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        raise DecodeError(
            f"number {_shown(text)} has {len(digits)} significant digits;"
            f" DynamoDB allows at most {MAX_SIGNIFICANT_DIGITS}",
            path,
        )
    # value = digits * 10**exponent. An exponent of more than 18 digits is out of
    # range whatever the text's length, and int() of it could be slow or refused.
    if exponent_text is not None and len(exponent_text.lstrip("+-").lstrip("0")) > 18:
        raise _out_of_range(text, path)
    exponent = int(exponent_text or 0) - len(fraction) + (len(coefficient) - len(digits))
    if not MIN_EXPONENT <= exponent + len(digits) - 1 <= MAX_EXPONENT:
        raise _out_of_range(text, path)
    sign = -1 if minus else 1
    return ParsedNumber(_value(text, sign, digits, exponent), _canonical(minus, digits, exponent))


def number_value(text: object) -> int | float | ExactDecimal:
    """The decoded value of an ``N`` text: :func:`parse_number`'s value, quickly for common texts.

    Two shapes answer without the full parse, each a subset of the language that
    :func:`parse_number` would give the very same value: 1 to 18 ASCII digits with an
    optional ``-`` and no leading zero (an ``int`` below 10**18: in range, within 64
    bits, so ``int(text)``), and the short plain decimals of
    :func:`plain_decimal_as_float`. For digits-only text, ``>= "1"`` means "does not
    start with 0". Everything else, errors included, is :func:`parse_number`'s.
    """
    if text.__class__ is str:
        body = text[1:] if text[:1] == "-" else text
        if body.isdigit() and body.isascii() and len(body) < 19 and (body >= "1" or body == "0"):
            return int(text)
        as_float = plain_decimal_as_float(text)
        if as_float is not None:
            return as_float
    return parse_number(text).value


def _out_of_range(text: str, path: str) -> DecodeError:
    return DecodeError(
        f"number {_shown(text)} is outside DynamoDB's range (1E-130 to 9.99...E+125 in magnitude)",
        path,
    )


def _value(text: str, sign: int, digits: str, exponent: int) -> int | float | ExactDecimal:
    """The decoded value of a validated number (``digits`` empty for zero)."""
    if "." not in text:
        if not digits:
            return 0
        if exponent >= 0:  # "12", "1E+2", "10E-1": a whole number
            value = sign * int(digits) * 10**exponent
            return value if INT64_MIN <= value <= UINT64_MAX else BigInt(value)
        return ExactDecimal(text)  # "15E-1"
    as_float = plain_decimal_as_float(text)
    return as_float if as_float is not None else ExactDecimal(text)


def _canonical(minus: str, digits: str, exponent: int) -> str:
    """Plain positional digits, no exponent, no trailing zeros: ``1.5``, ``100``, ``-0.01``."""
    if exponent >= 0:
        return f"{minus}{digits}{'0' * exponent}"
    point = len(digits) + exponent  # digits before the decimal point
    if point > 0:
        return f"{minus}{digits[:point]}.{digits[point:]}"
    return f"{minus}0.{'0' * -point}{digits}"


def canonical_number(text: object, path: str = "") -> str:
    """Canonical text of a DynamoDB number: ``"1.50"`` -> ``"1.5"``, ``"1E+2"`` -> ``"100"``.

    Used for document ids, so that a key written as ``"100"`` by one path and
    ``"1E+2"`` by another gives one id; the same numeric value always gives the
    same text and different values different texts.
    """
    return parse_number(text, path).canonical
