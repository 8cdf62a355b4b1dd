"""Finite-width networks with exactly the conventions of :func:`ntkd.mlp_kernel_fn`, trained with optax on
the distillation loss of Ji & Zhu (2020, Eq. 2), and compared with the kernel limit.

Networks. ``NTKMLP`` is a Flax NNX MLP in the NTK parameterization (Ji & Zhu Eq. 1): every weight and
bias is drawn from N(0, 1) and the layer computes ``h = W_std * x @ W / sqrt(fan_in) + b_std * b``. As its
width grows, its empirical NTK at initialization converges to ``mlp_kernel_fn(depth, ...)`` and its
outputs to a GP with the NNGP kernel. :func:`mlp` gives the same network as a pure pair
``init_fn(key) -> params`` / ``apply_fn(params, x)``, so that many seeds can be initialized and trained
in one ``vmap``.

Training (:func:`train_kd`): optax (any ``GradientTransformation``; SGD and Adam are what the paper and
the tests use) on the mean KD loss of Eq. 2 with (ρ, T), for the network itself or its linearization
around initialization (``linearized=True``, ``f(w0) + J(w0)·Δw``, one ``jax.jvp``, as the paper's
``torch.autograd.functional.jvp``). Data are a fixed training set (full batch or random minibatches
without replacement) or an ``online`` sampler that draws fresh samples every step, as the paper trains
its teachers and approximates the oracle weight changes. Several runs (seeds × ρ × T) train together in
one ``vmap``; long runs are checkpointed after every logging interval and resume.

Conventions and decisions (the brief's [G] points, fixed here and tested):

* One *epoch* of online training is one step on one fresh batch (the paper regenerates its samples
  every epoch; with online batches an epoch and a step coincide).
* Eq. 4 (the converged student, Δw in span φ(X)) holds for gradient descent and SGD on the linearized
  network: every update is a combination of the rows of J(X). Adam's per-coordinate scaling leaves that
  span, so an Adam-trained linearized student interpolates the same effective logits on the training
  set but may differ off it; :func:`student_vs_kernel` reports the gap for whatever optimizer it is
  given, and the tests that check Eq. 4 exactly use SGD.
* The kernel prediction of a finite student keeps the network's own initial function:
  ``f̂(x) = f(x; w0) + Θ(x, X) Θ⁻¹ (z_eff(X) - f(X; w0))`` (Eq. 4 with the analytic Θ of
  :func:`ntkd.mlp_kernel_fn`), so the gap measures the kernel approximation, not the GP draw of f(·; w0).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ._checks import check_finite, check_inputs_2d, check_int, check_positive
from ._linalg import mm
from .distill import _check_labels, _check_rho, _check_T, _loss_terms, _soft_scale, converged_student
from .distill import effective_logits
from .empirical import empirical_ntk, linearize
from .kernels import _parse_activation, mlp_kernel_fn

__all__ = ["NTKMLP", "activation_fn", "mlp", "TrainLog", "train_kd", "geometric_steps", "online_sampler",
           "train_teacher", "TeacherRun", "network_teacher", "ntk_convergence", "student_vs_kernel",
           "width_gap", "loglog_slope"]


def activation_fn(activation):
    """The pointwise function behind an ``activation`` spec of :func:`ntkd.mlp_kernel_fn`."""
    act = _parse_activation(activation)
    if act.name == "ab_relu":
        a, b = act.params
        return lambda x: a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0)
    if act.name == "erf":
        a, b, c = act.params
        return lambda x: a * jax.scipy.special.erf(b * x) + c
    return lambda x: x


class NTKMLP(nnx.Module):
    """``depth`` hidden layers of ``width`` units, NTK parameterization, ``out_dim`` outputs.

    Call on ``x`` of shape ``(n, d)``; returns ``(n, out_dim)`` (or ``(n,)`` when ``out_dim is None``, the
    single logit of Ji & Zhu). ``b_std=None`` builds a network without biases.
    """

    def __init__(self, in_dim: int, width: int, depth: int, *, out_dim: Optional[int] = None,
                 activation="relu", W_std: float = 1.0, b_std: Optional[float] = 1.0,
                 rngs: nnx.Rngs, dtype=jnp.float32):
        in_dim = check_int(in_dim, "in_dim", minimum=1)
        width = check_int(width, "width", minimum=1)
        depth = check_int(depth, "depth", minimum=0)
        self.W_std = check_positive(W_std, "W_std")
        self.b_std = None if b_std is None else check_positive(b_std, "b_std", allow_zero=True)
        self.act = activation_fn(activation)
        self.scalar = out_dim is None
        dims = [in_dim] + [width] * depth + [1 if out_dim is None else check_int(out_dim, "out_dim", minimum=1)]
        self.weights = nnx.List([nnx.Param(jax.random.normal(rngs.params(), (a, b), dtype))
                                 for a, b in zip(dims[:-1], dims[1:])])
        self.biases = nnx.List([nnx.Param(jax.random.normal(rngs.params(), (b,), dtype)) for b in dims[1:]]
                               if self.b_std is not None else [])

    def __call__(self, x):
        h = x
        n_layers = len(self.weights)
        for i in range(n_layers):
            w = self.weights[i][...]
            h = self.W_std * mm(h, w) / jnp.sqrt(jnp.asarray(w.shape[0], h.dtype))
            if self.b_std is not None:
                h = h + self.b_std * self.biases[i][...]
            if i < n_layers - 1:
                h = self.act(h)
        return h[:, 0] if self.scalar else h


def mlp(in_dim: int, width: int, depth: int, *, out_dim: Optional[int] = None, activation="relu",
        W_std: float = 1.0, b_std: Optional[float] = 1.0, dtype=jnp.float32):
    """:class:`NTKMLP` as a pure pair ``(init_fn, apply_fn)``.

    ``init_fn(key) -> params`` (an ``nnx.State`` pytree; ``jax.vmap(init_fn)(keys)`` initializes many
    seeds at once, each identical to ``NTKMLP(..., rngs=nnx.Rngs(params=key))``) and
    ``apply_fn(params, x (n, in_dim)) -> (n,) | (n, out_dim)``. Its infinite-width kernels are
    ``mlp_kernel_fn(depth, W_std=W_std, b_std=b_std, activation=activation)``.
    """
    def build(key):
        return NTKMLP(in_dim, width, depth, out_dim=out_dim, activation=activation, W_std=W_std,
                      b_std=b_std, rngs=nnx.Rngs(params=key), dtype=dtype)

    abstract = nnx.eval_shape(lambda: build(jax.random.PRNGKey(0)))
    graphdef, _, rest = nnx.split(abstract, nnx.Param, ...)

    def init_fn(key):
        return nnx.split(build(key), nnx.Param, ...)[1]

    def apply_fn(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    return init_fn, apply_fn


# --------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------

class TrainLog(NamedTuple):
    """What :func:`train_kd` records at each of its ``L`` logging steps (``B`` = runs, absent for one run).

    steps ``(L,)`` (number of optimizer steps taken); loss ``([B,] L)`` (mean KD loss on the evaluation
    set: the training set, or one fixed batch of the online sampler); dw_norm ``([B,] L)`` (‖w - w0‖₂ over
    all parameters); train_logits ``([B,] L, n_eval)``; test_logits ``([B,] L, m)`` or None; params
    (the parameter pytree with a ``([B,] L, ...)`` prefix) when ``keep_params=True``, else None.
    """

    steps: np.ndarray
    loss: np.ndarray
    dw_norm: np.ndarray
    train_logits: np.ndarray
    test_logits: Optional[np.ndarray]
    params: Optional[object]


def geometric_steps(steps: int, per_decade: int = 8) -> np.ndarray:
    """0, then about ``per_decade`` integer steps per decade up to ``steps`` (the default log schedule)."""
    steps = check_int(steps, "steps", minimum=1)
    k = max(2, int(math.ceil(math.log10(steps) * per_decade)) + 1)
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, steps, k)).astype(int)]))


def online_sampler(target: Callable, *, d: int = 2, scale: float = 5.0, dtype=None,
                   labels: str = "target") -> Callable:
    """A sampler of fresh samples for online training: ``sampler(key, b) -> (x, z_t, y_g)``.

    ``x ~ N(0, scale² I_d)`` (Ji & Zhu's input distribution with the defaults); ``target(x)`` returns the
    teacher logits ``z_t`` or a pair ``(z_t, z_g)``. ``y_g = 1{z_g > 0}`` (``z_g = z_t`` when target returns one
    array). ``target`` must be traceable (it runs inside the jitted training loop).
    """
    d = check_int(d, "d", minimum=1)
    scale = check_positive(scale, "scale")
    dtype = dtype or jnp.result_type(float)

    def sampler(key, b):
        x = scale * jax.random.normal(key, (b, d), dtype)
        out = target(x)
        z_t, z_g = out if isinstance(out, tuple) else (out, out)
        return x, z_t.astype(dtype), (z_g > 0).astype(dtype)

    return sampler


def _fingerprint(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, (np.ndarray, jax.Array)):
            a = np.ascontiguousarray(np.asarray(p))
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()[:24]


def _tree_sq_dist(a, b):
    return sum(jnp.sum((x - y) ** 2) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _save_checkpoint(path: Path, fingerprint, done, state, logs):
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"s{i}": np.asarray(v) for i, v in enumerate(leaves)}
    for k, v in logs.items():
        arrays[f"log_{k}"] = np.stack(v) if v else np.zeros(0)
    meta = json.dumps({"fingerprint": fingerprint, "done": done, "log_keys": sorted(logs)})
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, meta=np.array(meta), **arrays)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fingerprint, state_like):
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        if meta["fingerprint"] != fingerprint:
            raise ValueError(f"`checkpoint` {str(path)!r} was written by a different run (other data, "
                             "model, ρ/T/seeds, schedule or optimizer_id); delete it or pass another path.")
        leaves, treedef = jax.tree_util.tree_flatten(state_like)
        state = jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(f[f"s{i}"], dtype=l.dtype) for i, l in enumerate(leaves)])
        logs = {k: list(f[f"log_{k}"]) for k in meta["log_keys"]}
    return meta["done"], state, logs


def _progress(stream, msg):
    if stream is not None:
        print(msg, file=stream, flush=True)


def train_kd(apply_fn: Callable, params0, data, *, rho=1.0, T=1.0, optimizer=None, steps: int,
             batch_size: Optional[int] = None, log_steps: Optional[Sequence[int]] = None, x_test=None,
             linearized: bool = False, soft_scale: Union[float, str] = 1.0, seed=0,
             runs: Optional[int] = None, keep_params: bool = False, checkpoint=None,
             optimizer_id: str = "", progress=None) -> tuple:
    """Train a network (or its linearization) with optax on the KD loss of Ji & Zhu Eq. 2.

    Args:
      apply_fn: ``apply_fn(params, x (b, d)) -> (b,)`` logits (e.g. from :func:`mlp`).
      params0: initial parameters. With ``runs=B`` every leaf carries a leading axis of B runs (e.g.
        ``jax.vmap(init_fn)(keys)``), trained together in one ``vmap``.
      data: a fixed training set ``(x (n, d), z_t (n,), y_g (n,))`` with y_g in {0, 1}, or an online
        sampler ``sampler(key, b) -> (x, z_t, y_g)`` (:func:`online_sampler`) drawing fresh samples each
        step (then ``batch_size`` is required).
      rho, T: soft ratio in [0, 1] and temperature > 0; scalars, or ``(B,)`` arrays with ``runs=B``.
      optimizer: an optax ``GradientTransformation``; default ``optax.adam(1e-2)`` (the paper's students).
      steps: optimizer steps. batch_size: ``None`` = full batch (fixed data); an int draws that many
        samples per step (without replacement from a fixed set, or fresh from the sampler).
      log_steps: increasing step counts in [0, steps] at which to log (default :func:`geometric_steps`);
        ``steps`` is always logged.
      x_test: optional ``(m, d)`` inputs whose logits are logged.
      linearized: train ``f(w0) + J(w0)·(w - w0)`` instead of the network.
      soft_scale: 1 (paper) or ``"T2"``, as in :func:`ntkd.kd_loss`.
      seed: int (or ``(B,)`` ints) driving the minibatch draws; runs with equal seeds see equal batches,
        and then each batch is drawn once and shared (cheaper).
      keep_params: also log the parameters at every log step (teacher checkpoints).
      checkpoint: path of an ``.npz`` file; state and logs are written after every logging interval and
        a rerun with the same arguments resumes from it (another run's file is refused).
      optimizer_id: a string identifying the optimizer and its hyper-parameters; it enters the
        checkpoint's fingerprint (optax transformations cannot be hashed reliably).
      progress: a text stream for one line per logging interval (e.g. ``sys.stderr``), or None.

    Returns:
      ``(params, log)``: the final parameters (with the runs axis when ``runs`` is given) and a
      :class:`TrainLog` of NumPy arrays.
    """
    if not callable(apply_fn):
        raise ValueError("`apply_fn` must be callable as apply_fn(params, x).")
    steps = check_int(steps, "steps", minimum=0)
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    if not hasattr(optimizer, "init") or not hasattr(optimizer, "update"):
        raise ValueError("`optimizer` must be an optax GradientTransformation, e.g. optax.sgd(0.1).")
    single = runs is None
    B = 1 if single else check_int(runs, "runs", minimum=1)
    leaves0 = jax.tree_util.tree_leaves(params0)
    if not leaves0:
        raise ValueError("`params0` has no arrays; pass the parameters of the network.")
    dtype = leaves0[0].dtype
    if single:
        params0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], params0)
    elif any(jnp.shape(l)[:1] != (B,) for l in leaves0):
        raise ValueError(f"with `runs`={B}, every leaf of `params0` needs a leading axis of {B} runs "
                         "(e.g. jax.vmap(init_fn)(keys)).")

    def per_run(v, name, check):
        a = check(v).astype(dtype)
        if a.ndim > 1 or (a.ndim == 1 and (single or a.shape[0] != B)):
            raise ValueError(f"`{name}` must be a scalar" + ("" if single else f" or have shape ({B},)")
                             + f"; got shape {a.shape}.")
        return jnp.broadcast_to(a, (B,))

    rho_b = per_run(rho, "rho", _check_rho)
    T_b = per_run(T, "T", _check_T)
    s_b = _soft_scale(soft_scale, T_b) * jnp.ones((B,), dtype)
    seeds = np.broadcast_to(np.asarray(seed), (B,)) if np.ndim(seed) <= 1 else None
    if seeds is None or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"`seed` must be an int or {B} ints; got {seed!r}.")
    shared = bool((seeds == seeds[0]).all())
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))

    online = callable(data)
    if online:
        if batch_size is None:
            raise ValueError("online training draws `batch_size` fresh samples per step; pass batch_size.")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        sampler = data
        x_eval, zt_eval, yg_eval = sampler(jax.random.PRNGKey(2**31 - 1), batch_size)
        data_parts = ["online", getattr(sampler, "__qualname__", "")]
    else:
        try:
            x_tr, zt_tr, yg_tr = data
        except (TypeError, ValueError):
            raise ValueError("`data` must be (x, z_t, y_g) arrays or a sampler(key, b) callable.") from None
        x_tr = check_inputs_2d(x_tr, "data x").astype(dtype)
        zt_tr = jnp.asarray(zt_tr, dtype)
        check_finite(zt_tr, "data z_t")
        yg_tr = _check_labels(yg_tr).astype(dtype)
        n = x_tr.shape[0]
        if zt_tr.shape != (n,) or yg_tr.shape != (n,):
            raise ValueError(f"`data`: x has {n} rows but z_t has shape {zt_tr.shape} and y_g {yg_tr.shape}; "
                             f"give ({n},) logits and labels.")
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", minimum=1)
            if batch_size > n:
                raise ValueError(f"`batch_size`={batch_size} exceeds the {n} training samples.")
        x_eval, zt_eval, yg_eval = x_tr, zt_tr, yg_tr
        data_parts = [x_tr, zt_tr, yg_tr]
    if x_test is not None:
        x_test = check_inputs_2d(x_test, "x_test").astype(dtype)
        if x_test.shape[1] != x_eval.shape[1]:
            raise ValueError(f"`x_test` has {x_test.shape[1]} features but the data have {x_eval.shape[1]}.")

    log_at = geometric_steps(max(steps, 1)) if log_steps is None else np.asarray(log_steps, int)
    if log_at.ndim != 1 or (np.diff(log_at) <= 0).any() or (log_at < 0).any() or (log_at > steps).any():
        raise ValueError(f"`log_steps` must be increasing integers in [0, {steps}]; got {log_steps!r}.")
    log_at = np.unique(np.concatenate([log_at, [steps]]))

    def model(p, p0):
        return linearize(apply_fn, p0) if linearized else apply_fn

    def loss_of(p, p0, x, zt, yg, r, t, s):
        return jnp.mean(_loss_terms(model(p, p0)(p, x), zt, yg, r, t, s))

    def draw(key, i):
        k = jax.random.fold_in(key, i)
        if online:
            return sampler(k, batch_size)
        if batch_size is None:
            return x_tr, zt_tr, yg_tr
        idx = jax.random.choice(k, x_tr.shape[0], (batch_size,), replace=False)
        return x_tr[idx], zt_tr[idx], yg_tr[idx]

    def update(p, st, p0, r, t, s, batch):
        g = jax.grad(loss_of)(p, p0, *batch, r, t, s)
        upd, st = optimizer.update(g, st, p)
        return optax.apply_updates(p, upd), st

    run_axes = (0, 0, 0, 0, 0, 0)

    @jax.jit
    def chunk(params, opt_state, p0, r, t, s, keys, start, stop):
        def body(i, carry):
            p, st = carry
            if shared:
                batch = draw(keys[0], i)
                return jax.vmap(update, run_axes + (None,))(p, st, p0, r, t, s, batch)
            batch = jax.vmap(draw, (0, None))(keys, i)
            return jax.vmap(update, run_axes + (0,))(p, st, p0, r, t, s, batch)
        return jax.lax.fori_loop(start, stop, body, (params, opt_state))

    @jax.jit
    def observe(params, p0, r, t, s):
        def one(p, q, r, t, s):
            f = model(p, q)
            z = f(p, x_eval)
            out = {"loss": jnp.mean(_loss_terms(z, zt_eval, yg_eval, r, t, s)),
                   "dw_norm": jnp.sqrt(_tree_sq_dist(p, q)), "train_logits": z}
            if x_test is not None:
                out["test_logits"] = f(p, x_test)
            if keep_params:
                out["params"] = p
            return out
        return jax.vmap(one)(params, p0, r, t, s)

    opt_state = jax.vmap(optimizer.init)(params0)
    state = (params0, opt_state)
    logs: dict = {}
    done = 0
    path = None
    if checkpoint is not None:
        path = Path(checkpoint)
        fp = _fingerprint([*leaves0, *data_parts, rho_b, T_b, s_b, seeds, steps, batch_size, log_at.tolist(),
                           linearized, x_test if x_test is not None else None, keep_params, optimizer_id,
                           "v1"])
        if path.exists():
            done, state, logs = _load_checkpoint(path, fp, state)
            _progress(progress, f"train_kd: resuming from {path} at log point {done}/{len(log_at)}")
    t0 = time.time()
    prev = 0 if done == 0 else int(log_at[done - 1])
    for j in range(done, len(log_at)):
        stop = int(log_at[j])
        if stop > prev:
            state = chunk(*state[:2], params0, rho_b, T_b, s_b, keys, prev, stop)
        obs = observe(state[0], params0, rho_b, T_b, s_b)
        obs = {k: (np.asarray(v) if k != "params" else jax.tree_util.tree_map(np.asarray, v))
               for k, v in obs.items()}
        if keep_params:
            leaves = jax.tree_util.tree_leaves(obs.pop("params"))
            for i, leaf in enumerate(leaves):
                logs.setdefault(f"p{i}", []).append(leaf)
        for k, v in obs.items():
            logs.setdefault(k, []).append(v)
        if not np.isfinite(obs["loss"]).all():
            raise FloatingPointError(f"train_kd: the loss became non-finite by step {stop}; lower the "
                                     "optimizer's learning rate.")
        prev = stop
        if path is not None:
            _save_checkpoint(path, fp, j + 1, state, logs)
        el = time.time() - t0
        _progress(progress, f"  [step {stop}/{steps}] loss {np.mean(obs['loss']):.4g} "
                            f"‖Δw‖ {np.mean(obs['dw_norm']):.4g} (elapsed {el:.0f} s)")

    def stacked(k):  # (L, B, ...) -> (B, L, ...)
        return np.moveaxis(np.stack(logs[k]), 0, 1)

    params_log = None
    if keep_params:
        pleaves, ptree = jax.tree_util.tree_flatten(params0)
        params_log = jax.tree_util.tree_unflatten(ptree, [stacked(f"p{i}") for i in range(len(pleaves))])
    log = TrainLog(log_at, stacked("loss"), stacked("dw_norm"), stacked("train_logits"),
                   stacked("test_logits") if x_test is not None else None, params_log)
    params = state[0]
    if single:
        params = jax.tree_util.tree_map(lambda a: a[0], params)
        log = TrainLog(log.steps, *[None if v is None else jax.tree_util.tree_map(lambda a: a[0], v)
                                    for v in log[1:]])
    return params, log


# --------------------------------------------------------------------------------------------------------
# Teachers
# --------------------------------------------------------------------------------------------------------

class TeacherRun(NamedTuple):
    """A teacher trained on hard labels with online batches (:func:`train_teacher`).

    epochs ``(E,)`` (the stopping epochs); params (pytree with a leading ``(E,)`` axis: the checkpoint at
    each epoch); test_error ``(E,)`` (fraction of ``x_test`` where sign(f) ≠ sign(ground truth));
    log (:class:`TrainLog` of the whole run).
    """

    epochs: np.ndarray
    params: object
    test_error: np.ndarray
    log: TrainLog

    def at(self, epoch: int):
        """Parameters of the checkpoint at ``epoch`` (one of ``epochs``)."""
        hits = np.flatnonzero(self.epochs == epoch)
        if hits.size == 0:
            raise ValueError(f"`epoch`={epoch} is not a checkpoint; choose one of {self.epochs.tolist()}.")
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a[hits[0]]), self.params)


def train_teacher(apply_fn: Callable, params0, ground_truth: Callable, *, epochs: int, batch_size: int,
                  stop_epochs: Sequence[int], optimizer=None, seed: int = 0, d: int = 2, scale: float = 5.0,
                  n_test: int = 4096, checkpoint=None, optimizer_id: str = "", progress=None) -> TeacherRun:
    """Train a teacher network on the hard labels ``1{z_g(x) > 0}`` of a ground-truth logit function with
    online batches (fresh ``x ~ N(0, scale² I_d)`` every epoch; Ji & Zhu §6), keeping early-stopping
    checkpoints at ``stop_epochs``.

    The loss is the hard-label cross-entropy (Eq. 2 with ρ = 0). Returns a :class:`TeacherRun`; turn a
    checkpoint into a teacher with ``network_teacher(apply_fn, run.at(epoch), reduction=r)``.
    """
    epochs = check_int(epochs, "epochs", minimum=1)
    stops = np.unique(np.asarray(stop_epochs, int))
    if stops.size == 0 or stops[0] < 0 or stops[-1] > epochs:
        raise ValueError(f"`stop_epochs` must lie in [0, {epochs}]; got {list(stop_epochs)!r}.")
    dtype = jax.tree_util.tree_leaves(params0)[0].dtype
    sampler = online_sampler(ground_truth, d=d, scale=scale, dtype=dtype)
    x_te = scale * jax.random.normal(jax.random.PRNGKey(2**30 + seed), (n_test, d), dtype)
    log_at = np.unique(np.concatenate([geometric_steps(epochs), stops]))
    params, log = train_kd(apply_fn, params0, sampler, rho=0.0, T=1.0, optimizer=optimizer, steps=epochs,
                           batch_size=batch_size, log_steps=log_at, x_test=x_te, seed=seed,
                           keep_params=True, checkpoint=checkpoint, optimizer_id=optimizer_id,
                           progress=progress)
    idx = np.searchsorted(log.steps, stops)
    zg = np.asarray(ground_truth(x_te)[0] if isinstance(ground_truth(x_te[:1]), tuple) else ground_truth(x_te))
    err = np.mean(np.sign(log.test_logits[idx]) != np.sign(zg)[None], axis=1)
    ck = jax.tree_util.tree_map(lambda a: a[idx], log.params)
    return TeacherRun(stops, ck, err, log._replace(params=None))


def network_teacher(apply_fn: Callable, params, *, reduction: float = 1.0) -> Callable:
    """A trained network as a teacher: ``teacher(x) = reduction · apply_fn(params, x)`` (the paper's
    reduction factor r, ``z_t,new = r z_t``; r = 0.3 in Figs. 2 and 5 right)."""
    r = check_positive(reduction, "reduction")
    return lambda x: r * apply_fn(params, x)


# --------------------------------------------------------------------------------------------------------
# Comparisons with the kernel limit
# --------------------------------------------------------------------------------------------------------

def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (the reproductions' fit, ``ntkd.reproduce._slope``:
    pairs with x <= 0 or y <= 0 are left out, NaN with fewer than two pairs left)."""
    from .reproduce import _slope

    return _slope(x, y)


def ntk_convergence(x, widths: Sequence[int], *, depth: int, seeds: Sequence[int] = (0, 1, 2),
                    activation="relu", W_std: float = 1.0, b_std: float = 1.0, dtype=jnp.float64) -> dict:
    """Comparison 1: the empirical NTK at initialization against the analytic NTK as width grows.

    Returns ``{"widths", "rel_err" (W, S): ‖Θ̂ - Θ‖_F / ‖Θ‖_F per width and seed, "mean", "std",
    "slope"}`` where slope is the log-log slope of the mean error against width (-1/2 expected: the
    fluctuations of Θ̂ are O(1/√m)).
    """
    x = check_inputs_2d(x, "x").astype(dtype)
    theta = np.asarray(mlp_kernel_fn(depth, W_std=W_std, b_std=b_std, activation=activation)(x, None, "ntk"))
    errs = []
    for m in widths:
        init_fn, apply_fn = mlp(x.shape[1], check_int(m, "widths", minimum=1), depth, activation=activation,
                                W_std=W_std, b_std=b_std, dtype=dtype)
        row = []
        for s in seeds:
            emp = np.asarray(empirical_ntk(apply_fn, init_fn(jax.random.PRNGKey(s)), x))
            row.append(np.linalg.norm(emp - theta) / np.linalg.norm(theta))
        errs.append(row)
    errs = np.asarray(errs)
    mean = errs.mean(1)
    return {"widths": np.asarray(widths), "rel_err": errs, "mean": mean, "std": errs.std(1, ddof=1)
            if errs.shape[1] > 1 else np.zeros_like(mean), "slope": loglog_slope(widths, mean)}


def _kernel_gd(th_nn, th_xn, z0_tr, z0_te, z_t, y_g, rho, T, s, lr, steps):
    """Full-batch gradient descent of a linearized student in function space, with kernel Θ:
    z ← z - η Θ_nn ∇_z L, f ← f - η Θ_xn ∇_z L, ∇_z L = kd_grad_z / n (the exact image of
    ``optax.sgd(η)`` on a linear model whose tangent kernel is Θ)."""
    n = z_t.shape[0]

    def body(_, zf):
        z, f = zf
        g = (rho * s / T * (jax.nn.sigmoid(z / T) - jax.nn.sigmoid(z_t / T))
             + (1 - rho) * (jax.nn.sigmoid(z) - y_g)) / n
        return z - lr * mm(th_nn, g), f - lr * mm(th_xn, g)

    return jax.lax.fori_loop(0, steps, body, (z0_tr, z0_te))[1]


def student_vs_kernel(x_train, z_t, y_g, x_test, *, rhos: Sequence[float], T: float, width: int,
                      depth: int, seeds: Sequence[int] = (0,), steps: int = 2000, learning_rate: float = 1.0,
                      optimizer: str = "sgd", reference: str = "converged", activation="relu",
                      W_std: float = 1.0, b_std: float = 1.0, dtype=jnp.float64, nonlinear: bool = True,
                      linearized: bool = True, checkpoint_dir=None, progress=None) -> dict:
    """Comparison 2: trained finite students (the network and its linearization) against the kernel
    prediction on test logits, for each ρ.

    Training is full batch with ``optimizer`` ``"sgd"`` (gradient descent, step ``learning_rate``) or
    ``"adam"`` for ``steps`` steps; every (seed, ρ) pair is one run and all train together in one ``vmap``.
    The kernel prediction keeps each run's own initial outputs f(·; w0) (module notes) and is

    * ``reference="converged"``: the converged student of Eq. 4 with the analytic NTK
      (:func:`ntkd.converged_student`); finite students must have trained long enough;
    * ``reference="trajectory"`` (``"sgd"`` only): the same number of gradient-descent steps taken in
      function space with the analytic NTK (``z ← z - η Θ ∇_z L``), the infinite-width limit of the very
      training run, so that the gap measures width alone and not convergence.

    For the linearized network the prediction from its own empirical NTK at initialization is also
    reported (the exact fixed point of its gradient-descent training).

    Returns a dict of ``(S, R, m)`` test-logit arrays ``kernel`` (the reference), ``empirical``
    (empirical-NTK Eq. 4), ``nonlinear`` / ``linearized`` (trained), ``z0_test``, and ``(S, R)`` relative
    gaps ``gap_nonlinear`` / ``gap_linearized`` = ‖f_trained - f_kernel‖ / ‖f_kernel - f0‖ over x_test
    (error relative to the function the student learned), ``gap_linearized_empirical``; plus ``rhos``,
    ``T``, ``width``.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"`optimizer` must be 'sgd' or 'adam'; got {optimizer!r}.")
    if reference not in ("converged", "trajectory"):
        raise ValueError(f"`reference` must be 'converged' or 'trajectory'; got {reference!r}.")
    if reference == "trajectory" and optimizer != "sgd":
        raise ValueError("`reference`='trajectory' follows gradient descent; use optimizer='sgd' "
                         "(or reference='converged' for Adam).")
    lr = check_positive(learning_rate, "learning_rate")
    x_train = check_inputs_2d(x_train, "x_train").astype(dtype)
    x_test = check_inputs_2d(x_test, "x_test").astype(dtype)
    z_t = jnp.asarray(z_t, dtype)
    y_g = _check_labels(y_g).astype(dtype)
    rhos = np.asarray(rhos, float)
    T = float(_check_T(T))
    S, R = len(seeds), len(rhos)
    init_fn, apply_fn = mlp(x_train.shape[1], width, depth, activation=activation, W_std=W_std, b_std=b_std,
                            dtype=dtype)
    kfn = mlp_kernel_fn(depth, W_std=W_std, b_std=b_std, activation=activation)
    th_nn, th_xn = kfn(x_train, None, "ntk"), kfn(x_test, x_train, "ntk")
    z_eff = effective_logits(z_t[:, None], y_g[:, None], jnp.asarray(rhos, dtype)[None], T)  # (n, R)
    seed_b = np.repeat(np.asarray(seeds, int), R)
    rho_b = jnp.tile(jnp.asarray(rhos, dtype), S)
    params0 = jax.vmap(init_fn)(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seed_b)))
    z0_tr = jax.vmap(apply_fn, (0, None))(params0, x_train)  # (S R, n)
    z0_te = jax.vmap(apply_fn, (0, None))(params0, x_test)
    zeff_b = jnp.tile(z_eff.T, (S, 1))  # (S R, n)
    if reference == "converged":
        kernel = np.stack([np.asarray(converged_student(th_xn, th_nn, zeff_b[i], z0_train=z0_tr[i],
                                                        z0_test=z0_te[i])) for i in range(S * R)])
    else:
        kernel = np.asarray(jax.jit(jax.vmap(_kernel_gd, (None, None, 0, 0, None, None, 0, None, None, None,
                                                          None)), static_argnums=10)(
            th_nn, th_xn, z0_tr, z0_te, z_t, y_g, rho_b, T, 1.0, lr, steps))
    out = {"rhos": rhos, "T": T, "width": width, "kernel": kernel.reshape(S, R, -1),
           "z0_test": np.asarray(z0_te).reshape(S, R, -1)}
    denom = np.linalg.norm(kernel - np.asarray(z0_te), axis=-1)
    opt = optax.sgd(lr) if optimizer == "sgd" else optax.adam(lr)
    for name, lin in (("nonlinear", False), ("linearized", True)):
        if not (nonlinear if name == "nonlinear" else linearized):
            continue
        ck = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}_w{width}.npz"
        if ck is not None:
            ck.parent.mkdir(parents=True, exist_ok=True)
        _, log = train_kd(apply_fn, params0, (x_train, z_t, y_g), rho=rho_b, T=T, optimizer=opt, steps=steps,
                          x_test=x_test, seed=seed_b, runs=S * R, log_steps=[0], linearized=lin,
                          checkpoint=ck, optimizer_id=f"{optimizer}:{lr}", progress=progress)
        f = log.test_logits[:, -1]
        out[name] = f.reshape(S, R, -1)
        out["gap_" + name] = (np.linalg.norm(f - kernel, axis=-1) / denom).reshape(S, R)
        if lin:
            e_nn, e_xn = jax.jit(jax.vmap(lambda p: (empirical_ntk(apply_fn, p, x_train),
                                                     empirical_ntk(apply_fn, p, x_test, x_train))))(params0)
            emp = [np.asarray(converged_student(e_xn[i], e_nn[i], zeff_b[i], z0_train=z0_tr[i],
                                                z0_test=z0_te[i])) for i in range(S * R)]
            out["empirical"] = np.stack(emp).reshape(S, R, -1)
            out["gap_linearized_empirical"] = (np.linalg.norm(f - np.stack(emp), axis=-1) / denom).reshape(S, R)
    return out


def width_gap(x_train, z_t, y_g, x_test, *, widths: Sequence[int], progress=None, **kw) -> dict:
    """Comparison 4: the gap between trained finite students and the kernel prediction against width.

    Runs :func:`student_vs_kernel` (same keyword arguments) at each width. Returns ``{"widths",
    "gap" (W, S, R) per model kind, "mean" (W,), "std" (W,) over seeds and ρ, "slope"}`` for the
    nonlinear network (and ``"linearized"`` entries when trained), slope = log-log slope of the mean gap
    against width.
    """
    res = {"widths": np.asarray(widths)}
    per = [student_vs_kernel(x_train, z_t, y_g, x_test, width=int(m), progress=progress, **kw) for m in widths]
    for name in ("nonlinear", "linearized"):
        if "gap_" + name not in per[0]:
            continue
        g = np.stack([p["gap_" + name] for p in per])  # (W, S, R)
        m = g.reshape(len(widths), -1).mean(1)
        res[name] = {"gap": g, "mean": m, "std": g.reshape(len(widths), -1).std(1, ddof=1) if g[0].size > 1
                     else np.zeros_like(m), "slope": loglog_slope(widths, m)}
    return res
