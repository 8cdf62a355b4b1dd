"""Large tiled kernels with ``ntkd.kernel_matrix``: wall time, peak memory, accuracy, device scaling.

Each case runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own and the
number of (forced host) devices can be set through ``XLA_FLAGS``. A case computes the symmetric analytic
kernel of x ~ N(0, 1)^(n × d) in float32 (W_std = b_std = 1) with ``kernel_matrix(..., get, block_size,
devices)``, into RAM or, with ``--memmap DIR``, into a ``.npy`` memory map on disk. Accuracy: 32 random
rows are recomputed in float64 (``kernel_fn(x64[rows], x64)``) and the max relative error over those
rows is reported.

    python benchmarks/kernel_scale.py --n 20000 --depth 5            # one device, result in RAM
    python benchmarks/kernel_scale.py --n 8000 --devices 1 2 4        # forced host devices
    python benchmarks/kernel_scale.py --n 50000 --get ntk --memmap /tmp/k
    python benchmarks/kernel_scale.py --n 12000 20000 --eager       # kernel_fn(x, None, get), one program
    python benchmarks/kernel_scale.py --n 20000 --calls 3            # later calls reuse the compiled programs

``--eager`` times ``kernel_fn(x, None, get)`` called outside ``jax.jit`` instead of ``kernel_matrix``
(on CPU one program of symmetric tiles, result on the device, which is host memory; no ``out=``), as
a comparison for kernels that fit in memory.

Rows are appended to benchmarks/results/kernel_scale.jsonl (``--results`` to change) and printed as a
markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    import ntkd

    a = json.loads(sys.argv[1])
    n, d, depth, get = a["n"], a["d"], a["depth"], tuple(a["get"])
    x64 = np.random.default_rng(n + d).normal(size=(n, d))
    x = x64.astype(np.float32)
    kf = ntkd.mlp_kernel_fn(depth, activation=a["activation"])
    out = None
    if a["memmap"]:
        out = [np.lib.format.open_memmap(f"{a['memmap']}/{g}_{n}.npy", mode="w+", dtype=np.float32, shape=(n, n))
               for g in get]
    last = [0.0]
    t0 = time.perf_counter()

    def progress(done, total):
        if time.perf_counter() - last[0] > 10 or done == total:
            last[0] = time.perf_counter()
            print(f"  tiles {done}/{total} ({last[0] - t0:.0f} s)", file=sys.stderr, flush=True)

    walls = []
    for call in range(a["calls"]):
        k = None
        t0 = time.perf_counter()
        if a["eager"]:
            k = [np.asarray(kk) for kk in kf(x, None, get)]
        else:
            k = ntkd.kernel_matrix(kf, x, get=get, block_size=a["block_size"], devices=a["devices"], out=out,
                                   progress=progress)
        walls.append(time.perf_counter() - t0)
    wall = walls[0]
    rows = np.sort(np.random.default_rng(0).choice(n, 32, replace=False))
    ref = kf(x64[rows], x64, get)
    err = max(float(np.max(np.abs(np.asarray(kk)[rows] - np.asarray(r)) / np.abs(np.asarray(r))))
              for kk, r in zip(k, ref))
    print(json.dumps({"wall_s": wall, "walls_s": walls,
                      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                      "result_gib": len(get) * n * n * 4 / 2**30, "max_rel_err": err,
                      "devices_seen": len(jax.local_devices()), "jax": jax.__version__,
                      "device": str(jax.devices()[0])}))
""")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[20000])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--get", nargs="+", default=["nngp", "ntk"])
    ap.add_argument("--block-size", type=int, default=2048)
    ap.add_argument("--devices", type=int, nargs="+", default=[1],
                    help="device counts; >1 forces that many host devices on CPU")
    ap.add_argument("--memmap", default=None, help="folder for .npy memory maps instead of RAM")
    ap.add_argument("--eager", action="store_true", help="kernel_fn(x, None, get) instead of kernel_matrix")
    ap.add_argument("--calls", type=int, default=1,
                    help="calls in the same process (later calls reuse compiled programs); wall_s is the first")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "kernel_scale.jsonl")
    args = ap.parse_args(argv)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.n:
        for nd in args.devices:
            case = {"n": n, "d": args.d, "depth": args.depth, "activation": args.activation, "get": args.get,
                    "block_size": args.block_size, "devices": nd, "memmap": args.memmap, "eager": args.eager,
                    "calls": args.calls}
            if args.eager and (nd > 1 or args.memmap):
                sys.exit("--eager runs on one device into RAM: leave out --devices > 1 and --memmap")
            env = dict(os.environ)
            if nd > 1:
                env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={nd}".strip()
            print(f"n = {n}, {nd} device(s) ...", file=sys.stderr, flush=True)
            r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(case)], env=env, stdout=subprocess.PIPE,
                               text=True)
            if r.returncode != 0:
                sys.exit(f"case {case} failed (exit {r.returncode})")
            row = {**case, **json.loads(r.stdout.strip().splitlines()[-1])}
            rows.append(row)
            with args.results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
    print("| n | d | depth | get | block | devices | wall (s) | later calls (s) | Mentries/s | peak RSS (GiB) | "
          "result (GiB) | max rel err |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        block = "eager" if r.get("eager") else r["block_size"]
        later = ", ".join(f"{w:.1f}" for w in r["walls_s"][1:]) or "—"
        print(f"| {r['n']} | {r['d']} | {r['depth']} | {'+'.join(r['get'])} | {block} | {r['devices']} | "
              f"{r['wall_s']:.1f} | {later} | {r['n'] ** 2 / r['wall_s'] / 1e6:.0f} | {r['peak_rss_gib']:.2f} | "
              f"{r['result_gib']:.2f} | {r['max_rel_err']:.1e} |")


if __name__ == "__main__":
    main()
