"""Corrected distillation targets ``g(p̂) + γ (y − p̂)`` and the γ rules of Dao, Kamath, Syrgkanis &
Mackey (2021), "Knowledge Distillation as Semiparametric Inference" (ICLR 2021), as implemented in the
authors' ``tabular.py`` / ``kd.py``.

Symbols: ``p̂`` the teacher probability of a class (any shape, entries in [0, 1]); ``y`` the matching
one-hot / 0-1 label entries; ``g = id`` (``scale="p"``) or ``g = log`` (``scale="logp"``); ``p̄ =
max(p̂, clip)`` (clip 1/500 on the log scale). γ = 0 is vanilla KD, ``γ = g'(p̂)`` (1 or 1/p̄) the
orthogonal (doubly robust) correction; ``γ = 1 − α`` is mixing labels at weight ``1 − α``.

Every function is elementwise, jit/vmap-able and differentiable where its rule is smooth (grid rules —
BoundSlow and minimax — are piecewise constant in ``p̂``: their derivative is 0, as in the authors' code).
Eager calls reject out-of-range inputs; traced out-of-range ``p̂`` or ``y`` give NaN.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..._core.checks import all_true, as_float_array, check_positive

__all__ = ["kd_target", "gamma_orth", "gamma_boundfast", "gamma_boundslow", "gamma_minimax", "gamma_mix",
           "uncertainty_interval", "minimax_objective", "target_bias_variance", "GAMMA_GRID", "LOG_CLIP"]

#: the authors' clip of p̂ inside log and 1/p̂ on the log scale (``np.maximum(p, 1/500)``)
LOG_CLIP = 1.0 / 500.0
#: lower end of the uncertainty sets on the log scale (``bound_l = 1e-3`` in ``tabular.py``)
LOG_BOUND = 1e-3


def GAMMA_GRID(dtype=jnp.float32):
    """The minimax γ grid ``arange(-10, 10, 0.05)`` (400 values, ``-10 … 9.95``)."""
    return (jnp.arange(400) * 0.05 - 10.0).astype(dtype)


def _scale(scale):
    if scale not in ("p", "logp"):
        raise ValueError(f"`scale` must be 'p' (probability targets) or 'logp' (log-probability targets); "
                         f"got {scale!r}.")
    return scale


def _prob(p, name):
    """``p`` as a float array; eager values outside [0, 1] raise, traced ones become NaN."""
    p = as_float_array(p, name)
    if not all_true(p, lambda a: ((a >= 0) & (a <= 1)).all()):
        raise ValueError(f"`{name}` must hold probabilities in [0, 1]; got values outside (min "
                         f"{float(jnp.nanmin(p)):.4g}, max {float(jnp.nanmax(p)):.4g}).")
    return jnp.where((p >= 0) & (p <= 1), p, jnp.nan)


def _labels(y, like):
    y = _prob(y, "y").astype(like.dtype)
    if not all_true(y, lambda a: ((a == 0) | (a == 1)).all()):
        raise ValueError("`y` must hold 0/1 label entries (one-hot rows for K classes).")
    return jnp.where((y == 0) | (y == 1), y, jnp.nan)


def _floor(p, scale, clip):
    return jnp.maximum(p, clip) if scale == "logp" else p


def kd_target(p_hat, y, *, scale: str = "p", gamma=0.0, clip: float = LOG_CLIP):
    """The student's regression target: ``p̂ + γ (y − p̂)`` (``scale="p"``) or ``log max(p̂, clip) + γ (y −
    p̂)`` (``scale="logp"``; the unclipped p̂ inside ``y − p̂``, as in the authors' code).

    Shapes: ``p_hat``, ``y`` and ``gamma`` broadcast together; returns their broadcast shape.
    """
    _scale(scale)
    clip = check_positive(clip, "clip")
    p = _prob(p_hat, "p_hat")
    y = _labels(y, p)
    g = jnp.log(jnp.maximum(p, clip)) if scale == "logp" else p
    return g + jnp.asarray(gamma, p.dtype) * (y - p)


def gamma_orth(p_hat, *, scale: str = "p", clip: float = LOG_CLIP):
    """Orthogonal (doubly robust) γ = g'(p̂): 1 on the p scale, ``1/max(p̂, clip)`` on the log scale."""
    _scale(scale)
    p = _prob(p_hat, "p_hat")
    if scale == "p":
        return jnp.where(jnp.isnan(p), jnp.nan, jnp.ones_like(p))
    return 1.0 / jnp.maximum(p, check_positive(clip, "clip"))


def gamma_boundfast(p_hat, y, *, c, scale: str = "p", clip: float = LOG_CLIP):
    """"Enhanced KD" γ (``…KDBoundFast``): the minimiser of ``γ²(y − p̂)² + c(γ − γ⊥)²``,
    ``γ = γ⊥ · c / (c + (y − p̂)²)`` with γ⊥ from :func:`gamma_orth`; in ``[0, γ⊥]``, → γ⊥ as c → ∞ and → 0
    as c → 0. ``c > 0`` (the authors' grid 1e-5 … 1e3, chosen by cross-validation)."""
    c = check_positive(c, "c")
    p = _prob(p_hat, "p_hat")
    y = _labels(y, p)
    return gamma_orth(p, scale=scale, clip=clip) * c / (c + (y - p) ** 2)


def gamma_boundslow(p_hat, y, *, c, scale: str = "p", clip: float = LOG_CLIP, grid=None):
    """``…KDBoundSlow`` γ: ``argmin_γ γ²(y − p̄)² + c(γ − γ⊥)⁴`` over ``grid`` (default the authors'
    ``linspace(-100, 100, 1000)``; first minimiser on ties). On the log scale the authors pass the clipped
    p̄ = max(p̂, clip) to the objective (γ⊥ = 1/p̄); so does this function. Piecewise constant in p̂."""
    _scale(scale)
    c = check_positive(c, "c")
    p = _prob(p_hat, "p_hat")
    y = _labels(y, p)
    grid = jnp.linspace(-100.0, 100.0, 1000, dtype=p.dtype) if grid is None else jnp.asarray(grid, p.dtype)
    pb = _floor(p, scale, clip)
    g_perp = 1.0 / pb if scale == "logp" else jnp.ones_like(pb)
    obj = grid ** 2 * ((y - pb) ** 2)[..., None] + c * (grid - g_perp[..., None]) ** 4
    out = grid[jnp.argmin(obj, axis=-1)]
    return jnp.where(jnp.isnan(p + y), jnp.nan, out)


def gamma_mix(alpha):
    """Mixing with labels, ``(1 − α)‖f − y‖² + α‖f − p̂‖²``, as a constant correction: γ = 1 − α."""
    a = as_float_array(alpha, "alpha")
    if not all_true(a, lambda v: ((v >= 0) & (v <= 1)).all()):
        raise ValueError(f"`alpha` (teacher weight) must lie in [0, 1]; got {alpha!r}.")
    return jnp.where((a >= 0) & (a <= 1), 1.0 - a, jnp.nan)


def uncertainty_interval(p_hat, *, kind: str, c: float, scale: str = "p"):
    """The set ``I(p̂) ∋ p0`` of the minimax rule, clipped to ``[b_l, 1]`` (``b_l = 0`` on the p scale,
    1e-3 on the log scale): ``relerr`` ``[p̂/(1+c), p̂(1+c)]``; ``abserr`` ``[p̂ − c, p̂ + c]``; ``power``
    ``[p̂, p̂^{1/c}]`` (c = t_max; ends sorted). Returns ``(low, high)`` of p̂'s shape."""
    _scale(scale)
    c = check_positive(c, "c")
    p = _prob(p_hat, "p_hat")
    if kind == "relerr":
        lo, hi = p / (1 + c), p * (1 + c)
    elif kind == "abserr":
        lo, hi = p - c, p + c
    elif kind == "power":
        a, b = p, p ** (1.0 / c)
        lo, hi = jnp.minimum(a, b), jnp.maximum(a, b)
    else:
        raise ValueError(f"`kind` must be 'relerr', 'abserr' or 'power'; got {kind!r}.")
    bl = LOG_BOUND if scale == "logp" else 0.0
    return jnp.clip(lo, bl, 1.0), jnp.clip(hi, bl, 1.0)


def minimax_objective(gamma, p, p_hat, *, alpha=1.0, scale: str = "p"):
    """``(γ(p − p̂) − (g(p) − g(p̂)))² + (1/α − 1 + γ)² p(1 − p)``: squared bias of the corrected target
    plus its variance (with label mixing at weight 1 − α) when the truth is p. Broadcasts."""
    _scale(scale)
    g = jnp.log if scale == "logp" else (lambda v: v)
    return (gamma * (p - p_hat) - (g(p) - g(p_hat))) ** 2 + (1.0 / alpha - 1.0 + gamma) ** 2 * p * (1 - p)


def gamma_minimax(p_hat, *, kind: str, c: float, alpha: float = 1.0, scale: str = "p", grid=None,
                  clip: float = LOG_CLIP, points: int = 10):
    """Minimax γ over the uncertainty set (``…KDRelerr/Abserr/Power``):
    ``argmin_{γ ∈ grid} max_{p ∈ I(p̂)} minimax_objective(γ, p, p̂)``.

    * p scale: the inner max is exact — the objective is quadratic in p, so its max on ``[lo, hi]`` is at
      ``lo``, ``hi`` or the clipped stationary point ``p* = (2p̂(γ−1)² − v) / (2((γ−1)² − v))``, ``v =
      (1/α − 1 + γ)²`` (the authors' ``(2p̂(γ−1)² − γ²)/(2(1−2γ))`` at α = 1; [DERIVED] for α ≠ 1). Where
      the denominator vanishes (γ = 1/2 at α = 1) the objective is linear and only the ends count.
    * log scale: the max over ``points`` equally spaced p in I (10 as in the code), with p̂ → max(p̂, clip)
      as in ``tabular.py``.

    Grid default :func:`GAMMA_GRID`; ties go to the smallest |γ| (then the negative one). ``alpha ∈ (0, 1]``.
    Shape of ``p_hat``. Piecewise constant in p̂ (derivative 0).
    """
    _scale(scale)
    alpha = check_positive(alpha, "alpha")
    if alpha > 1:
        raise ValueError(f"`alpha` (teacher weight) must lie in (0, 1]; got {alpha!r}.")
    if kind not in ("relerr", "abserr", "power"):
        raise ValueError(f"`kind` must be 'relerr', 'abserr' or 'power'; got {kind!r}.")
    c = check_positive(c, "c")
    p = _prob(p_hat, "p_hat")
    grid = GAMMA_GRID(p.dtype) if grid is None else jnp.asarray(grid, p.dtype)
    return _minimax(p, grid, kind=kind, c=c, alpha=alpha, scale=scale, clip=clip, points=points)


@partial(jax.jit, static_argnames=("kind", "c", "alpha", "scale", "clip", "points"))
def _minimax(p, grid, *, kind, c, alpha, scale, clip, points):
    grid = grid[jnp.argsort(jnp.abs(grid), stable=True)]
    ph = _floor(p, scale, clip)
    lo, hi = uncertainty_interval(ph, kind=kind, c=c, scale=scale)
    g, ph_, lo_, hi_ = grid, ph[..., None], lo[..., None], hi[..., None]
    if scale == "p":
        a = (g - 1.0) ** 2
        v = (1.0 / alpha - 1.0 + g) ** 2
        den = 2.0 * (a - v)
        safe = jnp.where(den == 0, 1.0, den)
        ps = jnp.clip((2.0 * ph_ * a - v) / safe, lo_, hi_)
        ps = jnp.where(den == 0, lo_, ps)
        cands = [lo_, hi_, ps]
    else:
        t = jnp.linspace(0.0, 1.0, points, dtype=p.dtype)
        cands = [lo_ + s * (hi_ - lo_) for s in t]
    worst = jnp.max(jnp.stack([minimax_objective(g, q, ph_, alpha=alpha, scale=scale) for q in cands]), 0)
    out = grid[jnp.argmin(worst, axis=-1)]
    return jnp.where(jnp.isnan(p), jnp.nan, out)


def target_bias_variance(p_hat, p0, gamma, *, scale: str = "p"):
    """Conditional bias and variance of the corrected target given x, per class, when ``Y ~ p0``:
    ``bias = g(p̂) + γ(p0 − p̂) − g(p0)``, ``var = γ² p0(1 − p0)`` (no clipping). Returns ``(bias, var)``."""
    _scale(scale)
    p = _prob(p_hat, "p_hat")
    q = _prob(p0, "p0").astype(p.dtype)
    g = jnp.log if scale == "logp" else (lambda v: v)
    gamma = jnp.asarray(gamma, p.dtype)
    return g(p) + gamma * (q - p) - g(q), gamma ** 2 * q * (1 - q)
