"""Students, fitted teachers and the digits data of the Menon et al. (2020) study (layer L4).

* :func:`fit_students`: one linear or MLP softmax student per objective (one-hot, Bayes-distilled, each
  teacher, mixtures: all are the softmax CE against a target distribution per example, so an objective is a
  ``(n, K)`` target matrix), trained together in one :func:`ntkd.finite.train_classifier` ``vmap``.
* :func:`network_teacher`: a Flax MLP trained on one-hot labels of its own sample (``softmax`` of its logits).
* :func:`load_digits`: scikit-learn's bundled 8×8 digits (the ``tabular`` extra), standardized.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ...finite import mlp, train_classifier

__all__ = ["fit_students", "load_digits", "network_teacher"]


def _model(d, K, width, depth, dtype):
    # depth 0: the linear (affine) softmax student W x + b, well specified for Gaussian class-conditionals
    return mlp(d, max(width, 1), depth, out_dim=K, dtype=dtype)


def fit_students(key, x, targets: dict, *, x_eval, width: int = 0, depth: int = 0, steps: int = 300,
                 lr: float = 0.05) -> dict:
    """Train one student per objective on the same inputs ``x (n, d)``; ``targets`` maps an objective's name to
    its ``(n, K)`` target probabilities. All students start from the same initialization (paired comparison).
    Returns ``{name: softmax probabilities (m, K) at x_eval}`` (NumPy)."""
    names = list(targets)
    T = jnp.stack([jnp.asarray(targets[k], x.dtype) for k in names])
    K = T.shape[-1]
    init_fn, apply_fn = _model(x.shape[1], K, width, depth, x.dtype)
    p0 = init_fn(key)
    params0 = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (len(names),) + a.shape), p0)
    _, log = train_classifier(apply_fn, params0, x, T, steps=steps, key=key, runs=len(names), targets_per_run=True,
                              optimizer=optax.adam(lr), x_test=x_eval, log_steps=[steps])
    probs = np.asarray(jax.nn.softmax(jnp.asarray(log.test_logits), axis=-1))
    return {k: probs[i] for i, k in enumerate(names)}


def network_teacher(key, x, y, K: int, *, width: int = 128, depth: int = 2, steps: int = 1000, lr: float = 1e-2):
    """A finite Flax MLP teacher (NTK parameterization, :func:`ntkd.finite.mlp`) trained with Adam on one-hot
    labels ``y`` of its own sample ``x``; returns ``teacher(x) -> softmax probabilities`` (a fitted teacher of
    the zoo)."""
    init_fn, apply_fn = _model(x.shape[1], K, width, depth, x.dtype)
    params, _ = train_classifier(apply_fn, init_fn(key), x, jnp.asarray(y), steps=steps, key=key,
                                 optimizer=optax.adam(lr), log_steps=[steps])
    return jax.jit(lambda u: jax.nn.softmax(apply_fn(params, u), axis=-1))


def load_digits(dtype=np.float64):
    """scikit-learn's digits (1797 images, 64 features, 10 classes), each feature standardized; ``(x, y)``.
    Needs the ``tabular`` extra (``pip install ntkd[tabular]``)."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("the digits path needs scikit-learn: pip install 'ntkd[tabular]'") from e
    data = _load()
    x = data.data.astype(dtype)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    return x, data.target.astype(np.int32)
