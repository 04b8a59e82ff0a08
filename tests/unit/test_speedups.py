"""ddbsync._speedups (the C decoder) against the pure-Python decoder it speeds up.

The Python decoder defines the behaviour. The C one may only hand an item back
(None) or return exactly what Python returns: same values, same types (1, 1.0 and
True are equal in Python, so types are compared too), same key order, same
serialized bytes.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddbsync import decode
from ddbsync.decode import decode_item, dumps_bytes
from ddbsync.errors import DecodeError
from tests.support import load_event

PURE = os.environ.get("DDBSYNC_PURE_PYTHON", "") not in ("", "0")

try:
    from ddbsync import _speedups
except ImportError:  # reported by test_the_extension_is_built
    _speedups = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_speedups is None, reason="ddbsync._speedups is not built")


def test_the_extension_is_built() -> None:
    if PURE:
        pytest.skip("DDBSYNC_PURE_PYTHON=1: running without the C decoder on purpose")
    assert _speedups is not None, (
        "ddbsync._speedups was not built: install a C compiler (apt-get install gcc) and run "
        "`pip install -e .` again, or set DDBSYNC_PURE_PYTHON=1 to test without it"
    )
    assert decode.SPEEDUPS


def identical(a: object, b: object) -> bool:
    """Equal values of the same types, dict keys in the same order, -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert isinstance(b, float)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def python_decode(item: dict[str, Any]) -> object:
    """What decode_item returns without the C decoder: a value, or the error it raises."""
    try:
        return decode._map(item)
    except Exception:
        pass
    try:
        return decode.checked_item(item)
    except DecodeError as e:
        return e


MEMBER = b'"_ddbsync":{"seq":null,"ts":1,"source":"export"}'


def assert_agrees(item: dict[str, Any]) -> object:
    """decode_map and encode_map each hand the item back or match the Python path exactly."""
    slow = python_decode(item)
    encoded = _speedups.encode_map(item, MEMBER)
    if encoded is not None:
        assert not isinstance(slow, Exception), f"C encoded what Python rejects: {item!r} ({slow})"
        assert isinstance(slow, dict)
        expected = dumps_bytes({**slow, "_ddbsync": {"seq": None, "ts": 1, "source": "export"}})
        assert encoded == expected, (item, encoded, expected)
        assert _speedups.encode_map(item, b"") == dumps_bytes(slow)
    fast = _speedups.decode_map(item)
    if fast is None:
        return None
    assert not isinstance(slow, Exception), f"C accepted what Python rejects: {item!r} ({slow})"
    assert identical(fast, slow), (item, fast, slow)
    assert dumps_bytes(fast) == dumps_bytes(slow)
    return fast


# --- random input, valid and not ------------------------------------------------------------

number_texts = st.one_of(
    st.from_regex(r"-?[0-9]{0,20}(\.[0-9]{0,18})?", fullmatch=True),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.text(alphabet="-+.0123456789eE", max_size=22),
    st.text(max_size=6),  # anything, lone surrogates included
)
tags = st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X", "s", "SSS", ""])
scalars = st.one_of(
    st.text(),
    number_texts,
    st.booleans(),
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=4),
)


def typed_values() -> st.SearchStrategy[Any]:
    def wrap(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        inner = st.one_of(
            scalars,
            st.lists(st.one_of(number_texts, st.text(max_size=4)), max_size=4),
            st.dictionaries(st.text(max_size=3), children, max_size=3),
            st.lists(children, max_size=3),
        )
        well_formed = st.one_of(
            st.builds(lambda s: {"S": s}, st.text()),
            st.builds(lambda n: {"N": n}, number_texts),
            st.builds(lambda b: {"BOOL": b}, st.booleans()),
            st.just({"NULL": True}),
            st.builds(lambda m: {"M": m}, st.dictionaries(st.text(max_size=3), children, max_size=3)),
            st.builds(lambda v: {"L": v}, st.lists(children, max_size=3)),
            st.builds(lambda v: {"SS": v}, st.lists(st.text(max_size=3), max_size=4, unique=True)),
            st.builds(lambda v: {"NS": v}, st.lists(number_texts, max_size=4, unique=True)),
        )
        odd = st.one_of(
            st.dictionaries(tags, inner, min_size=0, max_size=2),
            scalars,
            st.lists(children, max_size=2),
        )
        return st.one_of(well_formed, well_formed, well_formed, odd)

    leaves = st.one_of(
        st.builds(lambda s: {"S": s}, st.text()),
        st.builds(lambda n: {"N": n}, number_texts),
        st.dictionaries(tags, scalars, max_size=2),
    )
    return st.recursive(leaves, wrap, max_leaves=12)


items = st.dictionaries(st.text(max_size=4), typed_values(), max_size=5)


@needs_c
@settings(max_examples=1500)
@given(items)
def test_random_items_decode_identically_or_are_handed_back(item: dict[str, Any]) -> None:
    assert_agrees(item)


@needs_c
@given(number_texts)
def test_every_number_text_decodes_identically_or_is_handed_back(text: str) -> None:
    assert_agrees({"n": {"N": text}, "ns": {"NS": [text, "1"]}, "l": {"L": [{"N": text}]}})


# --- the shapes it must take (else there is no speed-up) and the ones it must hand back ---


@needs_c
@pytest.mark.parametrize(
    "text",
    ["0", "7", "-7", "-0", "007", "123456789012345678", "-123456789012345678",
     "1.5", "-0.25", "0.0", "16.0", "89.99", "1234567890.12345"],
)
def test_common_numbers_are_taken(text: str) -> None:
    assert assert_agrees({"n": {"N": text}}) is not None


@needs_c
@pytest.mark.parametrize(
    "text", ["0", "-0", "007", "-12", "123456789012345678", "1.5", "-0.25", "0.0", "-0.0", "16.0", "0.001"]
)
def test_common_numbers_are_encoded(text: str) -> None:
    assert _speedups.encode_map({"n": {"N": text}}, b"") is not None
    assert_agrees({"n": {"N": text}})


@needs_c
@pytest.mark.parametrize(
    "text",
    ["1.50", "19.00", "0.000", "-0.50", "3.14159265358979323846264338327950288", "12345678901234.567",
     "123456789012345678901234567890", "-18446744073709551616", "1" + "0" * 125,
     "0." + "0" * 129 + "1", "9" * 126 + ".5"],
    ids=lambda t: t[:24],
)
def test_exact_decimals_and_big_integers_are_encoded_as_their_text(text: str) -> None:
    assert _speedups.encode_map({"n": {"N": text}}, b"") == b'{"n":%b}' % text.encode()
    assert_agrees({"n": {"N": text}})


@needs_c
@pytest.mark.parametrize(
    "text", ["1" + "0" * 126, "0." + "0" * 130 + "1", "0012345678901234567890", "-01.50", "1E+5"],
    ids=lambda t: t[:24],
)
def test_numbers_the_python_path_must_judge_are_not_encoded(text: str) -> None:
    assert _speedups.encode_map({"n": {"N": text}}, b"") is None
    assert_agrees({"n": {"N": text}})


@needs_c
@pytest.mark.parametrize("text", ["0.0001", "0.00012", "-0.0005"])
def test_decimals_below_a_thousandth_are_not_encoded(text: str) -> None:
    # orjson may write such a float with an exponent: the Python path decides.
    assert _speedups.encode_map({"n": {"N": text}}, b"") is None
    assert_agrees({"n": {"N": text}})


@needs_c
@pytest.mark.parametrize(
    "text", ["a", 'quote " and \\ backslash', "\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f", "é ✓ 😀 \u2028", ""]
)
def test_strings_are_escaped_like_orjson(text: str) -> None:
    item = {text: {"S": text}, "l": {"L": [{"S": text}]}, "ss": {"SS": [text, "z"]}}
    encoded = _speedups.encode_map(item, b"")
    assert encoded is not None
    assert encoded == dumps_bytes(decode_item(item))


@needs_c
def test_a_lone_surrogate_is_handed_back() -> None:
    assert _speedups.encode_map({"s": {"S": "\ud800"}}, b"") is None
    assert _speedups.encode_map({"\ud800": {"S": "x"}}, b"") is None


@needs_c
def test_the_member_goes_last_and_an_empty_item_holds_only_it() -> None:
    assert _speedups.encode_map({}, b'"m":1') == b'{"m":1}'
    assert _speedups.encode_map({}, b"") == b"{}"
    assert _speedups.encode_map({"a": {"M": {}}}, b'"m":1') == b'{"a":{},"m":1}'
    with pytest.raises(TypeError):
        _speedups.encode_map({}, "not bytes")  # type: ignore[arg-type]


@needs_c
@pytest.mark.parametrize(
    "text",
    ["1234567890123456789", "18446744073709551615", "1.50", "01.5", ".5", "5.", "1e5", "+1",
     "1.2.3", "", "-", "12345678901234.567", "NaN", "١٢", "1\ud800"],
)
def test_other_numbers_are_handed_back(text: str) -> None:
    assert _speedups.decode_map({"n": {"N": text}}) is None


@needs_c
@pytest.mark.parametrize(
    "value",
    [
        {"BS": ["AQ=="]},
        {"S": 1},
        {"S": "x", "N": "1"},
        {},
        {"NULL": False},
        {"BOOL": 1},
        {"M": [("a", {"S": "x"})]},
        {"L": ({"S": "x"},)},
        {"SS": ["a", 1]},
        {"NS": ["1", "1e3"]},
        {"UNKNOWN": "x"},
        ["S", "x"],
        "S",
    ],
    ids=repr,
)
def test_unusual_values_are_handed_back(value: object) -> None:
    assert _speedups.decode_map({"a": {"S": "ok"}, "b": value}) is None


@needs_c
def test_subclasses_and_non_string_names_are_handed_back() -> None:
    class Sub(str):
        pass

    assert _speedups.decode_map({"a": {"S": Sub("x")}}) is None
    assert _speedups.decode_map({1: {"S": "x"}}) is None  # type: ignore[dict-item]
    assert _speedups.decode_map([]) is None  # type: ignore[arg-type]


@needs_c
def test_nesting_beyond_the_limit_is_handed_back_and_python_decodes_it() -> None:
    def nest(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {"S": "leaf"}
        for _ in range(levels):
            value = {"M": {"m": value}}
        return {"top": value}

    assert _speedups.decode_map(nest(_speedups.MAX_DEPTH)) is not None
    deep = nest(_speedups.MAX_DEPTH + 1)
    assert _speedups.decode_map(deep) is None
    node: Any = decode_item(deep)["top"]
    for _ in range(_speedups.MAX_DEPTH):
        node = node["m"]
    assert node == {"m": "leaf"}


@needs_c
def test_the_sample_events_decode_identically() -> None:
    taken = 0
    for name in ("all_types.json", "insert.json", "modify.json", "same_key_batch.json", "poison.json"):
        for record in load_event(name)["Records"]:
            image = record.get("dynamodb", {}).get("NewImage")
            if isinstance(image, dict):
                taken += assert_agrees(image) is not None
    assert taken >= 3  # the plain sample items go through the C decoder


@needs_c
def test_no_reference_leaks() -> None:
    text = "".join(["lea", "k-check"])  # a fresh object, so its refcount is ours alone
    item = {"a": {"S": text}, "l": {"L": [{"S": text}, {"M": {"x": {"SS": [text]}}}]}, "n": {"N": "1.5"}}
    bail = {"a": {"S": text}, "b": {"BS": [text]}}
    before = sys.getrefcount(text)
    for _ in range(1000):
        assert _speedups.decode_map(item) is not None
        assert _speedups.decode_map(bail) is None
    assert sys.getrefcount(text) == before


def test_decode_item_gives_the_same_with_and_without_the_c_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    image = load_event("all_types.json")["Records"][0]["dynamodb"]["NewImage"]
    common = {k: v for k, v in image.items() if k not in ("n_huge", "n_decimal", "bs", "ns")}
    with_c = decode_item(image), decode_item(common)
    monkeypatch.setattr(decode, "_c_decode_map", None)
    without = decode_item(image), decode_item(common)
    for a, b in zip(with_c, without, strict=True):
        assert identical(a, b)
        assert dumps_bytes(a) == dumps_bytes(b)


def _stream_records() -> list[dict[str, Any]]:
    names = ("all_types.json", "insert.json", "modify.json", "same_key_batch.json")
    return [r for n in names for r in load_event(n)["Records"] if r["eventName"] != "REMOVE"]


def test_the_indexer_path_writes_the_same_document_bytes_as_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    from ddbsync import mapping
    from ddbsync.bulk import source_of
    from ddbsync.mapping import map_record, materialize

    records = _stream_records()
    expected = [dumps_bytes(map_record(r, "pk", "sk").body) for r in records]
    for use_c in (True, False):
        if not use_c:
            monkeypatch.setattr(decode, "_c_encode_map", None)
            monkeypatch.setattr(mapping, "_c_change", None)
        written_by_c = 0
        for record, want in zip(records, expected, strict=True):
            change = map_record(record, "pk", "sk", decode=False)
            materialize(change, serialize=True)
            assert source_of(change) == want
            eager = map_record(record, "pk", "sk", decode=False, serialize=True)
            assert source_of(mapping.materialize_newest(eager, [], serialize=True) or eager) == want
            written_by_c += eager.source is not None
            if not use_c:  # the Python path: decoded, then serialized by make_writes
                assert change.source is None and change.body is not None
        if use_c and not PURE:
            assert written_by_c >= len(records) - 1  # all but all_types.json's BS item


def test_the_export_path_writes_the_same_document_bytes_as_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    from ddbsync.backfill_files import export_change
    from ddbsync.bulk import source_of

    images = [r["dynamodb"]["NewImage"] for r in _stream_records()]
    with_c = [source_of(export_change(im, "pk", "sk", 1_800_000_000.5)) for im in images]
    monkeypatch.setattr(decode, "_c_encode_map", None)
    without = [source_of(export_change(im, "pk", "sk", 1_800_000_000.5)) for im in images]
    assert with_c == without
    assert all(b'"_ddbsync":{"seq":null,"ts":1800000000,"source":"export"}}' in s for s in with_c)


# --- stream_envelope: map_record's envelope for plainly valid INSERT/MODIFY records -------

key_values = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=8)),
    st.builds(lambda s: {"S": s}, st.sampled_from(["a|b", "a\\b", "|", "\\", "x" * 300, "é" * 200])),
    st.builds(lambda n: {"N": n}, number_texts),
    st.builds(lambda b: {"B": b}, st.sampled_from(["AAEC", "", "a|b"])),
    st.builds(lambda b: {"B": b}, st.binary(max_size=3)),
    st.dictionaries(tags, scalars, max_size=2),
    scalars,
)
created_values = st.one_of(
    st.integers(min_value=-5, max_value=2**41),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
records = st.fixed_dictionaries(
    {
        "eventName": st.sampled_from(["INSERT", "MODIFY", "REMOVE", "UPSERT", 1]),
        "dynamodb": st.fixed_dictionaries(
            {
                "SequenceNumber": st.one_of(st.from_regex(r"[0-9]{1,40}", fullmatch=True),
                                            st.sampled_from(["", "12a", "١٢"]), st.integers()),
                "ApproximateCreationDateTime": created_values,
                "Keys": st.fixed_dictionaries({"pk": key_values}, optional={"sk": key_values}),
                "NewImage": st.one_of(st.just({"a": {"S": "x"}}), st.none(), st.just([])),
            },
        ),
    }
)


@needs_c
@settings(max_examples=1000)
@given(records, st.sampled_from([("pk", "sk"), ("pk", None)]))
def test_the_envelope_matches_map_record_or_is_handed_back(
    record: dict[str, Any], key_names: tuple[str, str | None]
) -> None:
    from ddbsync import mapping
    from ddbsync.bulk import source_of

    pk, sk = key_names
    fast = _speedups.stream_change(record, pk, sk, True)
    saved = mapping._c_change
    mapping._c_change = None
    try:
        slow: Any = mapping.map_record(record, pk, sk, decode=False)
    except Exception as e:
        slow = e
    finally:
        mapping._c_change = saved
    if fast is None:
        return
    assert not isinstance(slow, Exception), f"C took a record Python rejects: {record!r} ({slow})"
    doc_id, seq, second, source = fast
    assert (doc_id, seq, second) == (slow.doc_id, slow.sequence_numbers[0], slow.created_seconds)
    assert type(second) is int and slow.op == "index"
    if source is not None:
        mapping.materialize(slow)
        assert source == source_of(slow)
    assert _speedups.stream_change(record, pk, sk, False) == (doc_id, seq, second, None)
    via_c = mapping.map_record(record, pk, sk, decode=False)
    assert (via_c.doc_id, via_c.version, via_c.ordering, via_c.sequence_numbers, via_c.created_seconds) == (
        slow.doc_id, slow.version, slow.ordering, slow.sequence_numbers, slow.created_seconds
    )


@needs_c
def test_the_envelope_takes_the_common_records() -> None:
    for name in ("insert.json", "modify.json", "same_key_batch.json"):
        for record in load_event(name)["Records"]:
            if record["eventName"] in ("INSERT", "MODIFY"):
                fast = _speedups.stream_change(record, "pk", "sk", True)
                assert fast is not None and fast[3] is not None, name
    remove = load_event("remove.json")["Records"][0]
    assert _speedups.stream_change(remove, "pk", "sk", True) is None  # REMOVE: Python maps it
