"""Number values that must keep every digit when serialized.

JSON has no limit on digits, but Python's float and most encoders do. A decoded
DynamoDB number is a plain ``int`` (64-bit range) or ``float`` (only when the
float prints back the very same digits); otherwise it is one of these two
types, which :func:`ddbsync.decode.dumps` writes out verbatim.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

from ddbsync.errors import DecodeError

__all__ = [
    "INT64_MIN",
    "UINT64_MAX",
    "BigInt",
    "ExactDecimal",
    "canonical_number",
    "plain_decimal_as_float",
]

# orjson serializes integers in [-2**63, 2**64 - 1] natively.
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1


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


def plain_decimal_as_float(text: str) -> float | None:
    """The float for a plain decimal (``-12.5``) when it keeps every digit, else None.

    Any decimal with at most 15 significant digits survives the round trip
    through a double (DBL_DIG), and DynamoDB trims leading and trailing zeros,
    so such a number written back by a JSON encoder has the same value and the
    same digits (a very small or large one may switch to exponent notation).
    ``16.0`` is kept too: Python and orjson both write a float that way.
    """
    body = text[1:] if text[:1] == "-" else text
    if (
        len(body) <= 16
        and (body[-1:] != "0" or body[-2:] == ".0")
        and body[:1] != "."
        and body[-1:] != "."
        and not (body[:1] == "0" and body[1:2] != ".")
        and body.isascii()
        and body.replace(".", "", 1).isdigit()
    ):
        return float(text)
    return None


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
    # normalize() rounds to the context's precision (28 digits by default): DynamoDB
    # numbers have up to 38 significant digits, so give it room.
    with localcontext() as exact:
        exact.prec = 100
        return format(value.normalize(), "f")
