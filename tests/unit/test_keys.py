"""dynamodb.keys: one document id per item key, whichever path writes it."""

from __future__ import annotations

import base64
import hashlib
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.dynamodb.keys import MAX_ID_BYTES, document_id
from ddbsync.errors import DecodeError, RecordError
from ddbsync.mapping import map_records
from tests.support import RecordFactory


def test_a_partition_key_alone_is_the_id() -> None:
    assert document_id({"pk": {"S": "cat-shoes"}}, "pk", None) == "cat-shoes"


def test_partition_and_sort_key_are_joined_by_a_bar() -> None:
    keys = {"pk": {"S": "cat-shoes"}, "sk": {"S": "item-001"}}
    assert document_id(keys, "pk", "sk") == "cat-shoes|item-001"


def test_attributes_other_than_the_keys_are_ignored() -> None:
    keys = {"pk": {"S": "a"}, "sk": {"S": "b"}, "other": {"S": "c"}}
    assert document_id(keys, "pk", "sk") == "a|b"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("1.50", "1.5"),
        ("1E+2", "100"),
        ("-0", "0"),
        ("0.000", "0"),
        ("1.0E-2", "0.01"),
        ("15E-1", "1.5"),
        ("-0.0", "0"),
    ],
)
def test_numeric_keys_written_differently_give_one_id(one: str, other: str) -> None:
    assert document_id({"pk": {"N": one}}, "pk", None) == document_id({"pk": {"N": other}}, "pk", None)


def test_a_numeric_key_is_written_in_plain_canonical_digits() -> None:
    assert document_id({"pk": {"N": "1E+2"}, "sk": {"N": "2.50"}}, "pk", "sk") == "100|2.5"


def test_a_malformed_numeric_key_is_rejected() -> None:
    with pytest.raises(DecodeError):
        document_id({"pk": {"N": "abc"}}, "pk", None)


def test_binary_keys_as_bytes_or_base64_text_give_the_same_base64_id() -> None:
    raw = b"\x00\x01\xfe\xff"
    text = base64.b64encode(raw).decode()
    assert document_id({"pk": {"B": raw}}, "pk", None) == text
    assert document_id({"pk": {"B": text}}, "pk", None) == text


@pytest.mark.parametrize("value", [{"BOOL": True}, {"SS": ["a"]}, "x", {"S": "a", "N": "1"}], ids=repr)
def test_a_key_that_is_not_s_n_or_b_is_rejected(value: object) -> None:
    with pytest.raises(RecordError):
        document_id({"pk": value}, "pk", None)


def test_bars_inside_keys_cannot_move_the_boundary_between_them() -> None:
    left = document_id({"pk": {"S": "a|b"}, "sk": {"S": "c"}}, "pk", "sk")
    right = document_id({"pk": {"S": "a"}, "sk": {"S": "b|c"}}, "pk", "sk")
    assert left != right


def test_backslashes_inside_keys_cannot_fake_an_escaped_bar() -> None:
    left = document_id({"pk": {"S": "a\\"}, "sk": {"S": "|b"}}, "pk", "sk")
    right = document_id({"pk": {"S": "a\\|"}, "sk": {"S": "b"}}, "pk", "sk")
    assert left != right


key_text = st.text(alphabet=st.sampled_from("ab|\\é"), max_size=6) | st.text(max_size=12)


@given(st.tuples(key_text, key_text), st.tuples(key_text, key_text))
def test_distinct_key_pairs_give_distinct_ids(one: tuple[str, str], other: tuple[str, str]) -> None:
    def doc_id(pair: tuple[str, str]) -> str:
        return document_id({"pk": {"S": pair[0]}, "sk": {"S": pair[1]}}, "pk", "sk")

    assert (doc_id(one) == doc_id(other)) == (one == other)


def test_an_id_of_exactly_512_bytes_is_kept() -> None:
    pk = "x" * MAX_ID_BYTES
    assert document_id({"pk": {"S": pk}}, "pk", None) == pk


HASHED = r"\\#sha256:[0-9a-f]{64}"  # a backslash, '#', 'sha256:', 64 hex digits


def test_an_id_over_512_bytes_becomes_a_marked_sha256_digest() -> None:
    pk = "x" * (MAX_ID_BYTES + 1)
    doc_id = document_id({"pk": {"S": pk}}, "pk", None)
    assert doc_id == "\\#sha256:" + hashlib.sha256(pk.encode()).hexdigest()
    assert re.fullmatch(HASHED, doc_id)


def test_the_byte_limit_counts_utf8_bytes_not_characters() -> None:
    pk = "é" * 300  # 300 characters, 600 bytes
    assert re.fullmatch(HASHED, document_id({"pk": {"S": pk}}, "pk", None))


@given(st.text(min_size=MAX_ID_BYTES + 1, max_size=MAX_ID_BYTES + 40), st.text(max_size=5))
def test_long_ids_are_deterministic_and_keep_keys_apart(pk: str, sk: str) -> None:
    keys = {"pk": {"S": pk}, "sk": {"S": sk}}
    doc_id = document_id(keys, "pk", "sk")
    assert re.fullmatch(HASHED, doc_id)
    assert document_id(dict(keys), "pk", "sk") == doc_id
    assert document_id({"pk": {"S": pk}, "sk": {"S": sk + "!"}}, "pk", "sk") != doc_id


def test_a_missing_partition_key_is_a_record_error() -> None:
    with pytest.raises(RecordError):
        document_id({"sk": {"S": "b"}}, "pk", "sk")


def test_a_missing_sort_key_is_a_record_error() -> None:
    with pytest.raises(RecordError):
        document_id({"pk": {"S": "a"}}, "pk", "sk")


def test_numeric_keys_with_up_to_38_digits_keep_every_digit_in_the_id() -> None:
    # Found while building the backfill: Decimal.normalize() used to round to 28 digits,
    # giving two different 37-digit keys one id.
    a, b = "1234567890123456789012345678901234567", "1234567890123456789012345678901234568"
    assert document_id({"pk": {"N": a}}, "pk", None) == a
    assert document_id({"pk": {"N": a}}, "pk", None) != document_id({"pk": {"N": b}}, "pk", None)


# --- injective by construction (docs/versioning.md, "Document ids") ---------------------------


def _old_style_hash(pk: str) -> str:
    """What ddbsync used to write for a long id: ``sha256:<hex>`` of the escaped key."""
    escaped = pk.replace("\\", "\\\\").replace("|", "\\|")
    return "sha256:" + hashlib.sha256(escaped.encode()).hexdigest()


def test_a_key_spelling_another_items_hashed_id_gets_an_id_of_its_own() -> None:
    long_pk = "order-" + "x" * MAX_ID_BYTES
    long_id = document_id({"pk": {"S": long_pk}}, "pk", None)
    for look_alike in (_old_style_hash(long_pk), long_id):
        assert document_id({"pk": {"S": look_alike}}, "pk", None) != long_id


def test_no_plain_id_starts_like_a_hashed_one() -> None:
    for pk in ("\\#sha256:", "\\", "#", "\\\\#", "|#"):
        assert not document_id({"pk": {"S": pk}}, "pk", None).startswith("\\#")
        assert not document_id({"pk": {"S": pk}, "sk": {"S": "#"}}, "pk", "sk").startswith("\\#")


@pytest.mark.parametrize(
    ("keys", "sort_key", "bad"),
    [
        ({"pk": {"S": "ab\ud800c"}}, None, "pk"),
        ({"pk": {"S": "a|b"}, "sk": {"S": "\udfff"}}, "sk", "sk"),
        ({"pk": {"S": "\ud800" + "x" * 600}}, None, "pk"),  # long: hashed, still named
    ],
    ids=["pk", "sk", "long pk"],
)
def test_a_lone_surrogate_in_a_key_is_a_record_error_naming_the_attribute(
    keys: dict[str, object], sort_key: str | None, bad: str
) -> None:
    with pytest.raises(RecordError) as info:
        document_id(keys, "pk", sort_key)
    assert info.value.reason.startswith(f"key attribute {bad!r} is not valid Unicode: surrogates not allowed")


def test_a_lone_surrogate_in_a_key_reaches_the_dlq_with_that_reason() -> None:
    record = RecordFactory().record("REMOVE", "ok", "s")
    record["dynamodb"]["Keys"]["pk"] = {"S": "bad\ud800"}
    changes, poison = map_records([record], "pk", "sk")
    assert changes == []
    (dead,) = poison
    assert dead.error_type == "RecordError"
    assert dead.reason.startswith("key attribute 'pk' is not valid Unicode")


# Key texts that stress the rule: escapes, bars, backslashes, '#', long keys (over 512
# UTF-8 bytes, some in multi-byte characters) and texts that look like hashed ids.
tricky = st.text(alphabet=st.sampled_from("ab|\\#:é"), max_size=8)
long_keys = st.tuples(st.text(alphabet="ab|\\é#", min_size=1, max_size=3), st.integers(170, 300)).map(
    lambda pair: pair[0] * pair[1]
)
key_texts = st.one_of(tricky, st.text(max_size=10), long_keys)


@given(st.lists(key_texts, min_size=1, max_size=6, unique=True))
def test_distinct_partition_keys_give_distinct_ids(pks: list[str]) -> None:
    keys = set(pks)
    for pk in pks:  # each key's own id, old and new, as another item's key
        keys.add(document_id({"pk": {"S": pk}}, "pk", None))
        keys.add(_old_style_hash(pk))
    ids = {document_id({"pk": {"S": pk}}, "pk", None) for pk in keys}
    assert len(ids) == len(keys)


@given(st.lists(st.tuples(key_texts, key_texts), min_size=1, max_size=5, unique=True))
def test_distinct_key_pairs_give_distinct_ids_long_or_short(pairs: list[tuple[str, str]]) -> None:
    def doc_id(pair: tuple[str, str]) -> str:
        return document_id({"pk": {"S": pair[0]}, "sk": {"S": pair[1]}}, "pk", "sk")

    keys = set(pairs)
    for pair in pairs:  # ids as keys: whole, and split at their first bar
        other = doc_id(pair)
        head, _, tail = other.partition("|")
        keys.update([(other, ""), ("", other), (head, tail)])
    assert len({doc_id(pair) for pair in keys}) == len(keys)


def _dynamodb_decimal(d: Decimal) -> bool:
    significant = "".join(map(str, d.as_tuple().digits)).strip("0")
    return d == 0 or (len(significant) <= 38 and -130 <= d.adjusted() <= 125)


numeric_keys = st.decimals(allow_nan=False, allow_infinity=False).filter(_dynamodb_decimal)


@given(numeric_keys, numeric_keys)
def test_numeric_keys_share_an_id_exactly_when_they_are_the_same_number(a: Decimal, b: Decimal) -> None:
    def doc_id(text: str) -> str:
        return document_id({"pk": {"N": text}}, "pk", None)

    assert (doc_id(str(a)) == doc_id(str(b))) == (a == b)
    # The same number spelled other ways: positional, exponent, trailing zeros.
    plain = format(a, "f")
    for spelling in (plain, f"{a:E}", f"{a:e}", plain + ("000" if "." in plain else ".000")):
        assert doc_id(spelling) == doc_id(str(a))
