"""Training (:func:`train_kd`): optax (any ``GradientTransformation``; SGD and Adam are what the paper and
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

import math
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._core.checks import check_finite, check_inputs_2d, check_int, check_positive
from .._core.progress import Progress
from ..kernels import linearize
from ..losses import check_labels, check_rho, check_T, loss_terms, soft_factor
from ..theories.transfer_risk.tasks import sample_inputs
from .checkpoint import fingerprint, load_checkpoint, save_checkpoint

__all__ = ["TrainLog", "train_kd", "geometric_steps", "online_sampler"]

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
        x = sample_inputs(key, b, d=d, scale=scale, dtype=dtype)
        out = target(x)
        z_t, z_g = out if isinstance(out, tuple) else (out, out)
        return x, z_t.astype(dtype), (z_g > 0).astype(dtype)

    return sampler


def training_setup(apply_fn, steps, optimizer, default_lr, params0, runs):
    """The checks and run axis shared by the trainers: ``(steps, optimizer, single, B, leaves0, params0)``
    with ``params0`` given a leading runs axis (of 1 for a single run)."""
    if not callable(apply_fn):
        raise ValueError("`apply_fn` must be callable as apply_fn(params, x).")
    steps = check_int(steps, "steps", minimum=0)
    optimizer = optax.adam(default_lr) if optimizer is None else optimizer
    if not hasattr(optimizer, "init") or not hasattr(optimizer, "update"):
        raise ValueError("`optimizer` must be an optax GradientTransformation, e.g. optax.sgd(0.1).")
    single = runs is None
    B = 1 if single else check_int(runs, "runs", minimum=1)
    leaves0 = jax.tree_util.tree_leaves(params0)
    if not leaves0:
        raise ValueError("`params0` has no arrays; pass the parameters of the network.")
    if single:
        params0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], params0)
    elif any(jnp.shape(l)[:1] != (B,) for l in leaves0):
        raise ValueError(f"with `runs`={B}, every leaf of `params0` needs a leading axis of {B} runs "
                         "(e.g. jax.vmap(init_fn)(keys)).")
    return steps, optimizer, single, B, leaves0, params0


def log_schedule(log_steps, steps):
    """The logging steps: ``log_steps`` (default :func:`geometric_steps`) checked, with ``steps`` added."""
    log_at = geometric_steps(max(steps, 1)) if log_steps is None else np.asarray(log_steps, int)
    if log_at.ndim != 1 or (np.diff(log_at) <= 0).any() or (log_at < 0).any() or (log_at > steps).any():
        raise ValueError(f"`log_steps` must be increasing integers in [0, {steps}]; got {log_steps!r}.")
    return np.unique(np.concatenate([log_at, [steps]]))


def _tree_sq_dist(a, b):
    return sum(jnp.sum((x - y) ** 2) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def train_kd(apply_fn: Callable, params0, data, *, rho=1.0, T=1.0, optimizer=None, steps: int,
             batch_size: Optional[int] = None, log_steps: Optional[Sequence[int]] = None, x_test=None,
             linearized: bool = False, soft_scale: Union[float, str] = 1.0, seed=0,
             runs: Optional[int] = None, keep_params: bool = False, checkpoint=None,
             optimizer_id: str = "", progress=None, loss_fn: Callable = loss_terms) -> tuple:
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
      checkpoint: path of a checkpoint directory (orbax; the path is the directory whatever its name,
        ``.npz`` included); state and logs are written after every logging interval, atomically, and a
        rerun with the same arguments resumes from it (another run's checkpoint, or a file, is refused).
      optimizer_id: a string identifying the optimizer and its hyper-parameters; it enters the
        checkpoint's fingerprint (optax transformations cannot be hashed reliably).
      progress: a text stream for one line per logging interval (e.g. ``sys.stderr``), or None.
      loss_fn: the per-sample loss ``loss_fn(z_s, z_t, y_g, rho, T, s) -> (b,)``, traceable and
        unvalidated; default :func:`ntkd.losses.loss_terms` (Ji & Zhu Eq. 2, ``s`` the soft-term factor).
        A corrected or Bayes-teacher loss of another theory plugs in here; its ``__module__`` and
        ``__qualname__`` enter the checkpoint's fingerprint.

    Returns:
      ``(params, log)``: the final parameters (with the runs axis when ``runs`` is given) and a
      :class:`TrainLog` of NumPy arrays.
    """
    steps, optimizer, single, B, leaves0, params0 = training_setup(apply_fn, steps, optimizer, 1e-2, params0, runs)
    dtype = leaves0[0].dtype

    def per_run(v, name, check):
        a = check(v).astype(dtype)
        if a.ndim > 1 or (a.ndim == 1 and (single or a.shape[0] != B)):
            raise ValueError(f"`{name}` must be a scalar" + ("" if single else f" or have shape ({B},)")
                             + f"; got shape {a.shape}.")
        return jnp.broadcast_to(a, (B,))

    rho_b = per_run(rho, "rho", check_rho)
    T_b = per_run(T, "T", check_T)
    s_b = soft_factor(soft_scale, T_b) * jnp.ones((B,), dtype)
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
        yg_tr = check_labels(yg_tr).astype(dtype)
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

    log_at = log_schedule(log_steps, steps)

    def model(p, p0):
        return linearize(apply_fn, p0) if linearized else apply_fn

    def loss_of(p, p0, x, zt, yg, r, t, s):
        return jnp.mean(loss_fn(model(p, p0)(p, x), zt, yg, r, t, s))

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
            out = {"loss": jnp.mean(loss_fn(z, zt_eval, yg_eval, r, t, s)),
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
        fp = fingerprint([*leaves0, *data_parts, rho_b, T_b, s_b, seeds, steps, batch_size, log_at.tolist(),
                           linearized, x_test if x_test is not None else None, keep_params, optimizer_id,
                           "v1"] + ([] if loss_fn is loss_terms else
                                    [f"{getattr(loss_fn, '__module__', '')}.{getattr(loss_fn, '__qualname__', '')}"]))
        if path.exists():
            done, state, logs = load_checkpoint(path, fp, state)
    prev = 0 if done == 0 else int(log_at[done - 1])
    bar = Progress("train_kd", steps, total_work=max(steps - prev, 1), stream=progress, unit="steps")
    bar.done = prev
    bar.start_group()
    if done:  # an empty directory (killed before the first save completed) starts afresh
        bar.message(f"train_kd: resuming from {path} at log point {done}/{len(log_at)}")
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
        if path is not None:
            save_checkpoint(path, fp, j + 1, state, logs)
        bar.update(stop - prev, note=f"loss {np.mean(obs['loss']):.4g} ‖Δw‖ {np.mean(obs['dw_norm']):.4g}")
        prev = stop
    bar.close()

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
