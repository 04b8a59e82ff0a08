#!/usr/bin/env bash
# Builds the ddbsync Lambda layer into $ARTIFACTS_DIR (run by `make build-DdbsyncLayer`,
# which `sam build` runs because the layer's BuildMethod is makefile):
#
#   $ARTIFACTS_DIR/python/<dependencies>   the locked runtime dependencies, as wheels for
#                                          the target platform (orjson is a binary wheel)
#   $ARTIFACTS_DIR/python/ddbsync/         the package, as source (pure Python)
#
# No C compiler and no Docker: every dependency is a wheel, fetched for the target.
#
# Environment:
#   DDBSYNC_LAYER_ARCH=arm64|x86_64   target architecture (default arm64, the template's)
#   DDBSYNC_LAYER_PYTHON=3.13         target Python version (default 3.13, the template's)
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

# ---- (b) The package, without what a local test run or an editable install left in the
# source tree: bytecode, egg-info.
tar -C "$SRC" -cf - --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' ddbsync |
  tar -C "$OUT" -xf -
for f in py.typed templates/index.json; do
  [[ -f "$OUT/ddbsync/$f" ]] || die "ddbsync/$f did not reach the layer"
done
say "done: $(du -sm "$ARTIFACTS_DIR" | cut -f1) MB"
