#!/usr/bin/env bash
# Run the tests that exercise ddbsync._speedups against a build of it with
# AddressSanitizer and UndefinedBehaviorSanitizer: out-of-bounds reads or writes,
# use-after-free and undefined behaviour in the C code fail the run.
#
#   scripts/asan-check.sh        (called by `make test`; needs gcc and its libasan/libubsan)
#
# CPython itself is not instrumented: the sanitizer runtimes are preloaded, leak
# detection is off (the interpreter keeps memory until exit by design), and
# PYTHONMALLOC=malloc sends every allocation (our buffers too) through the sanitizer.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
say() { printf '[asan-check] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

if [[ "${DDBSYNC_PURE_PYTHON:-}" != "" && "${DDBSYNC_PURE_PYTHON:-}" != 0 ]]; then
  say "SKIP: DDBSYNC_PURE_PYTHON is set (testing without the C speedups)"
  exit 0
fi
if [[ "$(uname -s)" != Linux ]]; then
  say "SKIP: the sanitizer check runs on Linux with gcc (CI runs it); not on $(uname -s)"
  exit 0
fi
command -v gcc >/dev/null || die "gcc not found (apt-get install gcc)"
asan="$(gcc -print-file-name=libasan.so)"
ubsan="$(gcc -print-file-name=libubsan.so)"
[[ -f "$asan" && -f "$ubsan" ]] || die "gcc's libasan/libubsan not found (apt-get install gcc)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ddbsync-asan.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# A copy of the package with the instrumented extension in place of the normal one.
tar -C "$ROOT/layers/ddbsync" -cf - --exclude='*.so' --exclude='__pycache__' ddbsync | tar -C "$WORK" -xf -
include="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("include"))')"
gcc -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -shared -fPIC -DPy_LIMITED_API=0x030B0000 -I"$include" \
  -o "$WORK/ddbsync/_speedups.abi3.so" "$ROOT/layers/ddbsync/ddbsync/_speedups.c"

cd "$ROOT"
# The instrumented copy must be the one imported: checked first, then the tests.
LD_PRELOAD="$asan $ubsan" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc PYTHONPATH="$WORK:$ROOT" \
  "$PYTHON" -c 'import sys, ddbsync._speedups as s; sys.exit(0 if s.__file__.startswith(sys.argv[1]) else f"imported {s.__file__}")' "$WORK" ||
  die "the instrumented module was not the one imported"
LD_PRELOAD="$asan $ubsan" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc PYTHONPATH="$WORK:$ROOT" \
  "$PYTHON" -m pytest -p no:cacheprovider -o pythonpath="$WORK" -q \
  tests/unit/test_speedups.py tests/unit/test_decode.py tests/unit/test_mapping.py ||
  die "tests failed under AddressSanitizer/UndefinedBehaviorSanitizer"
say "OK: _speedups passes its tests under ASan and UBSan"
