#!/usr/bin/env bash
# aarch64 (Jetson, Raspberry Pi, Graviton) under qemu-aarch64, from the README's test command:
#   1. dice-core's whole test suite, cross-built and run on aarch64 (its portable kernels);
#   2. the C consumer (dice-ffi/tests/consumers/api_test.c) against the aarch64 libdice.a, and
#      its printed numbers compared with the same program on this host (integers exactly,
#      real numbers to 1e-6 relative: the host's SIMD kernels group f32 partial sums otherwise);
#   3. `dice eval` of the committed sample pair (every metric), its CSV equal to this host's.
# Provisions the Rust target and Debian's gcc-aarch64-linux-gnu and qemu-user when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_=""
[ "$(id -u)" -ne 0 ] && sudo_="sudo"
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
    echo "== provisioning gcc-aarch64-linux-gnu and qemu-user (Debian packages)"
    $sudo_ apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
t=aarch64-unknown-linux-gnu

echo "== aarch64: dice-core's tests under qemu-aarch64"
cargo test -q -p dice-core --features std --target "$t"

echo "== aarch64: the C consumer against libdice.a, compared with this host's"
cargo build -q --release -p dice-ffi --lib
cargo build -q --release -p dice-ffi --lib --target "$t"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=dice-ffi/tests/consumers/api_test.c
cc -std=c11 -O1 -Idice-ffi/include "$src" target/release/libdice.a -lpthread -ldl -lm -o "$work/host"
aarch64-linux-gnu-gcc -std=c11 -O1 -Idice-ffi/include "$src" "target/$t/release/libdice.a" \
    -lpthread -ldl -lm -o "$work/a64"
"$work/host" >"$work/host.txt"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/a64" >"$work/a64.txt"
python3 - "$work/host.txt" "$work/a64.txt" <<'PY'
import math, sys
host, a64 = (open(p).read().split("\n") for p in sys.argv[1:])
assert len(host) == len(a64) and len(host) > 20, (len(host), len(a64))
def same(a, b):
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return abs(x - y) <= 1e-6 * max(abs(x), abs(y), 1e-30)
bad = [(h, a) for h, a in zip(host, a64) if len(h.split()) != len(a.split())
       or not all(same(x, y) for x, y in zip(h.split(), a.split()))]
assert not bad, "\n".join(f"host: {h}\naarch64: {a}" for h, a in bad[:10])
print(f"   {len(host)} lines agree")
PY

echo "== aarch64: dice eval of the sample pair, every metric, equal to this host's"
cargo build -q --release -p dice-cli
cargo build -q --release -p dice-cli --target "$t"
args=(eval dice-cli/data/sample/pred.nii.gz dice-cli/data/sample/gt.nii.gz --metrics all --tolerance 1
      --lesion-wise --format csv)
target/release/dice "${args[@]}" >"$work/host.csv"
qemu-aarch64 -L /usr/aarch64-linux-gnu "target/$t/release/dice" "${args[@]}" >"$work/a64.csv"
cmp "$work/host.csv" "$work/a64.csv"
echo "   $(($(wc -l <"$work/host.csv") - 1)) rows equal"
