"""docid: one document id per item key, whichever path writes it."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddbsync.docid import MAX_ID_BYTES, document_id
from ddbsync.errors import DecodeError, RecordError


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
    [("1.50", "1.5"), ("1E+2", "100"), ("-0", "0"), ("0.000", "0"), ("1.0E-2", "0.01"), ("15E-1", "1.5")],
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


@pytest.mark.parametrize(
    "value", [{"BOOL": True}, {"SS": ["a"]}, {"S": 1}, "x", {"S": "a", "N": "1"}], ids=repr
)
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


def test_an_id_over_512_bytes_becomes_a_sha256_digest() -> None:
    doc_id = document_id({"pk": {"S": "x" * (MAX_ID_BYTES + 1)}}, "pk", None)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc_id)


def test_the_byte_limit_counts_utf8_bytes_not_characters() -> None:
    pk = "é" * 300  # 300 characters, 600 bytes
    assert document_id({"pk": {"S": pk}}, "pk", None).startswith("sha256:")


@given(st.text(min_size=MAX_ID_BYTES + 1, max_size=MAX_ID_BYTES + 40), st.text(max_size=5))
def test_long_ids_are_deterministic_and_keep_keys_apart(pk: str, sk: str) -> None:
    keys = {"pk": {"S": pk}, "sk": {"S": sk}}
    doc_id = document_id(keys, "pk", "sk")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc_id)
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
