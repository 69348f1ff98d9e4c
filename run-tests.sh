#!/usr/bin/env bash
# Every test of the workspace. Needs only the Rust toolchain, gcc/g++ and Python 3: anything
# else is provisioned here. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")"

echo "== format and lints"
cargo fmt --all --check
cargo clippy --all-targets --features dice-core/std -- -D warnings
cargo clippy -p dice-core --all-targets -- -D warnings

echo "== workspace tests (default members), kernels at the best level this CPU has"
cargo test

echo "== dice-core at every lower SIMD level, and without std (compile-time kernels)"
for level in avx2 portable; do
    DICE_SIMD=$level cargo test -p dice-core --features std
    DICE_SIMD=$level cargo test --test exactness
done
cargo test -p dice-core

echo "== all tests passed"
