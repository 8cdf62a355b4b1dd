"""Time ntkd's jitted analytic kernels on one machine, without neural-tangents: for before/after
comparisons of a change (run it on each checkout, one after the other) and for environment effects
(e.g. glibc's MALLOC_MMAP_THRESHOLD_). Medians of --repeats calls after a compiling call.

    python benchmarks/kernel_pair.py --depth 3 10 --activation relu erf --dtype float32 float64
    python benchmarks/kernel_pair.py --batch 4 --n 2000 --depth 3 5 --dtype float32   # under vmap
    python benchmarks/kernel_pair.py --get ntk --batch 4 --n 2000 --depth 3 5          # NTK alone

    python benchmarks/kernel_pair.py --d 784 --near-pairs 100 --depth 3   # 100 near-duplicate pairs
    python benchmarks/kernel_pair.py --d 784 --cluster --depth 3           # every pair near-duplicate
    python benchmarks/kernel_pair.py --tile-edge 512 400 300 --depth 3      # kernels.TILE_EDGE values

Each case is ``jax.jit`` of ``kernel_fn(x, None, get)`` (``get`` ("nngp", "ntk") or "ntk") on
x ~ N(0, 1)^(n × d), seed 0; with ``--batch B`` it is ``jax.jit(jax.vmap(...))`` over B such inputs.
``--near-pairs P`` makes P random rows near-duplicates of P others (x' = x(1 + 1e-4): 1 - cos ~ 0 for
ReLU's near-duplicate check at d > 64); ``--cluster`` draws all rows as m + 0.05·N(0, 1) around one
m ~ N(0, 1)^d (1 - cos ≈ 0.0025 for every pair: every block takes its 1 - cos from differences).
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import ntkd
from ntkd.kernels import _programs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--depth", type=int, nargs="+", default=[3, 10])
    ap.add_argument("--activation", nargs="+", default=["relu", "erf"])
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    ap.add_argument("--get", choices=("pair", "ntk"), default="pair")
    ap.add_argument("--batch", type=int, default=0, help="vmap over this many inputs (0: no vmap)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--near-pairs", type=int, default=0, help="rows made near-duplicates of others")
    ap.add_argument("--cluster", action="store_true", help="all rows near one point")
    ap.add_argument("--tile-edge", type=int, nargs="+", default=[0],
                    help="time each of these kernels.TILE_EDGE values (0: the library's own)")
    ap.add_argument("--errors", action="store_true",
                    help="also print the max relative error against float64 on the same inputs")
    a = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    shape = (a.batch, a.n, a.d) if a.batch else (a.n, a.d)
    x64 = rng.normal(size=shape)
    if a.cluster:
        x64 = rng.normal(size=shape[:-2] + (1, a.d)) + 0.05 * x64
    if a.near_pairs:
        idx = rng.permutation(a.n)[:2 * a.near_pairs]
        x64[..., idx[:a.near_pairs], :] = x64[..., idx[a.near_pairs:], :] * (1 + 1e-4)
    inputs = "cluster" if a.cluster else (f"{a.near_pairs} near pairs" if a.near_pairs else "normal")
    print(f"inputs: {inputs}, n = {a.n}, d = {a.d}")
    own_edge = _programs.TILE_EDGE
    head = ("| activation | depth | dtype | get | batch | tile edge | median (s) |"
            + (" max rel err |" if a.errors else ""))
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|")
    for dt in a.dtype:
        x = jnp.asarray(x64, dt)
        for act in a.activation:
            for depth, edge in [(dp, e) for dp in a.depth for e in a.tile_edge]:
                _programs.TILE_EDGE = edge or own_edge
                kf = ntkd.mlp_kernel_fn(depth, activation=act)
                get = ("nngp", "ntk") if a.get == "pair" else "ntk"
                f = lambda v, kf=kf, get=get: kf(v, None, get)  # noqa: E731
                f = jax.jit(jax.vmap(f) if a.batch else f)
                jax.block_until_ready(f(x))
                secs = []
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    jax.block_until_ready(f(x))
                    secs.append(time.perf_counter() - t0)
                err = ""
                if a.errors:  # against the same library in float64 on the same (rounded) inputs
                    got = jax.tree.leaves(f(x))
                    ref = jax.tree.leaves(f(jnp.asarray(np.asarray(x), jnp.float64)))
                    err = " {:.1e} |".format(max(float(np.max(np.abs(np.asarray(g, np.float64) - np.asarray(r))
                                                             / np.abs(np.asarray(r)))) for g, r in zip(got, ref)))
                print(f"| {act} | {depth} | {dt} | {a.get} | {a.batch or '-'} | {_programs.tile_edge(a.n)} | "
                      f"{statistics.median(secs):.3f} |{err}",
                      flush=True)


if __name__ == "__main__":
    main()
