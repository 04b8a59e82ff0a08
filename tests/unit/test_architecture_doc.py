"""docs/architecture.md names every module of the package, and only modules that exist.

A newcomer finds a behaviour in one hop from that page; a module missing from it (or a
name left behind by a rename) breaks the hop.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "ddbsync" / "ddbsync"
DOC = ROOT / "docs" / "architecture.md"


def _modules() -> set[str]:
    return {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }


def _named() -> set[str]:
    # Module paths as the page writes them: `mapping.py`, `opensearch/bulk.py`, or a bare
    # package `replay/` (which stands for the package, not a module).
    text = DOC.read_text(encoding="utf-8")
    return set(re.findall(r"(?<![\w/.])((?:[a-z_]+/)?[a-z_]+\.py)\b", text))


def test_every_module_is_on_the_architecture_page() -> None:
    missing = sorted(_modules() - _named())
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_the_architecture_page_names_no_module_that_does_not_exist() -> None:
    outside = {"app.py"}  # functions/<name>/app.py, the Lambda shells, named by their folder
    stale = sorted(name for name in _named() - _modules() - outside if not (ROOT / name).exists())
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"
