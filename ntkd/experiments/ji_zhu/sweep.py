"""Grid sweeps of the Ji & Zhu (2020) analyses: the first study of the engine (:mod:`ntkd.experiments.engine`).

A sweep is a grid over the task/teacher variant, the student depth L, the training-set size n, seeds,
the soft ratio ρ, the temperature T and the training time t. A unit is one (variant, depth, n): its
seeds are ``vmap``-ed through one compiled program of :func:`ntkd.theories.transfer_risk.grid.grid_core`
(every (ρ, T, t) point a column of one batched right-hand side) and sharded over the local devices; a
block is one seed of a unit. Teachers: :mod:`.teachers`.

Public API: :class:`SweepConfig` / :func:`load_config` (TOML, validated before any computation) and
:func:`run_sweep` (the resumable, stored sweep behind ``ntkd sweep``).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ... import _version
from ..._core.io import write_text_atomic
from ...kernels import shared_mlp_kernel_fn
from ...theories.transfer_risk.grid import (BETAS, METRICS, compiled_grid, grid_points, grid_targets,
                                            oracle_reference)
from ...theories.transfer_risk.tasks import sample_inputs
from ..config import as_list, dtype_name, fail, fmt, json_default, num_list, read_toml, section, top_level, typed
from ..engine import Unit, batch_size, device_mesh, once, replicated, run_units, shard_seeds, size_buckets
from ..store import Schema, refuse_other_config
from .teachers import empirical_student, init_outputs, task_teacher

__all__ = ["SweepConfig", "load_config", "run_sweep", "validated_task", "SCHEMA", "COORDS", "METRICS"]

INF = float("inf")
#: Rows of a sweep: coordinates (SQLite names are case-blind: the time t is the column ``time``), the
#: metrics of :data:`ntkd.theories.transfer_risk.grid.METRICS`, and the factorization used.
SCHEMA = Schema((("variant", "TEXT"), ("depth", "INTEGER"), ("n", "INTEGER"), ("seed", "INTEGER"),
                 ("rho", "REAL"), ("T", "REAL"), ("time", "REAL")), METRICS, ("factor",))
COORDS = tuple(c for c, _ in SCHEMA.coords)

# key: (default, kind, allow list -> variant axis). kind is a type or a set of allowed strings.
_TASK_KEYS = {
    "kind": ("kernel_teacher", {"mixture", "kernel_teacher", "network_teacher", "random", "zero"}, True),
    "modes": (50, int, True),
    "amplitude": (1.0, float, True),
    "p_flip": (0.0, float, True),
    "teacher_depth": (5, int, True),
    "fit_n": (2048, int, True),
    "stop_time": (INF, float, True),
    "label_scale": (10.0, float, True),
    "reduction": (0.3, float, True),
    "perfect": (True, bool, True),
    "task_seed": (0, int, True),
}


# keys of kind = "network_teacher" only (kept out of other configs, whose hashes stay unchanged)
_NET_KEYS = {
    "teacher_width": (256, int, True),
    "stop_epoch": (511, int, True),
    "teacher_lr": (1e-2, float, True),
    "teacher_batch": (512, int, True),
}


_STUDENT_KEYS = {
    "depth": (3, int, True),
    "W_std": (1.0, float, False),
    "b_std": (1.0, float, False),
    "activation": ("relu", {"relu", "erf"}, False),
    "init": ("zero", {"zero", "network"}, False),
    "init_width": (1024, int, False),
    "jitter": (0.0, float, False),
}


# student key kept out of configs that do not set it (their hashes stay unchanged)
_KERNEL_KEY = {"kernel": ("analytic", {"analytic", "empirical"}, False)}


_GRID_KEYS = {"rho": None, "T": None, "t": None, "n": None, "seeds": None}


_EVAL_KEYS = {
    "n_test": (2048, int, False),
    "n_ref": (0, int, False),
    "seed_chunk": (0, int, False),
    "memory_gib": (4.0, float, False),
}


#: eval keys that change how a sweep runs, not its results (left out of the configuration hash)
RUNTIME_KEYS = ("seed_chunk", "memory_gib")


_TOP_KEYS = {"name", "seed", "dtype", "task", "student", "grid", "eval", "figure"}


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep configuration (see the module docstring and ``ntkd sweep --help``).

    ``task`` and ``student`` map keys to values; list values in ``task`` (and ``student.depth``) are
    variant axes. ``grid``: ``rho``, ``T``, ``t`` (floats; t may be ``inf``), ``n`` (ints), ``seeds``
    (list of ints). Build with :meth:`from_dict` or :func:`load_config`; both reject a malformed or
    inconsistent configuration with a ValueError naming the key, before any computation.
    """

    name: str
    seed: int
    dtype: str
    task: dict
    student: dict
    grid: dict
    eval: dict
    figure: Optional[str] = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, raw: dict) -> "SweepConfig":
        top_level(raw, _TOP_KEYS)
        name = raw.get("name", "sweep")
        if not isinstance(name, str) or not name:
            fail("name", f"must be a non-empty string; got {name!r}")
        seed = typed("seed", raw.get("seed", 0), int)
        dtype = dtype_name(raw)
        figure = raw.get("figure")
        if figure is not None and not isinstance(figure, str):
            fail("figure", f"must be a string; got {figure!r}")
        task = section(raw, "task", {**_TASK_KEYS, **_NET_KEYS})
        if "network_teacher" not in as_list(task["kind"]):
            given = set(raw.get("task", {})) & set(_NET_KEYS)
            if given:
                fail(f"task.{sorted(given)[0]}", "applies only to kind = 'network_teacher'")
            for k in _NET_KEYS:
                task.pop(k)
        else:
            for k in _NET_KEYS:
                for v in as_list(task[k]):
                    if not v > 0 and not (k == "stop_epoch" and v == 0):
                        fail(f"task.{k}", f"must be > 0; got {v!r}")
        student = section(raw, "student", {**_STUDENT_KEYS, **_KERNEL_KEY})
        if student["kernel"] == "analytic" and "kernel" not in raw.get("student", {}):
            student.pop("kernel")
        elif student["kernel"] == "empirical" and student["init"] != "network":
            fail("student.kernel", "'empirical' is the NTK of the network that gives z0; set init = 'network'")
        ev = section(raw, "eval", _EVAL_KEYS)
        g = raw.get("grid")
        if not isinstance(g, dict):
            fail("grid", "a [grid] table with rho, T, t, n and seeds is required")
        unknown = set(g) - set(_GRID_KEYS)
        if unknown:
            fail(f"grid.{sorted(unknown)[0]}", f"unknown key; known keys of [grid]: {', '.join(_GRID_KEYS)}")
        grid = {
            "rho": num_list(g, "rho", float, lo=0.0, hi=1.0, lo_open=True),
            "T": num_list(g, "T", float, lo=0.0, lo_open=True),
            "t": num_list({"t": g.get("t", [INF])}, "t", float, lo=0.0, allow_inf=True),
            "n": num_list(g, "n", int, lo=1),
        }
        seeds = g.get("seeds", 1)
        if isinstance(seeds, list):
            grid["seeds"] = num_list({"seeds": seeds}, "seeds", int, lo=0)
        else:
            grid["seeds"] = list(range(typed("grid.seeds", seeds, int)))
            if not grid["seeds"]:
                fail("grid.seeds", "must be >= 1 (a count) or a list of seeds")
        # cross-key consistency
        for key, lo, open_ in (("amplitude", 0, True), ("label_scale", 0, True), ("reduction", 0, True),
                               ("stop_time", 0, False)):
            for v in as_list(task[key]):
                if v < lo or (open_ and v == lo) or v != v:
                    fail(f"task.{key}", f"must be {'>' if open_ else '>='} {lo}; got {v!r}")
        for v in as_list(task["p_flip"]):
            if not 0 <= v <= 1:
                fail("task.p_flip", f"must lie in [0, 1]; got {v!r}")
        for key in ("modes", "teacher_depth", "fit_n"):
            for v in as_list(task[key]):
                if v < 1:
                    fail(f"task.{key}", f"must be >= 1; got {v!r}")
        for v in as_list(student["depth"]):
            if v < 1:
                fail("student.depth", f"must be >= 1 hidden layer; got {v!r}")
        if student["init_width"] < 1:
            fail("student.init_width", "must be >= 1")
        if student["jitter"] < 0:
            fail("student.jitter", f"must be >= 0; got {student['jitter']!r}")
        if student["W_std"] <= 0 or student["b_std"] < 0:
            fail("student.W_std" if student["W_std"] <= 0 else "student.b_std", "must be positive")
        if ev["n_test"] < 1:
            fail("eval.n_test", "must be >= 1")
        if ev["n_ref"] < 0 or ev["seed_chunk"] < 0 or ev["memory_gib"] <= 0:
            bad = "n_ref" if ev["n_ref"] < 0 else "seed_chunk" if ev["seed_chunk"] < 0 else "memory_gib"
            fail(f"eval.{bad}", "must be >= 0" if bad != "memory_gib" else "must be > 0")
        if dtype == "float32" and student["jitter"] == 0:
            fail("student.jitter", "a float32 sweep needs a positive jitter on Θ_n (d = 2 NTK systems are "
                  "ill-conditioned); set e.g. jitter = 1e-3, or use dtype = 'float64'")
        return cls(name=name, seed=seed, dtype=dtype, task=task, student=student, grid=grid, eval=ev,
                   figure=figure, raw=raw)

    # -- derived -----------------------------------------------------------------------------------------
    def to_json(self) -> str:
        d = {"name": self.name, "seed": self.seed, "dtype": self.dtype, "task": self.task,
             "student": self.student, "grid": self.grid, "eval": self.eval, "figure": self.figure}
        return json.dumps(d, sort_keys=True, default=json_default)

    def hash(self) -> str:
        """The identity of the results: everything but the run-time knobs ``eval.seed_chunk`` and
        ``eval.memory_gib``, which change how blocks are batched, not what they hold (a resumed run may
        change them)."""
        d = json.loads(self.to_json())
        d["eval"] = {k: v for k, v in d["eval"].items() if k not in RUNTIME_KEYS}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def variants(self) -> list:
        """The task variants: the cartesian product of the list-valued task keys, as (label, task dict)."""
        varied = [k for k, v in self.task.items() if isinstance(v, list)]
        out = []
        for combo in itertools.product(*[self.task[k] for k in varied]):
            task = dict(self.task)
            task.update(zip(varied, combo))
            label = ",".join(f"{k}={fmt(v)}" for k, v in zip(varied, combo)) or "base"
            out.append((label, task))
        return out

    def depths(self) -> list:
        return as_list(self.student["depth"])

    def points(self):
        """(rho, T) pairs of the batched right-hand side, in grid order (ρ outer, T inner)."""
        return [(r, T) for r in self.grid["rho"] for T in self.grid["T"]]

    def n_rows(self) -> int:
        g = self.grid
        return (len(self.variants()) * len(self.depths()) * len(g["n"]) * len(g["seeds"]) * len(g["rho"])
                * len(g["T"]) * len(g["t"]))


def load_config(path) -> SweepConfig:
    """Read and validate a TOML sweep configuration (``tomllib``). Errors name the file and the key."""
    raw = read_toml(path)
    try:
        return SweepConfig.from_dict(raw)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _keys(seed):
    base = jax.random.PRNGKey(seed)
    return {name: jax.random.fold_in(base, i) for i, name in enumerate(("train", "test", "ref", "init"))}


def _block(variant, depth, n, seed):
    return f"{variant}|L={depth}|n={n}|seed={seed}"


def _labels(task, zt, zg):
    return _positive(zt if task["perfect"] else zg, zt.dtype)


@partial(jax.jit, static_argnums=1)
def _positive(z, dtype):
    """1{z > 0} in ``dtype``: one program per shape (not a comparison and a cast)."""
    return (z > 0).astype(dtype)


def _seed_data(pools, seed, teacher, task, st, depth, n_max, keys, x_te, zt_te, yg_te, dtype):
    """Per-seed arrays on the nested pool of n_max training inputs (prefixes give the n grid):
    x, z_t, y_g, z_g, z0 on the pool; z_t, y_g, z0 on the test set."""
    if seed not in pools:
        k = jax.random.fold_in(keys["train"], seed)
        x = sample_inputs(jax.random.fold_in(k, 0), n_max, dtype=dtype)
        zt, zg = teacher(x, jax.random.fold_in(k, 1))
        yg = _labels(task, zt, zg)
        zt_te_s, yg_te_s = zt_te, yg_te
        if task["kind"] == "random":  # i.i.d. logits: a fresh draw at the test points for each seed
            zt_te_s, _ = teacher(x_te, jax.random.fold_in(k, 2))
            yg_te_s = _labels(task, zt_te_s, zt_te_s)
        if st.get("kernel") == "empirical":  # the one network whose NTK is the kernel (same for every seed)
            z0_fn = _empirical_net(st, depth, keys, dtype)[1]
            z0, z0_te = z0_fn(x), z0_fn(x_te)
        elif st["init"] == "network":
            z0, z0_te = init_outputs(st, depth, jax.random.fold_in(keys["init"], seed), [x, x_te], dtype)
        else:
            z0, z0_te = jnp.zeros(n_max, dtype), jnp.zeros(x_te.shape[0], dtype)
        pools[seed] = (x, zt, yg, zg, z0, zt_te_s, yg_te_s, z0_te)
    return pools[seed]



def _train_rows(a, n, size, dtype):
    """The first n rows of a per-seed pool array on the host in ``dtype``, padded to ``size`` rows with
    copies of row 0 (finite kernel values; the grid program masks them out)."""
    a = np.asarray(a, dtype)[:n]
    return a if size == n else np.concatenate([a, np.repeat(a[:1], size - n, axis=0)])


def _grid_specs(mesh, batch, N, d, P, Q, m, R, M, dtype, padded):
    """The abstract arguments (shape, dtype, sharding) of the batched grid program of one bucket, exactly
    as ``compute`` of :func:`_run_sweep` places them, for compiling it ahead of its first call."""
    from jax.sharding import NamedSharding, PartitionSpec

    per, rep = NamedSharding(mesh, PartitionSpec("s")), replicated(mesh)

    def s(shape, sharding, dt=dtype):
        return jax.ShapeDtypeStruct(shape, jnp.dtype(dt), sharding=sharding)

    train = [s((batch, N, d), per), s((batch, N), per), s((batch, N, P), per), s((batch, N, Q), per),
             s((batch, N), per), s((batch, N), per)]
    test = [s((m, d), rep)] + [s((batch, m), per)] * 3
    shared = [s((R, d), rep), s((R, P), rep), s((P,), rep), s((m, P), rep), s((P,), rep, np.int32), s((M,), rep)]
    return train + test + shared + ([s((), rep, np.int32)] if padded else [])


def validated_task(raw_task: dict) -> dict:
    """One ``[task]`` table validated as in a sweep config, defaults filled in (one variant: no lists)."""
    cfg = SweepConfig.from_dict({"task": raw_task, "grid": {"rho": [1.0], "T": [1.0], "n": [1]}})
    ((_, task),) = cfg.variants()
    return task


_EMPIRICAL: dict = {}


def _empirical_net(st, depth, keys, dtype):
    """``kernel = "empirical"``: (kernel_fn, z0_fn) of one initialized width-``init_width`` network shared by
    every seed (:func:`.teachers.empirical_student`; seeds then differ in their training sets only); cached."""
    ck = (json.dumps(st, sort_keys=True), depth, str(keys["init"]), jnp.dtype(dtype).name)
    if ck not in _EMPIRICAL:
        _EMPIRICAL.clear()
        _EMPIRICAL[ck] = empirical_student(st, depth, jax.random.fold_in(keys["init"], 2**20 + depth), dtype)
    return _EMPIRICAL[ck]


def _student_kernel(st, depth, keys=None, dtype=None):
    """The student's kernel function: the analytic NTK, or (``kernel = "empirical"``) the empirical NTK of
    the network of :func:`_empirical_net`."""
    if st.get("kernel") != "empirical":
        return shared_mlp_kernel_fn(depth, st["activation"], st["W_std"], st["b_std"])
    return _empirical_net(st, depth, keys, dtype)[0]


def run_sweep(config: SweepConfig, out, *, progress=sys.stderr, max_blocks: Optional[int] = None,
              buckets: bool = True, shard: Optional[tuple] = None, precompile: Optional[bool] = None) -> Path:
    """Run (or resume) a sweep; results go to ``out/results.sqlite`` (:class:`ntkd.experiments.store.ResultsStore`).

    Blocks are (variant, depth, n, seed) units; seeds of one (variant, depth, n) are computed together,
    ``vmap``-ed and sharded over ``jax.local_devices()``, in chunks bounded by ``eval.memory_gib``
    (override with ``eval.seed_chunk``). Each chunk's rows are committed in one transaction as it
    finishes, so a killed run loses at most the chunk in flight, and rerunning the same command skips
    every finished block. ``max_blocks`` stops after that many new blocks (for tests). Progress goes
    to ``progress`` (None for silence). Returns the store path.

    ``buckets`` (default): training sets are padded exactly to a few bucket sizes
    (:func:`ntkd.experiments.engine.size_buckets`; the padding of
    :func:`ntkd.theories.transfer_risk.grid.grid_core`), and every chunk of a unit to one batch size, so
    the sweep compiles one program per bucket rather than one per n; rows equal the unpadded ones to
    rounding. ``buckets=False``: one program per n, as before.

    ``shard=(i, N)``: compute only shard i of N (whole (variant, depth, n) units, a deterministic
    partition: :func:`ntkd.experiments.engine.shard_units`) into this ``out``; run the N shards anywhere
    (array jobs, one process per host) and join their folders with ``ntkd merge``. The merged rows
    equal a one-process run's.

    ``precompile``: compile each bucket's program ahead of its first chunk in a background thread
    (:func:`ntkd.experiments.engine.run_units`; default: on an accelerator only).

    A float64 config runs in a ``jax.enable_x64`` scope: the process's JAX setting is left as it was. A
    store of another configuration is refused before anything is written (the message names the keys
    that differ).
    """
    if config.dtype == "float64":
        with jax.enable_x64(True):
            return _run_sweep(config, out, progress=progress, max_blocks=max_blocks, buckets=buckets, shard=shard,
                              precompile=precompile)
    return _run_sweep(config, out, progress=progress, max_blocks=max_blocks, buckets=buckets, shard=shard,
                      precompile=precompile)


def _run_sweep(config: SweepConfig, out, *, progress=sys.stderr, max_blocks: Optional[int] = None,
               buckets: bool = True, shard: Optional[tuple] = None, precompile: Optional[bool] = None) -> Path:
    """The body of :func:`run_sweep`, in the caller's JAX precision."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.sqlite"
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
    refuse_other_config(path, config.to_json(), config.hash())  # a refused config changes nothing on disk
    write_text_atomic(out / "config.json", config.to_json())
    g, st, ev = config.grid, config.student, config.eval
    n_max, m = max(g["n"]), ev["n_test"]
    r, tt, T_unique, T_index = grid_points(g["rho"], g["T"])
    grid_cols = [jnp.asarray(a, dtype) for a in (r, tt, T_unique)]
    targets = lambda zt, yg: grid_targets(zt, yg, *grid_cols)  # noqa: E731
    times = np.asarray(g["t"], float)
    method = "chol" if np.isinf(times).all() else "eigh"
    mesh = device_mesh()
    keys = _keys(config.seed)
    x_te = sample_inputs(keys["test"], m, dtype=dtype)
    x_ref = sample_inputs(keys["ref"], ev["n_ref"], dtype=dtype) if ev["n_ref"] else None
    jitter = st["jitter"]
    bucket = size_buckets(g["n"]) if buckets else {n: n for n in g["n"]}
    n_dev = len(mesh.devices.flat)
    cache = {}
    programs = {}  # (depth, bucket, batch) -> the once-prepare that compiles that grid program ahead

    def prepare(L, N, batch):
        """The once-callable that compiles one bucket's grid program ahead of its first call (the program
        ``compute`` then calls: the same kernel_fn object, so the same jitted function); None without
        buckets (chunks of varying size) and for the empirical kernel (its kernel_fn is built with the seed
        data)."""
        if not buckets or st.get("kernel") == "empirical":
            return None
        if (L, N, batch) not in programs:
            f = compiled_grid(_student_kernel(st, L), method, jitter, x_ref is not None, batched=True, padded=True)
            specs = _grid_specs(mesh, batch, N, x_te.shape[1], len(r), len(T_unique), m,
                                ev["n_ref"] or 1, len(times), dtype, True)
            programs[L, N, batch] = once(lambda: f.lower(*specs).compile())
        return programs[L, N, batch]

    def setup(store, vl, task, L):
        """Teacher, test labels and the oracle of one (variant, depth), once; p(β) curves to the store."""
        ckey = (vl, L)
        if ckey not in cache:
            cache.clear()
            kfn = _student_kernel(st, L, keys, dtype)
            teacher = task_teacher(task, dtype=dtype)
            zt_te, zg_te = teacher(x_te, jax.random.fold_in(keys["test"], 1))
            yg_te = _labels(task, zt_te, zg_te)
            ref = None
            if x_ref is not None:
                zt_ref, zg_ref = teacher(x_ref, jax.random.fold_in(keys["ref"], 1))
                a_star, onorm, cos_te, _ = oracle_reference(kfn, (x_ref, zt_ref, _labels(task, zt_ref, zg_ref)),
                                                            x_te, zt_te, yg_te, r, tt, jitter)
                ref = (a_star, onorm, cos_te)
                for p, (rho_p, T_p) in enumerate(zip(r, tt)):
                    ang = np.arccos(np.clip(np.asarray(cos_te[:, p]), 0, 1))
                    store.put_curve(f"pbeta|{vl}|{L}|{rho_p!r}|{T_p!r}", {
                        "variant": vl, "depth": L, "rho": float(rho_p), "T": float(T_p),
                        "oracle_norm": float(onorm[p]), "n_ref": ev["n_ref"], "betas": BETAS.tolist(),
                        "p": [float(np.mean(ang > b)) for b in BETAS]})
            cache[ckey] = (kfn, teacher, zt_te, yg_te, ref, {})
        return cache[ckey]

    def unit(vl, task, L, n):
        N = bucket[n]
        per_seed_bytes = 8.0 * (3 * N * N + N * (m + ev["n_ref"]) + m * len(r) * len(times)) * 2
        batch = batch_size(len(g["seeds"]), per_seed_bytes, ev["memory_gib"], ev["seed_chunk"], n_dev) \
            if buckets else 0
        ahead = prepare(L, N, batch)

        def compute(store, seeds):
            kfn, teacher, zt_te, yg_te, ref, pools = setup(store, vl, task, L)
            data = []
            for s in seeds:  # grid_core's per-seed arrays on the pool: x, z_t, z_eff, z_h, z_g, z0; test z_t, y_g, z0
                x, zt, yg, zg, z0, *test = _seed_data(pools, s, teacher, task, st, L, n_max, keys, x_te, zt_te,
                                                      yg_te, dtype)
                if ("targets", s) not in pools:  # one program for every n (the pool's shape)
                    pools["targets", s] = targets(zt, yg)
                data.append((x, zt, *pools["targets", s], zg, z0, *test))
            per = shard_seeds([[_train_rows(d[j], n, N, dtype) if j < 6 else np.asarray(d[j], dtype) for d in data]
                               for j in range(9)], mesh, batch)
            x_ref_, a_star, onorm, cos_te = ((x_ref,) + ref) if ref else (
                x_te[:1], jnp.zeros((1, len(r)), dtype), jnp.ones(len(r), dtype), jnp.zeros((m, len(r)), dtype))
            repl = replicated(mesh)
            shared = [jax.device_put(jnp.asarray(a, dtype), repl) for a in (x_ref_, a_star, onorm, cos_te)]
            shared += [jax.device_put(np.asarray(T_index, np.int32), repl), jax.device_put(jnp.asarray(times, dtype), repl)]
            # argument order of grid_core: 6 per-seed, x_test, 3 per-seed, 6 shared
            args = per[:6] + [jax.device_put(x_te, repl)] + per[6:] + shared
            if buckets:  # the padded program: real training rows first, n of them
                args.append(jax.device_put(np.asarray(n, np.int32), repl))
            f = compiled_grid(kfn, method, jitter, ref is not None, batched=True, padded=buckets)
            if ahead is not None:  # compiled in the engine's background thread (or now, or waiting for it)
                ahead()
            res = {k: np.array(v) for k, v in f(*args).items()}
            factors = [method] * len(seeds)
            bad = np.flatnonzero(~res["ok"][:len(seeds)])
            if bad.size and method == "chol":  # unusable Cholesky factor: redo those seeds by eigh
                fe = compiled_grid(kfn, "eigh", jitter, ref is not None, batched=True, padded=buckets)
                per_seed = (0, 1, 2, 3, 4, 5, 7, 8, 9)
                re = fe(*(a[bad] if j in per_seed else a for j, a in enumerate(args)))
                for k, v in re.items():
                    res[k][bad] = np.asarray(v)
                for j in bad:
                    factors[j] = "eigh"
            blocks = {}
            for j, s in enumerate(seeds):
                rows = []
                for it, t in enumerate(times):
                    for p, (rho_p, T_p) in enumerate(zip(r, tt)):
                        row = {"variant": vl, "depth": L, "n": n, "seed": s, "rho": float(rho_p),
                               "T": float(T_p), "time": float(t), "factor": factors[j],
                               "config": {"task": task, "student": {**st, "depth": L}, "n": n,
                                          "seed": s, "rho": float(rho_p), "T": float(T_p),
                                          "t": repr(float(t)), "n_test": m, "n_ref": ev["n_ref"],
                                          "sweep_seed": config.seed, "dtype": config.dtype}}
                        for k in METRICS:
                            if k in res:
                                row[k] = float(res[k][j, it, p])
                        rows.append(row)
                blocks[_block(vl, L, n, s)] = rows
            return blocks

        return Unit(f"{vl} L={L} n={n}" + (f" (bucket {N})" if N != n else ""), [(_block(vl, L, n, s), s) for s in g["seeds"]], compute,
                    block_bytes=per_seed_bytes, block_work=float(N) ** 3 + float(N) * N * (m + ev["n_ref"]),
                    prepare=ahead)

    units = [unit(vl, task, L, n) for vl, task in config.variants() for L in config.depths() for n in g["n"]]
    run_units(path, SCHEMA, units, config_json=config.to_json(), config_hash=config.hash(),
              version=_version.VERSION, name=f"ntkd sweep '{config.name}'", memory_gib=ev["memory_gib"],
              fixed_chunk=ev["seed_chunk"], progress=progress, max_blocks=max_blocks, shard=shard,
              precompile=precompile)
    return path

