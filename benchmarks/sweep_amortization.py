"""Sweep benchmarks (issue 4): amortization of a ρ × T grid, and seeds sharded over devices.

1. Amortization: a 64-point grid (8 ρ × 8 T, t = ∞) on one training set of n points, with every metric of
   the store (risk, error, ‖Δŵ‖, Eq. 11/12 terms), computed by ``ntkd.evaluate_grid`` (one Cholesky,
   64 right-hand sides) against the naive loop that calls the public per-point functions
   (``effective_logits``, ``converged_student``, ``weight_change_norm``, ``transfer_risk``) and so
   re-factors the kernel for every grid point. The kernels Θ_n and Θ(x_test, X) are computed once and
   shared by both, so the ratio measures the solve amortization; a second ratio includes the kernels.
2. Sharding: the seeds of one (n, grid) block through the batched core of ``run_sweep``, on 1 and on 4
   forced host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``), in subprocesses.

Run: ``python benchmarks/sweep_amortization.py [--n 256 512 1024] [--out benchmarks/results]``; writes
``sweep_amortization.json`` and prints a markdown table. Timings are medians of ``--repeats`` runs after
one warm-up (compilation excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _amortization(n, m, repeats):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import ntkd

    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(n, 2)) * 5, rng.normal(size=(m, 2)) * 5
    f = lambda a: 3 * np.sin(a[:, 0] / 3) + a[:, 1] / 4  # noqa: E731
    zt, ztt = f(x), f(xt)
    yg, ygt = (zt > 0) * 1.0, (ztt > 0) * 1.0
    rhos = [1.0, 0.999, 0.99, 0.96, 0.9, 0.646, 0.5, 0.145]
    Ts = [0.5, 1.0, 2.0, 4.0, 5.0, 8.0, 10.0, 20.0]
    kf = ntkd.mlp_kernel_fn(3)
    jitter = 1e-8

    def kernels():
        K = kf(x, None, "ntk") + jitter * jnp.eye(n)
        Kx = kf(xt, x, "ntk")
        return K.block_until_ready(), Kx.block_until_ready()

    K, Kx = kernels()

    class Pre:  # evaluate_grid with precomputed kernels: a kernel_fn that returns them
        def __call__(self, a, b=None, get=None):
            if b is None:
                return K - jitter * jnp.eye(n)
            return Kx

    pre = Pre()

    def engine():
        r = ntkd.evaluate_grid(pre, x, zt, yg, xt, ztt, ygt, rho=rhos, T=Ts, jitter=jitter)
        return r["risk"]

    def naive():
        out = []
        for rho in rhos:
            for T in Ts:
                z = ntkd.effective_logits(zt, yg, rho, T)
                fs = ntkd.converged_student(Kx, K, z)
                w = ntkd.weight_change_norm(K, z)
                out.append((float(ntkd.transfer_risk(ztt, fs)), float(w)))
        return out

    def timed(fn):
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    t_engine, t_naive, t_kernels = timed(engine), timed(naive), timed(kernels)
    # the two agree
    r_engine = np.asarray(engine())[0].ravel()
    r_naive = np.array([a for a, _ in naive()])
    assert np.allclose(r_engine, r_naive), (r_engine, r_naive)
    return {"n": n, "n_test": m, "points": len(rhos) * len(Ts), "engine_s": t_engine, "naive_s": t_naive,
            "kernels_s": t_kernels, "ratio_solves": t_naive / t_engine,
            "ratio_with_kernels": (t_naive + t_kernels) / (t_engine + t_kernels)}


_SHARD_CODE = r"""
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as PS
import ntkd
from ntkd.experiments.engine import device_mesh
from ntkd.theories.transfer_risk import grid as G
n, m, seeds, repeats = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(seeds, n, 2)) * 5)
xt = jnp.asarray(rng.normal(size=(m, 2)) * 5)
zt = jnp.sin(x[..., 0]) * 3; zt_te = jnp.broadcast_to(jnp.sin(xt[:, 0]) * 3, (seeds, m))
yg = (zt > 0) * 1.0; yg_te = (zt_te > 0) * 1.0
r, tt, Tu, Ti = G.grid_points([1.0, 0.9, 0.5, 0.1], [2.0, 10.0])
mesh = device_mesh(); sh, rep = NamedSharding(mesh, PS("s")), NamedSharding(mesh, PS())
zeff, zh = jax.vmap(G.grid_targets, in_axes=(0, 0, None, None, None))(zt, yg, *map(jnp.asarray, (r, tt, Tu)))
per = [jax.device_put(a, sh) for a in (x, zt, zeff, zh, zt, jnp.zeros_like(zt), zt_te, yg_te, jnp.zeros_like(zt_te))]
P = len(r)
shared = [jax.device_put(a, rep) for a in (xt[:1], jnp.zeros((1, P)), jnp.ones(P), jnp.zeros((m, P)),
          jnp.asarray(Ti), jnp.asarray([float("inf")]))]
f = G.compiled_grid(ntkd.mlp_kernel_fn(3), "chol", 1e-8, False, batched=True)
args = per[:6] + [jax.device_put(xt, rep)] + per[6:] + shared
jax.block_until_ready(f(*args))
ts = []
for _ in range(repeats):
    t0 = time.perf_counter(); jax.block_until_ready(f(*args)); ts.append(time.perf_counter() - t0)
print(json.dumps({"devices": len(jax.local_devices()), "seconds": float(np.median(ts)),
                  "risk0": float(np.asarray(f(*args)["risk"])[0, 0, 0])}))
"""


def _sharding(n, m, seeds, repeats):
    out = {}
    for ndev in (1, 4):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={ndev}"}
        r = subprocess.run([sys.executable, "-c", _SHARD_CODE, str(n), str(m), str(seeds), str(repeats)],
                           env=env, capture_output=True, text=True, check=True)
        out[ndev] = json.loads(r.stdout.strip().splitlines()[-1])
    assert out[1]["risk0"] == out[4]["risk0"]
    return {"n": n, "n_test": m, "seeds": seeds, "one_device_s": out[1]["seconds"],
            "four_devices_s": out[4]["seconds"], "speedup": out[1]["seconds"] / out[4]["seconds"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--n-test", type=int, default=2048)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = ap.parse_args(argv)
    import jax

    res = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__,
                       "device": str(jax.devices()[0])},
           "amortization": [_amortization(n, a.n_test, a.repeats) for n in a.n],
           "sharding": [_sharding(n, a.n_test // 4, a.seeds, a.repeats) for n in a.n]}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "sweep_amortization.json").write_text(json.dumps(res, indent=1))
    print("| n | grid points | engine (s) | naive loop (s) | ratio (solves) | ratio incl. kernels |")
    print("|---|---|---|---|---|---|")
    for r in res["amortization"]:
        print(f"| {r['n']} | {r['points']} | {r['engine_s']:.3f} | {r['naive_s']:.2f} | {r['ratio_solves']:.1f}x "
              f"| {r['ratio_with_kernels']:.1f}x |")
    print("\n| n | seeds | 1 device (s) | 4 forced host devices (s) | speedup |")
    print("|---|---|---|---|---|")
    for r in res["sharding"]:
        print(f"| {r['n']} | {r['seeds']} | {r['one_device_s']:.2f} | {r['four_devices_s']:.2f} | "
              f"{r['speedup']:.2f}x |")


if __name__ == "__main__":
    main()
