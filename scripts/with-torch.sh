#!/usr/bin/env bash
# Runs a command with LibTorch available to tch: PyTorch 2.13.0 from PyPI in a virtual
# environment kept in a per-user cache (created once, ~4.7 GB), outside the repository.
#   scripts/with-torch.sh cargo test -p dice-tch
# DICE_TORCH_VENV overrides the location (default ~/.cache/dice/torch-2.13.0).
set -euo pipefail
venv=${DICE_TORCH_VENV:-${DICE_CACHE:-$HOME/.cache/dice}/torch-2.13.0}
if [ ! -f "$venv/.dice-complete" ]; then
    echo "== provisioning PyTorch 2.13.0 from PyPI into $venv (once)" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch==2.13.0
    touch "$venv/.dice-complete"
fi
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
# tch's torch-sys finds LibTorch through this venv's python.
export LIBTORCH_USE_PYTORCH=1
unset LIBTORCH LD_LIBRARY_PATH
exec "$@"
