"""Solves with a PSD kernel in its eigenbasis: pseudo-inverse coefficients, the gradient-flow filter φ,
a check that a Cholesky factor is usable, and a solve that falls back to the minimum-norm solution."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .linalg import mm

__all__ = ["pinv_coeffs", "factor_usable", "pinv_solve", "flow_phi", "solve_psd"]

def pinv_coeffs(evals, count=None):
    """1/λ above a relative cutoff n·eps·max|λ|, 0 below (the pseudo-inverse in the eigenbasis); ``count``
    (default: the number of eigenvalues, may be traced) replaces n where padded points are not counted."""
    count = evals.shape[0] if count is None else count
    cutoff = count * jnp.finfo(evals.dtype).eps * jnp.max(jnp.abs(evals))
    return jnp.where(evals > cutoff, 1 / jnp.where(evals > cutoff, evals, 1), 0)


def factor_usable(chol_lower, count=None):
    """False when the Cholesky factor failed (NaN) or the kernel is numerically singular
    (squared pivot ratio > 1 / (n eps)); then the pseudo-inverse path is used instead. ``count`` as in
    :func:`pinv_coeffs`."""
    d = jnp.abs(jnp.diagonal(chol_lower))
    n = d.shape[0] if count is None else count
    finite = jnp.isfinite(d).all()
    ratio2 = (jnp.max(d) / jnp.maximum(jnp.min(d), jnp.finfo(d.dtype).tiny)) ** 2
    return finite & (ratio2 * n * jnp.finfo(d.dtype).eps < 1)


def pinv_solve(evals, evecs, rhs):
    return mm(evecs, pinv_coeffs(evals)[:, None] * mm(evecs.T, rhs))


def flow_phi(evals, tau, normalization):
    """(1 - exp(-λ τ / N)) / λ, equal to τ / N at λ = 0 (no 0/0), for λ >= 0 and τ >= 0."""
    lam = jnp.maximum(evals, 0)  # a PSD kernel: negative eigenvalues are rounding noise
    safe = jnp.where(lam > 0, lam, 1)
    return jnp.where(lam > 0, -jnp.expm1(-lam * tau / normalization) / safe, tau / normalization)


def solve_psd(k, rhs):
    """Θ⁻¹ rhs by Cholesky, or the minimum-norm eigen-solution if the factor is unusable (``lax.cond``:
    traceable; under ``jit`` the eigendecomposition runs only when needed, under ``vmap`` always)."""
    c = jax.scipy.linalg.cho_factor(k, lower=True)
    sol = jax.scipy.linalg.cho_solve(c, rhs)
    usable = factor_usable(c[0]) & jnp.isfinite(sol).all()
    return jax.lax.cond(usable, lambda: sol, lambda: pinv_solve(*jnp.linalg.eigh(k), rhs))
