#!/usr/bin/env bash
# One GPU session's checks, for a machine with CUDA JAX, flax, optax, pytest(-xdist, -timeout) and no
# network (ntkd is installed from this checkout without dependencies). Results go to $OUT (default
# results/gpu). Stages, in any order:
#   env    nvidia-smi, python and package versions, jax devices
#   tests  the whole test suite on the GPU (JAX_PLATFORMS=cuda), 8 pytest workers
#   bench  ntkd bench (no neural-tangents: its pinned jax 0.5.3 has no CUDA build here), pair and NTK alone
#   probe  benchmarks/gpu_probe.py (TF32 check, eager row blocks, kernel_matrix tiles)
#   scale  benchmarks/kernel_scale.py at n = 20,000 and 50,000
#   issue27 benchmarks/scale_gpu.py: copy bandwidth, kernel_matrix n = 50,000 to device and host memory,
#          full-size Fig. 2 cold (background and inline compilation) and warm (about 6 minutes)
#   bash benchmarks/gpu_session.sh env tests
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-index --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD
for stage in "$@"; do
  echo "=== $stage ($(date +%T))"
  case $stage in
    env)
      nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
      python3 -c "import jax, flax, optax, numpy; print(jax.__version__, flax.__version__, optax.__version__, numpy.__version__, jax.devices())"
      ;;
    tests)
      JAX_PLATFORMS=cuda XLA_PYTHON_CLIENT_PREALLOCATE=false timeout "${TESTS_LIMIT:-420}" \
        python3 -m pytest -q -n 8 -p no:cacheprovider --timeout 300 -rf ${TESTS:-} 2>&1 | tee "$OUT/tests.log" | tail -60
      ;;
    bench)
      JAX_PLATFORMS=cuda timeout "${BENCH_LIMIT:-330}" python3 -m ntkd.cli bench --nt-python none --out "$OUT/bench" --n ${BENCH_N:-1000 4000 8000} \
        --depth ${BENCH_DEPTH:-1 3 5 10} --d ${BENCH_D:-2 100 784} --activation ${BENCH_ACT:-relu erf} --repeats 5 \
        --get "${BENCH_GET:-pair}" 2>&1 | tail -5
      cat "$OUT/bench/bench.md" 2>/dev/null || cut -c1-150 "$OUT/bench/bench.jsonl"
      ;;
    probe)
      JAX_PLATFORMS=cuda timeout "${PROBE_LIMIT:-200}" python3 benchmarks/gpu_probe.py --json "$OUT/probe.json" ${PROBE_ARGS:-}
      ;;
    scale)
      JAX_PLATFORMS=cuda python3 benchmarks/kernel_scale.py --n ${SCALE_N:-20000 50000} --block-size ${SCALE_BLOCK:-8192} \
        --results "$OUT/kernel_scale.jsonl"
      ;;
    issue27)
      JAX_PLATFORMS=cuda timeout "${ISSUE27_LIMIT:-540}" python3 benchmarks/scale_gpu.py --json "$OUT/scale_gpu.json" \
        ${ISSUE27_ARGS:-}
      ;;
  esac
done
