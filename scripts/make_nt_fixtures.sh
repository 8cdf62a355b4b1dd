#!/usr/bin/env bash
# Regenerate tests/data/nt_reference.npz: reference kernels and predictions from neural-tangents 0.6.5.
# The reference environment (jax 0.5.3, neural-tangents 0.6.5) is separate from ntkd's: see nt_env.sh.
# Usage: bash scripts/make_nt_fixtures.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$root/scripts/nt_env.sh" | tail -n 1)"
mkdir -p "$root/tests/data"
JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=3 "$py" "$root/scripts/_nt_fixtures.py" "$root/tests/data/nt_reference.npz"
