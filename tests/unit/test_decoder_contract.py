"""The decoder is the contract: one verdict, and one reason, on every path that reads a value.

Paths: the decoder (decode_item / decode_value), document ids (a stream REMOVE carries
only Keys), and export files (read, then turned into a write). There is one decoder; the
properties below hold its shortcuts (whole items against single values, the quick number
shapes against the number parser) to the general code.
"""

from __future__ import annotations

import base64
import gzip
import io
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddbsync.backfill.files import export_change
from ddbsync.dynamodb.decode import decode_item, decode_value
from ddbsync.dynamodb.export_format import iter_export_items
from ddbsync.dynamodb.keys import document_id
from ddbsync.dynamodb.numbers import number_value, parse_number
from ddbsync.errors import DecodeError
from ddbsync.mapping import map_record
from tests.support import RecordFactory
from tests.unit.test_numbers import NOT_DYNAMODB_SYNTAX, OUT_OF_RANGE, TOO_MANY_DIGITS

KEY = "exports/data/file.json.gz"


def _export_lines(fmt: str, lines: list[bytes]) -> list[dict[str, object]]:
    stream = io.BytesIO(gzip.compress(b"".join(lines)))
    return [item for _, item in iter_export_items(stream, fmt, KEY)]


def _outcome(fn: Callable[[], object]) -> tuple[object, ...]:
    try:
        fn()
    except DecodeError as e:
        return (type(e).__name__, e.reason, e.path)
    return ("accepted",)


def verdicts(value: dict[str, Any]) -> dict[str, tuple[object, ...]]:
    """What each path says about an item whose key attribute ``pk`` holds ``value``."""
    item = {"pk": value}
    remove = RecordFactory(sk=None).record("REMOVE", "x")
    remove["dynamodb"]["Keys"] = item
    seen = {
        "item": _outcome(lambda: decode_item(item)),
        "value": _outcome(lambda: decode_value(value, "pk")),
        "document id": _outcome(lambda: document_id(item, "pk", None)),
        "stream REMOVE": _outcome(lambda: map_record(remove, "pk", None)),
    }
    if not any(isinstance(v, bytes | bytearray) for v in value.values()):  # JSON has no bytes
        (from_export,) = _export_lines("DYNAMODB_JSON", [orjson.dumps({"Item": item}) + b"\n"])
        seen["export"] = _outcome(lambda: export_change(from_export, "pk", None, 1_767_225_600.0))
    return seen


def assert_one_verdict(value: dict[str, Any], reason_starts: str) -> None:
    seen = verdicts(value)
    assert len(set(seen.values())) == 1, seen
    kind, reason, path = next(iter(seen.values()))
    assert kind == "DecodeError", seen
    assert path == "pk"
    assert isinstance(reason, str)
    assert reason.startswith(reason_starts), reason


# --- numbers: refused alike in a value and in a key -------------------------------------------


@pytest.mark.parametrize("text", NOT_DYNAMODB_SYNTAX, ids=repr)
def test_number_syntax_errors_are_refused_with_one_reason_everywhere(text: str) -> None:
    assert_one_verdict({"N": text}, "invalid number")


@pytest.mark.parametrize("text", TOO_MANY_DIGITS, ids=lambda t: t[:24])
def test_too_many_digits_are_refused_with_one_reason_everywhere(text: str) -> None:
    assert_one_verdict({"N": text}, "number ")


@pytest.mark.parametrize("text", OUT_OF_RANGE, ids=lambda t: t[:24])
def test_out_of_range_numbers_are_refused_with_one_reason_everywhere(text: str) -> None:
    assert_one_verdict({"N": text}, "number ")


def test_a_key_of_1e999_is_refused_like_the_same_value() -> None:
    seen = verdicts({"N": "1e999"})
    assert seen["document id"] == seen["item"]
    assert "outside DynamoDB's range" in str(seen["document id"][1])


@pytest.mark.parametrize(
    ("ion", "as_passed_on"),
    [
        ("1d999", "1E999"),
        ("-12d-200", "-12E-200"),
        ("1" * 39, "1" * 39 + "E0"),  # an Ion int
        ("1" * 39 + ".", "1" * 39 + "E0"),  # an Ion decimal
    ],
)
def test_an_ion_export_refuses_a_number_like_a_json_export_of_that_text(ion: str, as_passed_on: str) -> None:
    # The Ion reader does not judge numbers: it passes DynamoDB's own text on when the number
    # is valid and an exact exponent form when not, so the decoder gives the verdict.
    (from_ion,) = _export_lines("ION", [f"$ion_1_0 {{Item:{{pk:{ion}}}}}\n".encode()])
    assert from_ion == {"pk": {"N": as_passed_on}}
    (from_json,) = _export_lines("DYNAMODB_JSON", [orjson.dumps({"Item": from_ion}) + b"\n"])
    ion_verdict = _outcome(lambda: export_change(from_ion, "pk", None, 0.0))
    assert ion_verdict[0] == "DecodeError"
    assert ion_verdict == _outcome(lambda: export_change(from_json, "pk", None, 0.0))
    assert ion_verdict == verdicts({"N": as_passed_on})["document id"]


@pytest.mark.parametrize("raw", [b"12", b"0", bytearray(b"7"), 12, None], ids=repr)
def test_an_n_value_that_is_not_text_is_refused_everywhere(raw: object) -> None:
    assert_one_verdict({"N": raw}, "N value must be a string")


@pytest.mark.parametrize(
    ("value", "reason"),
    [({"S": 1}, "S value must be a string"), ({"B": 1}, "B value must be base64 text or bytes")],
    ids=repr,
)
def test_a_key_of_the_wrong_json_type_is_refused_like_the_value(value: dict[str, Any], reason: str) -> None:
    assert_one_verdict(value, reason)


# --- binary: B is held to the same rule as a BS member ------------------------------------------

NOT_BASE64 = ["!!!", "QQ", "QQ=", "QQ==\n", " QQ==", "QQ==QQ==", "Q Q==", "QQ=A", "\u00e9A==", "-_8=", "QR=="]


@pytest.mark.parametrize("text", NOT_BASE64, ids=repr)
def test_b_text_that_is_not_canonical_base64_is_refused_everywhere(text: str) -> None:
    assert_one_verdict({"B": text}, repr(text))


@pytest.mark.parametrize("text", NOT_BASE64, ids=repr)
def test_a_bs_member_is_refused_with_the_reason_of_a_b_value(text: str) -> None:
    with pytest.raises(DecodeError) as as_b:
        decode_item({"b": {"B": text}})
    with pytest.raises(DecodeError) as as_member:
        decode_item({"b": {"BS": ["AA==", text]}})
    assert as_member.value.reason == as_b.value.reason
    assert (as_b.value.path, as_member.value.path) == ("b", "b[1]")


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\xff\xfe", b"abc", bytes(range(256))], ids=repr)
def test_canonical_base64_is_accepted_as_it_is(raw: bytes) -> None:
    text = base64.b64encode(raw).decode()
    assert verdicts({"B": text}) == dict.fromkeys(verdicts({"B": text}), ("accepted",))
    assert decode_value({"B": text}) == text
    assert document_id({"pk": {"B": text}}, "pk", None) == document_id({"pk": {"B": raw}}, "pk", None)


# --- sets -------------------------------------------------------------------------------------


def _same_everywhere(value: dict[str, Any]) -> DecodeError:
    item = {"s": value}
    (from_export,) = _export_lines("DYNAMODB_JSON", [orjson.dumps({"Item": item}) + b"\n"])
    errors = []
    paths: tuple[Callable[[], object], ...] = (
        lambda: decode_item(item),
        lambda: decode_value(value, "s"),
        lambda: decode_item(from_export),
    )
    for path in paths:
        with pytest.raises(DecodeError) as info:
            path()
        errors.append(info.value)
    assert len({(e.reason, e.path) for e in errors}) == 1, [str(e) for e in errors]
    return errors[0]


@pytest.mark.parametrize("tag", ["SS", "NS", "BS"])
def test_an_empty_set_is_refused(tag: str) -> None:
    error = _same_everywhere({tag: []})
    assert error.reason == f"{tag} value is empty (DynamoDB has no empty sets)"
    assert error.path == "s"


@pytest.mark.parametrize(
    "value",
    [
        {"SS": ["a", "b", "a"]},
        {"NS": ["1", "2", "1"]},
        {"NS": ["1", "1.0"]},  # one number, two spellings
        {"NS": ["1E+2", "100"]},
        {"NS": ["0", "-0"]},
        {"NS": ["1.5", "1.50"]},
        {"BS": ["AQ==", "AQ=="]},
    ],
    ids=repr,
)
def test_a_set_with_a_duplicate_member_is_refused(value: dict[str, list[str]]) -> None:
    error = _same_everywhere(value)
    assert error.reason.startswith(f"{next(iter(value))} value has a duplicate member")


# --- property: the decoder's shortcuts against its general code, on valid and invalid input ----

# Number texts: DynamoDB's, and near misses (spaces, '+', leading zeros, other digits, junk).
valid_numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["0", "-0", "0.0", "-0.0", "1.50", "1E+2", "15E-1", "1" + "0" * 125, "9" * 38]),
)
near_numbers = st.one_of(
    st.text(alphabet="0123456789-+.eE", max_size=12),
    st.text(alphabet="0123456789 _x\uff11\u0663\n", max_size=6),
    st.sampled_from(NOT_DYNAMODB_SYNTAX + TOO_MANY_DIGITS + OUT_OF_RANGE),
)
number_text = st.one_of(valid_numbers, near_numbers)
b64_text = st.one_of(
    st.binary(max_size=9).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet="AQRa+/= !\n\u00e9", max_size=8),
)
# Wrong JSON types where a particular one is required.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),  # boto3 hands bytes for B; anywhere else they are wrong
    st.integers(min_value=0).map(lambda n: str(n).encode()),  # digits as bytes: int() takes them
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
text = st.text(max_size=6)
TAGS = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X"]


def _scalars() -> st.SearchStrategy[object]:
    return st.one_of(
        text.map(lambda s: {"S": s}),
        number_text.map(lambda n: {"N": n}),
        b64_text.map(lambda b: {"B": b}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.lists(st.sampled_from(["a", "b", "", "é"]), max_size=4).map(lambda v: {"SS": v}),
        st.lists(number_text, max_size=4).map(lambda v: {"NS": v}),
        st.lists(b64_text, max_size=3).map(lambda v: {"BS": v}),
        st.tuples(st.sampled_from(TAGS), junk).map(lambda pair: {pair[0]: pair[1]}),
        st.sampled_from([{}, {"S": "a", "N": "1"}, "S", None, ["S", "x"]]),
    )


values = st.recursive(
    _scalars(),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda xs: {"L": xs}),
        st.dictionaries(text, children, max_size=3).map(lambda m: {"M": m}),
    ),
    max_leaves=10,
)
items = st.dictionaries(text, values, max_size=5)


def typed(value: object) -> object:
    """A value with its exact types spelled out: 1, 1.0, True and BigInt(1) all differ."""
    if isinstance(value, dict):
        return ("dict", sorted((k, typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, repr(value))


def outcome(fn: Callable[[], object]) -> tuple[object, ...]:
    try:
        return ("value", typed(fn()))
    except DecodeError as e:
        return (type(e).__name__, e.reason, e.path)


@settings(max_examples=400)
@given(items)
def test_a_whole_item_decodes_as_its_values_one_by_one(item: dict[str, Any]) -> None:
    # decode_item's loop takes S, N and M inline; decode_value takes every value through
    # the per-tag functions. The first error in attribute order wins, with its full path.
    expected: tuple[object, ...]
    try:
        expected = ("value", typed({name: decode_value(v, name) for name, v in item.items()}))
    except DecodeError as e:
        expected = (type(e).__name__, e.reason, e.path)
    assert outcome(lambda: decode_item(item)) == expected


@settings(max_examples=300)
@given(values)
def test_a_value_in_a_list_or_a_map_decodes_as_it_does_alone(value: Any) -> None:
    alone = outcome(lambda: decode_value(value, "v"))
    in_list = outcome(lambda: decode_value({"L": [value]}, "v"))
    in_map = outcome(lambda: decode_value({"M": {"k": value}}, "v"))
    if alone[0] == "value":
        assert in_list == ("value", ("list", [alone[1]]))
        assert in_map == ("value", ("dict", [("k", alone[1])]))
    else:
        path = str(alone[2])
        assert path == "v" or path.startswith(("v.", "v["))
        inner = path[1:]  # "", ".name..." or "[i]..."
        assert in_list == (alone[0], alone[1], "v[0]" + inner)
        assert in_map == (alone[0], alone[1], "v.k" + inner)


@settings(max_examples=500)
@given(number_text)
def test_the_quick_number_shapes_agree_with_the_parser(text: str) -> None:
    assert outcome(lambda: number_value(text)) == outcome(lambda: parse_number(text).value)
    # Each place a number is read, against the parser's verdict.
    value: object = None
    error: tuple[str, str] | None = None
    try:
        value = parse_number(text).value
    except DecodeError as e:
        error = (type(e).__name__, e.reason)
    for item, path, decoded in (
        ({"n": {"N": text}}, "n", {"n": value}),
        ({"l": {"L": [{"N": text}]}}, "l[0]", {"l": [value]}),
        ({"m": {"M": {"n": {"N": text}}}}, "m.n", {"m": {"n": value}}),
    ):
        got = outcome(lambda: decode_item(item))  # noqa: B023
        assert got == (("value", typed(decoded)) if error is None else (*error, path))
