"""The KD loss of Saglietti & Zdeborová (2022) in the student's pre-activation, and its proximal operator.

Per pattern, with hard label ``y`` (possibly smoothed, in [0, 1]), teacher pre-activation ``z_t`` (the
paper's h̃), soft fraction ``rho`` (the paper's χ; ntkd's one keyword for it), temperature ``T``:

    ℓ(h) = (1 - χ) H(y, σ(h)) + χ H(σ(z_t/T), σ(h/T)),     H(p, σ(u)) = log(1 + e^u) - p u,

no T² factor, the hard term at T = 1 (the brief's App. B.4 placement). The loss is
:func:`ntkd.losses` ' ``loss_terms`` with soft factor 1 (Ji & Zhu's convention, the same loss).

The proximal point ``h* = argmin_h (h - ω)²/(2V) + ℓ(h)`` solves ``h + V ℓ'(h) = ω``; it lies in the bracket
``[ω - V ℓ'_max, ω - V ℓ'_min]`` (ℓ' is bounded), so a Newton iteration that falls back to bisection when a
step leaves the current bracket converges for every input in a fixed number of steps. Its derivative is
implicit (``custom_jvp``): ``dh* = -(∂g/∂θ · dθ)/(1 + V ℓ''(h*))`` with ``g = h - ω + V ℓ'(h)``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.nn import sigmoid

from ..._core.checks import all_true, as_float_array
from ...losses import check_rho, check_T, grad_z, loss_terms

__all__ = ["PROX_ITERS", "kd_loss_derivatives", "prox_kd"]

#: Newton steps of the proximal operator from a cold start (the bracket halves at least every other step)
PROX_ITERS = 40


def _d2(h, rho, T):
    sp = lambda u: sigmoid(u) * sigmoid(-u)
    return (1 - rho) * sp(h) + rho / (T * T) * sp(h / T)


def loss_d012(h, y, z_t, rho, T):
    """Unvalidated ``(ℓ, ℓ', ℓ'')`` at pre-activation ``h`` (traced code)."""
    return loss_terms(h, z_t, y, rho, T, 1.0), grad_z(h, z_t, y, rho, T, 1.0), _d2(h, rho, T)


def kd_loss_derivatives(h, y, z_t, rho, T=1.0):
    """The per-pattern KD loss ℓ and its first two derivatives in the student pre-activation ``h``.

    Args (broadcast together): ``h`` student pre-activation, ``y`` hard label in [0, 1] (smoothed labels
    allowed), ``z_t`` teacher pre-activation h̃, ``rho`` soft fraction χ ∈ [0, 1], ``T`` > 0.
    Returns ``(ℓ, ∂ℓ/∂h, ∂²ℓ/∂h²)``, each of the broadcast shape; log-sigmoids, so no overflow.
    """
    h, y, z_t = (as_float_array(a, n) for a, n in ((h, "h"), (y, "y"), (z_t, "z_t")))
    if not all_true(y, lambda a: ((a >= 0) & (a <= 1)).all()):
        raise ValueError(f"`y` (hard label, possibly smoothed) must lie in [0, 1]; got {y!r}.")
    rho, T = check_rho(rho), check_T(T)
    dt = jnp.result_type(h, y, z_t, rho, T)
    return loss_d012(*(jnp.asarray(a, dt) for a in (h, y, z_t, rho, T)))


def _bracket(omega, V, y, z_t, rho, T):
    s = sigmoid(z_t / T)
    lo_d = -(1 - rho) * y - rho * s / T  # ℓ' ≥ lo_d
    hi_d = (1 - rho) * (1 - y) + rho * (1 - s) / T  # ℓ' ≤ hi_d
    return omega - V * hi_d, omega - V * lo_d


@functools.partial(jax.custom_jvp, nondiff_argnums=(7,))
def prox_core(omega, V, y, z_t, rho, T, h0, iters):
    """Unvalidated safeguarded Newton for ``h + V ℓ'(h) = ω`` from ``h0`` (clipped into the bracket),
    ``iters`` steps; implicit derivative in (ω, V, y, z_t, ρ, T), none in ``h0``."""
    lo, hi = _bracket(omega, V, y, z_t, rho, T)
    h = jnp.clip(h0, lo, hi)

    def step(_, c):
        h, lo, hi, dx_old = c
        _, d1, d2 = loss_d012(h, y, z_t, rho, T)
        g = h - omega + V * d1
        lo, hi = jnp.where(g < 0, h, lo), jnp.where(g > 0, h, hi)
        dx = g / (1 + V * d2)
        new = h - dx
        # a few ulps of slack: XLA may round g differently in the bracket test and the step
        slack = 16 * jnp.finfo(h.dtype).eps * (1 + jnp.abs(h))
        inside = (new >= lo - slack) & (new <= hi + slack)
        # a full Newton step only while it at least halves the previous step; else half of it (inside the
        # bracket) or bisection (outside). Plain Newton can bounce between the two flat ends of a large-V
        # bracket forever; bisecting a bracket as wide as V from a warm start wastes the fixed step budget.
        newton = (inside & (2 * jnp.abs(dx) <= jnp.abs(dx_old))) | (jnp.abs(dx) <= slack)
        half = jnp.clip(h - 0.5 * dx, lo, hi)
        h_new = jnp.where(newton, jnp.clip(new, lo, hi), jnp.where(inside, half, 0.5 * (lo + hi)))
        dx_old = jnp.where(newton, dx, h - h_new)
        return jnp.where(g == 0, h, h_new), lo, hi, dx_old

    h, _, _, _ = jax.lax.fori_loop(0, iters, step, (h, lo, hi, 2 * (hi - lo) + 1))
    return h


@prox_core.defjvp
def _prox_jvp(iters, primals, tangents):
    omega, V, y, z_t, rho, T, h0 = primals
    h = prox_core(omega, V, y, z_t, rho, T, h0, iters)
    g = lambda *a: a[0] - a[1] + a[2] * loss_d012(a[0], *a[3:])[1]
    zero = jnp.zeros_like(h)
    _, dg = jax.jvp(g, (h, omega, V, y, z_t, rho, T), (zero,) + tuple(tangents[:6]))
    d2 = _d2(h, rho, T)
    return h, -dg / (1 + V * d2)


def prox_kd(omega, V, y, z_t, rho, T=1.0, *, iters: int = PROX_ITERS, h0=None):
    """Proximal operator of the KD loss (brief §2.6): ``h* = argmin_h (h - ω)²/(2V) + ℓ(h)``.

    Args (broadcast together): cavity field ``omega`` (ω), variance ``V >= 0`` (V = 0 returns ω), hard label
    ``y`` in [0, 1], teacher pre-activation ``z_t`` (h̃), soft fraction ``rho`` (χ), temperature ``T``;
    ``iters`` Newton steps (fixed count, so it jits and vmaps); ``h0`` a warm start (default ω).

    Returns ``(h*, f, κ)`` with ``f = -ℓ'(h*) = (h* - ω)/V`` and ``κ = ℓ''(h*)``. Derivatives of ``h*`` are
    implicit (exact at the root, independent of the iteration path).
    """
    omega, V, y, z_t = (as_float_array(a, n) for a, n in ((omega, "omega"), (V, "V"), (y, "y"), (z_t, "z_t")))
    if not all_true(V, lambda a: (a >= 0).all()):
        raise ValueError(f"`V` (the proximal variance Δ·δq) must be >= 0; got {V!r}.")
    if not all_true(y, lambda a: ((a >= 0) & (a <= 1)).all()):
        raise ValueError(f"`y` (hard label, possibly smoothed) must lie in [0, 1]; got {y!r}.")
    rho, T = check_rho(rho), check_T(T)
    dt = jnp.result_type(omega, V, y, z_t, rho, T)
    omega, V, y, z_t, rho, T = jnp.broadcast_arrays(*(jnp.asarray(a, dt) for a in (omega, V, y, z_t, rho, T)))
    V = jnp.where(V >= 0, V, jnp.nan)
    h = prox_core(omega, V, y, z_t, rho, T, omega if h0 is None else jnp.broadcast_to(jnp.asarray(h0, dt), omega.shape),
                  int(iters))
    _, d1, d2 = loss_d012(h, y, z_t, rho, T)
    return h, -d1, d2
