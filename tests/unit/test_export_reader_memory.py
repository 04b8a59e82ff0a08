"""export_format: between two items the reader holds the raw line, not the parsed one.

The backfill pulls the next line only when it starts the next chunk, so whatever the
reader keeps while suspended stays alive during a whole ``_bulk`` request. A parsed
line of small maps takes many times its text in Python objects.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
from collections.abc import Callable, Generator, Iterator
from typing import Any

import orjson
import pytest

from ddbsync.dynamodb.export_format import iter_export_items, iter_incremental
from ddbsync_local.exporter import ion_line, json_line

# 3,000 small maps: about 100 KB as a line, several MB once parsed into Python objects.
ITEM = {
    "pk": {"S": "a"},
    "sk": {"S": "1"},
    "events": {"L": [{"M": {"n": {"N": str(j)}, "s": {"S": "x"}}} for j in range(3_000)]},
}


def held_after_first(lines: bytes, read: Callable[[io.BytesIO], Iterator[Any]]) -> tuple[int, int]:
    """Traced bytes still allocated once the first value is read and let go; and its peak."""
    stream = io.BytesIO(gzip.compress(lines))
    tracemalloc.start()
    try:
        it = read(stream)
        first = next(it)
        del first
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(it, Generator)  # the readers are generators: close it as a caller stopping early would
    it.close()
    return held, peak


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_a_full_export_reader_lets_the_parsed_line_go(fmt: str) -> None:
    line = json_line(ITEM) if fmt == "DYNAMODB_JSON" else ion_line(ITEM)
    held, peak = held_after_first(line * 2, lambda s: iter_export_items(s, fmt, "f"))
    assert peak > 5 * len(line)  # the parsed line was this big ...
    assert held < len(line) + 128 * 1024, (held, len(line))  # ... and only the raw line is left


@pytest.mark.parametrize("fmt", ["DYNAMODB_JSON", "ION"])
def test_an_incremental_reader_lets_the_parsed_line_go(fmt: str) -> None:
    # An incremental line carries OldImage too, which no record keeps.
    if fmt == "DYNAMODB_JSON":
        doc = {"Metadata": {"WriteTimeMicros": "1"}, "Keys": {"pk": {"S": "a"}}, "OldImage": ITEM}
        line = orjson.dumps(doc) + b"\n"
    else:
        old = ion_line(ITEM).decode().removeprefix("$ion_1_0 {Item:").strip().removesuffix("}")
        line = f'$ion_1_0 {{Metadata:{{WriteTimeMicros:1}},Keys:{{pk:"a"}},OldImage:{old}}}\n'.encode()
    held, peak = held_after_first(line * 2, lambda s: iter_incremental(s, fmt, "f"))
    assert peak > 5 * len(line)
    assert held < len(line) + 128 * 1024, (held, len(line))
