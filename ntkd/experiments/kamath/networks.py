"""Cross-fitted network teachers trained together: the K fold teachers of a Flax model as K runs of one
``vmap`` in :func:`ntkd.finite.train_classifier` (the authors train ``crossfit{t}.ckpt`` one by one).

Teacher t sees every example but with weight 0 on its own fold: its per-example loss is
``w_t(i) · CE(z, y_i) · n / n_t`` with ``w_t(i) = [fold(i) ≠ t]`` and ``n_t`` its training-set size, so its
full-batch gradient is exactly that of the mean cross-entropy over its training set (held-out examples
contribute exact zeros). With minibatches the draw is shared by all runs, so each teacher's effective
batch is the part of the draw outside its fold. The stacked parameters route minibatch rows to their
out-of-fold teacher with :func:`ntkd.theories.crossfit.crossfit_batch_teacher_logits`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ...finite import softmax_cross_entropy, train_classifier
from ...theories.crossfit import fold_train_mask

__all__ = ["train_crossfit_teachers"]


def _masked_ce(logits, targets):
    return targets["w"] * softmax_cross_entropy(logits, targets["y"])


def train_crossfit_teachers(apply_fn, init_fn, x, y, fold, *, K: int, steps: int, key, **train_kw):
    """Train the K fold teachers in one vmap; returns ``(params (K, ...), log)``.

    ``init_fn(key) -> params``, ``apply_fn(params, x (b, d)) -> (b, k)`` (e.g. :func:`ntkd.finite.mlp`);
    ``y`` ``(n,)`` integer labels; ``fold`` ``(n,)`` from :func:`ntkd.theories.crossfit.fold_ids`;
    ``train_kw`` goes to :func:`ntkd.finite.train_classifier` (optimizer, batch_size, x_test, ...)."""
    n = len(y)
    mask = np.asarray(fold_train_mask(jnp.asarray(fold), K), float)  # (K, n)
    scale = n / np.maximum(mask.sum(1, keepdims=True), 1.0)
    y = jnp.asarray(y)
    targets = {"y": jnp.broadcast_to(y, (K, n)), "w": jnp.asarray(mask * scale)}
    k_init, k_train = jax.random.split(key)
    params0 = jax.vmap(init_fn)(jax.random.split(k_init, K))
    return train_classifier(apply_fn, params0, x, targets, steps=steps, key=k_train, runs=K,
                            targets_per_run=True, loss_fn=_masked_ce, **train_kw)
