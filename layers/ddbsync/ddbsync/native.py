"""The optional C speedups (``ddbsync._speedups``), loaded once.

``speedups`` is the extension module, or None when it was not built (no C
compiler at install time) or ``DDBSYNC_PURE_PYTHON=1`` turns it off. Every user
falls back to the pure-Python code, which defines the behaviour; the C functions
only take input whose result that code defines, and hand everything else back
(see _speedups.c and tests/unit/test_speedups.py).
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

__all__ = ["speedups"]


def _load() -> ModuleType | None:
    if os.environ.get("DDBSYNC_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from ddbsync import _speedups
    except ImportError as e:
        logging.getLogger(__name__).warning(
            "ddbsync C speedups not available (%s): using the pure-Python code "
            "(same results, slower). Rebuild with a C compiler, or set DDBSYNC_PURE_PYTHON=1 "
            "to say this is intended.",
            e,
        )
        return None
    return _speedups


speedups = _load()
