"""Issue 27's accelerator evidence in one run: host copy bandwidth, ``kernel_matrix`` to device and to host
memory, and full-size Ji & Zhu Fig. 2 with a cold and a warm compilation cache.

Parts (``--parts``, all by default), every number printed and written to ``--json``:

* ``copy``: device-to-host bandwidth of one ``--copy-gib`` float32 array (``jax.device_get`` into a new
  NumPy array, the path ``kernel_matrix`` takes) and host memcpy bandwidth (``np.copyto`` between two
  touched arrays), medians of 3;
* ``kernel``: ``kernel_matrix`` of x ~ N(0, 1)^(n × d), the depth-``--depth`` ReLU NNGP + NTK pair in
  float32, ``out="device"`` (the result stays on the device, rows split over the local devices) and into
  host memory; the first call (compilation included) and two later calls, each until the result is
  complete; 8 rows checked against the float64 kernel. The host time is compared with 2× the time of
  copying the result's bytes at the measured device-to-host bandwidth (the issue's target);
* ``fig2``: ``ntkd reproduce ji-zhu-fig2 --protocol kernel`` (full size unless ``--fig2-quick``) in
  fresh processes: with an empty persistent compilation cache, the same with ``NTKD_PRECOMPILE=0`` (the
  bucket programs compiled inline instead of ahead in a background thread), and again on the first
  run's cache (a rerun, which should compile nothing); wall seconds and the compile seconds and
  programs of the run's own ``summary.json`` timing.

    python benchmarks/scale_gpu.py --json results/gpu/scale27.json                 # on the GPU machine
    python benchmarks/scale_gpu.py --n 4000 --copy-gib 0.25 --fig2-quick --json /tmp/s.json   # CPU smoke
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ntkd


def _median_seconds(fn, repeats=3):
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def copy_part(gib):
    n = int(gib * 2**30) // 4
    dev = jax.device_put(jnp.ones(n, jnp.float32))
    dev.block_until_ready()
    d2h = _median_seconds(lambda: np.asarray(jax.device_get(dev)))
    a, b = np.ones(n, np.float32), np.zeros(n, np.float32)
    memcpy = _median_seconds(lambda: np.copyto(b, a))
    res = {"bytes": 4 * n, "d2h_gbs": 4 * n / d2h / 1e9, "memcpy_gbs": 4 * n / memcpy / 1e9}
    print(f"copy: {res['bytes'] / 2**30:.2f} GiB; device->host {res['d2h_gbs']:.1f} GB/s, "
          f"host memcpy {res['memcpy_gbs']:.1f} GB/s", flush=True)
    return res


def kernel_part(n, d, depth, block, d2h_gbs):
    x64 = np.random.default_rng(n + d).normal(size=(n, d))
    x = jnp.asarray(x64, jnp.float32)
    kf = ntkd.mlp_kernel_fn(depth)
    rows = np.linspace(0, n - 1, 8).astype(int)
    with jax.enable_x64(True):
        ref = kf(jnp.asarray(x64[rows]), jnp.asarray(x64))
        ref = {"nngp": np.asarray(ref.nngp), "ntk": np.asarray(ref.ntk)}
    res = {"n": n, "d": d, "depth": depth, "block_size": block, "devices": len(jax.local_devices())}
    for where in ("device", "host"):
        walls, k = [], None
        for _ in range(3):
            k = None
            t = time.perf_counter()
            k = ntkd.kernel_matrix(kf, x, get=("nngp", "ntk"), block_size=block,
                                   out="device" if where == "device" else None)
            jax.block_until_ready(k)
            walls.append(time.perf_counter() - t)
        err = max(float(np.max(np.abs(np.asarray(getattr(k, g)[rows]) - ref[g]) / np.abs(ref[g]).max()))
                  for g in ("nngp", "ntk"))
        res[where] = {"first_s": walls[0], "later_s": walls[1:], "max_scaled_err": err}
        print(f"kernel_matrix n={n} d={d} depth {depth} pair float32 to {where}: first {walls[0]:.2f} s, "
              f"later {walls[1]:.2f} / {walls[2]:.2f} s, max scaled error {err:.1e}", flush=True)
        del k
    if d2h_gbs:
        copy_s = 2 * 4 * n * n / (d2h_gbs * 1e9)
        res["host_copy_floor_s"] = copy_s
        res["host_over_copy"] = min(res["host"]["later_s"]) / copy_s
        print(f"host result: {res['host_over_copy']:.2f}x the copy time of its {8 * n * n / 2**30:.1f} GiB at "
              f"{d2h_gbs:.1f} GB/s ({copy_s:.2f} s); target <= 2x", flush=True)
    return res


def _fig2_run(out, cache, quick, env_extra, limit):
    env = {**os.environ, **env_extra}
    cmd = [sys.executable, "-m", "ntkd.cli", "--compile-cache", str(cache), "reproduce", "ji-zhu-fig2",
           "--protocol", "kernel", "--out", str(out)] + (["--quick"] if quick else [])
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
    wall = time.perf_counter() - t
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    summ = json.loads((Path(out) / "fig2" / "summary.json").read_text())
    return {"wall_s": wall, **{k: summ[k] for k in ("seconds", "compile_seconds", "programs_compiled")}}


def fig2_part(quick, limit):
    res = {"quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, cache, env, out in (("cold", "c1", {}, "a"), ("cold_inline", "c2", {"NTKD_PRECOMPILE": "0"}, "b"),
                                      ("warm", "c1", {}, "c")):
            res[name] = _fig2_run(tmp / out, tmp / cache, quick, env, limit)
            r = res[name]
            print(f"fig2 ({'quick' if quick else 'full'}) {name}: {r['wall_s']:.1f} s wall (process), "
                  f"{r['seconds']} s in the figure, {r['compile_seconds']} s compiling or loading "
                  f"{r['programs_compiled']} programs", flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["copy", "kernel", "fig2"], choices=["copy", "kernel", "fig2"])
    ap.add_argument("--json", default=None)
    ap.add_argument("--copy-gib", type=float, default=4.0)
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--block-size", type=int, default=8192)
    ap.add_argument("--fig2-quick", action="store_true")
    ap.add_argument("--fig2-limit", type=int, default=240, help="seconds per Fig. 2 run")
    a = ap.parse_args(argv)
    res = {"device": str(jax.devices()[0]), "jax": jax.__version__, "ntkd": ntkd.__version__}
    print(f"device {res['device']} x {len(jax.local_devices())}, jax {res['jax']}", flush=True)

    def save():
        if a.json:
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(res, indent=1))
    if "copy" in a.parts:
        res["copy"] = copy_part(a.copy_gib)
        save()
    if "kernel" in a.parts:
        res["kernel"] = kernel_part(a.n, a.d, a.depth, a.block_size, res.get("copy", {}).get("d2h_gbs"))
        save()
    if "fig2" in a.parts:
        res["fig2"] = fig2_part(a.fig2_quick, a.fig2_limit)
        save()


if __name__ == "__main__":
    main()
