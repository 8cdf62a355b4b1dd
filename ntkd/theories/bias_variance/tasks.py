"""Synthetic classification tasks with exact Bayes class-probabilities ``p*`` (Menon et al. 2020, §4.2).

Each task is a pytree (a ``NamedTuple`` of arrays, so it can be vmapped and passed through ``jit``):

* :class:`GaussianTask` (T1): ``y ~ π``, ``x | y ~ N(μ_y, Σ)``. Shared covariance makes the posterior
  linear-softmax, ``p*(x) = softmax(W x + b)`` with ``W = M Σ⁻¹`` (rows ``μ_yᵀ Σ⁻¹``) and
  ``b_y = -½ μ_yᵀ Σ⁻¹ μ_y + log π_y``. Scaling the means dials the label noise.
* :class:`LogisticTask` (T2): ``x ~ N(0, Σ)``, ``y | x ~ softmax(W* x + b*)``.
* :class:`FiniteTask`: ``x`` uniform-weighted over ``M`` support points with given ``p*``: every population
  expectation is an exact finite sum (used for exact checks).

Functions: :func:`sample` ``(task, key, n) -> (x (n, d), y (n,))``; :func:`bayes_probs` ``(task, x) -> p*
(n, K)``; :func:`population` ``(task, key, draws) -> (x, weights)``: the support and its probabilities
(exact) for a :class:`FiniteTask`, else ``draws`` i.i.d. inputs with weights ``1/draws`` (Monte Carlo).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ..._core.checks import as_float_array, check_finite, check_int
from ..._core.linalg import einsum, mm
from ...losses import check_probs, probs_valid

__all__ = [
    "FiniteTask",
    "GaussianTask",
    "LogisticTask",
    "bayes_logits",
    "bayes_probs",
    "finite_task",
    "gaussian_task",
    "logistic_task",
    "population",
    "sample",
]


class GaussianTask(NamedTuple):
    """Gaussian class-conditionals with shared covariance: means ``(K, d)``, ``chol (d, d)`` lower Cholesky
    factor of Σ, ``log_prior (K,)``, and the exact posterior's ``W (K, d)``, ``b (K,)``."""

    means: jax.Array
    chol: jax.Array
    log_prior: jax.Array
    W: jax.Array
    b: jax.Array


class LogisticTask(NamedTuple):
    """Multiclass logistic model: ``x ~ N(0, chol cholᵀ)``, ``p*(x) = softmax(W x + b)``; ``W (K, d)``."""

    chol: jax.Array
    W: jax.Array
    b: jax.Array


class FiniteTask(NamedTuple):
    """Finite input law: ``support (M, d)`` with probabilities ``weights (M,)`` and ``p_star (M, K)``."""

    support: jax.Array
    weights: jax.Array
    p_star: jax.Array


def _check_cov(cov, d, dtype):
    if cov is None:
        return jnp.eye(d, dtype=dtype)
    c = as_float_array(cov, "cov").astype(dtype)
    if c.shape != (d, d):
        raise ValueError(f"`cov` must have shape ({d}, {d}); got {c.shape}.")
    check_finite(c, "cov")
    L = jnp.linalg.cholesky(c)
    if not bool(jnp.isfinite(L).all()):
        raise ValueError("`cov` must be symmetric positive definite (its Cholesky factorization failed).")
    return L


def _log_prior(prior, K, dtype):
    if prior is None:
        return jnp.full((K,), -jnp.log(K), dtype)
    p = check_probs(prior, "prior", (K,)).astype(dtype)
    if not bool((p > 0).all()):
        raise ValueError("`prior` must be > 0 for every class (drop classes of zero prior).")
    return jnp.log(p)


def gaussian_task(means, *, cov=None, prior=None) -> GaussianTask:
    """T1: ``means (K, d)``, optional ``cov (d, d)`` (default identity) and ``prior (K,)`` (default uniform).
    Dao et al.'s binary generator is ``means = [[-r]*d, [r]*d]``. The float dtype follows ``means``."""
    m = as_float_array(means, "means")
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"`means` must have shape (K, d) with K >= 2 classes; got {m.shape}.")
    check_finite(m, "means")
    K, d = m.shape
    L = _check_cov(cov, d, m.dtype)
    lp = _log_prior(prior, K, m.dtype)
    W = jsl.cho_solve((L, True), m.T).T  # rows μ_yᵀ Σ⁻¹
    b = -0.5 * (W * m).sum(-1) + lp
    return GaussianTask(m, L, lp, W, b)


def logistic_task(W, *, b=None, cov=None) -> LogisticTask:
    """T2: known ``W (K, d)``, optional ``b (K,)`` (default 0) and input covariance (default identity)."""
    W = as_float_array(W, "W")
    if W.ndim != 2 or W.shape[0] < 2:
        raise ValueError(f"`W` must have shape (K, d) with K >= 2; got {W.shape}.")
    check_finite(W, "W")
    K, d = W.shape
    b = jnp.zeros((K,), W.dtype) if b is None else as_float_array(b, "b").astype(W.dtype)
    if b.shape != (K,):
        raise ValueError(f"`b` must have shape ({K},); got {b.shape}.")
    return LogisticTask(_check_cov(cov, d, W.dtype), W, b)


def finite_task(support, p_star, *, weights=None) -> FiniteTask:
    """A finite input law: ``support (M, d)`` distinct points, ``p_star (M, K)``, ``weights (M,)`` (default
    uniform)."""
    x = as_float_array(support, "support")
    if x.ndim != 2:
        raise ValueError(f"`support` must have shape (M, d); got {x.shape}.")
    check_finite(x, "support")
    M = x.shape[0]
    p = as_float_array(p_star, "p_star").astype(x.dtype)
    if p.ndim != 2 or p.shape[0] != M or p.shape[1] < 2:
        raise ValueError(f"`p_star` must have shape ({M}, K) with K >= 2; got {p.shape}.")
    p = check_probs(p, "p_star", p.shape)
    w = jnp.full((M,), 1.0 / M, x.dtype) if weights is None else check_probs(weights, "weights", (M,)).astype(x.dtype)
    return FiniteTask(x, w, p)


def _categorical(key, logits):
    return jax.random.categorical(key, logits, axis=-1)


def sample(task, key, n: int):
    """``n`` i.i.d. pairs: ``x (n, d)`` in the task's dtype and integer labels ``y (n,)`` (``jit`` with static
    ``n``; ``vmap`` over keys or tasks)."""
    n = check_int(n, "n", minimum=1)
    k1, k2 = jax.random.split(key)
    if isinstance(task, GaussianTask):
        K, d = task.means.shape
        y = _categorical(k1, jnp.broadcast_to(task.log_prior, (n, K)))
        z = jax.random.normal(k2, (n, d), task.means.dtype)
        return task.means[y] + mm(z, task.chol.T), y
    if isinstance(task, LogisticTask):
        d = task.W.shape[1]
        x = mm(jax.random.normal(k1, (n, d), task.W.dtype), task.chol.T)
        return x, _categorical(k2, bayes_logits(task, x))
    if isinstance(task, FiniteTask):
        idx = _categorical(k1, jnp.broadcast_to(jnp.log(task.weights), (n, task.weights.shape[0])))
        u = jax.random.uniform(k2, (n, 1), task.p_star.dtype)
        y = (u > jnp.cumsum(task.p_star[idx], axis=-1)).sum(-1)
        return task.support[idx], jnp.minimum(y, task.p_star.shape[1] - 1)
    raise TypeError(f"`task` must be a GaussianTask, LogisticTask or FiniteTask; got {type(task).__name__}.")


def bayes_logits(task, x):
    """Logits of ``p*``: ``W x + b`` for the Gaussian and logistic tasks, ``log p*`` for a finite task.
    ``x (n, d) -> (n, K)``."""
    x = as_float_array(x, "x")
    if isinstance(task, (GaussianTask, LogisticTask)):
        return einsum("nd,kd->nk", x, task.W) + task.b
    return jnp.log(bayes_probs(task, x))


def bayes_probs(task, x):
    """Exact ``p*(x) (n, K)`` for inputs ``x (n, d)``. For a :class:`FiniteTask` each row of ``x`` is looked
    up in the support; a row not in it gets NaN."""
    x = as_float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (n, d); got {x.shape}.")
    if isinstance(task, FiniteTask):
        hit = (x[:, None, :] == task.support[None]).all(-1)  # (n, M)
        p = task.p_star[jnp.argmax(hit, axis=1)]
        return jnp.where(hit.any(1, keepdims=True) & probs_valid(p)[:, None], p, jnp.nan)
    if not isinstance(task, (GaussianTask, LogisticTask)):
        raise TypeError(f"`task` must be a GaussianTask, LogisticTask or FiniteTask; got {type(task).__name__}.")
    return jax.nn.softmax(bayes_logits(task, x), axis=-1)


def population(task, key, draws: int = 2**16):
    """The input law for population expectations: ``(x (M, d), weights (M,))``, exact for a
    :class:`FiniteTask` (its support; ``key`` and ``draws`` unused), else ``draws`` samples of weight
    ``1/draws``."""
    if isinstance(task, FiniteTask):
        return task.support, task.weights
    x, _ = sample(task, key, draws)
    return x, jnp.full((x.shape[0],), 1.0 / x.shape[0], x.dtype)
