"""Networks trained to interpolation (:func:`train_to_interpolation`): the finite-width teachers of Kaplun,
Malach, Nakkiran & Shalev-Shwartz (2022), "trained on noisy data to zero train error", built on
:func:`ntkd.finite.train_classifier`.

Training runs in rounds of ``check_every`` optimizer steps (one :func:`train_classifier` call each, a fresh
minibatch key per round); after every round the training accuracy of every run is measured and a run that
has reached ``target_accuracy`` is frozen (its parameters are kept as they were at that round). Training
stops when every run is frozen or at ``max_steps``; runs that never interpolated are reported, not hidden.

Decisions (documented and tested):

* the optimizer state (e.g. Adam's moments) restarts at every round, because :func:`train_classifier`
  starts from parameters only; with a stateless optimizer (``optax.sgd`` without momentum) and full batches
  the rounds equal one continuous run step for step;
* ``steps`` is the first checked step count at which the run interpolated: exact to ``check_every``
  (the run may have interpolated up to ``check_every - 1`` steps earlier);
* ties in the logits count as errors only when the argmax (lowest class among ties) is wrong, as
  :func:`ntkd.theories.samplers.hard_labels` does.

This is a training driver (a Python loop with a data-dependent stop), like :func:`train_classifier`: it is
not traceable. What it returns, ``predict``, is a JAX function of the inputs (jit, vmap, grad).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core.checks import check_inputs_2d, check_int
from .classifier import train_classifier

__all__ = ["Interpolation", "train_to_interpolation"]


class Interpolation(NamedTuple):
    """What :func:`train_to_interpolation` returns (``B`` = runs, absent for one run).

    params: the parameters, with a leading axis of B runs when ``runs`` was given; each run's as of the
    round at which it reached the target accuracy (or at ``max_steps``).
    steps ``([B],)`` int: optimizer steps used (the first checked step count at the target, else the cap).
    train_accuracy ``([B],)``: training accuracy of the returned parameters.
    interpolated ``([B],)`` bool: ``train_accuracy >= target_accuracy``.
    predict: ``predict(x (n, d)) -> ([B,] n, K)`` logits of the returned parameters (a JAX function).
    """

    params: Any
    steps: np.ndarray
    train_accuracy: np.ndarray
    interpolated: np.ndarray
    predict: Callable


def _keep_frozen(done, old, new):
    """Per run: the old parameters where ``done (B,)``, else the new ones."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (b.ndim - 1)), a, b), old, new)


def train_to_interpolation(apply_fn: Callable, params0, x, y, *, key, max_steps: int, check_every: int = 500,
                           target_accuracy: float = 1.0, optimizer=None, batch_size: int | None = None,
                           runs: int | None = None, labels_per_run: bool = False, loss_fn: Callable | None = None,
                           progress=None) -> Interpolation:
    """Train ``apply_fn`` on integer labels until its training accuracy reaches ``target_accuracy`` (default
    1: interpolation, zero train error) or ``max_steps`` optimizer steps, checking every ``check_every``.

    Args:
      apply_fn: ``apply_fn(params, x (b, d)) -> (b, K)`` logits (or ``(b,)``, one logit, class 1 iff > 0,
        with a ``loss_fn`` for it), e.g. :func:`ntkd.finite.mlp` with ``out_dim=K``.
      params0: initial parameters; with ``runs=B`` every leaf has a leading axis of B runs.
      x: ``(n, d)`` training inputs. y: ``(n,)`` int labels in 0..K-1 (``(B, n)`` with ``labels_per_run``:
        e.g. B independent noisy label draws on the same inputs).
      key: a ``jax.random`` key for the minibatch draws (round r uses ``fold_in(key, r)``).
      max_steps: the step cap (≥ 1). check_every: steps per round (≥ 1; the last round may be shorter).
      target_accuracy: in (0, 1]. optimizer, batch_size, loss_fn, progress: as :func:`train_classifier`
        (default ``optax.adam(1e-3)``, full batch, softmax cross-entropy).

    Returns:
      :class:`Interpolation`. Raises ``FloatingPointError`` (from :func:`train_classifier`) if the loss
      becomes non-finite.
    """
    max_steps = check_int(max_steps, "max_steps", minimum=1)
    check_every = check_int(check_every, "check_every", minimum=1)
    target = float(target_accuracy)
    if not 0 < target <= 1:
        raise ValueError(f"`target_accuracy` must be in (0, 1]; got {target_accuracy!r} (1 = interpolation).")
    x = check_inputs_2d(x, "x")
    n = x.shape[0]
    y = jnp.asarray(y)
    single = runs is None
    B = 1 if single else check_int(runs, "runs", minimum=1)
    if labels_per_run and single:
        raise ValueError("`labels_per_run=True` needs `runs`; pass runs=B and labels of shape (B, n).")
    want = (B, n) if labels_per_run else (n,)
    if not jnp.issubdtype(y.dtype, jnp.integer) or y.shape != want:
        raise ValueError(f"`y` must be integer class labels of shape {want}; got {y.dtype} {y.shape}.")
    if bool(jnp.any(y < 0)):
        raise ValueError("`y` has negative labels; classes are 0..K-1.")
    p = params0 if not single else jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], params0)
    leaves = jax.tree_util.tree_leaves(p)
    if not leaves or any(jnp.shape(a)[:1] != (B,) for a in leaves):
        raise ValueError(f"`params0` must be a non-empty parameter pytree{'' if single else f' with a leading axis of {B} runs'}.")
    xs = x.astype(leaves[0].dtype)
    y_b = y if labels_per_run else jnp.broadcast_to(y, (B, n))

    k_out = jax.eval_shape(lambda a: apply_fn(a, xs), jax.tree_util.tree_map(lambda a: a[0], p)).shape
    scalar = len(k_out) == 1
    K = 2 if scalar else k_out[-1]
    if bool(jnp.any(y >= K)):
        raise ValueError(f"`y` has labels ≥ {K}, but `apply_fn` gives {K} logits; use out_dim = number of classes.")

    @jax.jit
    def correct(params):  # per run, the number of training points classified right (exact integer counts)
        logits = jax.vmap(apply_fn, (0, None))(params, xs)
        pred = (logits > 0).astype(jnp.int32) if scalar else jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jnp.sum(pred == y_b, axis=1)

    def accuracy(params):
        return np.asarray(correct(params), np.float64) / n

    acc = accuracy(p)
    done = acc >= target
    steps = np.where(done, 0, max_steps).astype(int)
    taken, r = 0, 0
    while taken < max_steps and not done.all():
        s = min(check_every, max_steps - taken)
        new, _ = train_classifier(apply_fn, p, xs, y_b if labels_per_run else y, steps=s,
                                  key=jax.random.fold_in(key, r), loss_fn=loss_fn, optimizer=optimizer,
                                  batch_size=batch_size, runs=B, targets_per_run=labels_per_run, log_steps=[0],
                                  progress=progress)
        p = _keep_frozen(jnp.asarray(done), p, new)
        taken, r = taken + s, r + 1
        acc = accuracy(p)
        newly = (acc >= target) & ~done
        steps[newly] = taken
        done = done | newly
    out_params = jax.tree_util.tree_map(lambda a: a[0], p) if single else p

    if single:
        def predict(xq):
            return apply_fn(out_params, jnp.asarray(xq, xs.dtype))
        return Interpolation(out_params, steps[0], acc[0], bool(done[0]), predict)

    def predict(xq):
        return jax.vmap(apply_fn, (0, None))(out_params, jnp.asarray(xq, xs.dtype))
    return Interpolation(out_params, steps, acc, done, predict)
