"""Kernel-throughput benchmark behind ``ntkd bench``: analytic NNGP + NTK of deep MLPs, side by side with
neural-tangents 0.6.5.

One *case* is (activation, depth, d, n, dtype). For each case the benchmark times

* ``ntkd``: ``mlp_kernel_fn(depth, activation=...)(x, None, ("nngp", "ntk"))`` jitted, the symmetric
  n × n kernel pair of x ~ N(0, 1)^(n × d) (W_std = b_std = 1, NTK parameterization); with
  ``get="ntk"``, ``(x, None, "ntk")``, the NTK alone (what the issue's target names, and what the sweep
  engine asks for), from both libraries;
* the floor: the bare Gram matmul ``x @ x.T`` in the same dtype, jitted (what an untiled kernel pays; a
  symmetric kernel on CPU computes only the Gram tiles on and above the diagonal, so it can go below);
* neural-tangents 0.6.5 ``stax.serial(...)[2]`` on the same inputs, jitted, in its pinned environment
  (``scripts/nt_env.sh``) as a subprocess (``ntkd/bench/_nt_worker.py``), when that environment exists.

Times are medians of ``repeats`` calls after one compiling call (compile time is reported apart) and
one untimed warm-up call; every timed call is kept in the row (``ntkd_all_s``, ``nt_all_s``).
Throughput is kernel entries per second: n² (i, j) pairs, each carrying both the NNGP and the NTK value
(the NTK alone with ``get="ntk"``), divided by the median time. Accuracy is the max over entries of
|k - k_ref| / |k_ref| for each kernel returned, and the scaled error |k - k_ref| / √(k_ref,ii k_ref,jj)
(the tests' measure). The ReLU kernels are ≥ b_std² = 1 > 0 everywhere, so there the two agree up to
the entry's size against the diagonal; erf's NTK changes sign between anti-correlated inputs, and near
its zeros the relative error measures the conditioning of the entry, not the arithmetic (ntkd at d = 2,
depth 1, n = 4000: 7e-4 relative at an entry of 1e-4 whose diagonal entries are 3.3 and 3.6, and 7.5e-7
scaled; neural-tangents: 2.2e-4 and 6.9e-7). Both use k_ref = ntkd's float64 kernel of the same
inputs; a float64 ntkd row is its own reference, so its error column is empty and the neural-tangents float64
error measures the agreement of two float64 implementations.

Rows are appended to ``OUT/bench.jsonl`` as each case finishes; a rerun with the same ``--out`` skips
finished cases, so a killed run loses at most the case in flight. ``OUT/bench.json`` and ``OUT/bench.md``
(a markdown table) are rewritten at the end.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .._core.linalg import with_float64
from .._core.checks import check_int
from .._version import VERSION

__all__ = ["run_bench", "markdown_table", "find_nt_python", "FULL_GRID", "QUICK_GRID", "run_empirical_bench",
           "empirical_table", "EMPIRICAL_GRID", "EMPIRICAL_METHODS", "EMPIRICAL_FULL_LIMIT"]

FULL_GRID = {"n": (1000, 4000, 8000), "depth": (1, 3, 5, 10), "d": (2, 100, 784),
             "dtype": ("float32", "float64"), "activation": ("relu", "erf")}
QUICK_GRID = {"n": (1000, 2000), "depth": (1, 3), "d": (2, 100), "dtype": ("float32", "float64"),
              "activation": ("relu",)}


#: Empirical-NTK cases: a depth-3 ReLU MLP, d = 100 inputs, float32.
EMPIRICAL_GRID = {"n": (256, 1024), "width": (256, 512), "depth": (3,), "d": 100}
#: Methods of :func:`ntkd.empirical_ntk` timed by ``run_empirical_bench``.
EMPIRICAL_METHODS = ("structured", "jacobian", "ntvp")
#: Cases with n · P above this (P parameters) time only ``"structured"``: the float32 Jacobian
#: (n · P · 4 bytes, twice in flight) would not fit a 23 GiB machine and the NTK-vector products take hours.
EMPIRICAL_FULL_LIMIT = 1_500_000_000
#: neural-tangents' ``NtkImplementation`` values timed against ntkd's methods.
NT_IMPLEMENTATIONS = {1: "jacobian_contraction", 2: "ntk_vector_products", 3: "structured_derivatives"}


def find_nt_python(explicit: Optional[str] = None) -> Optional[str]:
    """The neural-tangents environment's python: ``explicit`` (None if it is not a file), else ``$NTKD_NT_PYTHON``, else
    ``.nt-env/bin/python`` next to the ntkd package (what ``bash scripts/nt_env.sh`` creates)."""
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for cand in (os.environ.get("NTKD_NT_PYTHON"),
                 str(Path(__file__).resolve().parents[2] / ".nt-env" / "bin" / "python")):
        if cand and Path(cand).is_file():
            return cand
    return None


def _check_ints(pairs):
    """``pairs`` of (name, values, minimum): every value an integer >= minimum, else a ValueError naming it."""
    for name, vals, lo in pairs:
        for v in vals:
            check_int(v, name, minimum=lo)


def _load_rows(path: Path) -> dict:
    """Finished rows of a resumable ``.jsonl`` file, by key (empty when the file does not exist)."""
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["key"]] = r
    return done


def _resolve_nt(nt_python: Optional[str], say) -> Optional[str]:
    """The neural-tangents python to use (None: skip its columns); refuses an explicit path that is not a file."""
    nt_py = None if nt_python == "none" else find_nt_python(nt_python)
    if nt_python not in (None, "none") and nt_py is None:
        raise ValueError(f"`nt_python` {nt_python!r} is not a file; create the environment with "
                         "`bash scripts/nt_env.sh` or pass its python")
    if nt_py is None and nt_python != "none":
        say("neural-tangents environment not found: its columns stay empty "
            "(create it with `bash scripts/nt_env.sh`, or set NTKD_NT_PYTHON)")
    return nt_py


def _machine() -> dict:
    import jax

    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "jax": jax.__version__,
            "device": str(jax.devices()[0]), "ntkd": VERSION}


def _start(out, rows_name, nt_python, progress):
    """Common start of a benchmark run: the output folder, its rows file and the rows already there
    (a rerun resumes), the progress callable and the neural-tangents python (or None)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / rows_name
    say = progress or (lambda s: None)
    return out, rows_path, _load_rows(rows_path), say, _resolve_nt(nt_python, say)


#: What a case returns: "pair" (NNGP and NTK) or "ntk" (the NTK alone), as a kernel_fn ``get`` tuple.
GETS = {"pair": ("nngp", "ntk"), "ntk": ("ntk",)}


def _key(activation, depth, d, n, dtype, get="pair"):
    return f"{activation}|L={depth}|d={d}|n={n}|{dtype}" + ("" if get == "pair" else f"|{get}")


def _inputs(n, d):
    """x ~ N(0, 1)^(n × d), float64, the same for every case of this (n, d)."""
    return np.random.default_rng(1000 * n + d).normal(size=(n, d))


def _timed(f, x, repeats):
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(f(x))
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(f(x))  # one untimed warm-up call: first calls run on fresh memory pages
    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(f(x))
        secs.append(time.perf_counter() - t0)
    return out, compile_s, secs


def _rel_err(k, ref):
    return float(np.max(np.abs(np.asarray(k, np.float64) - ref) / np.abs(ref)))


def _scaled_err(k, ref):
    """max |k - ref| / √(ref_ii ref_jj) for a square kernel (symmetric: the diagonal is its own)."""
    d = np.sqrt(np.abs(np.diag(ref)))
    return float(np.max(np.abs(np.asarray(k, np.float64) - ref) / np.outer(d, d)))


class _NT:
    """The long-lived neural-tangents worker (one process for the whole run: its imports are slow)."""

    def __init__(self, python, x64: bool):
        worker = Path(__file__).with_name("_nt_worker.py")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NTKD_NT_X64": "1" if x64 else "0"}
        env.setdefault("JAX_PLATFORMS", "cpu")
        self.proc = subprocess.Popen([python, str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)

    def run(self, case: dict) -> dict:
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            raise RuntimeError(f"the neural-tangents worker stopped: {err[-2000:]}")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()


@with_float64  # float64 rows and the float64 reference, in a scope
def run_bench(out, *, n: Sequence[int] = FULL_GRID["n"], depth: Sequence[int] = FULL_GRID["depth"],
              d: Sequence[int] = FULL_GRID["d"], dtype: Sequence[str] = FULL_GRID["dtype"],
              activation: Sequence[str] = FULL_GRID["activation"], repeats: int = 3, get: str = "pair",
              nt_python: Optional[str] = None, progress: Optional[Callable[[str], None]] = print) -> list:
    """Run (or resume) the benchmark grid; returns the rows (dicts), also written under ``out``.

    Args:
      out: output folder (``bench.jsonl`` rows, ``bench.json``, ``bench.md``).
      n, depth, d, dtype, activation: the grid (every combination is one case); dtype in
        {"float32", "float64"}, activation in {"relu", "erf"}.
      repeats: timed calls per implementation and case (after one compiling and one warm-up call);
        medians reported.
      get: "pair" (NNGP and NTK, the default) or "ntk" (the NTK alone), for both libraries; "ntk" rows
        have keys ending in "|ntk", so both kinds can share one output folder.
      nt_python: python of the neural-tangents environment; ``None`` looks for it (:func:`find_nt_python`)
        and skips the neural-tangents columns when there is none; ``"none"`` skips them on purpose.
      progress: callable receiving one line per finished case (``None``: silent).
    """
    import jax
    import jax.numpy as jnp

    from .._core.linalg import mm
    from ..kernels import mlp_kernel_fn

    for name, vals, allowed in (("dtype", dtype, ("float32", "float64")), ("activation", activation, ("relu", "erf")),
                                ("get", [get], tuple(GETS))):
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise ValueError(f"`{name}` must be drawn from {allowed}; got {bad}")
    _check_ints((("n", n, 1), ("depth", depth, 0), ("d", d, 1), ("repeats", [repeats], 1)))
    out, rows_path, done, say, nt_py = _start(out, "bench.jsonl", nt_python, progress)
    cases = [(a, L, dd, nn, dt) for nn in n for dd in d for a in activation for L in depth for dt in dtype]
    todo = [c for c in cases if _key(*c, get) not in done]
    say(f"ntkd bench: {len(cases)} cases, {len(cases) - len(todo)} already done -> {rows_path}")
    machine = _machine()
    nts = {}  # one neural-tangents worker per dtype (x64 is a process-wide flag)
    grams = {}
    t_start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="ntkd-bench-") as tmp:
            tmp = Path(tmp)
            ref_for = None
            for i, (a, L, dd, nn, dt) in enumerate(todo):
                x64 = _inputs(nn, dd)
                kfn = mlp_kernel_fn(L, activation=a)
                if ref_for != (a, L, dd, nn):  # the float64 reference, shared by this case's dtypes
                    both = kfn(jnp.asarray(x64), None, GETS["pair"])
                    ref = {g: np.asarray(k) for g, k in zip(GETS["pair"], both)}
                    ref_for = (a, L, dd, nn)
                    for g, k in ref.items():
                        np.save(tmp / f"ref_{g}.npy", k)
                x = jnp.asarray(x64, dt)
                f = jax.jit(lambda v, _k=kfn, _g=GETS[get]: tuple(_k(v, None, _g)))
                res, compile_s, secs = _timed(f, x, repeats)
                row = {"key": _key(a, L, dd, nn, dt, get), "activation": a, "depth": L, "d": dd, "n": nn,
                       "dtype": dt, "get": get, "ntkd_s": statistics.median(secs), "ntkd_compile_s": compile_s,
                       "ntkd_all_s": secs, "warmup_calls": 1}
                if dt == "float64":
                    row["ntkd_err"] = row["ntkd_scaled_err"] = None
                else:
                    pairs = [(k, ref[g]) for k, g in zip(res, GETS[get])]
                    row["ntkd_err"] = max(_rel_err(k, r) for k, r in pairs)
                    row["ntkd_scaled_err"] = max(_scaled_err(k, r) for k, r in pairs)
                del res
                if (nn, dd, dt) not in grams:
                    g = jax.jit(lambda v: mm(v, v.T))
                    grams[nn, dd, dt] = statistics.median(_timed(g, x, repeats)[2])
                row["gram_s"] = grams[nn, dd, dt]
                row["entries_per_s"] = nn * nn / row["ntkd_s"]
                if nt_py is not None:
                    if dt not in nts:
                        nts[dt] = _NT(nt_py, x64=dt == "float64")
                    np.save(tmp / "x.npy", np.asarray(x))
                    refs = {g: str(tmp / f"ref_{g}.npy") for g in GETS[get]}
                    r = nts[dt].run({"key": row["key"], "activation": a, "depth": L, "x": str(tmp / "x.npy"),
                                     "get": get, "ref": refs, "repeats": repeats})
                    row.update(nt_s=statistics.median(r["seconds"]), nt_compile_s=r["compile_s"],
                               nt_all_s=r["seconds"], nt_err=max(r["err"].values()),
                               nt_scaled_err=max(r["scaled_err"].values()),
                               nt_versions={"jax": r["jax"], "neural_tangents": r["neural_tangents"]})
                    if r["dtype"] != dt:
                        raise RuntimeError(f"neural-tangents returned {r['dtype']} for a {dt} case")
                    row["speedup"] = row["nt_s"] / row["ntkd_s"]
                row["machine"] = machine
                with rows_path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                done[row["key"]] = row
                el = time.perf_counter() - t_start
                say(f"  [{len(done)}/{len(cases)}] {row['key']}: ntkd {row['ntkd_s']:.4f} s"
                    + (f", neural-tangents {row['nt_s']:.4f} s ({row['speedup']:.1f}x)" if "nt_s" in row else "")
                    + f", gram {row['gram_s']:.4f} s (elapsed {el:.0f} s, "
                    f"ETA {el / (i + 1) * (len(todo) - i - 1):.0f} s)")
    finally:
        for w in nts.values():
            w.close()
    rows = [done[_key(*c, get)] for c in cases if _key(*c, get) in done]
    (out / "bench.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    (out / "bench.md").write_text(markdown_table(rows) + "\n")
    return rows


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def markdown_table(rows: Sequence[dict]) -> str:
    """The rows as a markdown table (one line per case)."""
    head = ("| activation | depth | d | n | dtype | kernels | ntkd (s) | Gram floor (s) | ntkd Mentries/s | "
            "neural-tangents (s) | speedup | ntkd max rel err | neural-tangents max rel err | ntkd max scaled err | "
            "neural-tangents max scaled err |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        kernels = "NTK" if r.get("get", "pair") == "ntk" else "NNGP+NTK"
        lines.append(
            f"| {r['activation']} | {r['depth']} | {r['d']} | {r['n']} | {r['dtype']} | {kernels} | "
            f"{r['ntkd_s']:.4f} | "
            f"{r['gram_s']:.4f} | {r['entries_per_s'] / 1e6:.1f} | {_fmt(r.get('nt_s'), '.4f')} | "
            f"{_fmt(r.get('speedup'), '.1f')}{'×' if r.get('speedup') else ''} | {_fmt(r.get('ntkd_err'), '.1e')} | "
            f"{_fmt(r.get('nt_err'), '.1e')} | {_fmt(r.get('ntkd_scaled_err'), '.1e')} | "
            f"{_fmt(r.get('nt_scaled_err'), '.1e')} |")
    return "\n".join(lines)


@with_float64
def run_empirical_bench(out, *, n: Sequence[int] = EMPIRICAL_GRID["n"],
                        width: Sequence[int] = EMPIRICAL_GRID["width"], depth: Sequence[int] = EMPIRICAL_GRID["depth"],
                        d: int = EMPIRICAL_GRID["d"], repeats: int = 3, nt_python: Optional[str] = None,
                        progress: Optional[Callable[[str], None]] = print) -> list:
    """Empirical-NTK throughput of a finite NTK-parameterized ReLU MLP, ntkd against neural-tangents.

    One case is (depth, width, n): ``ntkd.finite.mlp(d, width, depth)`` initialized with seed 0,
    float32, x ~ N(0, 1)^(n × d). ntkd's :func:`ntkd.empirical_ntk` (``method="structured"``,
    ``"jacobian"`` and ``"ntvp"``, jitted, ``Θ̂(x, x)`` with the output axis traced) is timed against
    neural-tangents' ``empirical_ntk_fn`` (implementations 1, 2, 3: Jacobian contraction, NTK-vector
    products, structured derivatives) on the *same* parameters, exported to neural-tangents' ``stax``
    layout. Cases with n · P > :data:`EMPIRICAL_FULL_LIMIT` time the structured method alone (the
    others do not fit in memory or take hours; the row says so). Errors: max |Θ̂ - Θ̂_ref| / |Θ̂_ref|
    against ntkd's float64 empirical NTK of the same parameters cast to float64 (``ref_method``:
    Jacobian contraction; NTK-vector products when the float64 Jacobian would exceed 2 GiB; structured
    derivatives above the limit), so a convention mismatch between the two libraries would show as a
    large error. Medians of ``repeats`` calls after a compiling and a warm-up call. Memory:
    ``ntkd_<method>_xla_mib`` is XLA's buffer plan of the compiled program (arguments + outputs +
    temporaries), ``max_rss_mib`` the process's peak resident memory so far (a high-water mark: run a
    large case alone to read its own). Rows go to ``OUT/empirical.jsonl`` (resumable),
    ``OUT/empirical.json`` and ``OUT/empirical.md``.
    """
    import resource

    import jax
    import jax.numpy as jnp

    from ..finite import mlp
    from ..kernels import empirical_ntk

    _check_ints((("n", n, 1), ("width", width, 1), ("depth", depth, 0), ("d", [d], 1), ("repeats", [repeats], 1)))
    out, rows_path, done, say, nt_py = _start(out, "empirical.jsonl", nt_python, progress)
    cases = [(L, w, nn) for L in depth for w in width for nn in n]
    key = lambda L, w, nn: f"empirical|relu|L={L}|width={w}|d={d}|n={nn}|float32"  # noqa: E731
    machine = _machine()
    nt = None
    try:
        with tempfile.TemporaryDirectory(prefix="ntkd-bench-") as tmp:
            tmp = Path(tmp)
            for L, w, nn in cases:
                k = key(L, w, nn)
                if k in done:
                    continue
                init_fn, apply_fn = mlp(d, w, L, dtype=jnp.float32)
                params = init_fn(jax.random.PRNGKey(0))
                x64 = _inputs(nn, d)
                x = jnp.asarray(x64, jnp.float32)
                p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
                n_params = int(sum(a.size for a in jax.tree_util.tree_leaves(params)))
                full = nn * n_params <= EMPIRICAL_FULL_LIMIT
                big = nn * n_params * 8 > 2 * 2**30  # a float64 Jacobian over 2 GiB: NTK-vector products
                ref_method = "structured" if not full else "ntvp" if big else "jacobian"
                ref = np.asarray(jax.jit(lambda v, p, _a=apply_fn, _m=ref_method: empirical_ntk(_a, p, v, method=_m))(
                    jnp.asarray(x64), p64), np.float64)
                row = {"key": k, "depth": L, "width": w, "d": d, "n": nn, "dtype": "float32",
                       "n_params": n_params, "warmup_calls": 1, "ref_method": ref_method}
                for method in EMPIRICAL_METHODS if full else EMPIRICAL_METHODS[:1]:
                    f = jax.jit(lambda v, p, _a=apply_fn, _m=method: empirical_ntk(_a, p, v, method=_m))
                    mem = f.lower(x, params).compile().memory_analysis()
                    res, compile_s, secs = _timed(lambda v, _f=f, _p=params: _f(v, _p), x, repeats)
                    row[f"ntkd_{method}_s"] = statistics.median(secs)
                    row[f"ntkd_{method}_compile_s"] = compile_s
                    row[f"ntkd_{method}_err"] = _rel_err(res, ref)
                    if mem is not None:
                        row[f"ntkd_{method}_xla_mib"] = (mem.argument_size_in_bytes + mem.output_size_in_bytes
                                                         + mem.temp_size_in_bytes) / 2**20
                    del res
                if not full:
                    row["skipped"] = (f"n · P = {nn * n_params:,} > {EMPIRICAL_FULL_LIMIT:,}: structured only "
                                      "(the Jacobian does not fit in memory; NTK-vector products take hours)")
                others = [row[f"ntkd_{m}_s"] for m in EMPIRICAL_METHODS[1:] if f"ntkd_{m}_s" in row]
                if others:
                    row["structured_speedup"] = min(others) / row["ntkd_structured_s"]
                if nt_py is not None and full:
                    if nt is None:
                        nt = _NT(nt_py, x64=False)
                    ws = [np.asarray(a) for a in jax.tree_util.tree_leaves(params.weights)]
                    bs = [np.asarray(a) for a in jax.tree_util.tree_leaves(params.biases)]
                    np.savez(tmp / "params.npz", **{f"W{i}": a for i, a in enumerate(ws)},
                             **{f"b{i}": a for i, a in enumerate(bs)})
                    np.save(tmp / "x.npy", np.asarray(x))
                    np.save(tmp / "ref.npy", ref)
                    for impl, name in NT_IMPLEMENTATIONS.items():
                        r = nt.run({"kind": "empirical", "key": k, "depth": L, "width": w,
                                    "params": str(tmp / "params.npz"), "x": str(tmp / "x.npy"),
                                    "implementation": impl, "ref": str(tmp / "ref.npy"), "repeats": repeats})
                        row["nt_versions"] = {"jax": r["jax"], "neural_tangents": r["neural_tangents"]}
                        if "error" in r:
                            row[f"nt_{name}_s"] = row[f"nt_{name}_err"] = None
                            row[f"nt_{name}_error"] = r["error"]
                            continue
                        row[f"nt_{name}_s"] = statistics.median(r["seconds"])
                        row[f"nt_{name}_err"] = r["err"]["ntk"]
                    best_nt = min(row[f"nt_{m}_s"] for m in NT_IMPLEMENTATIONS.values()
                                  if row[f"nt_{m}_s"] is not None)
                    row["speedup"] = best_nt / min(row["ntkd_jacobian_s"], row["ntkd_ntvp_s"])
                    row["structured_speedup_vs_nt"] = best_nt / row["ntkd_structured_s"]
                row["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                row["machine"] = machine
                with rows_path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                done[k] = row
                say(f"  {k}: ntkd " + ", ".join(f"{m} {row[f'ntkd_{m}_s']:.4f} s" for m in EMPIRICAL_METHODS
                                                if f"ntkd_{m}_s" in row)
                    + (f"; neural-tangents best {best_nt:.4f} s ({row['speedup']:.2f}x)" if "speedup" in row else ""))
    finally:
        if nt is not None:
            nt.close()
    rows = [done[key(*c)] for c in cases if key(*c) in done]
    (out / "empirical.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    (out / "empirical.md").write_text(empirical_table(rows) + "\n")
    return rows


def empirical_table(rows: Sequence[dict]) -> str:
    """Empirical-NTK rows as a markdown table (seconds; errors are max relative against float64; "—":
    not run, see the row's ``skipped``)."""
    nt_names = list(NT_IMPLEMENTATIONS.values())
    head = ("| depth | width | n | params | ntkd structured (s) | ntkd jacobian (s) | ntkd ntvp (s) | "
            + " | ".join(f"NT {m.replace('_', ' ')} (s)" for m in nt_names)
            + " | structured vs best other ntkd | structured vs best NT | structured XLA MiB | peak RSS MiB | "
              "ntkd max rel err | NT max rel err |")
    lines = [head, "|" + "---|" * (13 + len(nt_names))]
    x = lambda v: f"{v:.1f}×" if v is not None else "—"  # noqa: E731
    for r in rows:
        nt_err = [e for e in (r.get(f"nt_{m}_err") for m in nt_names) if e is not None]
        errs = [r[f"ntkd_{m}_err"] for m in EMPIRICAL_METHODS if r.get(f"ntkd_{m}_err") is not None]
        lines.append(
            f"| {r['depth']} | {r['width']} | {r['n']} | {r['n_params']:,} | "
            + " | ".join(_fmt(r.get(f"ntkd_{m}_s"), ".4f") for m in EMPIRICAL_METHODS) + " | "
            + " | ".join("failed" if r.get(f"nt_{m}_error") else _fmt(r.get(f"nt_{m}_s"), ".4f") for m in nt_names)
            + f" | {x(r.get('structured_speedup'))} | {x(r.get('structured_speedup_vs_nt'))} | "
            f"{_fmt(r.get('ntkd_structured_xla_mib'), '.0f')} | {_fmt(r.get('max_rss_mib'), '.0f')} | "
            f"{_fmt(max(errs) if errs else None, '.1e')} | {_fmt(max(nt_err) if nt_err else None, '.1e')} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `ntkd bench`")
