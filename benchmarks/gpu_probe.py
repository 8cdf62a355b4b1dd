"""Accelerator probe for ntkd's analytic kernels (run on a GPU machine; see benchmarks/README.md).

Prints one markdown table per part and writes every number to ``--json``:

* ``matmul``: max relative error of a float32 ``x @ x.T`` against float64 NumPy at JAX's default
  precision and at ``Precision.HIGHEST`` (on Ampere and later GPUs the default may use TF32, ~1e-3);
* ``eager``: ``kernel_fn(x)`` outside ``jax.jit`` (row blocks of ``BLOCK_ENTRIES["other"]`` entries,
  packed and unpacked on the device) against ``jax.jit(kernel_fn)`` (one program), for several block
  settings, with the float32 error against ntkd's float64 kernel of the same inputs;
* ``tiles``: ``kernel_matrix`` (result on the host) for several ``block_size`` values.

    python benchmarks/gpu_probe.py --json /tmp/probe.json
"""
import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import ntkd
from ntkd.kernels import _programs as kernels
from ntkd.bench.runner import _timed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--n", type=int, nargs="+", default=[8000, 16000, 24000])
    ap.add_argument("--blocks", type=int, nargs="+", default=[26, 28, 30], help="log2 BLOCK_ENTRIES['other']")
    ap.add_argument("--tiles", type=int, nargs="+", default=[2048, 4096, 8192])
    ap.add_argument("--tile-n", type=int, default=50000)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    res = {"device": str(jax.devices()[0]), "jax": jax.__version__, "matmul": [], "eager": [], "tiles": []}
    print(f"device {res['device']}, jax {res['jax']}", flush=True)

    rng = np.random.default_rng(0)
    print("\n| d | default precision rel err | HIGHEST rel err |\n|---|---|---|")
    for d in (100, 784):
        x = rng.normal(size=(2000, d))
        ref = x @ x.T
        x32 = jnp.asarray(x, jnp.float32)
        e = {}
        for name, prec in (("default", None), ("highest", jax.lax.Precision.HIGHEST)):
            g = np.asarray(jnp.matmul(x32, x32.T, precision=prec), np.float64)
            e[name] = float(np.max(np.abs(g - ref)) / np.max(np.abs(ref)))
        res["matmul"].append({"d": d, **e})
        print(f"| {d} | {e['default']:.1e} | {e['highest']:.1e} |", flush=True)

    kf = ntkd.mlp_kernel_fn(a.depth, activation="relu")
    get = ("nngp", "ntk")
    print("\n| n | depth | mode | log2 block | time (s) | Mentries/s | rel err |\n|---|---|---|---|---|---|---|")
    old = dict(kernels.BLOCK_ENTRIES)
    for n in a.n:
        x64 = rng.normal(size=(n, 100))
        ref = np.asarray(kf(jnp.asarray(x64), None, "ntk"))
        x = jnp.asarray(x64, jnp.float32)
        runs = [("jit", None)] + [("eager", b) for b in a.blocks]
        for mode, b in runs:
            if mode == "jit":
                f = jax.jit(lambda v, _g=get: tuple(kf(v, None, _g)))
                call = lambda: f(x)  # noqa: E731
            else:
                kernels.BLOCK_ENTRIES["other"] = 2 ** b
                call = lambda: tuple(kf(x, None, get))  # noqa: E731
            try:
                t = statistics.median(_timed(lambda _: call(), None, a.repeats)[2])
                k = np.asarray(call()[1], np.float64)
                err = float(np.max(np.abs(k - ref) / np.abs(ref)))
            except Exception as exc:  # out of memory at this size: record it and go on
                t, err = None, None
                print(f"  {mode} n={n} block 2^{b}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
            finally:
                kernels.BLOCK_ENTRIES.update(old)
            res["eager"].append({"n": n, "depth": a.depth, "mode": mode, "log2_block": b, "s": t, "rel_err": err})
            if t is not None:
                print(f"| {n} | {a.depth} | {mode} | {b or '-'} | {t:.4f} | {n * n / t / 1e6:.0f} | {err:.1e} |",
                      flush=True)
        del ref

    x = rng.normal(size=(a.tile_n, 100)).astype(np.float32)
    print("\n| n | depth | block_size | wall (s) | Mentries/s |\n|---|---|---|---|---|")
    for bs in a.tiles:
        t0 = time.perf_counter()
        ntkd.kernel_matrix(kf, x, get=get, block_size=bs)
        t = time.perf_counter() - t0
        res["tiles"].append({"n": a.tile_n, "depth": a.depth, "block_size": bs, "wall_s": t})
        print(f"| {a.tile_n} | {a.depth} | {bs} | {t:.2f} | {a.tile_n ** 2 / t / 1e6:.0f} |", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
