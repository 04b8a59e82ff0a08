"""Reasons fit to print for the on-call: one line, bounded, without item data.

OpenSearch quotes the offending value (and the document id, built from the keys) in its
reasons; the commands print reasons, never item data.
"""

from __future__ import annotations

import re

__all__ = ["REASON_CHARS", "short_reason"]

REASON_CHARS = 300

_QUOTED = re.compile(r"(?<![A-Za-z])'[^']*'|\"[^\"]*\"|(?<=value )\([^)]*\)")


def short_reason(text: str) -> str:
    """One line, quoted values replaced by ``…``, at most :data:`REASON_CHARS` characters."""
    text = _QUOTED.sub(lambda m: m.group(0)[0] + "…" + m.group(0)[-1], " ".join(text.split()))
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."
