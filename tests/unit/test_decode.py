"""decode: DynamoDB JSON to exact, JSON-ready values (compared with boto3's TypeDeserializer)."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.dynamodb.decode import ExactDecimal, decode_item, decode_value, dumps
from ddbsync.errors import DecodeError, UnknownTypeTagError
from tests.support import load_event

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def roundtrip(value: object) -> Any:
    """What OpenSearch would parse from the serialized document (numbers kept exact)."""
    return json.loads(dumps(value), parse_float=Decimal, parse_int=Decimal)


# --- one test per type tag ---------------------------------------------------------------


def test_s_decodes_to_the_same_string() -> None:
    assert decode_value({"S": "héllo ✓"}) == "héllo ✓"


def test_n_integer_decodes_to_an_int() -> None:
    value = decode_value({"N": "-42"})
    assert value == -42
    assert type(value) is int


def test_n_decimal_that_a_float_prints_back_decodes_to_that_float() -> None:
    assert decode_value({"N": "89.99"}) == 89.99
    assert dumps(decode_value({"N": "89.99"})) == "89.99"


def test_b_base64_text_stays_as_it_is() -> None:
    assert decode_value({"B": "AAECAwT/"}) == "AAECAwT/"


def test_b_bytes_are_encoded_as_base64() -> None:
    assert decode_value({"B": b"\x00\x01\x02\x03\x04\xff"}) == "AAECAwT/"


def test_bool_decodes_to_a_bool() -> None:
    assert decode_value({"BOOL": False}) is False
    assert decode_value({"BOOL": True}) is True


def test_null_decodes_to_none() -> None:
    assert decode_value({"NULL": True}) is None


def test_m_decodes_every_member() -> None:
    assert decode_value({"M": {"a": {"S": "x"}, "b": {"M": {"c": {"N": "1"}}}}}) == {"a": "x", "b": {"c": 1}}


def test_l_decodes_every_element_in_order() -> None:
    assert decode_value({"L": [{"N": "2"}, {"S": "a"}, {"L": [{"NULL": True}]}]}) == [2, "a", [None]]


def test_ss_becomes_a_sorted_list() -> None:
    assert decode_value({"SS": ["red", "green", "blue"]}) == ["blue", "green", "red"]


def test_ns_is_sorted_numerically_not_as_text() -> None:
    assert decode_value({"NS": ["10", "9", "-2", "1.5"]}) == [-2, 1.5, 9, 10]


def test_bs_is_sorted_by_bytes_and_given_as_base64() -> None:
    assert decode_value({"BS": ["Ag==", "AwQ=", "AQ=="]}) == ["AQ==", "Ag==", "AwQ="]


def test_bs_of_bytes_and_of_base64_text_decode_alike() -> None:
    assert decode_value({"BS": [b"\x02", b"\x01"]}) == decode_value({"BS": ["Ag==", "AQ=="]})


def test_the_all_types_sample_event_decodes_exactly() -> None:
    image = load_event("all_types.json")["Records"][0]["dynamodb"]["NewImage"]
    doc = decode_item(image)
    assert doc["s"] == "héllo wörld ✓"
    assert doc["n_huge"] == 123456789012345678901234567890
    assert doc["n_negative"] == -42
    assert doc["b"] == "AAECAwT/"
    assert doc["bool"] is True
    assert doc["null"] is None
    assert doc["m"] == {"color": "red", "size": 10, "inner": {"ok": False}}
    assert doc["l"] == ["a", 1, [None], {"k": "v"}]
    assert doc["ss"] == ["blue", "green", "red"]
    assert doc["ns"] == [-2, 1.5, 3, 123456789012345678901234567890]
    assert doc["bs"] == ["AQ==", "Ag==", "AwQ="]
    text = dumps(doc)
    assert '"n_decimal":3.14159265358979323846264338327950288' in text
    assert '"n_huge":123456789012345678901234567890' in text
    json.loads(text)


# --- numbers stay exact -------------------------------------------------------------------


# Any integer DynamoDB holds: up to 38 significant digits, then zeros up to 126 digits.
dynamodb_integers = st.builds(
    lambda n, zeros: n * 10**zeros,
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.integers(min_value=0, max_value=88),
)


@given(dynamodb_integers)
def test_integers_of_any_size_stay_exact_ints(n: int) -> None:
    value = decode_value({"N": str(n)})
    assert isinstance(value, int)
    assert not isinstance(value, bool)
    assert value == n
    assert json.loads(dumps(value)) == n
    assert dumps({"n": value}) == f'{{"n":{n}}}'


@pytest.mark.parametrize(
    "digits",
    ["3.14159265358979323846264338327950288", "0.10", "1.000", "-0.5000000000000000000001", "1.5E+2"],
)
def test_decimals_keep_their_digits_through_dumps(digits: str) -> None:
    value = decode_value({"N": digits})
    assert isinstance(value, ExactDecimal)
    assert value.digits == digits
    text = dumps({"x": value, "l": [value]})
    assert text == f'{{"x":{digits},"l":[{digits}]}}'
    assert json.loads(text, parse_float=Decimal)["x"] == Decimal(digits)


def test_exponent_form_integer_decodes_to_that_integer() -> None:
    value = decode_value({"N": "1E+2"})
    assert value == 100
    assert type(value) is int


def _a_dynamodb_number(d: Decimal) -> bool:
    significant = "".join(map(str, d.as_tuple().digits)).strip("0")
    return d == 0 or (len(significant) <= 38 and -130 <= d.adjusted() <= 125)


@given(st.decimals(allow_nan=False, allow_infinity=False).filter(_a_dynamodb_number).map(str))
def test_any_finite_decimal_serializes_to_valid_json_of_equal_value(text: str) -> None:
    out = dumps({"v": decode_value({"N": text})})
    assert json.loads(out, parse_float=Decimal, parse_int=Decimal)["v"] == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "7E731486",
        "1E+126",
        "-1E126",
        "1E-131",
        "0.9E-130",
        "1" + "0" * 126,
        "-1" + "0" * 5000,
        "0." + "0" * 5000 + "1",
        "1e" + "9" * 5000,
        "1e-" + "9" * 30,
    ],
    ids=lambda t: t[:20],
)
def test_a_number_beyond_dynamodbs_range_is_a_decode_error_and_fails_fast(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DecodeError, match="outside DynamoDB's range"):
        decode_value({"N": text})
    assert time.perf_counter() - start < 1.0  # not seconds of big-integer arithmetic


@pytest.mark.parametrize(
    "text",
    [
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999E+125",
        "1E-130",
        "-1E-130",
        "9" * 38 + "0" * 88,
        "1" + "0" * 125,
        "0E+1000",
    ],
    ids=lambda t: t[:20],
)
def test_the_edges_of_dynamodbs_range_decode(text: str) -> None:
    assert roundtrip({"v": decode_value({"N": text})})["v"] == Decimal(text)


# --- malformed input ----------------------------------------------------------------------


def test_an_unknown_tag_raises_with_the_path_of_the_value() -> None:
    item = {"a": {"M": {"b": {"L": [{"S": "ok"}, {"X": "1"}]}}}}
    with pytest.raises(UnknownTypeTagError) as info:
        decode_item(item)
    assert info.value.path == "a.b[1]"
    assert info.value.tag == "X"


def test_an_unknown_tag_is_a_decode_error() -> None:
    assert issubclass(UnknownTypeTagError, DecodeError)


@pytest.mark.parametrize(
    "value",
    [
        {"N": "abc"},
        {"N": "NaN"},
        {"N": "Infinity"},
        {"N": "-Infinity"},
        {"N": "sNaN"},
        {"N": 12},
        {"NS": ["NaN"]},
        {"NS": [1]},
        {"S": "a", "N": "1"},
        {},
        "S",
        ["S", "x"],
        None,
        {"S": 1},
        {"BOOL": "true"},
        {"NULL": False},
        {"M": []},
        {"L": {}},
        {"SS": "abc"},
        {"SS": ["a", 1]},
        {"B": 1},
        {"BS": ["not base64!"]},
        {"BS": [1]},
    ],
    ids=repr,
)
def test_a_malformed_value_raises_decode_error(value: object) -> None:
    with pytest.raises(DecodeError):
        decode_value(value)


@pytest.mark.parametrize("members", [["abc"], ["1", "abc"], ["NaN", "1"]], ids=repr)
def test_a_number_set_with_a_malformed_member_raises_decode_error(members: list[str]) -> None:
    with pytest.raises(DecodeError):
        decode_value({"NS": members})


def test_a_non_mapping_item_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_item(["not", "an", "item"])


@given(name=st.text(), text=st.text())
def test_any_text_round_trips_as_a_value_and_as_an_attribute_name(name: str, text: str) -> None:
    # Earlier versions marked exact numbers inside strings; no string may be mistaken for one.
    doc = decode_item({name: {"S": text}, "m": {"M": {name: {"SS": [text]}}}})
    assert json.loads(dumps(doc)) == {name: text, "m": {name: [text]}}


# --- property: same result as boto3 -------------------------------------------------------

# DynamoDB numbers: at most 38 significant digits, magnitude 1E-130 .. 9.99E+125 (boto3 enforces it).


def _dynamodb_legal(d: Decimal) -> bool:
    sign_digits_exponent = d.as_tuple()
    digits, exponent = len(sign_digits_exponent.digits), int(sign_digits_exponent.exponent)
    return digits <= 38 and exponent >= -90 and exponent + digits <= 100


legal_decimals = st.decimals(allow_nan=False, allow_infinity=False).filter(_dynamodb_legal)
legal_integers = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
number_text = st.one_of(legal_integers.map(str), legal_decimals.map(str))
# The internal marker is covered by its own tests above; here it would only hit those known cases.
text = st.text(max_size=20)


def _scalar() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        text.map(lambda s: {"S": s}),
        number_text.map(lambda n: {"N": n}),
        st.binary(max_size=16).map(lambda b: {"B": base64.b64encode(b).decode()}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.sets(text, min_size=1, max_size=5).map(lambda s: {"SS": list(s)}),
        st.sets(legal_decimals, min_size=1, max_size=5).map(lambda s: {"NS": [str(d) for d in s]}),
        st.sets(st.binary(max_size=8), min_size=1, max_size=5).map(
            lambda s: {"BS": [base64.b64encode(b).decode() for b in s]}
        ),
    )


ddb_values = st.recursive(
    _scalar(),
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda xs: {"L": xs}),
        st.dictionaries(text, children, max_size=4).map(lambda m: {"M": m}),
    ),
    max_leaves=20,
)
items = st.dictionaries(text.filter(bool), ddb_values, max_size=6)


def to_boto(value: dict[str, Any]) -> AttributeValueTypeDef:
    """Stream-style DynamoDB JSON (binary as base64) -> what boto3's deserializer expects (bytes)."""
    ((tag, inner),) = value.items()
    if tag == "B":
        return {"B": base64.b64decode(inner)}
    if tag == "BS":
        return {"BS": [base64.b64decode(x) for x in inner]}
    if tag == "M":
        return {"M": {k: to_boto(v) for k, v in inner.items()}}
    if tag == "L":
        return {"L": [to_boto(v) for v in inner]}
    return cast("AttributeValueTypeDef", value)


def jsonable(value: object) -> object:
    """boto3's output (Decimal, set, Binary) as the JSON values ddbsync promises."""
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode()  # type: ignore[attr-defined]  # boto3-stubs omit Binary.value
    if isinstance(value, set):
        members = list(value)
        if members and isinstance(members[0], Binary):
            return [base64.b64encode(b).decode() for b in sorted(m.value for m in members)]
        return [jsonable(m) for m in sorted(members)]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def same(ours: object, theirs: object) -> bool:
    """Equal, with numbers compared by value but never confused with bools."""
    if isinstance(ours, bool) or isinstance(theirs, bool) or ours is None or theirs is None:
        return ours is theirs
    if isinstance(ours, Decimal) or isinstance(theirs, Decimal):
        return isinstance(ours, Decimal) and isinstance(theirs, Decimal) and ours == theirs
    if isinstance(ours, str) or isinstance(theirs, str):
        return ours == theirs and type(ours) is type(theirs)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs, strict=True))
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(same(ours[k], theirs[k]) for k in ours)
    return False


@given(items)
def test_decoding_then_dumping_agrees_with_boto3s_deserializer(item: dict[str, dict[str, Any]]) -> None:
    deserializer = TypeDeserializer()
    expected = {k: jsonable(deserializer.deserialize(to_boto(v))) for k, v in item.items()}
    ours = roundtrip(decode_item(item))
    assert same(ours, expected), (ours, expected)


# --- property: the set shortcuts answer exactly as the member-by-member paths ------------------

# Texts that hit every branch: small ints and short decimals (the shortcut), equal values
# written twice ("1", "1.0", "-0.0", "1E+0"), trailing zeros, exponents, long and bad texts.
set_number_text = st.one_of(
    st.integers(min_value=-20, max_value=20).map(str),
    st.sampled_from(["1.0", "-0.0", "0.0", "1E+0", "10E-1", "1.50", "2.5", "-2.5", "0.1", "1e2"]),
    number_text,
    st.sampled_from(["", "01", "+1", "NaN", " 1", "1_0", "\u0661"]),
)


def _answer(decode: Any, value: object) -> tuple[str, Any]:
    try:
        return ("ok", decode(value))
    except DecodeError as e:
        return ("refused", str(e))


@given(st.one_of(st.lists(set_number_text, max_size=6), st.lists(st.one_of(set_number_text, st.integers()))))
def test_the_number_set_shortcut_gives_the_full_paths_answer(members: list[object]) -> None:
    from ddbsync.dynamodb import decode

    fast, full = _answer(decode._ns, members), _answer(decode._ns_checked, members)
    assert fast == full
    if fast[0] == "ok":  # the same values, and of the same types (1 is not 1.0 in a document)
        assert [type(x) for x in fast[1]] == [type(x) for x in full[1]]


string_set_member = st.one_of(st.sampled_from(["a", "b", "B", "é", ""]), st.text(max_size=3), st.integers())


@given(st.lists(string_set_member, max_size=6))
def test_the_string_set_shortcut_gives_the_full_paths_answer(members: list[object]) -> None:
    from ddbsync.dynamodb import decode

    assert _answer(decode._ss, members) == _answer(decode._ss_checked, members)
