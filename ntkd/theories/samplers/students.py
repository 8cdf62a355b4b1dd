"""Students trained on teacher labels of unlabelled points (Kaplun et al. 2022, brief §1.4, §5.2):
exact 0-1 ERM over 1-D thresholds and L2-regularised softmax (logistic) regression on fixed features.
Kernel-ridge and NTK-gradient-flow students are :func:`.teachers.fit_kernel_machine` on teacher labels
(``ridge → 0`` or ``t → ∞`` is the interpolating student, the brief's negative control).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._core.checks import check_int, is_concrete
from ..._core.linalg import mm
from ...losses import one_hot, softmax_cross_entropy

__all__ = [
    "ThresholdFit",
    "affine_features",
    "erm_threshold_1d",
    "fourier_features",
    "softmax_objective",
    "softmax_regression",
]


class ThresholdFit(NamedTuple):
    """Exact ERM threshold: ``tau`` (the student is 1[x > tau]) and its empirical 0-1 risk ``risk``."""
    tau: jax.Array
    risk: jax.Array


def erm_threshold_1d(x, q) -> ThresholdFit:
    """Exact 0-1 ERM over the class {x ↦ 1[x > τ]} on ``x (n,)`` with labels ``q (n,)``: hard labels 0/1,
    or soft labels q_i = Pr[y_i = 1] (then the risk is the expected 0-1 loss Σ_i [q_i 1[h=0] + (1-q_i)
    1[h=1]] / n). O(n log n) by sorting and cumulative sums; among minimisers the smallest τ; τ is the
    midpoint between neighbouring sorted points (±inf at the ends). Piecewise constant: no derivative."""
    x = jnp.asarray(x)
    q = jnp.asarray(q, x.dtype)
    if x.ndim != 1 or q.shape != x.shape:
        raise ValueError(f"`x` and `q` must be vectors of the same length n; got {x.shape}, {q.shape}.")
    if is_concrete(q) and not bool(jnp.all((q >= 0) & (q <= 1))):
        raise ValueError("`q` must hold labels in {0, 1} or probabilities in [0, 1].")
    order = jnp.argsort(x)
    xs, qs = x[order], q[order]
    n = x.shape[0]
    left = jnp.concatenate([jnp.zeros(1, x.dtype), jnp.cumsum(qs)])           # label-1 mass predicted 0
    right = jnp.concatenate([jnp.cumsum((1 - qs)[::-1])[::-1], jnp.zeros(1, x.dtype)])  # label-0 mass -> 1
    loss = (left + right) / n
    j = jnp.argmin(loss)
    ext = jnp.concatenate([jnp.full(1, -jnp.inf, x.dtype), xs, jnp.full(1, jnp.inf, x.dtype)])
    lo, hi = ext[j], ext[j + 1]
    tau = jnp.where(jnp.isinf(lo), lo, jnp.where(jnp.isinf(hi), hi, (lo + hi) / 2))
    bad = jnp.any(jnp.isnan(q) | jnp.isnan(x))
    return ThresholdFit(jnp.where(bad, jnp.nan, tau), jnp.where(bad, jnp.nan, loss[j]))


def affine_features(x):
    """``[x, 1]``: ``(n, d) -> (n, d + 1)`` (logistic regression with a bias)."""
    return jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)


def fourier_features(x, harmonics: int = 10):
    """Angle features of 2-D points: ``[1, cos jθ, sin jθ]_{j=1..H}``, θ = atan2(x_2, x_1): ``(n, 2H + 1)``
    (the brief's C3 student, H = 10)."""
    h = check_int(harmonics, "harmonics", minimum=1)
    th = jnp.arctan2(x[:, 1], x[:, 0])[:, None] * jnp.arange(1, h + 1, dtype=x.dtype)
    return jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), jnp.cos(th), jnp.sin(th)], axis=1)


def softmax_objective(w, phi, q, l2):
    """mean_i CE(q_i, softmax(φ_i W)) + (l2/2)|W|²: ``w (p, K)``, ``phi (n, p)``, ``q (n, K)`` probability
    rows (:func:`ntkd.losses.softmax_cross_entropy`; rows off the simplex give NaN)."""
    return jnp.mean(softmax_cross_entropy(mm(phi, w), q)) + 0.5 * l2 * jnp.sum(w * w)


def _grad(w, phi, q, l2):
    return mm(phi.T, jax.nn.softmax(mm(phi, w), axis=-1) - q) / phi.shape[0] + l2 * w


@functools.partial(jax.jit, static_argnums=3)
def _solve(phi, q, l2, iters):
    """Böhning's bound-optimisation (MM) iterations W ← W - B⁻¹∇, B = (φᵀφ/n) ⊗ ½(I - 11ᵀ/K) + l2·I ≽ ∇²:
    monotone and globally convergent; B⁻¹ through the eigenvectors of φᵀφ/n."""
    n, K = q.shape
    c, U = jnp.linalg.eigh(mm(phi.T, phi) / n)
    c = jnp.maximum(c, 0)

    def binv(g):
        g = mm(U.T, g)
        mean = jnp.mean(g, axis=1, keepdims=True)
        return mm(U, (g - mean) / (c[:, None] / 2 + l2) + mean / l2)

    w0 = jnp.zeros((phi.shape[1], K), phi.dtype)
    return jax.lax.fori_loop(0, iters, lambda i, w: w - binv(_grad(w, phi, q, l2)), w0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _softmax_fit(phi, q, l2, iters):
    return _solve(phi, q, l2, iters)


def _fit_fwd(phi, q, l2, iters):
    w = _solve(phi, q, l2, iters)
    return w, (w, phi, q, l2)


def _fit_bwd(iters, res, wbar):
    # implicit function theorem on ∇_W L(W*, φ, q, l2) = 0: θ̄ = -(∂∇/∂θ)ᵀ H⁻¹ W̄
    w, phi, q, l2 = res
    p, K = w.shape
    hess = jax.hessian(lambda v: softmax_objective(v.reshape(p, K), phi, q, l2))(w.reshape(-1))
    u = jnp.linalg.solve(hess, wbar.reshape(-1)).reshape(p, K)
    _, vjp = jax.vjp(lambda a, b, c: _grad(w, a, b, c), phi, q, l2)
    return tuple(-g for g in vjp(u))


_softmax_fit.defvjp(_fit_fwd, _fit_bwd)


def softmax_regression(phi, q, *, l2=1e-4, iters: int = 500, num_classes=None):
    """Multinomial logistic regression W* = argmin ``softmax_objective`` on features ``phi (n, p)`` with
    targets ``q``: probabilities ``(n, K)`` (soft teacher labels) or int labels ``(n,)`` with
    ``num_classes`` = K (one-hot). Returns ``W (p, K)``; predicted scores ``φ W``.

    ``l2 > 0`` makes the minimiser unique (it also fixes the softmax gauge: the columns of W sum to 0).
    Solved by ``iters`` monotone bound-optimisation steps; ``jax.grad`` goes through the implicit function
    theorem at the solution (``custom_vjp``: reverse mode only), never through the iterations. K = 2 is
    logistic regression: W[:, 1] - W[:, 0] are its weights.
    """
    phi = jnp.asarray(phi)
    q = jnp.asarray(q)
    if jnp.issubdtype(q.dtype, jnp.integer):
        if num_classes is None:
            raise ValueError("integer labels `q` need `num_classes` (K); or pass one-hot/soft targets (n, K).")
        q = one_hot(q, check_int(num_classes, "num_classes", minimum=2), dtype=phi.dtype)
    if phi.ndim != 2 or q.ndim != 2 or q.shape[0] != phi.shape[0]:
        raise ValueError(f"`phi` must be (n, p) and `q` (n, K) with the same n; got {phi.shape}, {q.shape}.")
    l2 = jnp.asarray(l2, phi.dtype)
    if is_concrete(l2) and not bool(l2 > 0):
        raise ValueError(f"`l2` must be > 0 (it makes the minimiser unique); got {l2!r}.")
    l2 = jnp.where(l2 > 0, l2, jnp.nan)
    return _softmax_fit(phi, q.astype(phi.dtype), l2, check_int(iters, "iters", minimum=1))
