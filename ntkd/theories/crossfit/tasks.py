"""Synthetic tasks with exact Bayes probabilities ``p0(x) = E[Y | X = x]``, controlled teachers and the
evaluation metrics of Dao, Kamath, Syrgkanis & Mackey (2021).

* :func:`two_gaussian`: the authors' ``SyntheticGmm``: ``Z ~ Unif{0, 1}``, ``X | Z ~ N(μ_Z, I_d)`` with
  ``μ_0 = r·1``, ``μ_1 = −r·1``, so ``P(Y = 1 | x) = σ(−2r 1ᵀx)``; Y is redrawn from p0 (S1 of the brief).
* :func:`multiclass_logistic`: ``X ~ N(0, I_d)``, ``p0(x) = softmax(W⋆ x)`` (S2).
* Underfitting (biased) teachers with known error: :func:`tempered` (``p^{1/τ}`` renormalised: shrunk
  logits for τ > 1) and :func:`smoothed` (``(1 − ε)p + ε/K``).
* Metrics: :func:`auc` (ties at half weight), :func:`accuracy`, :func:`cross_entropy`, :func:`sq_error`.

Probabilities are ``(..., K)`` rows (binary tasks are K = 2, class 1 the positive one). All functions are
jit/vmap-able; randomness only through the explicit ``key``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._core.checks import check_int, check_positive
from ..._core.linalg import mm
from ...losses import smoothed_probs, tempered_probs

__all__ = ["Task", "two_gaussian", "two_gaussian_p0", "multiclass_logistic", "tempered", "smoothed", "auc",
           "accuracy", "cross_entropy", "sq_error"]


class Task(NamedTuple):
    """A sample with its Bayes probabilities: ``x (n, d)``, ``y (n,)`` int labels, ``p0 (n, K)``."""

    x: jax.Array
    y: jax.Array
    p0: jax.Array


def two_gaussian_p0(x, *, r: float):
    """Bayes probabilities ``(n, 2)`` of :func:`two_gaussian`: ``softmax(μ x)`` with rows μ_0 = r·1,
    μ_1 = −r·1, i.e. ``P(Y = 1 | x) = σ(−2r Σ_j x_j)``."""
    s = -2.0 * r * jnp.sum(x, axis=-1)
    return jnp.stack([jax.nn.sigmoid(-s), jax.nn.sigmoid(s)], axis=-1)


def two_gaussian(key, n: int, *, d: int, r: float, dtype=jnp.float32) -> Task:
    """n draws of the authors' two-Gaussian mixture (``datamodules/synthetic.py::SyntheticGmm``, d =
    ``input_size``, r = ``mean_distance_scale``); Y is redrawn from p0 as in the code."""
    n, d = check_int(n, "n", minimum=1), check_int(d, "d", minimum=1)
    r = check_positive(r, "r")
    kz, kx, ky = jax.random.split(key, 3)
    z = jax.random.bernoulli(kz, 0.5, (n,))
    mu = jnp.where(z[:, None], -r, r).astype(dtype)
    x = mu + jax.random.normal(kx, (n, d), dtype)
    p0 = two_gaussian_p0(x, r=r)
    y = jax.random.bernoulli(ky, p0[:, 1]).astype(jnp.int32)
    return Task(x, y, p0)


def multiclass_logistic(key, n: int, *, W) -> Task:
    """n draws of ``X ~ N(0, I_d)``, ``Y ~ softmax(W x)`` with ``W (K, d)`` (well specified for a linear
    softmax student, whose population minimiser is then ``f0 = W x``)."""
    n = check_int(n, "n", minimum=1)
    W = jnp.asarray(W)
    if W.ndim != 2 or W.shape[0] < 2:
        raise ValueError(f"`W` must have shape (K, d) with K >= 2 classes; got {W.shape}.")
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (n, W.shape[1]), W.dtype)
    logits = mm(x, W.T)
    y = jax.random.categorical(ky, logits).astype(jnp.int32)
    return Task(x, y, jax.nn.softmax(logits, axis=-1))


#: ``softmax(log p / τ)``: τ > 1 flattens (an under-confident teacher), τ < 1 sharpens
#: (:func:`ntkd.losses.tempered_probs`)
tempered = tempered_probs
#: label-smoothed ``(1 − ε) p + ε / K`` (:func:`ntkd.losses.smoothed_probs`)
smoothed = smoothed_probs


def auc(scores, y):
    """Area under the ROC curve of ``scores (n,)`` for binary labels ``y (n,)`` (Mann–Whitney, ties count
    1/2); NaN when one class is absent."""
    s = jnp.asarray(scores)
    y = jnp.asarray(y).astype(s.dtype)
    srt = jnp.sort(s)
    rank = 0.5 * (jnp.searchsorted(srt, s, side="left") + jnp.searchsorted(srt, s, side="right") + 1)
    n1 = jnp.sum(y)
    n0 = y.shape[0] - n1
    return (jnp.sum(rank * y) - n1 * (n1 + 1) / 2) / (n1 * n0)


def accuracy(p, y):
    """Fraction of argmax(p) = y for probability rows ``(n, K)``, or of ``(p > 0.5) = y`` for ``(n,)``."""
    p = jnp.asarray(p)
    pred = jnp.argmax(p, axis=-1) if p.ndim == 2 else (p > 0.5).astype(jnp.int32)
    return jnp.mean((pred == jnp.asarray(y)).astype(p.dtype))


def cross_entropy(p, y, *, floor: float = 1e-12):
    """Mean test cross-entropy ``−log max(p_y, floor)`` of probability rows ``(n, K)``."""
    p = jnp.asarray(p)
    py = jnp.take_along_axis(p, jnp.asarray(y)[:, None], axis=-1)[:, 0]
    return -jnp.mean(jnp.log(jnp.maximum(py, floor)))


def sq_error(p, p0):
    """``‖p − p0‖²_2`` averaged over the sample: ``mean_i Σ_k (p_ik − p0_ik)²`` (the distance of a student
    to the Bayes probabilities, the paper's ``‖f̂ − f0‖²`` with f0 = p0 on the p scale)."""
    return jnp.mean(jnp.sum((jnp.asarray(p) - jnp.asarray(p0)) ** 2, axis=-1))
