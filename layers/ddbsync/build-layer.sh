#!/usr/bin/env bash
# Builds the ddbsync Lambda layer into $ARTIFACTS_DIR (run by `make build-DdbsyncLayer`,
# which `sam build` runs because the layer's BuildMethod is makefile):
#
#   $ARTIFACTS_DIR/python/<dependencies>             binary wheels for the target platform
#   $ARTIFACTS_DIR/python/ddbsync/                   the package, as source
#   $ARTIFACTS_DIR/python/ddbsync/_speedups.abi3.so  its C speedups, compiled for the target
#
# Environment:
#   DDBSYNC_LAYER_ARCH=arm64|x86_64   target architecture (default arm64)
#   DDBSYNC_LAYER_PYTHON=3.13         target Python version of the wheels (default 3.13)
#   CC=...                            C compiler for the target (default: cc when this host
#                                     has the target's architecture, else the cross compiler
#                                     <arch>-linux-gnu-gcc, e.g. aarch64-linux-gnu-gcc)
#   PYTHON=...                        runs pip (default: python3.13, the target version, as
#                                     SAM's python builder does, if it runs; else python3)
#   HEADERS_PYTHON=...                whose C headers to compile against (default: python3.11
#                                     if it runs, else $PYTHON)
#   DDBSYNC_LAYER_PURE_PYTHON=1       build without the C speedups: ddbsync then uses its
#                                     pure-Python decoder (same results, slower)
#
# Writes only to $ARTIFACTS_DIR: the directory it runs from may be SAM's scratch copy
# or, with `sam build --build-in-source`, the repo itself.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ARCH="${DDBSYNC_LAYER_ARCH:-arm64}"
PY_VERSION="${DDBSYNC_LAYER_PYTHON:-3.13}"
PURE_PYTHON="${DDBSYNC_LAYER_PURE_PYTHON:-}"

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
if [[ -z "${PYTHON:-}" ]]; then
  # An older pip can resolve to older releases than SAM's python builder would.
  if "python$PY_VERSION" -c '' >/dev/null 2>&1; then PYTHON="python$PY_VERSION"; else PYTHON=python3; fi
fi

# ---- The C toolchain, checked before anything is downloaded.
no_compiler() {
  err "ERROR: $1"
  err "The layer needs ddbsync/_speedups.c compiled for linux $MACHINE. Do one of these:"
  if [[ "$MACHINE" == aarch64 ]]; then
    err "  - on x86_64 Debian/Ubuntu: apt-get install gcc-aarch64-linux-gnu"
    err "  - on an arm64 Linux machine: install a plain C compiler (cc), e.g. apt-get install gcc"
  else
    err "  - on an x86_64 Linux machine: install a plain C compiler (cc), e.g. apt-get install gcc"
    err "  - on arm64 Debian/Ubuntu: apt-get install gcc-x86-64-linux-gnu"
  fi
  err "  - set CC to a C compiler for linux $MACHINE, or build in SAM's container: sam build --use-container"
  err "  - build the layer without the extension: DDBSYNC_LAYER_PURE_PYTHON=1 sam build"
  err "    (ddbsync then decodes in pure Python: same results, slower)"
  exit 1
}

if [[ "$PURE_PYTHON" != 1 ]]; then
  [[ -f "$SRC/ddbsync/_speedups.c" ]] || die "$SRC/ddbsync/_speedups.c is missing"

  HOST_MACHINE="$(uname -m)"
  [[ "$HOST_MACHINE" == arm64 ]] && HOST_MACHINE=aarch64
  if [[ -z "${CC:-}" ]]; then
    if [[ "$HOST_MACHINE" == "$MACHINE" ]]; then CC=cc; else CC="$MACHINE-linux-gnu-gcc"; fi
  fi
  command -v "$CC" >/dev/null || no_compiler "no C compiler '$CC' on PATH"
  cc_target="$("$CC" -dumpmachine 2>/dev/null || echo unknown)"
  [[ "$cc_target" == "$MACHINE"-*linux* ]] ||
    no_compiler "CC=$CC builds for '$cc_target', not for linux $MACHINE"

  # The build host's Python headers, even when cross-compiling: under the limited API
  # (Py_LIMITED_API, abi3) they describe the stable ABI, whose object layouts and sizes
  # are the same on every LP64 little-endian Linux, x86_64 and aarch64 alike. Preferably
  # CPython 3.11's, the version the limited API names. (Not Debian's system Python for a
  # cross build: its pyconfig.h includes a per-architecture copy from libpython3.X-dev:<arch>.)
  if [[ -z "${HEADERS_PYTHON:-}" ]]; then
    if python3.11 -c '' >/dev/null 2>&1; then HEADERS_PYTHON=python3.11; else HEADERS_PYTHON="$PYTHON"; fi
  fi
  "$HEADERS_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$HEADERS_PYTHON is older than 3.11, its headers lack the 3.11 limited API (set HEADERS_PYTHON)"
  INCLUDE="$("$HEADERS_PYTHON" -c 'import sysconfig; print(sysconfig.get_path("include"))')"
  [[ -f "$INCLUDE/Python.h" ]] ||
    die "no Python.h in $INCLUDE (install the Python development headers, e.g. python3-dev)"
  # Headers of CPython 3.12 to 3.13.4 return None/True/False without a new reference even
  # under the 3.11 limited API (CPython gh-134989): a module using Py_RETURN_NONE (or
  # _TRUE/_FALSE) built with them frees None on 3.11. _speedups.c avoids those macros;
  # refuse such headers only if it ever uses them again.
  probe="$(printf '#include <Python.h>\nPyObject *ddbsync_probe(void) { Py_RETURN_NONE; }\n' |
    "$CC" -DPy_LIMITED_API=0x030B0000 -I"$INCLUDE" -E -P -x c - | tr -d ' \t\n')" ||
    die "$CC cannot use the Python headers in $INCLUDE (cross builds: set HEADERS_PYTHON to a python.org or pyenv CPython)"
  if [[ "$probe" == *'ddbsync_probe(void){return(&_Py_NoneStruct);}'* ]] &&
    grep -Eq 'Py_RETURN_(NONE|TRUE|FALSE)' "$SRC/ddbsync/_speedups.c"; then
    die "the headers in $INCLUDE break the 3.11 limited API (CPython gh-134989) and _speedups.c uses Py_RETURN_*: set HEADERS_PYTHON to a python3.11 or a CPython >= 3.13.5"
  fi
fi

say "target: linux $MACHINE, python $PY_VERSION -> $OUT (pip of $PYTHON)"
rm -rf "$OUT"
mkdir -p "$OUT"

# ---- (a) Dependencies: binary wheels only, for the Lambda runtime rather than this host.
# python3.12 and later run on Amazon Linux 2023 (glibc 2.34), older runtimes on
# Amazon Linux 2 (glibc 2.26); pip needs every accepted manylinux tag spelled out.
platforms=(manylinux2014_"$MACHINE" manylinux_2_17_"$MACHINE")
if ((PY_MINOR >= 12)); then
  platforms+=(manylinux_2_28_"$MACHINE" manylinux_2_34_"$MACHINE")
fi
platform_args=()
for p in "${platforms[@]}"; do platform_args+=(--platform "$p"); done
pip_target() {
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile \
    --target "$OUT" \
    --implementation cp --python-version "$PY_VERSION" "${platform_args[@]}" \
    --only-binary=:all: "$@"
}
# amazon-ion's one dependency, jsonconversion, exists for amazon.ion.json_encoder and pulls
# in numpy (tens of MB). ddbsync reads ION with simpleion, which imports neither, so
# amazon-ion goes in without its dependencies (tests/unit/test_export_format.py checks that
# reading ION works with both blocked).
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
grep -viE '^[[:space:]]*amazon-ion' "$SRC/requirements.txt" >"$requirements"
ion="$(grep -iE '^[[:space:]]*amazon-ion' "$SRC/requirements.txt" | sed 's/[[:space:]]*#.*//' | head -n 1)"
[[ -n "$ion" ]] || die "requirements.txt has no amazon-ion line"
pip_target -r "$requirements"
pip_target --no-deps "$ion"
# Console scripts of the dependencies (numpy's f2py...) would only run on this host.
rm -rf "$OUT/bin"

# ---- (b) The package, without what a local `pip install -e .` or test run left in the
# source tree: the host-built extension, bytecode, egg-info (and the C source).
tar -C "$SRC" -cf - \
  --exclude='*.so' --exclude='*.o' --exclude='*.c' \
  --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
  ddbsync | tar -C "$OUT" -xf -
for f in py.typed templates/index.json; do
  [[ -f "$OUT/ddbsync/$f" ]] || die "ddbsync/$f did not reach the layer"
done

# ---- (c) The C speedups, for the target architecture.
if [[ "$PURE_PYTHON" == 1 ]]; then
  say "DDBSYNC_LAYER_PURE_PYTHON=1: no ddbsync._speedups in this layer (pure-Python decoder: same results, slower)"
  exit 0
fi
say "compiling ddbsync/_speedups.c with $CC for linux $MACHINE against $INCLUDE (abi3, CPython >= 3.11)"
"$CC" -O2 -Wall -Werror=implicit-function-declaration -shared -fPIC \
  -DPy_LIMITED_API=0x030B0000 -I"$INCLUDE" \
  -o "$OUT/ddbsync/_speedups.abi3.so" "$SRC/ddbsync/_speedups.c"
