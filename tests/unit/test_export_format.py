"""Reading export data files: both formats, checkpoints, broken files, bounded memory."""

from __future__ import annotations

import base64
import gzip
import io
import tracemalloc
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddbsync.dynamodb.decode import decode_item
from ddbsync.dynamodb.export_format import IncrementalRecord, iter_export_items, iter_incremental
from ddbsync.errors import ExportFormatError

KEY = "exports/AWSDynamoDB/01700000000000-abcdef12/data/abcdefghijklmnopqrstuvwxyz.json.gz"
_EXACT = Context(prec=100)


# --- writing test files (independent of ddbsync_local.exporter on purpose) --------------------


def gz(lines: list[bytes] | list[str]) -> io.BytesIO:
    raw = b"".join(x.encode() if isinstance(x, str) else x for x in lines)
    return io.BytesIO(gzip.compress(raw))


def json_lines(items: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps({"Item": item}) + b"\n" for item in items]


def ion_decimal(text: str) -> str:
    """N text -> an Ion decimal, always with a d-exponent (``6d2``, ``15d-1``)."""
    sign, digits, exponent = Decimal(text).as_tuple()
    return ("-" if sign else "") + "".join(map(str, digits)) + f"d{exponent}"


def ion(value: dict[str, Any]) -> str:
    ((tag, inner),) = value.items()

    def blob(b: str) -> str:
        return "{{" + b + "}}"  # base64 text is already what Ion wants

    makers: dict[str, Callable[[], str]] = {
        "S": lambda: orjson.dumps(inner).decode(),
        "N": lambda: ion_decimal(inner),
        "B": lambda: blob(inner),
        "BOOL": lambda: "true" if inner else "false",
        "NULL": lambda: "null",
        "M": lambda: ion_struct(inner),
        "L": lambda: "[" + ",".join(ion(v) for v in inner) + "]",
        "SS": lambda: "$dynamodb_SS::[" + ",".join(orjson.dumps(s).decode() for s in inner) + "]",
        "NS": lambda: "$dynamodb_NS::[" + ",".join(ion_decimal(n) for n in inner) + "]",
        "BS": lambda: "$dynamodb_BS::[" + ",".join(blob(b) for b in inner) + "]",
    }
    return makers[tag]()


def ion_symbol(name: str) -> str:
    """A field name as a quoted Ion symbol ('x', '$0'): JSON escapes are valid Ion escapes."""
    return "'" + orjson.dumps(name).decode()[1:-1].replace("'", "\\'") + "'"


def ion_struct(item: dict[str, Any]) -> str:
    return "{" + ",".join(f"{ion_symbol(k)}:{ion(v)}" for k, v in item.items()) + "}"


def ion_lines(items: list[dict[str, Any]]) -> list[bytes]:
    return [f"$ion_1_0 {{Item:{ion_struct(item)}}}\n".encode() for item in items]


def read_all(stream: io.BytesIO, fmt: str, start_line: int = 0) -> list[tuple[int, dict[str, object]]]:
    return list(iter_export_items(stream, fmt, KEY, start_line))


# --- generated items -------------------------------------------------------------------------


def canonical(value: Decimal) -> str:
    """The text DynamoDB returns for a number: plain digits, no trailing zeros."""
    return "0" if value.is_zero() else format(value.normalize(_EXACT), "f")


numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),  # far beyond 64 bits
    st.builds(
        lambda digits, places: Decimal(digits).scaleb(-places),
        st.integers(min_value=-(10**37), max_value=10**37),
        st.integers(min_value=0, max_value=40),  # long decimals, tiny values
    ),
).map(lambda n: canonical(Decimal(n)))
b64 = st.binary(min_size=0, max_size=12).map(lambda b: base64.b64encode(b).decode())
names = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.text(max_size=12).map(lambda s: {"S": s}),
    numbers.map(lambda n: {"N": n}),
    b64.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True).map(lambda v: {"SS": v}),
    st.lists(numbers, min_size=1, max_size=4, unique_by=Decimal).map(lambda v: {"NS": v}),
    st.lists(st.binary(min_size=1, max_size=6), min_size=1, max_size=4, unique=True).map(
        lambda v: {"BS": [base64.b64encode(b).decode() for b in v]}
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(names, inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)
items = st.dictionaries(names, values, min_size=1, max_size=6)


# --- round trips -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items, min_size=1, max_size=4))
def test_both_formats_yield_items_that_decode_exactly_like_the_original(batch: list[dict[str, Any]]) -> None:
    expected = [decode_item(item) for item in batch]
    from_json = [decode_item(item) for _, item in read_all(gz(json_lines(batch)), "DYNAMODB_JSON")]
    from_ion = [decode_item(item) for _, item in read_all(gz(ion_lines(batch)), "ION")]
    assert from_json == expected
    assert from_ion == expected


def test_every_dynamodb_type_reads_the_same_from_json_and_ion() -> None:
    item = {
        "pk": {"S": 'caf\u00e9 "quoted"\n'},
        "huge": {"N": "-12345678901234567890123456789012345678"},  # 38 digits, the most
        "long_decimal": {"N": "3.1415926535897932384626433832795028841"},
        "tiny": {"N": "0.000000000000000000000000000000000000001"},
        "hundreds": {"N": "600"},
        "bin": {"B": base64.b64encode(b"\x00\xffbinary").decode()},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
        "map": {"M": {"inner": {"L": [{"N": "1"}, {"S": "two"}, {"M": {}}]}}},
        "tags": {"SS": ["b", "a"]},
        "scores": {"NS": ["10", "-2.5", "99999999999999999999999"]},
        "blobs": {"BS": [base64.b64encode(b"y").decode(), base64.b64encode(b"x").decode()]},
    }
    ((_, from_json),) = read_all(gz(json_lines([item])), "DYNAMODB_JSON")
    ((_, from_ion),) = read_all(gz(ion_lines([item])), "ION")
    assert decode_item(from_ion) == decode_item(from_json) == decode_item(item)


def test_ion_decimals_become_the_digits_dynamodb_returns() -> None:
    line = (
        "$ion_1_0 {Item:{a:2d3,b:1.50,c:103.,d:-0.,e:1d-3,f:42,"
        "g:12345678901234567890123456789012345678,h:6d2,i:-15d-1}}\n"
    )
    ((_, item),) = read_all(gz([line]), "ION")
    assert item == {
        "a": {"N": "2000"},
        "b": {"N": "1.5"},
        "c": {"N": "103"},
        "d": {"N": "0"},
        "e": {"N": "0.001"},
        "f": {"N": "42"},
        "g": {"N": "12345678901234567890123456789012345678"},
        "h": {"N": "600"},
        "i": {"N": "-1.5"},
    }


def test_the_aws_documentation_example_line_reads_in_both_formats() -> None:
    # The item from "DynamoDB table export output format" (S3DataExport.Output), one line each.
    ion_line = (
        '$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",'
        'ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,'
        'ProductCategory:"Book",Title:"Book 103 Title"}}\n'
    )
    json_line = (
        '{"Item":{"Authors":{"SS":["Author1","Author2"]},"Dimensions":{"S":"8.5 x 11.0 x 1.5"},'
        '"ISBN":{"S":"333-3333333333"},"Id":{"N":"103"},"InPublication":{"BOOL":false},'
        '"PageCount":{"N":"600"},"Price":{"N":"2000"},"ProductCategory":{"S":"Book"},'
        '"Title":{"S":"Book 103 Title"}}}\n'
    )
    ((_, from_ion),) = read_all(gz([ion_line]), "ION")
    ((_, from_json),) = read_all(gz([json_line]), "DYNAMODB_JSON")
    assert from_ion == from_json


# --- checkpoints and empty files -------------------------------------------------------------


@pytest.mark.parametrize("fmt,writer", [("DYNAMODB_JSON", json_lines), ("ION", ion_lines)])
@pytest.mark.parametrize("start_line", [0, 1, 4, 9, 10, 25])
def test_start_line_skips_exactly_the_lines_already_done(fmt: str, writer: Any, start_line: int) -> None:
    batch = [{"pk": {"S": f"item-{i}"}} for i in range(1, 11)]
    got = read_all(gz(writer(batch)), fmt, start_line)
    assert [n for n, _ in got] == list(range(start_line + 1, 11))
    assert [item["pk"] for _, item in got] == [{"S": f"item-{i}"} for i in range(start_line + 1, 11)]


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_an_empty_gzip_file_yields_nothing(fmt: str) -> None:
    assert read_all(gz([]), fmt) == []


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_a_zero_byte_object_yields_nothing(fmt: str) -> None:
    assert read_all(io.BytesIO(b""), fmt) == []


def test_blank_lines_are_counted_but_not_yielded() -> None:
    got = read_all(gz(['{"Item":{"a":{"S":"x"}}}\n', "\n", '{"Item":{"a":{"S":"y"}}}\n']), "DYNAMODB_JSON")
    assert [n for n, _ in got] == [1, 3]


def test_the_last_line_may_lack_its_newline() -> None:
    got = read_all(gz(['{"Item":{"a":{"S":"x"}}}\n', '{"Item":{"a":{"S":"y"}}}']), "DYNAMODB_JSON")
    assert [n for n, _ in got] == [1, 2]


# --- broken files ------------------------------------------------------------------------------


def raises_at(stream: io.BytesIO, fmt: str, line: int) -> ExportFormatError:
    with pytest.raises(ExportFormatError) as caught:
        read_all(stream, fmt)
    error = caught.value
    assert error.key == KEY and error.line == line
    assert KEY in str(error) and f"line {line}" in str(error)
    return error


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_data_that_is_not_gzip_is_reported_with_the_file(fmt: str) -> None:
    raises_at(io.BytesIO(b'{"Item":{"a":{"S":"x"}}}\n'), fmt, 1)


def test_a_corrupt_gzip_body_is_reported_with_the_file_and_a_line() -> None:
    # Damaged deflate data may first surface as a garbled line, or as a gzip error.
    good = gzip.compress(b"".join(json_lines([{"a": {"S": "x" * 50}}] * 200)))
    middle = len(good) // 2
    corrupt = good[:middle] + bytes(b ^ 0xFF for b in good[middle : middle + 16]) + good[middle + 16 :]
    with pytest.raises(ExportFormatError) as caught:
        read_all(io.BytesIO(corrupt), "DYNAMODB_JSON")
    assert caught.value.key == KEY and caught.value.line >= 1


def test_a_gzip_checksum_mismatch_is_reported_as_corrupt_gzip() -> None:
    good = gzip.compress(b"".join(json_lines([{"a": {"N": "1"}}] * 3)))
    crc_flipped = good[:-8] + bytes(b ^ 0xFF for b in good[-8:-4]) + good[-4:]
    with pytest.raises(ExportFormatError) as caught:
        read_all(io.BytesIO(crc_flipped), "DYNAMODB_JSON")
    assert caught.value.line == 4 and "corrupt gzip" in caught.value.reason


def test_a_gzip_stream_cut_short_is_reported_after_the_last_whole_line() -> None:
    lines = json_lines([{"a": {"N": str(i)}} for i in range(1000)])
    cut = gzip.compress(b"".join(lines))[:-30]
    seen: list[int] = []
    with pytest.raises(ExportFormatError) as caught:
        for number, item in iter_export_items(io.BytesIO(cut), "DYNAMODB_JSON", KEY):
            assert item == {"a": {"N": str(number - 1)}}  # every yielded line is whole
            seen.append(number)
    assert seen == list(range(1, len(seen) + 1))
    assert caught.value.line == len(seen) + 1 and "corrupt gzip" in caught.value.reason


@pytest.mark.parametrize(
    "fmt,lines",
    [
        ("DYNAMODB_JSON", ['{"Item":{"a":{"S":"x"}}}\n', '{"Item":{"a":{"S":"y"}}}\n', '{"Item":{"a":{"S"']),
        ("ION", ['$ion_1_0 {Item:{a:"x"}}\n', '$ion_1_0 {Item:{a:"y"}}\n', '$ion_1_0 {Item:{a:"']),
    ],
)
def test_a_truncated_line_is_reported_with_file_and_line(fmt: str, lines: list[str]) -> None:
    raises_at(gz(lines), fmt, 3)


@pytest.mark.parametrize(
    "line,reason",
    [
        ('$ion_1_0 {Item:{a:$dynamodb_XS::["x"]}}\n', "$dynamodb_XS"),
        ('$ion_1_0 {Item:{a:$dynamodb_SS::$dynamodb_NS::["x"]}}\n', "annotation"),
        ('$ion_1_0 {Item:{a:$dynamodb_NS::["x"]}}\n', "NS member"),
        ("$ion_1_0 {Item:{a:$dynamodb_SS::{b:1}}}\n", "SS annotation"),
        ("$ion_1_0 {Item:{a:2024-01-01T00:00:00Z}}\n", "timestamp"),
        ("$ion_1_0 {Item:{a:1.5e0}}\n", "float"),
        ("$ion_1_0 {Item:{m:{b:[some_symbol]}}}\n", "symbol"),
        ("$ion_1_0 {Item:{a:null.string}}\n", "typed Ion null"),
        ('$ion_1_0 {Item:{a:{{"clob"}}}}\n', "clob"),
        ('$ion_1_0 {Items:{a:"x"}}\n', "Item"),
        ('$ion_1_0 {Item:{"$0":"x"}}\n', "field name"),
        ('$ion_1_0 ["not", "a", "struct"]\n', "struct"),
    ],
)
def test_unknown_ion_annotations_and_types_are_reported_with_file_and_line(line: str, reason: str) -> None:
    error = raises_at(gz(['$ion_1_0 {Item:{a:"fine"}}\n', line]), "ION", 2)
    assert reason in error.reason


@pytest.mark.parametrize("line", ['{"Itm":{"a":{"S":"x"}}}\n', '{"Item":[1]}\n', "[1,2]\n", "null\n"])
def test_a_json_line_without_an_item_object_is_reported(line: str) -> None:
    raises_at(gz([line]), "DYNAMODB_JSON", 1)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ExportFormatError):
        read_all(gz([]), "CSV")


# --- memory --------------------------------------------------------------------------------


def big_export(uncompressed_bytes: int) -> tuple[io.BytesIO, int]:
    """A gzip stream of about ``uncompressed_bytes`` of varied item lines, and its line count."""
    out = io.BytesIO()
    count = size = 0
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as writer:
        while size < uncompressed_bytes:
            block = b"".join(
                orjson.dumps(
                    {
                        "Item": {
                            "pk": {"S": f"customer#{count + i:09d}"},
                            "n": {"N": str((count + i) * 7919)},
                            "note": {"S": f"order {count + i} " + "x" * ((count + i) % 97)},
                            "tags": {"SS": ["a", "b", str(i)]},
                        }
                    }
                )
                + b"\n"
                for i in range(1000)
            )
            writer.write(block)
            size += len(block)
            count += 1000
    out.seek(0)
    return out, count


def test_reading_a_50_mb_file_keeps_memory_flat() -> None:
    stream, count = big_export(50 * 1024 * 1024)
    tracemalloc.start()
    try:
        seen = 0
        number = 0
        for number, item in iter_export_items(stream, "DYNAMODB_JSON", KEY):  # noqa: B007
            seen += 1
            assert item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == number == count
    assert peak < 20 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


# --- incremental exports -----------------------------------------------------------------------


def test_incremental_json_lines_give_keys_new_image_and_write_time() -> None:
    lines = [
        {  # insert
            "Metadata": {"WriteTimeMicros": "1680109764000000"},
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {"pk": {"S": "a"}, "n": {"N": "1"}},
        },
        {  # update (NEW_AND_OLD_IMAGES)
            "Metadata": {"WriteTimeMicros": 1680109765000001},
            "Keys": {"pk": {"S": "a"}},
            "OldImage": {"pk": {"S": "a"}, "n": {"N": "1"}},
            "NewImage": {"pk": {"S": "a"}, "n": {"N": "2"}},
        },
        {  # delete
            "Metadata": {"WriteTimeMicros": {"N": "1680109766000002"}},
            "Keys": {"pk": {"S": "a"}},
            "OldImage": {"pk": {"S": "a"}, "n": {"N": "2"}},
        },
    ]
    got = list(iter_incremental(gz([orjson.dumps(x) + b"\n" for x in lines]), "DYNAMODB_JSON", KEY))
    assert got == [
        (1, IncrementalRecord({"pk": {"S": "a"}}, {"pk": {"S": "a"}, "n": {"N": "1"}}, 1680109764000000)),
        (2, IncrementalRecord({"pk": {"S": "a"}}, {"pk": {"S": "a"}, "n": {"N": "2"}}, 1680109765000001)),
        (3, IncrementalRecord({"pk": {"S": "a"}}, None, 1680109766000002)),
    ]


def test_incremental_ion_lines_read_like_json_lines() -> None:
    lines = [
        '$ion_1_0 {Metadata:{WriteTimeMicros:1680109764000000},Keys:{pk:"a"},NewImage:{pk:"a",n:1.}}\n',
        '$ion_1_0 {Metadata:{WriteTimeMicros:1680109766000002},Keys:{pk:"a"},OldImage:{pk:"a"}}\n',
    ]
    got = list(iter_incremental(gz(lines), "ION", KEY, start_line=0))
    assert got == [
        (1, IncrementalRecord({"pk": {"S": "a"}}, {"pk": {"S": "a"}, "n": {"N": "1"}}, 1680109764000000)),
        (2, IncrementalRecord({"pk": {"S": "a"}}, None, 1680109766000002)),
    ]


@pytest.mark.parametrize(
    "doc",
    [
        {"Keys": {"pk": {"S": "a"}}},
        {"Metadata": {"WriteTimeMicros": "soon"}, "Keys": {"pk": {"S": "a"}}},
        {"Metadata": {"WriteTimeMicros": "1"}},
        {"Metadata": {"WriteTimeMicros": "1"}, "Keys": {}},
        {"Metadata": {"WriteTimeMicros": "1"}, "Keys": {"pk": {"S": "a"}}, "NewImage": [1]},
    ],
)
def test_an_incremental_line_missing_its_parts_is_reported(doc: dict[str, Any]) -> None:
    stream = gz([b'{"Metadata":{"WriteTimeMicros":"1"},"Keys":{"pk":{"S":"z"}}}\n', orjson.dumps(doc)])
    with pytest.raises(ExportFormatError) as caught:
        list(iter_incremental(stream, "DYNAMODB_JSON", KEY))
    assert caught.value.line == 2 and caught.value.key == KEY


def test_incremental_start_line_skips_exactly() -> None:
    lines = [
        orjson.dumps({"Metadata": {"WriteTimeMicros": str(i)}, "Keys": {"pk": {"N": str(i)}}}) + b"\n"
        for i in range(1, 6)
    ]
    got = list(iter_incremental(gz(lines), "DYNAMODB_JSON", KEY, start_line=3))
    assert [(n, r.write_time_micros) for n, r in got] == [(4, 4), (5, 5)]


def test_ion_reads_without_jsonconversion_or_numpy() -> None:
    # The Lambda layer installs amazon-ion without its dependency jsonconversion (and so
    # without numpy): only amazon.ion.json_encoder needs them. Prove the ION path does not.
    import subprocess
    import sys

    script = """
import gzip, io, sys
sys.modules["jsonconversion"] = None
sys.modules["numpy"] = None
from ddbsync.dynamodb.export_format import iter_export_items
from ddbsync_local.exporter import ion_line
item = {"pk": {"S": "a"}, "n": {"N": "2.5"}, "b": {"B": "AAEC"}, "ss": {"SS": ["x", "y"]}}
body = io.BytesIO(gzip.compress(ion_line(item)))
((line, got),) = list(iter_export_items(body, "ION", "f"))
assert line == 1 and got["pk"] == {"S": "a"} and got["ss"] == {"SS": ["x", "y"]}, got
assert "numpy" not in sys.modules or sys.modules["numpy"] is None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
