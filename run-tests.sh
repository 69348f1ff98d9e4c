#!/usr/bin/env bash
# Every test of the workspace. Needs only the Rust toolchain, gcc/g++ and Python 3: anything
# else is provisioned here. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")"

# Tools that are not on a fresh machine, provisioned once into a per-user cache.
cache=${DICE_CACHE:-$HOME/.cache/dice}
tools=${DICE_TOOLS_VENV:-$cache/tools}
if [ ! -x "$tools/bin/cmake" ] || [ ! -x "$tools/bin/ninja" ]; then
    echo "== provisioning CMake and Ninja from PyPI into $tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet cmake==4.4.5 ninja==1.13.2
fi
export DICE_CMAKE="$tools/bin/cmake" DICE_NINJA="$tools/bin/ninja" DICE_REQUIRE_CMAKE=1

# Reference tools for dice eval's agreement tests (SimpleITK, nibabel, NumPy; nilearn for the
# MNI152 maps it ships, installed without its dependencies: only its data files are read).
ref=${DICE_EVAL_REF_VENV:-$cache/eval-ref}
if ! "$ref/bin/python" -c "import SimpleITK, nibabel, numpy, tifffile, PIL, importlib.util as u; assert u.find_spec('nilearn')" 2>/dev/null; then
    echo "== provisioning SimpleITK, nibabel, NumPy, tifffile, Pillow and nilearn's data into $ref"
    python3 -m venv "$ref"
    "$ref/bin/pip" install --quiet numpy==2.4.6 nibabel==5.4.2 SimpleITK==2.5.7 tifffile==2026.3.3 pillow==13.0.0
    "$ref/bin/pip" install --quiet --no-deps nilearn==0.14.1
fi
export DICE_EVAL_REF_PYTHON="$ref/bin/python" DICE_REQUIRE_EVAL_REF=1

# Headless Chromium renders dice eval's HTML report in its test (Debian's package).
sudo_=""
[ "$(id -u)" -ne 0 ] && sudo_="sudo"
if ! command -v chromium >/dev/null 2>&1; then
    echo "== provisioning Chromium (Debian package) for the HTML report's test"
    $sudo_ apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi
export DICE_CHROMIUM="$(command -v chromium)" DICE_REQUIRE_CHROMIUM=1

# The Cortex-M4F example (tests/cortex_m4.rs): the Rust target, and QEMU's mps2-an386 board
# (Debian's qemu-system-arm).
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "== provisioning QEMU (Debian package qemu-system-arm) for the Cortex-M4F example"
    $sudo_ apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
fi
export DICE_REQUIRE_EMBEDDED=1

echo "== format and lints"
cargo fmt --all --check
cargo clippy --all-targets --features dice-core/std -- -D warnings
cargo clippy -p dice-core --all-targets -- -D warnings
cargo clippy -p dice-core --target thumbv7em-none-eabihf -- -D warnings
cargo clippy -p dice-py --all-targets -- -D warnings

echo "== workspace tests (dice-core, dice-ffi with its C/C++ consumers and packaging), best SIMD level"
cargo test

echo "== dice-core at every lower SIMD level, and without std (compile-time kernels)"
for level in avx2 portable; do
    DICE_SIMD=$level cargo test -p dice-core --features std
    DICE_SIMD=$level cargo test --test exactness
done
cargo test -p dice-core

echo "== aarch64 under qemu-aarch64: dice-core's tests, the C consumer, dice eval (scripts/aarch64.sh)"
scripts/aarch64.sh

echo "== fuzz targets, a fixed number of seeded runs each (only where nightly and cargo-fuzz exist)"
if cargo +nightly --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1; then
    for target in read_any eval_pair detached ffi; do
        corpus=$(mktemp -d)
        log=$(mktemp)
        cp -r "fuzz/corpus/$target/." "$corpus/"
        if ! (cd fuzz && cargo +nightly fuzz run -O "$target" "$corpus" -- \
            -runs=30000 -seed=1 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1) >"$log" 2>&1; then
            tail -n 80 "$log"
            echo "fuzz target $target failed: the input is in fuzz/artifacts/$target; add it to fuzz/regressions/$target"
            exit 1
        fi
        echo "   $target: $(grep -E '^Done' "$log" || echo 'done'), no crash"
        rm -rf "$corpus" "$log"
    done
else
    echo "(no nightly toolchain or cargo-fuzz: the corpus and regressions replay on stable in tests/fuzz_regressions.rs)"
fi

echo "== dice-tch: LibTorch from PyPI (provisioned once), lints, tests, examples build"
scripts/with-torch.sh cargo clippy -p dice-tch --all-targets -- -D warnings
scripts/with-torch.sh cargo test -p dice-tch
scripts/with-torch.sh cargo clippy --all-targets --features tch -- -D warnings

echo "== exactdice (dice-py): built by maturin into the PyTorch venv, pytest against MONAI 1.6.1 (and DDP on gloo, dask)"
# MONAI without its dependencies, so that the venv's torch stays 2.13.0; the wheel links no
# LibTorch (torch is used from Python). scipy: MONAI's surface metrics, the reference of
# exactdice's. parameterized: MONAI's own unit tests, run on exactdice's classes where
# DICE_MONAI_TESTS names a checkout of MONAI's repository (they are in no package).
scripts/with-torch.sh bash -c '
    set -euo pipefail
    pip install --quiet maturin==1.9.0 pytest==8.4.2 numpy==2.4.6 dask==2026.8.0 distributed==2026.8.0 \
        scipy==1.17.1 parameterized==0.9.0
    pip install --quiet --no-deps monai==1.6.1
    pip install --quiet --no-build-isolation ./dice-py
    python -c "import torch; assert torch.__version__.startswith(\"2.13.0\"), torch.__version__"
    cd dice-py/tests && python -m pytest -q -p no:cacheprovider
'

echo "== exactdice from pip: the abi3 wheel in a clean venv (torch and numpy only, no Rust), its dice command, a DDP step (scripts/wheel.sh)"
scripts/with-torch.sh scripts/wheel.sh

echo "== all tests passed"
