# Type stub for the C extension built from _speedups.c.
from collections.abc import Mapping
from typing import Any

MAX_DEPTH: int

def decode_map(item: dict[str, Any], /) -> dict[str, object] | None: ...
def encode_map(item: dict[str, Any], suffix: bytes, /) -> bytes | None: ...
def stream_change(
    record: Mapping[str, object], partition_key: str, sort_key: str | None, encode: bool, /
) -> tuple[str, str, int, bytes | None] | None: ...
