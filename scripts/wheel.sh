#!/usr/bin/env bash
# The pip user's path (issue 20): builds exactdice's abi3 wheel with maturin, installs it into
# a clean virtual environment holding only torch and numpy, with no Rust on PATH, and runs
# dice-py/tests/wheel/clean_venv_checks.py there (the one-import swap, `dice eval` on the
# sample pair against the dice binary's output, a DDP step). Called by run-tests.sh inside
# scripts/with-torch.sh (for maturin).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DICE_CACHE:-$HOME/.cache/dice}
clean=${DICE_CLEAN_VENV:-$cache/clean-torch-2.13.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

maturin build --quiet --release -m dice-py/Cargo.toml -o "$work/wheels" >/dev/null
wheel=$(ls "$work"/wheels/exactdice-*.whl)
case "$wheel" in
    *-abi3-*) ;;
    *) echo "the wheel is not abi3: $wheel"; exit 1 ;;
esac
# The extension links no LibTorch (torch is used from Python), nor libpython.
(cd "$work" && python3 -m zipfile -e "$wheel" unpacked)
so=$(ls "$work"/unpacked/exactdice/_native*.so)
if readelf -d "$so" | grep -E 'NEEDED.*(torch|c10|python)'; then
    echo "the extension links LibTorch or libpython"; exit 1
fi
echo "   wheel $(basename "$wheel"): $(du -k "$wheel" | cut -f1) KiB, NEEDED: $(readelf -d "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"

# The clean environment: torch and numpy only (their dependencies come with them), created
# once; exactdice is removed before each run.
if [ ! -f "$clean/.dice-complete" ]; then
    echo "== provisioning a clean venv with only torch 2.13.0 and numpy into $clean (once)"
    rm -rf "$clean"
    /usr/bin/env -u VIRTUAL_ENV python3 -m venv "$clean"
    "$clean/bin/pip" install --quiet torch==2.13.0 numpy==2.4.6
    touch "$clean/.dice-complete"
fi
"$clean/bin/pip" uninstall --quiet -y exactdice >/dev/null 2>&1 || true
"$clean/bin/pip" install --quiet --no-deps "$wheel"

# The dice binary's output on the sample pair, the reference for the wheel's command.
cargo run --quiet --release -p dice-cli -- eval dice-cli/data/sample/pred.nii.gz \
    dice-cli/data/sample/gt.nii.gz --format csv >"$work/expected.csv"

# No Rust on PATH and no other environment: only the clean venv and the system's tools.
env -i HOME="$HOME" PATH="$clean/bin:/usr/bin:/bin" LANG=C.UTF-8 \
    timeout 600 "$clean/bin/python" dice-py/tests/wheel/clean_venv_checks.py dice-cli/data/sample "$work/expected.csv"
