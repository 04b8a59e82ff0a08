# Type stub for the C extension built from _speedups.c.
from typing import Any

MAX_DEPTH: int

def decode_map(item: dict[str, Any], /) -> dict[str, object] | None: ...
def encode_map(item: dict[str, Any], suffix: bytes, /) -> bytes | None: ...
