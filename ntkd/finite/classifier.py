"""Multi-class training on soft or hard targets (:func:`train_classifier`): the shared finite-width
trainer of the multi-class theories (Menon et al. 2020, Dao/Kamath et al. 2021, Malach et al. 2022).

Any ``apply_fn(params, x (b, d)) -> (b, K)`` logits is trained with optax on the mean of a per-example
loss. The default loss is the softmax cross-entropy against target probabilities ``(n, K)`` (integer
labels ``(n,)`` are taken as one-hot rows); a corrected, weighted or teacher-dependent loss plugs in as
``loss_fn(logits, targets) -> (b,)`` where ``targets`` is any pytree of per-example arrays (the rows of a
minibatch are passed to it). Binary problems are K = 2 (or one logit with a loss of the user's choosing).
Several runs (seeds, or one target set per run) train together in one ``vmap``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._core.checks import check_finite, check_inputs_2d, check_int
from .._core.progress import Progress
from ..losses import softmax_cross_entropy  # re-exported: the loss train_classifier uses by default
from .train import log_schedule, training_setup

__all__ = ["ClassifierLog", "train_classifier", "softmax_cross_entropy"]


class ClassifierLog(NamedTuple):
    """What :func:`train_classifier` records at each of its ``L`` logging steps (``B`` = runs, absent for
    one run): steps ``(L,)``; loss ``([B,] L)`` (mean training loss on the whole training set);
    test_logits ``([B,] m, K)`` at the end, or None without ``x_test``."""

    steps: np.ndarray
    loss: np.ndarray
    test_logits: Optional[np.ndarray]


def train_classifier(apply_fn: Callable, params0, x, targets, *, steps: int, key, loss_fn: Callable = None,
                     optimizer=None, batch_size: Optional[int] = None, runs: Optional[int] = None,
                     targets_per_run: bool = False, x_test=None, log_steps=None, progress=None) -> tuple:
    """Train ``apply_fn`` with optax on ``mean_i loss_fn(apply_fn(params, x_i), targets_i)``.

    Args:
      apply_fn: ``apply_fn(params, x (b, d)) -> (b, K)`` logits (e.g. :func:`ntkd.finite.mlp` with
        ``out_dim=K``).
      params0: initial parameters; with ``runs=B`` every leaf has a leading axis of B runs.
      x: ``(n, d)`` training inputs.
      targets: a pytree of arrays with leading axis n (``(B, n, ...)`` with ``targets_per_run=True``);
        for the default loss, ``(n, K)`` probabilities or ``(n,)`` integer labels.
      steps: optimizer steps. key: a ``jax.random`` key driving the minibatch draws (one draw per step,
        without replacement within the step, shared by all runs).
      loss_fn: per-example loss ``loss_fn(logits (b, K), targets_batch) -> (b,)``, traceable; default
        :func:`softmax_cross_entropy`.
      optimizer: an optax ``GradientTransformation``; default ``optax.adam(1e-3)``.
      batch_size: ``None`` = full batch; else the minibatch size (≤ n).
      runs: train B runs in one ``vmap``. targets_per_run: each run has its own targets.
      x_test: optional ``(m, d)`` inputs whose logits are returned at the end.
      log_steps: increasing step counts in [0, steps] at which the training loss is logged (default
        :func:`ntkd.finite.geometric_steps`); ``steps`` is always logged.
      progress: a text stream for one line per logging interval, or None.

    Returns:
      ``(params, log)``: the final parameters (with the runs axis when ``runs`` is given) and a
      :class:`ClassifierLog` of NumPy arrays. A non-finite training loss raises ``FloatingPointError``.
    """
    steps, optimizer, single, B, leaves0, params0 = training_setup(apply_fn, steps, optimizer, 1e-3, params0, runs)
    loss_fn = softmax_cross_entropy if loss_fn is None else loss_fn
    dtype = leaves0[0].dtype
    x = check_inputs_2d(x, "x").astype(dtype)
    n = x.shape[0]
    lead = (B, n) if targets_per_run else (n,)
    if targets_per_run and single:
        raise ValueError("`targets_per_run=True` needs `runs`; pass runs=B and targets with leading axes (B, n).")
    targets = jax.tree_util.tree_map(jnp.asarray, targets)
    for t in jax.tree_util.tree_leaves(targets):
        if t.shape[:len(lead)] != lead:
            raise ValueError(f"every leaf of `targets` needs leading axes {lead}; got shape {t.shape}.")
        if jnp.issubdtype(t.dtype, jnp.floating):
            check_finite(t, "targets")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        if batch_size > n:
            raise ValueError(f"`batch_size`={batch_size} exceeds the {n} training samples.")
    if x_test is not None:
        x_test = check_inputs_2d(x_test, "x_test").astype(dtype)
        if x_test.shape[1] != x.shape[1]:
            raise ValueError(f"`x_test` has {x_test.shape[1]} features but `x` has {x.shape[1]}.")
    log_at = log_schedule(log_steps, steps)
    t_axis = 0 if targets_per_run else None

    def mean_loss(p, xb, tb):
        return jnp.mean(loss_fn(apply_fn(p, xb), tb))

    def update(p, st, xb, tb):
        g = jax.grad(mean_loss)(p, xb, tb)
        upd, st = optimizer.update(g, st, p)
        return optax.apply_updates(p, upd), st

    def rows(tree, idx):
        return jax.tree_util.tree_map(lambda a: a[:, idx] if targets_per_run else a[idx], tree)

    # data and key are arguments, not closed-over constants: one compiled program per shape, which the
    # persistent compilation cache then serves to every later call
    @jax.jit
    def chunk(params, opt_state, x, targets, key, start, stop):
        def body(i, carry):
            if batch_size is None:
                xb, tb = x, targets
            else:
                idx = jax.random.choice(jax.random.fold_in(key, i), n, (batch_size,), replace=False)
                xb, tb = x[idx], rows(targets, idx)
            return jax.vmap(update, (0, 0, None, t_axis))(*carry, xb, tb)
        return jax.lax.fori_loop(start, stop, body, (params, opt_state))

    observe = jax.jit(jax.vmap(mean_loss, (0, None, t_axis)))
    state = (params0, jax.vmap(optimizer.init)(params0))
    losses, prev = [], 0
    bar = Progress("train_classifier", steps, total_work=max(steps, 1), stream=progress, unit="steps")
    bar.start_group()
    for stop in log_at.tolist():
        if stop > prev:
            state = chunk(*state, x, targets, key, prev, stop)
        loss = np.asarray(observe(state[0], x, targets))
        if not np.isfinite(loss).all():
            raise FloatingPointError(f"train_classifier: the loss became non-finite by step {stop}; lower the "
                                     "optimizer's learning rate.")
        losses.append(loss)
        bar.update(stop - prev, note=f"loss {loss.mean():.4g}")
        prev = stop
    bar.close()
    params = state[0]
    test = None if x_test is None else np.asarray(jax.jit(jax.vmap(apply_fn, (0, None)))(params, x_test))
    log = ClassifierLog(log_at, np.stack(losses, axis=1), test)
    if single:
        params = jax.tree_util.tree_map(lambda a: a[0], params)
        log = ClassifierLog(log.steps, log.loss[0], None if test is None else test[0])
    return params, log
