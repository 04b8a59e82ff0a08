"""Without moto (the ``local`` extra) the local subcommands say what to install, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ddbsync.cli import commands as cli

ROOT = Path(__file__).resolve().parents[2]
# Nothing answers there: without the guard the subcommands stop at their OpenSearch check
# (exit 2 as well, but with another message) instead of touching a real index.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def without_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import moto`` fails as if it were not installed (None in sys.modules blocks it)."""
    for name in [m for m in sys.modules if m == "moto" or m.startswith("moto.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("OPENSEARCH_URL", NOWHERE)


@pytest.mark.parametrize("command", ["demo", "backfill"])
def test_local_subcommand_without_moto_names_the_extra_and_exits_2(
    without_moto: None, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"ddbsync {command} ")
    assert "pip install 'ddbsync[local]'" in line


def test_a_moto_server_endpoint_needs_no_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert cli.moto_is_missing() is False
    monkeypatch.setenv("AWS_ENDPOINT_URL", " ")
    assert cli.moto_is_missing() is True


def test_the_installed_command_prints_one_line_and_no_traceback() -> None:
    # What a user sees: a fresh interpreter in which a meta path finder refuses moto.
    program = textwrap.dedent(
        """
        import sys

        class NoMoto:
            def find_spec(self, name, path=None, target=None):
                if name == "moto" or name.startswith("moto."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoMoto())
        from ddbsync.cli import main
        sys.exit(main(["demo"]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["OPENSEARCH_URL"] = NOWHERE
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "ddbsync"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "pip install 'ddbsync[local]'" in result.stderr
