#!/usr/bin/env bash
# Check that `sam build` of template.yaml works, without Docker and without leaving
# anything in the repo tree (build and cache go to a temp dir), and that the layer it
# builds is what Lambda python3.13 on arm64 needs.
#
#   scripts/sam-build-check.sh                      auto: native if a python3.13 is found,
#                                                   else override
#   DDBSYNC_BUILD_MODE=native scripts/...           build template.yaml as is (needs python3.13)
#   DDBSYNC_BUILD_MODE=override scripts/...         build a temp copy whose functions' Runtime
#                                                   is this host's python3 (e.g. python3.11)
#   KEEP_BUILD=1 scripts/...                        keep the temp dir and print its path
#
# The layer is the real thing in both modes: its makefile build (layers/ddbsync/build-layer.sh)
# fetches the locked manylinux aarch64 / cp313 wheels with pip, and uses a python3.13 only
# to compile their bytecode (without one, the layer has none, which works but makes cold
# starts slower; the build warns). SAM's python builder for the two functions (which copies
# app.py) insists on finding the Runtime's interpreter, hence the override mode: its
# functions are built for the wrong runtime, so never deploy that build.
#
# The build runs with no C compiler: cc, gcc, g++, c++, clang, clang++ (and every
# <target>-gcc-like name on PATH) are shadowed by scripts that log the call and fail, CC
# and CXX point at them, and any call fails the check. A tool that runs /usr/bin/gcc by its
# absolute path would get past this; pip, setuptools and SAM's builders look compilers up on
# PATH or in CC. (Not rustc: pip runs `rustc --version` for its user agent whenever there
# is one; that probe is not a build.)
#
# Checks: the handler module at each function's root; the layer at python/ddbsync/ with
# every runtime dependency at its uv.lock version; none of what the Lambda runtime
# provides or ddbsync never imports (boto3, botocore, grpc, protobuf, numpy, Powertools'
# event handler...); native code only for aarch64 (ELF e_machine, not file names); no
# build leftovers; bytecode: when a python3.13 is found (as for native mode), every module
# of the layer has its cpython-313 .pyc, unchecked-hash, and nothing else is compiled;
# without one, no .pyc at all and the build's WARNING about it; the size: at most
# 15 MiB unzipped (the sum of the file sizes, which is what Lambda counts).
# Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Not SAM_BUILD_MODE: sam build reads that variable as its own --mode.
MODE="${DDBSYNC_BUILD_MODE:-auto}"
export SAM_CLI_TELEMETRY=0

say() { printf '[sam-build-check] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

command -v sam >/dev/null || die "sam not on PATH (make setup installs it into .venv; make build uses it)"

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

# The layer build looks for python3.13 the same way, to compile the layer's bytecode.
if find_python313; then HAVE_PYTHON313=1; else HAVE_PYTHON313=0; fi
if [[ "$MODE" == auto ]]; then
  if ((HAVE_PYTHON313)); then MODE=native; else MODE=override; fi
fi

case "$MODE" in
  native)
    find_python313 || die "DDBSYNC_BUILD_MODE=native needs python3.13 on PATH or in pyenv"
    TEMPLATE="$ROOT/template.yaml"
    ;;
  override)
    host="$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
    TEMPLATE="$WORK/template.yaml"
    # Only the functions' Runtime (Globals); the layer's CompatibleRuntimes and every
    # architecture stay as they are.
    sed -E "s/^(    Runtime: )python3\.13\$/\1$host/" "$ROOT/template.yaml" >"$TEMPLATE"
    [[ "$(grep -c "^    Runtime: $host\$" "$TEMPLATE")" == 1 ]] ||
      die "override mode expects exactly one '    Runtime: python3.13' line (Globals.Function) in template.yaml"
    say "override: the functions are built for $host (no python3.13 here); the layer is the real arm64 / 3.13 one"
    ;;
  *) die "unknown DDBSYNC_BUILD_MODE=$MODE (auto|native|override)" ;;
esac
# build-layer.sh's defaults (arm64, 3.13) are the template's target.
unset DDBSYNC_LAYER_ARCH DDBSYNC_LAYER_PYTHON

say "mode=$MODE template=$TEMPLATE"

# No C compiler (see the header): shadow every compiler name on PATH, and the usual ones.
NOCC="$WORK/no-compiler"
CALLS="$WORK/compiler-calls.log"
mkdir -p "$NOCC"
: >"$CALLS"
compilers=(cc c++ gcc g++ clang clang++)
while IFS= read -r name; do
  compilers+=("$name")
done < <(compgen -c | grep -E '^([A-Za-z0-9_]+-)+(gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(-[0-9.]+)?$|^(gcc|g\+\+|clang|clang\+\+)-[0-9.]+$' | sort -u)
for name in "${compilers[@]}"; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\necho "sam-build-check: no C compiler here (%s called)" >&2\nexit 1\n' \
    "$name" "$CALLS" "$name" >"$NOCC/$name"
  chmod +x "$NOCC/$name"
done
# --base-dir resolves CodeUri/ContentUri against the repo even for the temp copy.
# Run from the temp dir and without the cache: a cached build (sam build --cached)
# writes .aws-sam/deps/ under the working directory.
(
  cd "$WORK"
  export PATH="$NOCC:$PATH" CC="$NOCC/cc" CXX="$NOCC/c++"
  unset LDSHARED CPP
  sam build \
    --template-file "$TEMPLATE" \
    --base-dir "$ROOT" \
    --build-dir "$WORK/build" \
    --cache-dir "$WORK/cache" \
    --no-cached \
    --no-use-container
) >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; die "sam build failed"; }
if [[ -s "$CALLS" ]]; then
  cat "$WORK/build.log" >&2
  die "sam build called a compiler: $(sort -u "$CALLS" | head -n 5 | tr '\n' ';')"
fi
say "sam build ran with no C compiler on PATH (${#compilers[@]} names shadowed, none called)"

BUILD="$WORK/build"
LAYER="$BUILD/DdbsyncLayer/python"

[[ -f "$BUILD/template.yaml" ]] || die "no built template"
for function in StreamIndexerFunction BackfillFunction; do
  [[ -f "$BUILD/$function/app.py" ]] || die "$function: handler module app.py missing at the function root"
done
[[ -d "$LAYER/ddbsync" ]] || die "layer has no python/ddbsync/"
for file in config.py errors.py handler.py indexer.py backfill/steps.py dynamodb/decode.py \
  opensearch/sending.py py.typed templates/index.json; do
  [[ -f "$LAYER/ddbsync/$file" ]] || die "layer is missing python/ddbsync/$file"
done
# The local stand-ins for AWS (ddbsync_local: moto glue, the Step Functions interpreter, the
# demo) are for development only.
[[ ! -e "$LAYER/ddbsync_local" && ! -e "$LAYER/ddbsync/local" ]] || die "layer holds the local emulators"
# Only what runs: no egg-info or native code in the package (it is pure Python); its
# bytecode is checked below.
leftover="$(find "$LAYER/ddbsync" \( -name '*.egg-info' -o -name '*.c' -o -name '*.so' \) -print | head -n 5)"
[[ -z "$leftover" ]] || die "layer holds build leftovers: $leftover"

# What the layer's code imports, and what it must not carry: the Lambda runtime's AWS SDK,
# the gRPC transport of opensearch-py, amazon-ion's JSON encoder dependencies.
for module in aws_lambda_powertools aws_xray_sdk opensearchpy requests_aws4auth requests urllib3 orjson amazon jmespath; do
  [[ -e "$LAYER/$module" ]] || die "layer is missing dependency $module"
done
for unwanted in boto3 botocore s3transfer grpc google opensearch_protobufs numpy jsonconversion \
  amazon/objects-Release amazon/ionbenchmark aws_lambda_powertools/event_handler \
  aws_lambda_powertools/utilities/batch aws_lambda_powertools/utilities/parser; do
  [[ ! -e "$LAYER/$unwanted" ]] || die "layer holds $unwanted (see layers/ddbsync/build-layer.sh)"
done

# Every distribution in the layer at exactly its uv.lock version.
python3 - "$LAYER" "$ROOT/uv.lock" <<'PY' || die "layer versions differ from uv.lock"
import pathlib, re, sys, tomllib

layer, lock = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = {(norm(p["name"]), p["version"]) for p in tomllib.loads(lock.read_text())["package"]}
installed = set()
for info in layer.glob("*.dist-info"):
    name, version = info.name[: -len(".dist-info")].rsplit("-", 1)
    installed.add((norm(name), version))
bad = sorted(f"{n}=={v}" for n, v in installed - locked)
if bad or not installed:
    print(f"[sam-build-check] not in uv.lock: {bad or 'no dist-info at all'}", file=sys.stderr)
    sys.exit(1)
print(f"[sam-build-check] {len(installed)} distributions, all at their uv.lock versions", file=sys.stderr)
PY

# Native code (orjson, charset-normalizer, wrapt, amazon-ion) must be for the Lambda
# target, aarch64 (ELF e_machine 183), not for this host.
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
[[ -n "$(find "$LAYER/orjson" -name '*aarch64*.so' -print -quit)" ]] || die "no aarch64 orjson extension in the layer"

# Bytecode (layers/ddbsync/build-layer.sh, "Bytecode"): with a python3.13 here the build
# compiled every module for CPython 3.13, unchecked-hash; without one it says so.
EXPECT_BYTECODE="$HAVE_PYTHON313"
python3 - "$LAYER" "$EXPECT_BYTECODE" <<'PY' || die "layer bytecode is not what the build should make"
import pathlib, struct, sys

layer, expect = pathlib.Path(sys.argv[1]), sys.argv[2] == "1"
TAG = "cpython-313"
pycs = sorted(layer.rglob("*.pyc"))
if not expect:
    if pycs:
        print(f"[sam-build-check] no python3.13 here, yet .pyc in the layer: {pycs[:3]}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
problems, sources = [], sorted(layer.rglob("*.py"))
expected = {src.parent / "__pycache__" / f"{src.stem}.{TAG}.pyc": src for src in sources}
for src_pyc, src in expected.items():
    if not src_pyc.is_file():
        problems.append(f"no {TAG} bytecode for {src.relative_to(layer)}")
for pyc in pycs:
    if pyc not in expected:  # another interpreter's, an optimized one, or its source is gone
        problems.append(f"unexpected {pyc.relative_to(layer)}")
        continue
    flags = struct.unpack("<I", pyc.read_bytes()[4:8])[0]
    if flags != 0b01:  # hash-based, check_source off (PEP 552)
        problems.append(f"{pyc.relative_to(layer)} is not unchecked-hash (flags {flags})")
ours = [s for s in sources if s.relative_to(layer).parts[0] == "ddbsync"]
if problems:
    print("[sam-build-check] " + "\n[sam-build-check] ".join(problems[:10]), file=sys.stderr)
    sys.exit(1)
print(f"[sam-build-check] bytecode: {len(pycs)} {TAG} .pyc (unchecked-hash) for every module, "
      f"{len(ours)} of them ddbsync's", file=sys.stderr)
PY
if [[ "$EXPECT_BYTECODE" == 0 ]]; then
  grep -q 'WARNING: the layer ships NO bytecode' "$WORK/build.log" ||
    die "the layer was built without bytecode and the build did not warn about it"
  say "bytecode: none (no python3.13 here), and the build warned about it"
fi

# Lambda counts the unzipped size as the sum of the file sizes (what the zip's entries
# hold); du's disk usage is larger, by the 4 KiB blocks of small files and directories.
bytes="$(find "$BUILD/DdbsyncLayer" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }')"
size="$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"
files="$(find "$BUILD/DdbsyncLayer" -type f | wc -l)"
say "layer size: ${size} MiB unzipped (${bytes} bytes in ${files} files; du: $(du -sm "$BUILD/DdbsyncLayer" | cut -f1) MiB on disk)"
((bytes <= 15 * 1048576)) || die "layer is ${size} MiB unzipped, over the 15 MiB target (see build-layer.sh)"

say "OK: layer python/ddbsync/ + locked deps for linux aarch64 / cp313 (${size} MiB), functions app.py"
