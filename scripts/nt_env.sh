#!/usr/bin/env bash
# Create (once) the pinned, separate reference environment that holds neural-tangents 0.6.5.
#
# neural-tangents 0.6.5 (its last release) does not import on jax >= 0.6 and pulls in TensorFlow, so
# it is never a dependency of ntkd. It lives in its own virtual environment, used only to write the
# committed reference fixtures (scripts/make_nt_fixtures.sh) and to be benchmarked side by side.
#
# Usage:  bash scripts/nt_env.sh            # creates $NTKD_NT_ENV (default: .nt-env in the repo root)
#         NTKD_NT_ENV=/some/dir bash scripts/nt_env.sh
# Prints the path of the environment's python on its last line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_dir="${NTKD_NT_ENV:-$root/.nt-env}"
py="${PYTHON:-python3}"
if [ ! -x "$env_dir/bin/python" ] || ! "$env_dir/bin/python" -c "import neural_tangents" 2>/dev/null; then
  echo "creating the neural-tangents reference environment in $env_dir (several minutes, ~2 GB)" >&2
  "$py" -m venv "$env_dir"
  "$env_dir/bin/python" -m pip install -q --upgrade pip
  "$env_dir/bin/python" -m pip install -q \
      "jax==0.5.3" "jaxlib==0.5.3" "neural-tangents==0.6.5" "tensorflow>=2.15,<2.20" \
      "numpy<2.2" "flax==0.10.4"
fi
"$env_dir/bin/python" -c "import jax, neural_tangents as nt; print('jax', jax.__version__, 'neural-tangents', nt.__version__)" >&2
echo "$env_dir/bin/python"
