#!/usr/bin/env bash
# Creates or updates the project's virtual environments from uv.lock (`make setup`):
#
#   .venv           the package (editable) with its `local` extra (moto) and the dev group:
#                   what every make target runs
#   .venv-checkov   the checkov group only (`scripts/setup.sh checkov`, for make check-template)
#
# `scripts/setup.sh uv` only makes sure uv is there and prints its path (make lock).
#
# The versions are exactly uv.lock's; `uv sync --locked` refuses a lock that no longer
# matches pyproject.toml (refresh it on purpose with `make lock`).
#
#   PYTHON=...      the interpreter the environments are created from (default python3;
#                   3.11 or later). Changing it recreates them.
#
# uv: the one on PATH if it is recent enough, else one installed from PyPI with that
# interpreter's pip into .uv/ (pip --target works even where PEP 668 refuses
# `pip install`, as for Debian's /usr/bin/python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The Makefile puts .venv/bin first on PATH; `python3` must not mean the venv's own.
PATH=":$PATH:"
PATH="${PATH//:$ROOT\/.venv\/bin:/:}"
PATH="${PATH#:}"
PATH="${PATH%:}"
PYTHON="${PYTHON:-python3}"
# Keep in step with [tool.uv] required-version in pyproject.toml.
UV_VERSION=0.13.9
UV_MINOR=13
WHAT="${1:-dev}"

say() { printf '[setup] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

python_exe="$("$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null)" ||
  die "cannot run PYTHON=$PYTHON: install Python 3.11 or later, or set PYTHON=/path/to/python3"
"$python_exe" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "$python_exe is Python $("$python_exe" -c 'import platform; print(platform.python_version())'); ddbsync needs 3.11 or later (set PYTHON=...)"

uv_is_recent() { # uv 0.N.x with N >= UV_MINOR (uv's own check is [tool.uv] required-version)
  local version
  version="$("$1" --version 2>/dev/null | awk '{print $2}')" || return 1
  [[ "$version" =~ ^0\.([0-9]+)\. ]] && ((BASH_REMATCH[1] >= UV_MINOR))
}

if [[ -x .uv/bin/uv ]] && uv_is_recent .uv/bin/uv; then
  UV="$ROOT/.uv/bin/uv"
elif command -v uv >/dev/null && uv_is_recent uv; then
  UV="$(command -v uv)"
else
  say "installing uv $UV_VERSION into .uv/ with $python_exe -m pip"
  "$python_exe" -m pip --version >/dev/null 2>&1 ||
    die "$python_exe has no pip to install uv with: install uv (https://docs.astral.sh/uv/) or pip (Debian: apt-get install python3-pip)"
  rm -rf .uv
  "$python_exe" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-warn-script-location --target .uv "uv==$UV_VERSION" ||
    die "pip could not install uv $UV_VERSION into .uv/"
  UV="$ROOT/.uv/bin/uv"
fi

# The interpreter is the one asked for, never a download.
export UV_PYTHON_DOWNLOADS=never
stale="uv.lock does not match pyproject.toml: run \`make lock\` (or \`uv lock\` to change only what pyproject.toml asks for)"
case "$WHAT" in
  uv) echo "$UV" ;;
  dev)
    "$UV" lock --quiet --check --python "$python_exe" || die "$stale"
    UV_PROJECT_ENVIRONMENT=.venv "$UV" sync --quiet --locked --all-extras --python "$python_exe"
    ;;
  checkov)
    "$UV" lock --quiet --check --python "$python_exe" || die "$stale"
    UV_PROJECT_ENVIRONMENT=.venv-checkov "$UV" sync --quiet --locked --only-group checkov --python "$python_exe"
    ;;
  *) die "unknown argument '$WHAT' (dev, checkov or uv)" ;;
esac
