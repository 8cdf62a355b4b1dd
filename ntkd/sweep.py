"""Grid sweeps of the Ji & Zhu (2020) analyses, amortized, device-sharded and resumable.

A sweep is a grid over the task/teacher variant, the student depth L, the training-set size n, seeds,
the soft ratio ρ, the temperature T and the training time t. The expensive part is one kernel
factorization per training set; effective logits are elementwise, so every (ρ, T) point is one column of
a batched right-hand side and every t a diagonal rescaling in the kernel's eigenbasis:

* ``t = inf`` only: one Cholesky factor of Θ_n per training set, all (ρ, T) columns in one ``cho_solve``
  (falling back to the minimum-norm eigen-solution if the factor is unusable);
* finite t: one ``eigh`` of Θ_n; the student at time t follows the linear dynamics of App. S1, Eq. S1,
  ``dz/dτ = -η Θ (z - z_eff) / n``, i.e. gradient flow on ``0.5·mean((z - z_eff)²)`` in steps of size η
  (the neural-tangents convention for one output). At t = inf this is the converged student of Eq. 4
  exactly; at finite t it is the paper's near-convergence approximation of the KD dynamics — for the
  exact nonlinear KD flow of one configuration use :func:`ntkd.kd_function_space_flow`.

Seeds of one (variant, depth, n) are ``vmap``-ed and sharded over all local devices with
``jax.sharding`` (padded to a multiple of the device count; results are identical to one device).

Public API: :func:`evaluate_grid` (one training set, any kernel_fn, in-memory, for research code),
:class:`SweepConfig` / :func:`load_config` (TOML, validated before any computation) and
:func:`run_sweep` (the resumable, stored sweep behind ``ntkd sweep``).

The sweep's task model ([G] choices of the brief, fixed and documented here):

* ``kind = "mixture"``: the teacher *is* a Gaussian-mixture logit function z_g (``ntkd.tasks``), with
  optional per-sample sign flips (``p_flip``, Fig. 3 right).
* ``kind = "kernel_teacher"``: a wide teacher network in the kernel limit — the NTK predictor of depth
  ``teacher_depth`` trained by gradient flow (MSE) on the hard labels ``±label_scale`` of a Gaussian
  mixture z_g at ``fit_n`` fixed inputs and stopped at ``stop_time`` (inf = converged), times the
  reduction factor ``reduction`` (r = 0.3 in the paper). The paper trains finite teachers with online
  batches; in the kernel limit a large fixed fit set is the analogue, and the stopping time plays the
  role of the stopping epoch (Figs. 4, 5).
* ``kind = "network_teacher"``: the paper's teacher itself, a finite network (``teacher_width``,
  ``teacher_depth``) trained with Adam (``teacher_lr``) on the hard labels of the mixture with online
  batches (``teacher_batch`` fresh samples per epoch) and stopped at epoch ``stop_epoch``, times r
  (:func:`ntkd.finite.train_teacher`). These four keys are accepted only with this kind.
* ``kind = "random"``: i.i.d. N(0, 1) logits at every point (the upper reference of Fig. 3).
* ``kind = "zero"``: the zero function (the lower reference of Fig. 3).
* ``perfect = true``: the ground-truth labels are the teacher's signs, y_g = 1{z_t > 0} (§3–4);
  ``false``: y_g = 1{z_g > 0} for the mixture z_g behind the teacher (an imperfect teacher, §5).

Students start at z0 = 0 (``init = "zero"``: the infinite-width mean predictor) or at the outputs of
an initialized finite NTK-parameterized network of width ``init_width`` (``init = "network"``, as the
paper's Fig. 3). Angles against the oracle neglect Δw_z (as Eq. 9 does).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
import time
import tomllib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ._linalg import einsum, mm
from .distill import correction_logits, effective_logits
from .kernels import mlp_kernel_fn
from .predict import _factor_usable, _phi, _pinv_coeffs, _pinv_solve
from .store import COORDS, METRICS, ResultsStore

__all__ = ["SweepConfig", "load_config", "evaluate_grid", "run_sweep", "task_teacher", "BETAS"]

INF = float("inf")
# β grid of the stored accumulative angle distributions p(β): uniform, plus a dense tail near π/2 where
# p drops (§3.3).
BETAS = np.unique(np.concatenate([np.linspace(0, np.pi / 2, 201),
                                  np.pi / 2 - np.geomspace(1e-5, 0.2, 200)]))

# --------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------

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
_GRID_KEYS = {"rho": None, "T": None, "t": None, "n": None, "seeds": None}
_EVAL_KEYS = {
    "n_test": (2048, int, False),
    "n_ref": (0, int, False),
    "seed_chunk": (0, int, False),
    "memory_gib": (4.0, float, False),
}
_TOP_KEYS = {"name", "seed", "dtype", "task", "student", "grid", "eval", "figure"}


def _fail(key, msg):
    raise ValueError(f"config key '{key}': {msg}")


def _typed(key, value, kind):
    if isinstance(kind, set):
        if value not in kind:
            _fail(key, f"must be one of {sorted(kind)}; got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            _fail(key, f"must be true or false; got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, f"must be an integer; got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(key, f"must be a number; got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            _fail(key, f"must be a string; got {value!r}")
        return value
    raise AssertionError(kind)


def _section(raw, name, spec):
    sec = raw.get(name, {})
    if not isinstance(sec, dict):
        _fail(name, f"must be a table ([{name}]); got {sec!r}")
    unknown = set(sec) - set(spec)
    if unknown:
        _fail(f"{name}.{sorted(unknown)[0]}", f"unknown key; known keys of [{name}]: {', '.join(sorted(spec))}")
    out = {}
    for key, (default, kind, listable) in spec.items():
        value = sec.get(key, default)
        full = f"{name}.{key}"
        if isinstance(value, list):
            if not listable:
                _fail(full, "takes one value, not a list")
            if not value:
                _fail(full, "an empty list has no values to sweep")
            out[key] = [_typed(full, v, kind) for v in value]
        else:
            out[key] = _typed(full, value, kind)
    return out


def _num_list(raw, key, kind, *, lo=None, hi=None, lo_open=False, allow_inf=False):
    v = raw.get(key)
    full = f"grid.{key}"
    if v is None:
        _fail(full, "is required")
    vals = v if isinstance(v, list) else [v]
    if not vals:
        _fail(full, "must not be empty")
    out = []
    for x in vals:
        x = _typed(full, x, kind)
        if kind is float and (x != x or (math.isinf(x) and not allow_inf)):
            _fail(full, f"must be finite; got {x!r}")
        if lo is not None and (x < lo or (lo_open and x == lo)):
            _fail(full, f"must be {'>' if lo_open else '>='} {lo}; got {x!r}")
        if hi is not None and x > hi:
            _fail(full, f"must be <= {hi}; got {x!r}")
        out.append(x)
    if len(set(out)) != len(out):
        _fail(full, f"has repeated values {out}")
    return out


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
        if not isinstance(raw, dict):
            raise ValueError("a sweep config must be a TOML table")
        unknown = set(raw) - _TOP_KEYS
        if unknown:
            _fail(sorted(unknown)[0], f"unknown top-level key; known: {', '.join(sorted(_TOP_KEYS))}")
        name = raw.get("name", "sweep")
        if not isinstance(name, str) or not name:
            _fail("name", f"must be a non-empty string; got {name!r}")
        seed = _typed("seed", raw.get("seed", 0), int)
        dtype = raw.get("dtype", "float64")
        if dtype not in ("float32", "float64"):
            _fail("dtype", f"must be 'float32' or 'float64'; got {dtype!r}")
        figure = raw.get("figure")
        if figure is not None and not isinstance(figure, str):
            _fail("figure", f"must be a string; got {figure!r}")
        task = _section(raw, "task", {**_TASK_KEYS, **_NET_KEYS})
        if "network_teacher" not in _as_list(task["kind"]):
            given = set(raw.get("task", {})) & set(_NET_KEYS)
            if given:
                _fail(f"task.{sorted(given)[0]}", "applies only to kind = 'network_teacher'")
            for k in _NET_KEYS:
                task.pop(k)
        else:
            for k in _NET_KEYS:
                for v in _as_list(task[k]):
                    if not v > 0 and not (k == "stop_epoch" and v == 0):
                        _fail(f"task.{k}", f"must be > 0; got {v!r}")
        student = _section(raw, "student", _STUDENT_KEYS)
        ev = _section(raw, "eval", _EVAL_KEYS)
        g = raw.get("grid")
        if not isinstance(g, dict):
            _fail("grid", "a [grid] table with rho, T, t, n and seeds is required")
        unknown = set(g) - set(_GRID_KEYS)
        if unknown:
            _fail(f"grid.{sorted(unknown)[0]}", f"unknown key; known keys of [grid]: {', '.join(_GRID_KEYS)}")
        grid = {
            "rho": _num_list(g, "rho", float, lo=0.0, hi=1.0, lo_open=True),
            "T": _num_list(g, "T", float, lo=0.0, lo_open=True),
            "t": _num_list({"t": g.get("t", [INF])}, "t", float, lo=0.0, allow_inf=True),
            "n": _num_list(g, "n", int, lo=1),
        }
        seeds = g.get("seeds", 1)
        if isinstance(seeds, list):
            grid["seeds"] = _num_list({"seeds": seeds}, "seeds", int, lo=0)
        else:
            grid["seeds"] = list(range(_typed("grid.seeds", seeds, int)))
            if not grid["seeds"]:
                _fail("grid.seeds", "must be >= 1 (a count) or a list of seeds")
        # cross-key consistency
        for key, lo, open_ in (("amplitude", 0, True), ("label_scale", 0, True), ("reduction", 0, True),
                               ("stop_time", 0, False)):
            for v in _as_list(task[key]):
                if v < lo or (open_ and v == lo) or v != v:
                    _fail(f"task.{key}", f"must be {'>' if open_ else '>='} {lo}; got {v!r}")
        for v in _as_list(task["p_flip"]):
            if not 0 <= v <= 1:
                _fail("task.p_flip", f"must lie in [0, 1]; got {v!r}")
        for key in ("modes", "teacher_depth", "fit_n"):
            for v in _as_list(task[key]):
                if v < 1:
                    _fail(f"task.{key}", f"must be >= 1; got {v!r}")
        for v in _as_list(student["depth"]):
            if v < 1:
                _fail("student.depth", f"must be >= 1 hidden layer; got {v!r}")
        if student["init_width"] < 1:
            _fail("student.init_width", "must be >= 1")
        if student["jitter"] < 0:
            _fail("student.jitter", f"must be >= 0; got {student['jitter']!r}")
        if student["W_std"] <= 0 or student["b_std"] < 0:
            _fail("student.W_std" if student["W_std"] <= 0 else "student.b_std", "must be positive")
        if ev["n_test"] < 1:
            _fail("eval.n_test", "must be >= 1")
        if ev["n_ref"] < 0 or ev["seed_chunk"] < 0 or ev["memory_gib"] <= 0:
            bad = "n_ref" if ev["n_ref"] < 0 else "seed_chunk" if ev["seed_chunk"] < 0 else "memory_gib"
            _fail(f"eval.{bad}", "must be >= 0" if bad != "memory_gib" else "must be > 0")
        if dtype == "float32" and student["jitter"] == 0:
            _fail("student.jitter", "a float32 sweep needs a positive jitter on Θ_n (d = 2 NTK systems are "
                  "ill-conditioned); set e.g. jitter = 1e-3, or use dtype = 'float64'")
        return cls(name=name, seed=seed, dtype=dtype, task=task, student=student, grid=grid, eval=ev,
                   figure=figure, raw=raw)

    # -- derived -----------------------------------------------------------------------------------------
    def to_json(self) -> str:
        d = {"name": self.name, "seed": self.seed, "dtype": self.dtype, "task": self.task,
             "student": self.student, "grid": self.grid, "eval": self.eval, "figure": self.figure}
        return json.dumps(d, sort_keys=True, default=_json_default)

    def hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def variants(self) -> list:
        """The task variants: the cartesian product of the list-valued task keys, as (label, task dict)."""
        varied = [k for k, v in self.task.items() if isinstance(v, list)]
        out = []
        for combo in itertools.product(*[self.task[k] for k in varied]):
            task = dict(self.task)
            task.update(zip(varied, combo))
            label = ",".join(f"{k}={_fmt(v)}" for k, v in zip(varied, combo)) or "base"
            out.append((label, task))
        return out

    def depths(self) -> list:
        return _as_list(self.student["depth"])

    def points(self):
        """(rho, T) pairs of the batched right-hand side, in grid order (ρ outer, T inner)."""
        return [(r, T) for r in self.grid["rho"] for T in self.grid["T"]]

    def n_rows(self) -> int:
        g = self.grid
        return (len(self.variants()) * len(self.depths()) * len(g["n"]) * len(g["seeds"]) * len(g["rho"])
                * len(g["T"]) * len(g["t"]))


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _fmt(v):
    return repr(v) if isinstance(v, float) else str(v)


def _json_default(o):
    if isinstance(o, float):
        return repr(o)
    raise TypeError(o)


def load_config(path) -> SweepConfig:
    """Read and validate a TOML sweep configuration (``tomllib``). Errors name the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    try:
        return SweepConfig.from_dict(raw)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


# --------------------------------------------------------------------------------------------------------
# The batched core: one training set, all (ρ, T) columns and all times
# --------------------------------------------------------------------------------------------------------

def _grid_core(kernel_fn, x_tr, zt_tr, yg_tr, zg_tr, z0_tr, x_te, zt_te, yg_te, z0_te, x_ref, a_star,
               onorm, cos_te, rho, T, T_unique, T_index, times, *, method, jitter, has_ref):
    """All metrics of one training set. Shapes: x_tr (n, d); zt_tr, yg_tr, zg_tr, z0_tr (n,); x_te (m, d);
    zt_te, yg_te, z0_te (m,); x_ref (R, d); a_star (R, P); onorm (P,); cos_te (m, P); rho, T, T_index (P,);
    T_unique (Q,); times (M,). Returns a dict of (M, P) arrays plus ``ok`` (factor usable)."""
    n = x_tr.shape[0]
    dt = x_tr.dtype
    k = kernel_fn(x_tr, None, "ntk")
    k = k + jitter * jnp.eye(n, dtype=dt)
    kx = kernel_fn(x_te, x_tr, "ntk")
    z_eff = effective_logits(zt_tr[:, None], yg_tr[:, None], rho[None, :], T[None, :])  # (n, P)
    dz = z_eff - z0_tr[:, None]
    dz_h = correction_logits(zt_tr[:, None], yg_tr[:, None], T_unique[None, :])  # (n, Q)
    rhs = jnp.concatenate([dz, (zg_tr - z0_tr)[:, None], (zt_tr - z0_tr)[:, None], dz_h], axis=1)
    P = dz.shape[1]
    if method == "chol":
        c = jax.scipy.linalg.cho_factor(k, lower=True)
        sol = jax.scipy.linalg.cho_solve(c, rhs)
        ok = _factor_usable(c[0]) & jnp.isfinite(sol).all()
        coef_t = sol[None, :, :P]  # times are all inf
    else:
        evals, evecs = jnp.linalg.eigh(k)
        proj = mm(evecs.T, rhs)
        sol = mm(evecs, _pinv_coeffs(evals)[:, None] * proj)  # proj reused: one projection
        inf_t = jnp.isinf(times)
        phi = _phi(evals[None, :], jnp.where(inf_t, 0, times)[:, None], n)
        phi = jnp.where(inf_t[:, None], _pinv_coeffs(evals)[None, :], phi)  # (M, n)
        coef_t = einsum("ij,tj,jp->tip", evecs, phi, proj[:, :P])  # (M, n, P)
        ok = jnp.isfinite(sol).all()
    f_te = z0_te[None, :, None] + einsum("mn,tnp->tmp", kx, coef_t)  # (M, m, P)
    risk = jnp.mean(zt_te[None, :, None] * f_te < 0, axis=1)
    error = jnp.mean((f_te > 0) != (yg_te[None, :, None] > 0.5), axis=1)
    kc = einsum("ij,tjp->tip", k, coef_t)
    w_norm = jnp.sqrt(jnp.maximum(jnp.sum(coef_t * kc, axis=1), 0))  # (M, P)
    # ⟨a, b⟩_Θ = aᵀ Θ⁻¹ b from the t = inf solution columns
    g_col, t_col, h_cols = sol[:, P], sol[:, P + 1], sol[:, P + 2:]
    gg = mm(zg_tr - z0_tr, g_col)
    cos_g = einsum("tnp,n->tp", coef_t, zg_tr - z0_tr) / (w_norm * jnp.sqrt(gg))
    tt = mm(zt_tr - z0_tr, t_col)
    gt = mm(zg_tr - z0_tr, t_col)
    gh = mm(zg_tr - z0_tr, h_cols)  # (Q,)
    th = mm(zt_tr - z0_tr, h_cols)
    hle_q = gh - gt / tt * th
    hle = jnp.broadcast_to(hle_q[T_index][None, :], w_norm.shape)
    out = dict(risk=risk, error=error, w_norm=w_norm, cos_g=cos_g, hle=hle,
               teacher_error=jnp.broadcast_to(jnp.mean((zt_te > 0) != (yg_te > 0.5)), w_norm.shape))
    if has_ref:
        kr = kernel_fn(x_tr, x_ref, "ntk")  # (n, R)
        inner = einsum("tnp,np->tp", coef_t, mm(kr, a_star))
        cos = inner / (w_norm * onorm[None, :])
        alpha = jnp.arccos(jnp.clip(jnp.abs(cos), 0, 1))
        out["alpha"] = alpha
        out["alpha_eq9"] = jnp.arccos(jnp.clip(w_norm / onorm[None, :], 0, 1))
        angles_te = jnp.arccos(jnp.clip(cos_te, 0, 1))  # (m, P)
        out["bound"] = jnp.mean(angles_te[None] > (jnp.pi / 2 - alpha)[:, None, :], axis=1)
        out["oracle_norm"] = jnp.broadcast_to(onorm[None, :], w_norm.shape)
    out["ok"] = ok
    return out


def _pairs(rho, T):
    rho = np.atleast_1d(np.asarray(rho, float))
    T = np.atleast_1d(np.asarray(T, float))
    r, tt = np.meshgrid(rho, T, indexing="ij")
    T_unique = np.unique(T)
    return r.ravel(), tt.ravel(), T_unique, np.searchsorted(T_unique, tt.ravel())


def evaluate_grid(kernel_fn: Callable, x_train, z_t_train, y_g_train, x_test, z_t_test, y_g_test, *,
                  rho, T, t=(INF,), z_g_train=None, z0_train=None, z0_test=None, jitter: float = 0.0,
                  reference=None):
    """Every Ji & Zhu metric of one training set on a ρ × T × t grid, with one kernel factorization.

    Args:
      kernel_fn: an ntkd / neural-tangents style ``kernel_fn(x1, x2, get)`` (the student's NTK).
      x_train ``(n, d)``, z_t_train ``(n,)`` teacher logits, y_g_train ``(n,)`` hard labels in {0, 1};
      x_test ``(m, d)``, z_t_test, y_g_test ``(m,)`` (test error is against y_g_test, transfer risk
      against z_t_test).
      rho ``(R,)`` in (0, 1], T ``(S,)`` > 0, t ``(M,)`` >= 0 (``inf`` = converged, Eq. 4; finite t
        follows Eq. S1, see the module docstring).
      z_g_train: ground-truth logits for ``cos_g`` and ``hle`` (default: the teacher's).
      z0_train, z0_test: the student's initial outputs (default 0, the mean predictor).
      jitter: absolute diagonal added to Θ_n.
      reference: optional ``(x_ref (R, d), z_t_ref, y_g_ref)`` to estimate the oracle Δw_* (§3.4) and
        get ``alpha``, ``alpha_eq9``, ``bound`` (Theorem 1) and ``oracle_norm``.

    Returns: dict of NumPy arrays of shape ``(M, len(rho), len(T))`` for the metrics of
    :data:`ntkd.store.METRICS` (those needing ``reference`` only when it is given), and ``factor``.
    """
    dt = jnp.result_type(float)
    arr = lambda a: jnp.asarray(a, dt)  # noqa: E731
    x_tr, x_te = arr(x_train), arr(x_test)
    n, m = x_tr.shape[0], x_te.shape[0]
    zt_tr, yg_tr, zt_te, yg_te = arr(z_t_train), arr(y_g_train), arr(z_t_test), arr(y_g_test)
    for name, a, size in (("z_t_train", zt_tr, n), ("y_g_train", yg_tr, n), ("z_t_test", zt_te, m),
                          ("y_g_test", yg_te, m)):
        if a.shape != (size,):
            raise ValueError(f"`{name}` must have shape ({size},); got {a.shape}")
    zg_tr = zt_tr if z_g_train is None else arr(z_g_train)
    z0_tr = jnp.zeros(n, dt) if z0_train is None else arr(z0_train)
    z0_te = jnp.zeros(m, dt) if z0_test is None else arr(z0_test)
    r, tt, T_unique, T_index = _pairs(rho, T)
    if (r <= 0).any() or (r > 1).any():
        raise ValueError("`rho` must lie in (0, 1]: ρ = 0 has no finite converged student (z_eff = ±inf).")
    if (tt <= 0).any():
        raise ValueError("`T` must be > 0.")
    times = np.atleast_1d(np.asarray(t, float))
    if (times < 0).any() or np.isnan(times).any():
        raise ValueError("`t` must be >= 0 (inf for the converged student).")
    has_ref = reference is not None
    if has_ref:
        a_star, onorm, cos_te, x_ref = _oracle(kernel_fn, reference, x_te, zt_te, yg_te, r, tt, jitter)
    else:
        x_ref, a_star, onorm, cos_te = x_tr[:1], jnp.zeros((1, len(r)), dt), jnp.ones(len(r), dt), \
            jnp.zeros((m, len(r)), dt)
    method = "chol" if np.isinf(times).all() else "eigh"
    args = (x_tr, zt_tr, yg_tr, zg_tr, z0_tr, x_te, zt_te, yg_te, z0_te, x_ref, a_star, onorm, cos_te,
            arr(r), arr(tt), arr(T_unique), jnp.asarray(T_index), arr(times))
    out = _jit_core(kernel_fn, method, float(jitter), has_ref)(*args)
    factor = method
    if method == "chol" and not bool(out["ok"]):
        out = _jit_core(kernel_fn, "eigh", float(jitter), has_ref)(*args)
        factor = "eigh"
    res = {k: np.asarray(v).reshape(len(times), len(np.atleast_1d(rho)), len(np.atleast_1d(T)))
           for k, v in out.items() if k != "ok"}
    res["factor"] = factor
    return res


_CORE_CACHE: dict = {}


def _jit_core(kernel_fn, method, jitter, has_ref, batched=False):
    key = (id(kernel_fn), method, jitter, has_ref, batched)
    if key not in _CORE_CACHE:
        f = partial(_grid_core, kernel_fn, method=method, jitter=jitter, has_ref=has_ref)
        if batched:  # per-seed arguments first (7), then shared ones
            f = jax.vmap(f, in_axes=(0,) * 5 + (None,) + (0,) * 3 + (None,) * 9)
        _CORE_CACHE[key] = (kernel_fn, jax.jit(f))  # keep kernel_fn alive so its id stays unique
    return _CORE_CACHE[key][1]


def _solve_psd(k, rhs):
    """Θ⁻¹ rhs by Cholesky, or the minimum-norm eigen-solution if the factor is unusable."""
    c = jax.scipy.linalg.cho_factor(k, lower=True)
    sol = jax.scipy.linalg.cho_solve(c, rhs)
    if bool(_factor_usable(c[0])) and bool(jnp.isfinite(sol).all()):
        return sol
    evals, evecs = jnp.linalg.eigh(k)
    return _pinv_solve(evals, evecs, rhs)


def _oracle(kernel_fn, reference, x_te, zt_te, yg_te, r, tt, jitter):
    """Min-norm oracle on the reference set: a_* = Θ_R⁻¹ z_eff(R) (R, P), ‖Δw_*‖ (P,), and the test
    cosines |cos ᾱ(φ(x), Δw_*)| (m, P) of Eq. 8."""
    dt = x_te.dtype
    x_ref, zt_ref, yg_ref = (jnp.asarray(a, dt) for a in reference)
    r_, t_ = jnp.asarray(r, dt), jnp.asarray(tt, dt)
    z_ref = effective_logits(zt_ref[:, None], yg_ref[:, None], r_[None, :], t_[None, :])
    k_ref = kernel_fn(x_ref, None, "ntk") + jitter * jnp.eye(x_ref.shape[0], dtype=dt)
    a_star = _solve_psd(k_ref, z_ref)
    onorm = jnp.sqrt(jnp.maximum(jnp.sum(z_ref * a_star, axis=0), 0))
    diag = jax.vmap(lambda x: kernel_fn(x[None], None, "ntk")[0, 0])(x_te)
    z_te = effective_logits(zt_te[:, None], yg_te[:, None], r_[None, :], t_[None, :])
    cos_te = jnp.clip(jnp.abs(z_te) / (onorm[None, :] * jnp.sqrt(diag)[:, None]), 0, 1)
    return a_star, onorm, cos_te, x_ref


# --------------------------------------------------------------------------------------------------------
# Tasks and teachers
# --------------------------------------------------------------------------------------------------------

def task_teacher(task: dict, *, dtype=None) -> Callable:
    """The teacher of a sweep task (module docstring): ``teacher(x, key) -> (z_t, z_g)``, teacher and
    ground-truth logits at inputs ``x (n, d)``; ``key`` drives the random kind and the sign flips."""
    from . import tasks as T_

    dtype = dtype or jnp.result_type(float)
    kind = task["kind"]
    tkey = jax.random.PRNGKey(task["task_seed"])
    if kind == "zero":
        return lambda x, key: (jnp.zeros(x.shape[0], dtype), jnp.zeros(x.shape[0], dtype))
    if kind == "random":
        def random_teacher(x, key):
            z = jax.random.normal(key, (x.shape[0],), dtype)
            return z, z
        return random_teacher
    mix = T_.gaussian_mixture(jax.random.fold_in(tkey, 0), task["modes"], amplitude=task["amplitude"])
    mix = T_.GaussianMixture(*(jnp.asarray(a, dtype) for a in mix))
    if kind == "mixture":
        p = task["p_flip"]

        def mixture_teacher(x, key):
            zg = mix.logits(x)
            return (T_.flip_signs(key, zg, p) if p > 0 else zg), zg
        return mixture_teacher
    if kind == "network_teacher":
        f = _network_teacher(task, mix, tkey, dtype)
        return lambda x, key: (f(x), mix.logits(x))
    # kernel_teacher
    kfn = _kernel(task["teacher_depth"], "relu", 1.0, 1.0)
    x_fit = T_.sample_inputs(jax.random.fold_in(tkey, 1), task["fit_n"], dtype=dtype)
    y_fit = task["label_scale"] * jnp.where(mix.logits(x_fit) > 0, 1.0, -1.0).astype(dtype)
    fit_key = (task["teacher_depth"], task["fit_n"], task["task_seed"], task["modes"], task["amplitude"],
               jnp.dtype(dtype).name)
    coef = _teacher_coef(fit_key, kfn, x_fit, y_fit, task["stop_time"])
    r = task["reduction"]

    def kernel_teacher(x, key):
        zt = jnp.concatenate([r * mm(kfn(xb, x_fit, "ntk"), coef) for xb in _batches(x, 4096)])
        return zt, mix.logits(x)
    return kernel_teacher


_TEACHER_EIG: dict = {}
_TEACHER_NET: dict = {}


def _network_teacher(task, mix, tkey, dtype):
    """A finite ReLU teacher (width ``teacher_width``, depth ``teacher_depth``, NTK parameterization) trained
    with Adam (``teacher_lr``) on the hard labels 1{z_g > 0} of the mixture with online batches of
    ``teacher_batch`` fresh samples per epoch, stopped at ``stop_epoch`` (:func:`ntkd.finite.train_teacher`),
    times the reduction factor. Trained once per process and task."""
    import optax

    from .finite import mlp, network_teacher, train_teacher

    key = tuple(task[k] for k in ("teacher_width", "teacher_depth", "stop_epoch", "teacher_lr", "teacher_batch",
                                  "task_seed", "modes", "amplitude")) + (jnp.dtype(dtype).name,)
    if key not in _TEACHER_NET:
        init_fn, apply_fn = mlp(mix.centers.shape[1], task["teacher_width"], task["teacher_depth"], dtype=dtype)
        run = train_teacher(apply_fn, init_fn(jax.random.fold_in(tkey, 2)), mix.logits,
                            epochs=max(1, task["stop_epoch"]), batch_size=task["teacher_batch"],
                            stop_epochs=[task["stop_epoch"]], optimizer=optax.adam(task["teacher_lr"]),
                            seed=task["task_seed"])
        _TEACHER_NET.clear()
        _TEACHER_NET[key] = (apply_fn, run.at(task["stop_epoch"]))
    apply_fn, params = _TEACHER_NET[key]
    return network_teacher(apply_fn, params, reduction=task["reduction"])


def _teacher_coef(fit_key, kfn, x_fit, y_fit, stop_time):
    """Gradient-flow (MSE, loss normalized by fit_n) coefficients of the teacher at ``stop_time``; the
    eigendecomposition of the fit kernel is computed once per fit set and reused for every stop time."""
    if fit_key not in _TEACHER_EIG:
        _TEACHER_EIG.clear()
        _TEACHER_EIG[fit_key] = jnp.linalg.eigh(kfn(x_fit, None, "ntk"))
    evals, evecs = _TEACHER_EIG[fit_key]
    n = x_fit.shape[0]
    phi = _pinv_coeffs(evals) if math.isinf(stop_time) else _phi(evals, stop_time, n)
    return mm(evecs, phi * mm(evecs.T, y_fit))


def _batches(x, size):
    return [x[i:i + size] for i in range(0, x.shape[0], size)] or [x]


# --------------------------------------------------------------------------------------------------------
# The stored, resumable, sharded sweep
# --------------------------------------------------------------------------------------------------------

def _progress(msg, stream):
    if stream is not None:
        print(msg, file=stream, flush=True)


def _keys(seed):
    base = jax.random.PRNGKey(seed)
    return {name: jax.random.fold_in(base, i) for i, name in enumerate(("train", "test", "ref", "init"))}


def _init_outputs(student, depth, key, xs, dtype):
    """Outputs of an initialized finite NTK-parameterized network (init = "network") at each x in xs."""
    from flax import nnx

    from .finite import NTKMLP

    model = NTKMLP(xs[0].shape[1], student["init_width"], depth, activation=student["activation"],
                   W_std=student["W_std"], b_std=student["b_std"],
                   rngs=nnx.Rngs(int(jax.random.randint(key, (), 0, 2**31 - 1))), dtype=dtype)
    return [jnp.reshape(model(x), (x.shape[0],)) for x in xs]


def _mesh():
    from jax.sharding import Mesh

    return Mesh(np.array(jax.local_devices()), ("s",))


def run_sweep(config: SweepConfig, out, *, progress=sys.stderr, max_blocks: Optional[int] = None) -> Path:
    """Run (or resume) a sweep; results go to ``out/results.sqlite`` (:class:`ntkd.store.ResultsStore`).

    Blocks are (variant, depth, n, seed) units; seeds of one (variant, depth, n) are computed together,
    ``vmap``-ed and sharded over ``jax.local_devices()``, in chunks bounded by ``eval.memory_gib``
    (override with ``eval.seed_chunk``). Each chunk's rows are committed in one transaction as it
    finishes, so a killed run loses at most the chunk in flight, and rerunning the same command skips
    every finished block. ``max_blocks`` stops after that many new blocks (for tests). Progress lines go
    to ``progress`` (None for silence). Returns the store path.
    """
    from jax.sharding import NamedSharding, PartitionSpec as PS

    from . import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.sqlite"
    if config.dtype == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
    (out / "config.json").write_text(config.to_json())
    g, st, ev = config.grid, config.student, config.eval
    n_max, m = max(g["n"]), ev["n_test"]
    r, tt, T_unique, T_index = _pairs(g["rho"], g["T"])
    times = np.asarray(g["t"], float)
    method = "chol" if np.isinf(times).all() else "eigh"
    mesh = _mesh()
    n_dev = mesh.devices.size
    shard, repl = NamedSharding(mesh, PS("s")), NamedSharding(mesh, PS())
    keys = _keys(config.seed)
    x_te = jax.random.normal(keys["test"], (m, 2), dtype) * 5.0
    x_ref = jax.random.normal(keys["ref"], (ev["n_ref"], 2), dtype) * 5.0 if ev["n_ref"] else None
    jitter = st["jitter"]
    new_blocks = 0
    t_start = time.perf_counter()
    with ResultsStore(path) as store:
        resumed = store.claim(config.to_json(), config.hash(), __version__)
        done = store.done_blocks()
        units = [(vl, task, L, n) for vl, task in config.variants() for L in config.depths() for n in g["n"]]
        total = len(units) * len(g["seeds"])
        _progress(f"ntkd sweep '{config.name}': {total} blocks × {len(r) * len(times)} points "
                  f"({config.n_rows()} rows), {n_dev} device(s); "
                  f"{'resuming, ' + str(len(done)) + ' blocks already done' if resumed else 'new store'} "
                  f"-> {path}", progress)
        cache = {}
        for vl, task, L, n in units:
            todo = [s for s in g["seeds"] if _block(vl, L, n, s) not in done]
            if not todo:
                continue
            kfn = _student_kernel(st, L)
            ckey = (vl, L)
            if ckey not in cache:
                cache.clear()
                teacher = task_teacher(task, dtype=dtype)
                zt_te, zg_te = teacher(x_te, jax.random.fold_in(keys["test"], 1))
                yg_te = _labels(task, zt_te, zg_te)
                ref = None
                if x_ref is not None:
                    zt_ref, zg_ref = teacher(x_ref, jax.random.fold_in(keys["ref"], 1))
                    a_star, onorm, cos_te, _ = _oracle(kfn, (x_ref, zt_ref, _labels(task, zt_ref, zg_ref)),
                                                       x_te, zt_te, yg_te, r, tt, jitter)
                    ref = (a_star, onorm, cos_te)
                    for p, (rho_p, T_p) in enumerate(zip(r, tt)):
                        ang = np.arccos(np.clip(np.asarray(cos_te[:, p]), 0, 1))
                        store.put_curve(f"pbeta|{vl}|{L}|{rho_p!r}|{T_p!r}", {
                            "variant": vl, "depth": L, "rho": float(rho_p), "T": float(T_p),
                            "oracle_norm": float(onorm[p]), "n_ref": ev["n_ref"], "betas": BETAS.tolist(),
                            "p": [float(np.mean(ang > b)) for b in BETAS]})
                cache[ckey] = (teacher, zt_te, zg_te, yg_te, ref, {})
            teacher, zt_te, zg_te, yg_te, ref, pools = cache[ckey]
            per_seed = 8.0 * (3 * n * n + n * (m + ev["n_ref"]) + m * len(r) * len(times)) * 2
            chunk = ev["seed_chunk"] or max(1, int(ev["memory_gib"] * 2**30 // per_seed))
            chunk = max(n_dev, (chunk // n_dev) * n_dev)
            for i in range(0, len(todo), chunk):
                seeds = todo[i:i + chunk]
                tc = time.perf_counter()
                data = [_seed_data(pools, s, teacher, task, st, L, n_max, keys, x_te, zt_te, yg_te, dtype)
                        for s in seeds]
                pad = (-len(seeds)) % n_dev
                data = data + [data[-1]] * pad
                stacked = [jnp.stack([d[j][:n] if j < 5 else d[j] for d in data]) for j in range(8)]
                per = [jax.device_put(a, shard) for a in stacked]
                x_ref_, a_star, onorm, cos_te = ((x_ref,) + ref) if ref else (
                    x_te[:1], jnp.zeros((1, len(r)), dtype), jnp.ones(len(r), dtype),
                    jnp.zeros((m, len(r)), dtype))
                shared = [jax.device_put(jnp.asarray(a, dtype), repl)
                          for a in (x_ref_, a_star, onorm, cos_te, r, tt, T_unique)]
                shared.insert(7, jax.device_put(jnp.asarray(T_index), repl))
                shared.append(jax.device_put(jnp.asarray(times, dtype), repl))
                # argument order of _grid_core: 5 per-seed, x_test, 3 per-seed, 9 shared
                args = per[:5] + [jax.device_put(x_te, repl)] + per[5:] + shared
                f = _jit_core(kfn, method, jitter, ref is not None, batched=True)
                res = {k: np.asarray(v) for k, v in f(*args).items()}
                factors = [method] * len(seeds)
                bad = np.flatnonzero(~res["ok"][:len(seeds)])
                if bad.size and method == "chol":  # unusable Cholesky factor: redo those seeds by eigh
                    fe = _jit_core(kfn, "eigh", jitter, ref is not None, batched=True)
                    per_seed = (0, 1, 2, 3, 4, 6, 7, 8)
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
                store.write_blocks(blocks, __version__)
                new_blocks += len(seeds)
                done.update(blocks)
                el = time.perf_counter() - t_start
                left = total - len(done)
                eta = el / new_blocks * left
                _progress(f"  [{len(done)}/{total} blocks] {vl} L={L} n={n} seeds {seeds[0]}..{seeds[-1]}: "
                          f"{time.perf_counter() - tc:.1f} s (elapsed {el:.0f} s, ETA {eta:.0f} s)", progress)
                if max_blocks is not None and new_blocks >= max_blocks:
                    return path
    return path


def _block(variant, depth, n, seed):
    return f"{variant}|L={depth}|n={n}|seed={seed}"


def _labels(task, zt, zg):
    z = zt if task["perfect"] else zg
    return (z > 0).astype(zt.dtype)


def _student_kernel(st, depth):
    return _kernel(depth, st["activation"], st["W_std"], st["b_std"])


_KFN: dict = {}


def _kernel(depth, activation, W_std, b_std):
    """One kernel_fn object per configuration, so compiled programs are reused across calls."""
    key = (depth, activation, W_std, b_std)
    if key not in _KFN:
        _KFN[key] = mlp_kernel_fn(depth, activation=activation, W_std=W_std, b_std=b_std)
    return _KFN[key]


def _seed_data(pools, seed, teacher, task, st, depth, n_max, keys, x_te, zt_te, yg_te, dtype):
    """Per-seed arrays on the nested pool of n_max training inputs (prefixes give the n grid):
    x, z_t, y_g, z_g, z0 on the pool; z_t, y_g, z0 on the test set."""
    if seed not in pools:
        k = jax.random.fold_in(keys["train"], seed)
        x = jax.random.normal(jax.random.fold_in(k, 0), (n_max, 2), dtype) * 5.0
        zt, zg = teacher(x, jax.random.fold_in(k, 1))
        yg = _labels(task, zt, zg)
        zt_te_s, yg_te_s = zt_te, yg_te
        if task["kind"] == "random":  # i.i.d. logits: a fresh draw at the test points for each seed
            zt_te_s, _ = teacher(x_te, jax.random.fold_in(k, 2))
            yg_te_s = _labels(task, zt_te_s, zt_te_s)
        if st["init"] == "network":
            z0, z0_te = _init_outputs(st, depth, jax.random.fold_in(keys["init"], seed), [x, x_te], dtype)
        else:
            z0, z0_te = jnp.zeros(n_max, dtype), jnp.zeros(x_te.shape[0], dtype)
        pools[seed] = (x, zt, yg, zg, z0, zt_te_s, yg_te_s, z0_te)
    return pools[seed]
