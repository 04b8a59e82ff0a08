#!/usr/bin/env bash
# Builds the ddbsync Lambda layer into $ARTIFACTS_DIR (run by `make build-DdbsyncLayer`,
# which `sam build` runs because the layer's BuildMethod is makefile):
#
#   $ARTIFACTS_DIR/python/<dependencies>   the locked runtime dependencies, as wheels for
#                                          the target platform (orjson is a binary wheel)
#   $ARTIFACTS_DIR/python/ddbsync/         the package, as source (pure Python)
#   .../__pycache__/*.cpython-313.pyc      bytecode of every module above, for the target
#                                          Python (see "Bytecode" below)
#
# No C compiler and no Docker: every dependency is a wheel, fetched for the target.
#
# Environment:
#   DDBSYNC_LAYER_ARCH=arm64|x86_64   target architecture (default arm64, the template's)
#   DDBSYNC_LAYER_PYTHON=3.13         target Python version (default 3.13, the template's)
#   DDBSYNC_LAYER_BYTECODE_PYTHON=... the interpreter that compiles the bytecode; it must be
#                                     CPython of the target version (default: the first of
#                                     python3.13 on PATH, then pyenv's installed 3.13.x, that
#                                     runs and is 3.13)
#   DDBSYNC_LAYER_REQUIRE_BYTECODE=1  fail when no such interpreter is found (default: build
#                                     the layer without bytecode and print a WARNING)
#   DDBSYNC_PROJECT_ROOT=...          the repository (pyproject.toml, uv.lock); the layer's
#                                     Makefile sets it, as sam build runs this script from a
#                                     scratch copy of layers/ddbsync/ (default: ../..)
#   UV=...                            uv (default: the one `make setup` installed under
#                                     .uv/, else uv on PATH; 0.13 or later)
#   PIP_PYTHON=...                    runs pip (default: python3; needs pip, any recent one)
#
# Which versions: exactly the ones in uv.lock (pyproject.toml is the one list of
# dependencies), minus what the layer must not carry:
#   boto3, botocore (and s3transfer, which only boto3 uses): the Lambda Python runtime
#     provides the AWS SDK. A layer copy would shadow it and add ~25 MB. Their other
#     dependencies stay in the layer: jmespath (Powertools imports it), urllib3 and
#     python-dateutil (requests and opensearch-py import them), at the locked versions,
#     which the runtime's botocore accepts too (urllib3 < 3, dateutil 2.x, jmespath 1.x).
#   opensearch-protobufs (and grpcio, protobuf): opensearch-py 3 requires them for its gRPC
#     transport but never imports them for HTTP; tens of MB of native code for nothing
#     (tests/unit/test_layer_dependencies.py checks the client works without them).
#   jsonconversion (and numpy): amazon-ion requires it for amazon.ion.json_encoder only;
#     ddbsync reads ION with simpleion, which imports neither (tests/unit/test_export_format.py
#     checks that reading ION works with both blocked).
#
# Removed from the installed wheels: what no import reaches on ddbsync's paths. The
# bytecode below adds about 60% to what stays, and the layer must stay under 15 MiB
# unzipped (scripts/sam-build-check.sh checks it; 12.7 MiB with uv.lock as of this writing):
#   amazon/objects-Release/   object files (.o) of amazon-ion's C build, left in its wheel
#   amazon/ionbenchmark/      amazon-ion's benchmark tool (imports protobuf and cbor)
#   aws_lambda_powertools/event_handler/ and every aws_lambda_powertools/utilities/ module
#     but jmespath_utils and typing: ddbsync uses Powertools' Logger, Metrics and Tracer
#     only, which import neither (tests/unit/test_layer_dependencies.py loads the handlers
#     and the CLI with those modules blocked). 5.5 MiB with their bytecode.
#   opensearchpy/_async/client/ and _async/plugins/: opensearch-py's asyncio client (1.7 MB
#     with bytecode). ddbsync uses the synchronous client; the package imports the async one
#     inside a try that already fails without aiohttp (not in the layer), and
#     opensearchpy.helpers needs only _async/helpers/, which stays.
#
# Bytecode: Lambda's /opt is read-only, so a layer without .pyc files makes every cold start
# compile every module it imports (`import app` of the stream indexer: about twice the time,
# bench/cold_start.py). .pyc files are specific to the interpreter version, so they are
# compiled by a CPython of the target version (DDBSYNC_LAYER_BYTECODE_PYTHON), with
# `compileall --invalidation-mode unchecked-hash`: the .pyc is used without looking at the
# source (zip files and layer extraction do not keep reliable mtimes; a layer's files never
# change). The .py sources stay next to them for tracebacks. The build is reproducible: the
# file names compiled into the code objects are /opt/python/..., where Lambda extracts the
# layer, not this build's temporary directory, and PYTHONHASHSEED=0 fixes the order of set
# constants. Without such an interpreter the layer is built from source only, with a
# WARNING: it works, its cold starts are slower.
#
# Writes only to $ARTIFACTS_DIR: the directory it runs from may be SAM's scratch copy
# or, with `sam build --build-in-source`, the repo itself.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${DDBSYNC_PROJECT_ROOT:-$SRC/../..}" && pwd)"
ARCH="${DDBSYNC_LAYER_ARCH:-arm64}"
PY_VERSION="${DDBSYNC_LAYER_PYTHON:-3.13}"
PIP_PYTHON="${PIP_PYTHON:-python3}"
# Not in the layer (see above); uv export --prune also drops what only they need.
PRUNE=(boto3 botocore opensearch-protobufs jsonconversion)

# Progress to stdout, which sam build shows as it goes; errors to stderr, which it
# repeats in its "Make Failed" message.
say() { printf '[build-layer] %s\n' "$*"; }
err() { printf '[build-layer] %s\n' "$*" >&2; }
die() { err "ERROR: $*"; exit 1; }

[[ -n "${ARTIFACTS_DIR:-}" ]] || die "ARTIFACTS_DIR is not set (sam build sets it)"
OUT="$ARTIFACTS_DIR/python"

case "$ARCH" in
  arm64 | aarch64) MACHINE=aarch64 ;;
  x86_64 | amd64) MACHINE=x86_64 ;;
  *) die "DDBSYNC_LAYER_ARCH=$ARCH: expected arm64 or x86_64" ;;
esac
[[ "$PY_VERSION" =~ ^3\.([0-9]+)$ ]] || die "DDBSYNC_LAYER_PYTHON=$PY_VERSION: expected 3.N"
PY_MINOR="${BASH_REMATCH[1]}"

[[ -f "$ROOT/pyproject.toml" && -f "$ROOT/uv.lock" ]] ||
  die "no pyproject.toml and uv.lock in $ROOT (set DDBSYNC_PROJECT_ROOT to the repository)"
if [[ -z "${UV:-}" ]]; then
  if [[ -x "$ROOT/.uv/bin/uv" ]]; then
    UV="$ROOT/.uv/bin/uv"
  elif command -v uv >/dev/null; then
    UV=uv
  else
    die "uv not found: run \`make setup\` (installs it under .uv/), or pip install uv, or set UV"
  fi
fi
"$PIP_PYTHON" -m pip --version >/dev/null 2>&1 ||
  die "$PIP_PYTHON has no pip (set PIP_PYTHON to a Python with pip, e.g. .venv/bin/python after make setup)"

# The interpreter that compiles the bytecode (see the header), looked for first: with
# DDBSYNC_LAYER_REQUIRE_BYTECODE=1, fail before fetching anything.
# Prints the first candidate that is CPython $PY_VERSION and runs.
find_bytecode_python() {
  local tag="cpython-3$PY_MINOR" candidates=() c root
  if [[ -n "${DDBSYNC_LAYER_BYTECODE_PYTHON:-}" ]]; then
    candidates=("$DDBSYNC_LAYER_BYTECODE_PYTHON")
  else
    candidates=("python$PY_VERSION")
    if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
      while IFS= read -r c; do
        candidates+=("$c/bin/python$PY_VERSION")
      done < <(find "$root/versions" -mindepth 1 -maxdepth 1 -name "$PY_VERSION*" 2>/dev/null | sort -rV)
    fi
  fi
  for c in "${candidates[@]}"; do
    # A pyenv shim for a version that is not selected exists on PATH but fails.
    if [[ "$("$c" -c 'import sys; print(sys.implementation.cache_tag)' 2>/dev/null)" == "$tag" ]]; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

bytecode_python="$(find_bytecode_python)" || bytecode_python=""
if [[ -z "$bytecode_python" && -n "${DDBSYNC_LAYER_BYTECODE_PYTHON:-}" ]]; then
  die "DDBSYNC_LAYER_BYTECODE_PYTHON=$DDBSYNC_LAYER_BYTECODE_PYTHON is not a working CPython $PY_VERSION"
elif [[ -z "$bytecode_python" && "${DDBSYNC_LAYER_REQUIRE_BYTECODE:-}" == 1 ]]; then
  die "no python$PY_VERSION found (PATH, pyenv) to compile the layer's bytecode, and DDBSYNC_LAYER_REQUIRE_BYTECODE=1; set DDBSYNC_LAYER_BYTECODE_PYTHON"
fi

say "target: linux $MACHINE, python $PY_VERSION -> $OUT (versions from $ROOT/uv.lock)"
rm -rf "$OUT"
mkdir -p "$OUT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---- (a) The locked runtime dependencies. --locked: refuse a uv.lock that no longer
# matches pyproject.toml (run `make lock`).
prune_args=()
for p in "${PRUNE[@]}"; do prune_args+=(--prune "$p"); done
"$UV" export --quiet --locked --project "$ROOT" --no-default-groups --no-emit-project \
  --no-hashes --no-header --no-annotate --format requirements.txt "${prune_args[@]}" \
  >"$work/locked.txt" || die "uv export failed (see above; a uv.lock out of date with pyproject.toml: make lock)"
# The export is universal: keep only the lines whose environment markers hold on the
# target (pip would evaluate them for this host). Same pins, no new resolution.
UV_PYTHON_DOWNLOADS=never "$UV" pip compile --quiet --no-deps --no-header --no-annotate \
  --python-platform "$MACHINE-unknown-linux-gnu" --python-version "$PY_VERSION" \
  --output-file "$work/layer.txt" "$work/locked.txt" ||
  die "could not select the locked requirements for linux $MACHINE / python $PY_VERSION"
for p in "${PRUNE[@]}"; do
  ! grep -qiE "^$p==" "$work/layer.txt" || die "$p is still in the layer's requirements"
done
say "$(grep -c '==' "$work/layer.txt") locked packages: $(sed 's/[[:space:]].*//' "$work/layer.txt" | tr '\n' ' ')"

# Binary wheels only, for the Lambda runtime rather than this host. python3.12 and later
# run on Amazon Linux 2023 (glibc 2.34), older runtimes on Amazon Linux 2 (glibc 2.26);
# pip needs every accepted manylinux tag spelled out. --no-deps: the list is complete.
platforms=(manylinux2014_"$MACHINE" manylinux_2_17_"$MACHINE")
if ((PY_MINOR >= 12)); then
  platforms+=(manylinux_2_28_"$MACHINE" manylinux_2_34_"$MACHINE")
fi
platform_args=()
for p in "${platforms[@]}"; do platform_args+=(--platform "$p"); done
"$PIP_PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile \
  --target "$OUT" --implementation cp --python-version "$PY_VERSION" "${platform_args[@]}" \
  --only-binary=:all: --no-deps -r "$work/layer.txt" ||
  die "pip could not install the locked wheels for linux $MACHINE / python $PY_VERSION"
# Console scripts of the dependencies would only run on this host.
rm -rf "$OUT/bin"
# What no import reaches (see the header). Each path must exist: a new version of a
# dependency that moves them must be looked at again, not silently keep them.
unused=(amazon/objects-Release amazon/ionbenchmark aws_lambda_powertools/event_handler
  opensearchpy/_async/client opensearchpy/_async/plugins)
for path in "$OUT"/aws_lambda_powertools/utilities/*; do
  case "${path##*/}" in
    __init__.py | jmespath_utils | typing) ;;
    *) unused+=("${path#"$OUT"/}") ;;
  esac
done
for path in "${unused[@]}"; do
  [[ -e "$OUT/$path" ]] || die "$path is not in the installed wheels any more: check build-layer.sh's list of unused parts"
  rm -rf "${OUT:?}/$path"
done

# ---- (b) The package, without what a local test run or an editable install left in the
# source tree: bytecode, egg-info.
tar -C "$SRC" -cf - --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' ddbsync |
  tar -C "$OUT" -xf -
for f in py.typed templates/index.json; do
  [[ -f "$OUT/ddbsync/$f" ]] || die "ddbsync/$f did not reach the layer"
done

# ---- (c) Bytecode for the target interpreter (see the header).
# compileall, the same way for the package and the dependencies: plain .pyc (-o 0),
# unchecked-hash, file names as Lambda sees them (/opt/python/...), set constants in a
# fixed order (PYTHONHASHSEED).
compile() {
  env -u PYTHONOPTIMIZE -u PYTHONPYCACHEPREFIX PYTHONHASHSEED=0 "$bytecode_python" -m compileall -q -j 0 -o 0 \
    --invalidation-mode unchecked-hash -s "$OUT" -p /opt/python "$@"
}

if [[ -n "$bytecode_python" ]]; then
  # ddbsync itself must compile; a dependency file that does not (dead code for this Python)
  # is reported and left as source.
  compile "$OUT/ddbsync" >"$work/compile.log" 2>&1 ||
    { cat "$work/compile.log" >&2; die "ddbsync does not compile with $bytecode_python"; }
  deps=()
  for path in "$OUT"/*; do
    case "${path##*/}" in
      ddbsync | *.dist-info) ;;
      *) deps+=("$path") ;;
    esac
  done
  if ! compile "${deps[@]}" >"$work/compile.log" 2>&1; then
    say "WARNING: some dependency files do not compile with $bytecode_python (left as source):"
    sed 's/^/[build-layer]   /' "$work/compile.log"
  fi
  say "bytecode: $(find "$OUT" -name '*.pyc' | wc -l) modules compiled with $bytecode_python (cpython-3$PY_MINOR, unchecked-hash)"
else
  say "WARNING: no python$PY_VERSION found (PATH, pyenv; or set DDBSYNC_LAYER_BYTECODE_PYTHON):"
  say "WARNING: the layer ships NO bytecode, so every cold start compiles every module it imports"
  say "WARNING: (about twice the import time, see bench/README.md). DDBSYNC_LAYER_REQUIRE_BYTECODE=1 makes this an error."
fi
# The sum of the file sizes, what Lambda counts as unzipped (portable: no du -b on macOS).
size="$("$PIP_PYTHON" -c 'import os, sys
print(f"{sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.argv[1]) for f in fs) / 2**20:.1f}")' "$ARTIFACTS_DIR")"
say "done: $size MiB unzipped"
