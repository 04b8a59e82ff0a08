#!/usr/bin/env bash
# Load the layer's aarch64 build of ddbsync._speedups in a real aarch64 CPython under
# qemu user-mode emulation, and call it.
#
#   scripts/check-arm64-extension.sh <path>/_speedups.abi3.so
#
# The interpreter is Debian 12's python3.11 for arm64 (the extension is abi3 for
# CPython >= 3.11, so this proves the binary, not the python3.13 runtime). Its
# packages are fetched once with apt-get, using a private apt state (this host's apt
# configuration and dpkg architectures are left alone), and unpacked into a sysroot
# cached under $DDBSYNC_CACHE (default /var/cache/ddbsync as root, else ~/.cache/ddbsync).
#
# Needs qemu-aarch64-static or qemu-aarch64 (apt-get install qemu-user-static), apt-get,
# dpkg-deb and Debian's archive keyring. Prints SKIP and exits 0 when one is missing;
# exits non-zero when the extension does not load or gives a wrong result.
set -euo pipefail

say() { printf '[check-arm64-extension] %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
skip() { say "SKIP: $*"; exit 0; }

SO="${1:?usage: $0 <path>/_speedups.abi3.so}"
[[ -f "$SO" ]] || die "no such file: $SO"

QEMU="$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)"
[[ -n "$QEMU" ]] || skip "no qemu-aarch64-static or qemu-aarch64 (apt-get install qemu-user-static)"

if [[ "$(id -u)" == "0" ]]; then DEFAULT_CACHE=/var/cache/ddbsync; else DEFAULT_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ddbsync"; fi
CACHE_DIR="${DDBSYNC_CACHE:-$DEFAULT_CACHE}"
SYSROOT="$CACHE_DIR/sysroot-debian12-arm64-python3.11"
PACKAGES=(python3.11-minimal libpython3.11-minimal libc6 libexpat1 zlib1g)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

fetch_sysroot() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    skip "no apt-get/dpkg-deb to fetch an arm64 python3.11"
  [[ -f "$KEYRING" ]] || skip "no $KEYRING (apt-get install debian-archive-keyring)"
  mkdir -p "$CACHE_DIR"
  local tmp
  tmp="$(mktemp -d "$CACHE_DIR/sysroot.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/archives/partial" "$tmp/debs" "$tmp/root"
  touch "$tmp/apt/status"
  echo "deb [arch=arm64 signed-by=$KEYRING] http://deb.debian.org/debian bookworm main" >"$tmp/apt/sources.list"
  local apt=(
    -o Dir::Etc::SourceList="$tmp/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::State="$tmp/apt" -o Dir::State::Lists="$tmp/apt/lists" -o Dir::State::status="$tmp/apt/status"
    -o Dir::Cache="$tmp/apt" -o Dir::Cache::archives="$tmp/apt/archives"
    -o APT::Architecture=arm64 -o APT::Architectures::=arm64
    -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)"
  )
  say "fetching Debian 12 arm64 python3.11 into $SYSROOT (once)"
  apt-get "${apt[@]}" -qq update >&2
  (cd "$tmp/debs" && apt-get "${apt[@]}" -qq download "${PACKAGES[@]}") >&2
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  [[ -x "$tmp/root/usr/bin/python3.11" ]] || die "the arm64 packages hold no usr/bin/python3.11"
  # Publish atomically; a concurrent run may have won the race, which is fine.
  mv -T "$tmp/root" "$SYSROOT" 2>/dev/null || true
  rm -rf "$tmp"
  trap - EXIT
}

[[ -x "$SYSROOT/usr/bin/python3.11" ]] || fetch_sysroot

# A directory holding only the extension: `import _speedups` finds it by the .abi3.so
# suffix, and its init function is PyInit__speedups whatever package it ships in.
MODDIR="$(mktemp -d "${TMPDIR:-/tmp}/ddbsync-arm64-ext.XXXXXX")"
trap 'rm -rf "$MODDIR"' EXIT
cp "$SO" "$MODDIR/_speedups.abi3.so"

SMOKE='
import os, sys
sys.path.insert(0, sys.argv[1])
import _speedups

assert os.uname().machine == "aarch64", os.uname().machine
assert _speedups.__file__ == os.path.join(sys.argv[1], "_speedups.abi3.so"), _speedups.__file__
print("loaded", _speedups.__name__, "on", os.uname().machine, "CPython", sys.version.split()[0])
decode_map = getattr(_speedups, "decode_map", None)
if decode_map is None:
    print("note: no decode_map in this module, checked the import only")
    sys.exit(0)
cases = [
    ({"a": {"S": "x"}, "n": {"N": "12"}}, {"a": "x", "n": 12}),
    (
        {"m": {"M": {"f": {"N": "-1.5"}, "l": {"L": [{"BOOL": True}, {"NULL": True}]}, "ss": {"SS": ["b", "a"]}}}},
        {"m": {"f": -1.5, "l": [True, None], "ss": ["a", "b"]}},
    ),
    ({"big": {"N": "1234567890123456789"}}, None),  # 19 digits: left to the Python decoder
]
def same(a, b):  # equal, and of the same types all the way down (12 is not 12.0)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return a == b
for item, want in cases:
    got = decode_map(item)
    assert same(got, want), (item, got, want)
print("decode_map OK:", len(cases), "cases")
# The encoder and the stream fast path: exact bytes (what orjson writes for the decoded item).
# (Only double quotes here: this program sits in a single-quoted shell string.)
# (No json module either: Debian python3.11-minimal has none.)
text = "q\"\\\n\u00e9"
quoted = b"\"q\\\"\\\\\\n" + "\u00e9".encode() + b"\""  # text as JSON: "q\"\\\né"
doc = {"s": {"S": text}, "n": {"N": "-12"}, "d": {"N": "19.00"}, "l": {"L": [{"NULL": True}]}}
got = _speedups.encode_map(doc, b"\"m\":1")
want = b"{\"s\":" + quoted + b",\"n\":-12,\"d\":19.00,\"l\":[null],\"m\":1}"
assert got == want, (got, want)
keys = {"pk": {"S": "a|b"}, "sk": {"N": "007"}}
ddb = {"SequenceNumber": "42", "ApproximateCreationDateTime": 1700000000, "Keys": keys, "NewImage": {"x": {"BOOL": False}}}
change = _speedups.stream_change({"eventName": "INSERT", "dynamodb": ddb}, "pk", "sk", True)
meta = b"\"_ddbsync\":{\"seq\":\"" + b"0" * 38 + b"42\",\"ts\":1700000000,\"source\":\"stream\"}"
assert change == ("a\\|b|7", "42", 1700000000, b"{\"x\":false," + meta + b"}"), change
print("encode_map and stream_change OK")
'

# -I: ignore this host's PYTHON* variables and user site; the directory comes as argv[1].
"$QEMU" -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" -I -S -c "$SMOKE" "$MODDIR" >&2 ||
  die "loading or calling $SO in aarch64 python3.11 under $QEMU failed"

say "OK: $SO works in aarch64 python3.11 under $(basename "$QEMU")"
