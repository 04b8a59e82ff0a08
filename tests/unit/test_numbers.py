"""numbers.parse_number: DynamoDB's number language, precision and range; one parse for value and id text."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.dynamodb.numbers import (
    BigInt,
    ExactDecimal,
    canonical_number,
    parse_number,
    plain_decimal_as_float,
)
from ddbsync.errors import DecodeError

SYNTAX = "invalid number"
PRECISION = "significant digits; DynamoDB allows at most 38"
RANGE = "outside DynamoDB's range"

# Accepted today by int()/Decimal() (or by the old fast path), refused by DynamoDB's syntax.
NOT_DYNAMODB_SYNTAX = [
    " 1",
    "1 ",
    "1e5 ",
    "\n1",
    "1_000",
    "+5",
    "+1.25",
    "\uff11\uff12",  # full-width "12"
    "\u0663",  # Arabic-Indic 3
    "1.",
    "5.",
    ".5",
    "-.5",
    "0x10",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "007",
    "-01",
    "00.5",
    "",
    "-",
    "1e",
    "1e+",
    "1.5.5",
    "1e5e5",
    "--1",
    "1,000",
    "12abc",
]
TOO_MANY_DIGITS = [
    "9" * 39,
    "-" + "1" * 39,
    "1." + "0" * 37 + "1",
    "123456789012345678901234567890123456789E10",
    "0.000" + "1" * 39,
]
OUT_OF_RANGE = ["1e999", "1E+126", "-1e126", "1e-131", "0.9E-130", "1" + "0" * 126, "10E125", "7E731486"]


@pytest.mark.parametrize("text", NOT_DYNAMODB_SYNTAX, ids=repr)
def test_text_outside_dynamodb_number_syntax_is_refused(text: str) -> None:
    with pytest.raises(DecodeError, match=SYNTAX) as info:
        parse_number(text, "n")
    assert info.value.path == "n"


@pytest.mark.parametrize("text", TOO_MANY_DIGITS, ids=lambda t: t[:24])
def test_more_than_38_significant_digits_is_refused(text: str) -> None:
    with pytest.raises(DecodeError, match=PRECISION):
        parse_number(text)


@pytest.mark.parametrize("text", OUT_OF_RANGE, ids=lambda t: t[:24])
def test_a_number_outside_dynamodbs_range_is_refused(text: str) -> None:
    with pytest.raises(DecodeError, match=RANGE):
        parse_number(text)


@pytest.mark.parametrize("value", [12, 1.5, None, b"1", ["1"]], ids=repr)
def test_an_n_value_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(DecodeError, match="N value must be a string"):
        parse_number(value)


@pytest.mark.parametrize(
    ("text", "value", "canonical"),
    [
        ("0", 0, "0"),
        ("-0", 0, "0"),
        ("0E+1000", 0, "0"),  # zero with any exponent is zero
        ("42", 42, "42"),
        ("-42", -42, "-42"),
        ("1E+2", 100, "100"),  # '+' in an exponent: JSON, and how BigDecimal prints
        ("1e2", 100, "100"),
        ("1e02", 100, "100"),  # leading zeros in an exponent are JSON too
        ("10E-1", 1, "1"),
        ("1.5", 1.5, "1.5"),
        ("-0.01", -0.01, "-0.01"),
        ("16.0", 16.0, "16"),
        ("1.50", ExactDecimal("1.50"), "1.5"),
        ("15E-1", ExactDecimal("15E-1"), "1.5"),
        ("1.5E+2", ExactDecimal("1.5E+2"), "150"),
        ("12345678901234567890123456789012345678", BigInt(12345678901234567890123456789012345678),
         "12345678901234567890123456789012345678"),
        ("1" + "0" * 125, BigInt(10**125), "1" + "0" * 125),
        ("1E-130", ExactDecimal("1E-130"), "0." + "0" * 129 + "1"),
        ("-9.9999999999999999999999999999999999999E+125",
         ExactDecimal("-9.9999999999999999999999999999999999999E+125"), "-" + "9" * 38 + "0" * 88),
    ],
    ids=lambda x: str(x)[:24],
)
def test_dynamodb_numbers_decode_and_give_canonical_text(text: str, value: object, canonical: str) -> None:
    parsed = parse_number(text)
    assert parsed.value == value
    assert type(parsed.value) is type(value)
    assert parsed.canonical == canonical
    assert canonical_number(text) == canonical


def test_a_huge_exponent_is_refused_without_building_the_number() -> None:
    start = time.perf_counter()
    for text in ["1e" + "9" * 5000, "1e-" + "9" * 5000, "1" + "0" * 100_000, "0." + "0" * 100_000 + "1"]:
        with pytest.raises(DecodeError, match=RANGE):
            parse_number(text)
    assert time.perf_counter() - start < 1.0


def _dynamodb_decimal(d: Decimal) -> bool:
    significant = "".join(map(str, d.as_tuple().digits)).strip("0")
    return d == 0 or (len(significant) <= 38 and -130 <= d.adjusted() <= 125)


dynamodb_decimals = st.decimals(allow_nan=False, allow_infinity=False).filter(_dynamodb_decimal)


@given(dynamodb_decimals)
def test_canonical_text_has_the_same_value_and_one_text_per_value(d: Decimal) -> None:
    canonical = canonical_number(str(d))
    assert Decimal(canonical) == d
    assert canonical_number(canonical) == canonical  # a fixed point: already canonical
    assert "e" not in canonical.lower()
    assert canonical_number(format(d, "f")) == canonical == canonical_number(f"{d:E}")


@given(st.text(alphabet="-0123456789.", max_size=18))
def test_the_float_shortcut_only_answers_for_numbers_it_keeps_exactly(text: str) -> None:
    # plain_decimal_as_float runs before parse_number in the fast decoder: whatever it
    # accepts, parse_number must accept too, with the very same float.
    as_float = plain_decimal_as_float(text)
    if as_float is not None:
        parsed = parse_number(text)
        assert type(parsed.value) is float
        assert repr(parsed.value) == repr(as_float)
        assert Decimal(repr(as_float)) == Decimal(text)  # no digit lost
