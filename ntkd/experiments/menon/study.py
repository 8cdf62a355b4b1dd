"""Students, fitted teachers and the digits data of the Menon et al. (2020) study (layer L4).

* :func:`fit_students`: one linear or MLP softmax student per objective (one-hot, Bayes-distilled, each
  teacher, mixtures: all are the softmax CE against a target distribution per example, so an objective is a
  ``(n, K)`` target matrix), trained together in one :func:`ntkd.finite.train_classifier` ``vmap``.
* :func:`kernel_students`: NTK kernel students (kernel regression of each objective's targets).
* :func:`network_teacher`: a Flax MLP trained on one-hot labels of its own sample (``softmax`` of its logits).
* :func:`load_digits`: scikit-learn's bundled 8×8 digits (the ``tabular`` extra), standardized.
* retrieval (T3, M9): :func:`lowrank_student`, :func:`noisy_teacher_probs`, :func:`train_retrieval` (sampled-softmax
  students with uniform or teacher-mined negatives, label or teacher-weighted positives, in one ``vmap``).
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..._core.linalg import mm
from ...finite import mlp, train_classifier
from ...predict import kernel_regression
from ...theories import bias_variance as bv

__all__ = ["fit_students", "kernel_students", "load_digits", "lowrank_student", "network_teacher", "noisy_teacher_probs",
           "train_retrieval"]


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


# ------------------------------------------------------------------------------------------------ retrieval
def lowrank_student(d: int, K: int, rank: int):
    """The T3 student, a rank-``rank`` embedding model ``f(x) = Uᵀ Aᵀ x`` (``A (d, r)``, ``U (r, K)``) as
    ``(init_fn(key, dtype), apply_fn(params, x (n, d)) -> (n, K))``; init ``A ~ N(0, 1/d)``, ``U ~ N(0, 1/r)``."""
    def init_fn(key, dtype):
        ka, ku = jax.random.split(key)
        return {"A": jax.random.normal(ka, (d, rank), dtype) / math.sqrt(d),
                "U": jax.random.normal(ku, (rank, K), dtype) / math.sqrt(rank)}

    def apply_fn(params, x):
        return mm(mm(x, params["A"]), params["U"])

    return init_fn, apply_fn


def noisy_teacher_probs(task, key, sigma: float):
    """The T3 teacher, a noisy version of p*: ``x -> softmax((W + σ G) x)`` with ``W = V / τ₀`` the task's
    matrix and ``G`` i.i.d. ``N(0, ‖W‖_rms²)`` drawn from ``key`` once (a fixed function of x, as a fitted
    teacher's errors are)."""
    W = task.W
    G = jax.random.normal(key, W.shape, W.dtype) * jnp.sqrt(jnp.mean(W * W))
    Wt = W + sigma * G
    return lambda x: jax.nn.softmax(mm(x, Wt.T), axis=-1)


@partial(jax.jit, static_argnames=("apply_fn", "init_fn", "m", "steps", "lr"))
def train_retrieval(keys, x, pos_idx, pos_w, log_proposal, *, init_fn, apply_fn, m: int, steps: int, lr: float):
    """Train ``B`` retrieval students in one ``vmap`` with full-batch Adam on
    :func:`ntkd.theories.bias_variance.sampled_softmax_loss`, with ``m`` fresh negatives per example at every
    step drawn from each run's proposal (:func:`ntkd.theories.bias_variance.sample_negatives`, logQ-corrected).

    Per run ``b``: ``keys (B, 2)``, inputs ``x (B, n, d)``, positives ``pos_idx``/``pos_w (B, n, P)``, and
    ``log_proposal (B, n, K)`` (uniform ``-log K`` rows for uniform negatives, or a teacher's
    :func:`ntkd.theories.bias_variance.negative_proposal`). All runs start from ``init_fn(keys[0])`` (paired
    comparisons). Returns the parameters (leading axis B) and the last training losses ``(B,)``."""
    p0 = init_fn(keys[0], x.dtype)
    opt = optax.adam(lr)

    def one(key, x, pi, pw, lp):
        def loss(p, k):
            neg, lq = bv.sample_negatives(k, lp, m)
            return jnp.mean(bv.sampled_softmax_loss(apply_fn(p, x), pi, pw, neg, log_q=lq))

        def step(carry, k):
            p, st = carry
            val, g = jax.value_and_grad(loss)(p, k)
            upd, st = opt.update(g, st, p)
            return (optax.apply_updates(p, upd), st), val

        (p, _), vals = jax.lax.scan(step, (p0, opt.init(p0)), jax.random.split(key, steps))
        return p, vals[-1]

    return jax.vmap(one)(keys, x, pos_idx, pos_w, log_proposal)


def kernel_students(kernel_fn, x, targets: dict, *, x_eval, get: str = "ntk", diag_reg: float = 1e-3,
                    scale: float = 1.0) -> dict:
    """NTK kernel students, one per objective: the converged infinite-width network trained on MSE, i.e. kernel
    regression (:func:`ntkd.kernel_regression`) of the centred targets ``q - 1/K`` on ``x (n, d)``, read out as
    ``softmax(scale · K f(x_eval))``.

    [G] The readout (as :func:`ntkd.theories.bias_variance.kernel_teacher`): regression outputs are not
    probabilities; for small outputs ``softmax(K f) ≈ 1/K + f``, the regression estimate of the target
    probabilities. ``targets`` maps an objective's name to ``(n, K)`` probabilities; returns ``{name: (m, K)}``."""
    names = list(targets)
    T = jnp.stack([jnp.asarray(targets[k], x.dtype) for k in names], axis=-1)  # (n, K, O)
    n, K, O = T.shape
    f = kernel_regression(kernel_fn(x, x, get), (T - 1.0 / K).reshape(n, K * O),
                          kernel_fn(jnp.asarray(x_eval, x.dtype), x, get), diag_reg=diag_reg)
    probs = np.asarray(jax.nn.softmax(scale * K * f.reshape(-1, K, O), axis=1))
    return {k: probs[:, :, i] for i, k in enumerate(names)}
