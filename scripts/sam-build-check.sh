#!/usr/bin/env bash
# Check that `sam build` of template.yaml works, without Docker and without
# leaving anything in the repo tree (build and cache go to a temp dir).
#
#   scripts/sam-build-check.sh                      auto: native if a python3.13 is found,
#                                                   else override
#   DDBSYNC_BUILD_MODE=native scripts/...           build template.yaml as is (needs python3.13)
#   DDBSYNC_BUILD_MODE=override scripts/...         build a temp copy with python3.13 -> python3.11
#                                                   and arm64 -> x86_64 (needs python3.11)
#   KEEP_BUILD=1 scripts/...                        keep the temp dir and print its path
#
# Native mode is the real thing: the layer's makefile build (layers/ddbsync/build-layer.sh)
# fetches manylinux aarch64 / cp313 wheels and compiles ddbsync/_speedups.c for aarch64
# even on an x86_64 host (with aarch64-linux-gnu-gcc there). Override mode only proves
# that the template's code paths, BuildMethod and requirements resolve and that the
# extension compiles (for x86_64, with cc); its output is for the wrong runtime and
# architecture, so never deploy it.
#
# Either way the script then checks the layout Lambda needs: the layer at
# python/ddbsync/ with its dependencies and python/ddbsync/_speedups.abi3.so for the
# target architecture, the handler module at the function root. In native mode it then
# loads the aarch64 extension under qemu when qemu-aarch64(-static) is installed
# (scripts/check-arm64-extension.sh). DDBSYNC_LAYER_PURE_PYTHON=1 builds and checks a
# layer without the extension. Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Not SAM_BUILD_MODE: sam build reads that variable as its own --mode.
MODE="${DDBSYNC_BUILD_MODE:-auto}"
export SAM_CLI_TELEMETRY=0

say() { printf '[sam-build-check] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

command -v sam >/dev/null || die "sam not on PATH (pip install aws-sam-cli)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ddbsync-sam-build.XXXXXX")"
if [[ -n "${KEEP_BUILD:-}" ]]; then
  say "keeping $WORK"
else
  trap 'rm -rf "$WORK"' EXIT
fi

# A python3.13 that actually runs (a pyenv shim for a version that is not
# selected exists on PATH but fails), else one from pyenv's installed versions.
find_python313() {
  if python3.13 -c 'import sys' >/dev/null 2>&1; then
    return 0
  fi
  if command -v pyenv >/dev/null; then
    local v
    v="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -V | tail -n 1 || true)"
    if [[ -n "$v" && -x "$(pyenv root)/versions/$v/bin/python3.13" ]]; then
      PATH="$(pyenv root)/versions/$v/bin:$PATH"
      export PATH
      return 0
    fi
  fi
  return 1
}

if [[ "$MODE" == auto ]]; then
  if find_python313; then MODE=native; else MODE=override; fi
fi

case "$MODE" in
  native)
    find_python313 || die "DDBSYNC_BUILD_MODE=native needs python3.13 on PATH or in pyenv"
    TEMPLATE="$ROOT/template.yaml"
    RUNTIME=python3.13
    # build-layer.sh's defaults (arm64, 3.13) are the template's target.
    unset DDBSYNC_LAYER_ARCH DDBSYNC_LAYER_PYTHON
    ELF_MACHINE=183 # EM_AARCH64
    ;;
  override)
    command -v python3.11 >/dev/null || die "override mode needs python3.11 on PATH"
    TEMPLATE="$WORK/template.yaml"
    RUNTIME=python3.11
    # Every python3.13 / arm64 in the template is Runtime, CompatibleRuntimes,
    # BuildMethod, Architectures, CompatibleArchitectures or BuildArchitecture.
    sed -e 's/python3\.13/python3.11/g' -e 's/arm64/x86_64/g' "$ROOT/template.yaml" >"$TEMPLATE"
    # The layer's build script reads its target from these (the sed above cannot reach it);
    # the extension is then compiled for this x86_64 host with cc.
    export DDBSYNC_LAYER_ARCH=x86_64 DDBSYNC_LAYER_PYTHON=3.11
    ELF_MACHINE=62 # EM_X86_64
    ;;
  *) die "unknown DDBSYNC_BUILD_MODE=$MODE (auto|native|override)" ;;
esac

say "mode=$MODE runtime=$RUNTIME template=$TEMPLATE"
# --base-dir resolves CodeUri/ContentUri against the repo even for the temp copy.
# Run from the temp dir and without the cache: a cached build (samconfig.toml sets
# cached = true) writes .aws-sam/deps/ under the working directory.
(
  cd "$WORK"
  sam build \
    --template-file "$TEMPLATE" \
    --base-dir "$ROOT" \
    --build-dir "$WORK/build" \
    --cache-dir "$WORK/cache" \
    --no-cached \
    --no-use-container
) >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "sam build failed"; }

BUILD="$WORK/build"
LAYER="$BUILD/DdbsyncLayer/python"
FUNC="$BUILD/StreamIndexerFunction"

[[ -f "$BUILD/template.yaml" ]] || die "no built template"
[[ -f "$FUNC/app.py" ]] || die "handler module app.py missing at the function root"
[[ -d "$LAYER/ddbsync" ]] || die "layer has no python/ddbsync/"
for module in config.py errors.py; do
  [[ -f "$LAYER/ddbsync/$module" ]] || die "layer is missing python/ddbsync/$module"
done
[[ -f "$LAYER/ddbsync/templates/index.json" ]] || die "layer is missing the index template"
# One import package per requirement of layers/ddbsync/requirements.txt.
for dep in aws_lambda_powertools opensearchpy requests_aws4auth aws_xray_sdk orjson amazon; do
  [[ -d "$LAYER/$dep" ]] || die "layer is missing dependency $dep"
done
# amazon-ion is installed without jsonconversion/numpy (see build-layer.sh).
for unwanted in numpy jsonconversion; do
  [[ ! -e "$LAYER/$unwanted" ]] || die "layer holds $unwanted (amazon-ion must be installed with --no-deps)"
done
# Only what runs: no host-built extension, bytecode or egg-info from the source tree.
leftover="$(find "$LAYER/ddbsync" \( -name '__pycache__' -o -name '*.pyc' -o -name '*.egg-info' -o -name '*.c' \
  -o \( -name '*.so' ! -path "$LAYER/ddbsync/_speedups.abi3.so" \) \) -print | head -n 5)"
[[ -z "$leftover" ]] || die "layer holds build leftovers: $leftover"
[[ -f "$LAYER/ddbsync/py.typed" ]] || die "layer is missing python/ddbsync/py.typed"

# The C speedups, for the target architecture (ELF e_machine, not the file name).
SPEEDUPS="$LAYER/ddbsync/_speedups.abi3.so"
elf_machine() { python3 -c '
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(20)
print(struct.unpack("<H", head[18:20])[0] if head[:4] == b"\x7fELF" else "not-elf")
' "$1"; }
if [[ "${DDBSYNC_LAYER_PURE_PYTHON:-}" == 1 ]]; then
  [[ ! -e "$SPEEDUPS" ]] || die "DDBSYNC_LAYER_PURE_PYTHON=1 but the layer has $SPEEDUPS"
  say "note: DDBSYNC_LAYER_PURE_PYTHON=1, layer built without ddbsync._speedups"
else
  [[ -f "$SPEEDUPS" ]] || die "layer is missing python/ddbsync/_speedups.abi3.so"
  machine="$(elf_machine "$SPEEDUPS")"
  [[ "$machine" == "$ELF_MACHINE" ]] || die "_speedups.abi3.so has ELF machine $machine, expected $ELF_MACHINE"
fi
if [[ "$MODE" == native ]]; then
  # Native extensions must be for the Lambda target, not for this host.
  # Read each ELF header's e_machine (183 = AArch64) rather than trusting file names.
  bad="$(find "$LAYER" -name '*.so*' -type f -print0 | python3 -c '
import struct, sys
for path in sys.stdin.buffer.read().split(b"\0"):
    if not path:
        continue
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] == b"\x7fELF" and struct.unpack("<H", head[18:20])[0] != 183:
        print(path.decode())
' | head -n 5)"
  [[ -z "$bad" ]] || die "layer holds non-aarch64 extensions: $bad"

  if [[ -f "$SPEEDUPS" ]]; then
    # The python3.13 runtime runs on Amazon Linux 2023 (glibc 2.34); the cross compiler
    # links against this host's newer glibc, so no symbol may need a later version.
    if command -v readelf >/dev/null; then
      newest="$(readelf --version-info --wide "$SPEEDUPS" | { grep -o 'GLIBC_[0-9.]*' || true; } | sed 's/GLIBC_//' | sort -V | tail -n 1)"
      if [[ -n "$newest" && "$(printf '%s\n' "$newest" 2.34 | sort -V | tail -n 1)" != 2.34 ]]; then
        die "_speedups.abi3.so needs GLIBC_$newest, Lambda python3.13 has 2.34"
      fi
    else
      say "SKIP glibc symbol version check of _speedups.abi3.so (no readelf: apt-get install binutils)"
    fi
    if command -v qemu-aarch64-static >/dev/null || command -v qemu-aarch64 >/dev/null; then
      "$ROOT/scripts/check-arm64-extension.sh" "$SPEEDUPS" || die "the aarch64 _speedups.abi3.so does not load or run under qemu"
    else
      say "SKIP arm64 load test of _speedups.abi3.so: no qemu-aarch64-static (apt-get install qemu-user-static)"
    fi
  fi
fi

size="$(du -sm "$BUILD/DdbsyncLayer" | cut -f1)"
# Function + layers must stay under Lambda's 250 MB unzipped limit.
(( size < 200 )) || die "layer is ${size} MB unzipped (limit 250 MB with the function)"

if [[ -f "$SPEEDUPS" ]]; then
  say "OK: layer python/ddbsync/ + _speedups.abi3.so + deps (${size} MB), function app.py"
else
  say "OK: layer python/ddbsync/ (pure Python) + deps (${size} MB), function app.py"
fi
