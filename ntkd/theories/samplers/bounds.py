"""Bounds of the sampler theory (Kaplun et al. 2022 as reconstructed in brief §2–§3), as JAX scalars for
plotting theory against experiment. All are jit/vmap-able and differentiable in their real arguments."""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import betainc

__all__ = [
    "ensemble_excess_bound",
    "ensemble_vote_error",
    "ensemble_vote_hoeffding",
    "one_nn_sampler_bound",
    "student_bound",
]


def one_nn_sampler_bound(c, d, m):
    """4 c √d m^{-1/(d+1)}: bound on E_x|Pr_S[f_S(x) = 1] - η(x)| for 1-NN on [0,1]^d with a c-Lipschitz
    η and m training points (UML Thm 19.3 machinery, brief §3.1)."""
    return 4 * c * jnp.sqrt(d) * jnp.power(m, -1.0 / (d + 1))


def student_bound(eps_h, d_h, n, delta, *, C=1.0):
    """Theorem A (brief §2.1, RECON statement): L_D(ĥ) - min_H L_D ≤ 2ε_H + 2C√((d_H + log(1/δ))/n).
    [G] the constant C of uniform convergence is left to the caller (default 1)."""
    return 2 * eps_h + 2 * C * jnp.sqrt((d_h + jnp.log(1 / delta)) / n)


def ensemble_vote_error(a, K):
    """Exact Pr[Bin(K, a) > K/2]: the chance that a majority vote of K independent exact samplers
    disagrees with Bayes at a point with minority mass a = min(η, 1-η) (brief §2.4). Odd K (no ties):
    the regularised incomplete beta I_a(⌊K/2⌋ + 1, K - ⌊K/2⌋)."""
    k0 = jnp.floor(jnp.asarray(K) / 2) + 1
    return betainc(k0, K - k0 + 1, a)


def ensemble_vote_hoeffding(a, K):
    """Hoeffding's bound exp(-2K(1/2 - a)²) on :func:`ensemble_vote_error` (a < 1/2)."""
    return jnp.exp(-2 * K * (0.5 - a) ** 2)


def ensemble_excess_bound(eta, K):
    """Pointwise bound |1 - 2η| exp(-K(1 - 2η)²/2) on the vote's excess risk; average it over x for
    L(vote) - L* (brief §2.4)."""
    g = 1 - 2 * eta
    return jnp.abs(g) * jnp.exp(-K * g**2 / 2)
