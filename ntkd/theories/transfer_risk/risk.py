"""Transfer risk and its bound (Ji & Zhu 2020, §3, App. S3, S6), computed from kernels only.

Notation: ``Δw_*`` is the oracle weight change (the student that expresses ``z_eff`` everywhere), ``Δŵ``
the converged student's (Eq. 4), ``Δw_z`` the one expressing the zero function. In kernel terms
``‖Δŵ_n‖ = sqrt(Δz_nᵀ Θ_n⁻¹ Δz_n)`` and ``‖Δw_* - Δw_z‖`` is the NTK-RKHS norm of ``z_eff(·)``, estimated
on a large reference sample (:func:`oracle_norm`).
"""
from __future__ import annotations

from typing import Callable, Union

import jax.numpy as jnp

from ..._core.checks import (all_true, as_float_array, check_finite, check_int, check_nonempty, positive_array,
                              valid_positive)
from ..._core.linalg import mm
from .distill import weight_change_norm

__all__ = ["transfer_risk", "feature_cosines", "oracle_norm", "angle_distribution", "alpha_n",
           "alpha_n_exact", "risk_bound", "phuong_lampert_bound"]


def transfer_risk(z_t, z_s):
    """R = P_x[z_t(x) · z_s(x) < 0] (§3.1): disagreement of student and teacher, as a sample mean over
    the leading axis, in the inputs' float dtype. A NaN logit is refused eagerly and makes the risk NaN
    under tracing (never the optimistic 0 of a NaN comparison)."""
    z_t = as_float_array(z_t, "z_t")
    z_s = as_float_array(z_s, "z_s")
    if z_t.shape != z_s.shape:
        raise ValueError(f"`z_t` {z_t.shape} and `z_s` {z_s.shape} must have the same shape.")
    check_nonempty(z_t, "z_t")
    for name, v in (("z_t", z_t), ("z_s", z_s)):
        if not all_true(v, lambda a: ~jnp.isnan(a).any(), name):
            raise ValueError(f"`{name}` holds NaN; a transfer risk of NaN logits is undefined.")
    dt = jnp.result_type(z_t, z_s)
    risk = jnp.mean((z_t * z_s < 0).astype(dt), axis=0)
    return jnp.where(jnp.isnan(z_t).any(axis=0) | jnp.isnan(z_s).any(axis=0), jnp.nan, risk)


def oracle_norm(theta_ref, z_eff_ref, *, jitter: float = 0.0):
    """‖Δw_* - Δw_z‖ ≈ sqrt(z_effᵀ Θ_R⁻¹ z_eff) on a reference sample R (§3.4, step 2).

    The minimum NTK-RKHS norm of a function interpolating z_eff on R; non-decreasing in |R|, so report
    it for growing R. For ρ < 1 z_eff is discontinuous and this norm does not converge.
    """
    return weight_change_norm(theta_ref, z_eff_ref, jitter=jitter)


def feature_cosines(z_eff, theta_diag, norm):
    """|cos ᾱ(φ(x), Δw_* - Δw_z)| = |z_eff(x)| / (‖Δw_* - Δw_z‖ sqrt(Θ(x, x))) (Eq. 8), clipped to [0, 1].

    Shapes: ``z_eff (m,)``, ``theta_diag (m,)`` (the NTK diagonal at the test points), ``norm`` scalar.
    """
    z = as_float_array(z_eff, "z_eff")
    d = as_float_array(theta_diag, "theta_diag").astype(z.dtype)
    if z.shape != d.shape:
        raise ValueError(f"`z_eff` {z.shape} and `theta_diag` {d.shape} must have the same shape.")
    norm = _positive_norm(norm).astype(z.dtype)
    return jnp.where(valid_positive(norm), jnp.clip(jnp.abs(z) / (norm * jnp.sqrt(d)), 0, 1), jnp.nan)


def angle_distribution(cosines, betas):
    """Accumulative angle distribution p(β) = P_x[ᾱ(φ(x), Δw_* - Δw_z) > β] (Eq. 6) for each β in ``betas``.

    ``cosines``: ``|cos ᾱ|`` at sample points (:func:`feature_cosines`), shape ``(m,)``. Returns ``betas``'s
    shape.
    """
    c = as_float_array(cosines, "cosines")
    check_nonempty(c, "cosines")
    unit = lambda v: (v >= 0) & (v <= 1 + 1e-12)  # noqa: E731  (False for NaN)
    if not all_true(c, lambda v: unit(v).all(), "cosines"):
        raise ValueError("`cosines` must be |cos| values in [0, 1] (feature_cosines), without NaN.")
    angles = jnp.arccos(jnp.clip(c, 0, 1))
    b = jnp.asarray(betas, c.dtype)
    p = jnp.mean((angles[None, :] > b.reshape(-1, 1)).astype(c.dtype), axis=1).reshape(b.shape)
    return jnp.where(unit(c).all() & ~jnp.isnan(b), p, jnp.nan)


def alpha_n(theta_train_train, dz_train, norm, *, jitter: float = 0.0):
    """ᾱ_n ≈ arccos(‖Δŵ_n‖ / ‖Δw_*‖) (Eq. 9), neglecting Δw_z (valid when ‖Δw_z‖ ≪ ‖Δw_*‖)."""
    w = weight_change_norm(theta_train_train, dz_train, jitter=jitter)
    norm = _positive_norm(norm).astype(w.dtype)
    return jnp.where(valid_positive(norm), jnp.arccos(jnp.clip(w / norm, 0, 1)), jnp.nan)


def _positive_norm(norm):
    """``norm`` (‖Δw_* - Δw_z‖) as an array; eagerly it must be finite and > 0 (an angle against a zero or
    negative norm is meaningless), under tracing the callers give NaN where it is not."""
    return positive_array(norm, "norm", hint=" (oracle_norm of the reference set)")


def alpha_n_exact(theta_ref, z_eff_ref, z0_ref, train_idx, *, jitter: float = 0.0):
    """Exact ᾱ_n = ᾱ(Δw_* - Δw_z, Δŵ - Δw_z) when the training set X is a subset of the reference R.

    With min-norm representations on R, ``Δw_* - Δw_z = Φ_R Θ_R⁻¹ z_eff_R``, ``Δw_z = -Φ_R Θ_R⁻¹ z0_R`` and
    ``Δŵ = Φ_X Θ_X⁻¹ (z_eff_X - z0_X)``; all inner products are kernel quadratic forms. Returns the acute
    angle in [0, π/2].
    """
    k = as_float_array(theta_ref, "theta_ref")
    z = as_float_array(z_eff_ref, "z_eff_ref").astype(k.dtype)
    z0 = as_float_array(z0_ref, "z0_ref").astype(k.dtype)
    idx = jnp.asarray(train_idx)
    N = k.shape[0]
    if idx.ndim != 1 or idx.size == 0 or not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ValueError(f"`train_idx` must be a non-empty 1-D array of integer row indices of theta_ref; got "
                         f"{idx.dtype} of shape {idx.shape}.")
    in_range = ((idx >= 0) & (idx < N)).all()
    if not all_true(idx, lambda a: ((a >= 0) & (a < N)).all(), "train_idx"):
        raise ValueError(f"`train_idx` entries must lie in [0, {N}) (rows of theta_ref); got min {int(idx.min())}, "
                         f"max {int(idx.max())}.")
    eye = jnp.eye(N, dtype=k.dtype)
    a_star = jnp.linalg.solve(k + jitter * eye, z)  # Δw_* - Δw_z = Φ_R a_star
    a_z = jnp.linalg.solve(k + jitter * eye, -z0)  # Δw_z = Φ_R a_z
    kx = k[idx[:, None], idx[None, :]]
    c = jnp.linalg.solve(kx + jitter * jnp.eye(len(idx), dtype=k.dtype), z[idx] - z0[idx])  # Δŵ = Φ_X c
    # v = Δŵ - Δw_z = Φ_X c - Φ_R a_z ; u = Φ_R a_star
    k_xr = k[idx, :]
    uv = mm(c, mm(k_xr, a_star)) - mm(a_z, mm(k, a_star))
    vv = mm(c, mm(kx, c)) - 2 * mm(c, mm(k_xr, a_z)) + mm(a_z, mm(k, a_z))
    uu = mm(a_star, mm(k, a_star))
    # a traced out-of-range index would be clamped by JAX: NaN instead of another subset's angle
    return jnp.where(in_range, jnp.arccos(jnp.clip(jnp.abs(uv) / jnp.sqrt(uu * vv), 0, 1)), jnp.nan)


def _p_fn(feature_cos: Union[Callable, "jnp.ndarray"]):
    if callable(feature_cos):
        return feature_cos
    c = as_float_array(feature_cos, "feature_cosines")
    check_finite(c, "feature_cosines")
    return lambda beta: angle_distribution(c, beta)


def risk_bound(alpha_n, feature_cosines):
    """Theorem 1 (Eq. 7) of Ji & Zhu: transfer risk R_n <= p(π/2 - ᾱ_n).

    Args:
      alpha_n: ᾱ_n, the angle between the student's and the oracle's weight change, radians in
        [0, π/2] (:func:`alpha_n` or :func:`alpha_n_exact`); scalar or array.
      feature_cosines: ``|cos ᾱ(φ(x), Δw_* - Δw_z)|`` at samples x ~ P(x), shape ``(m,)``
        (:func:`feature_cosines`, Eq. 8), or a callable ``p(beta)`` giving the accumulative angle
        distribution directly.

    Returns: the bound, same shape as ``alpha_n``, in [0, 1]. It is loose (≈ 1) until ᾱ_n is within a few
    hundredths of a radian of 0 (§3.3); it always holds. jit/vmap-able (over ``alpha_n``); eagerly a NaN
    or out-of-range ``alpha_n`` is refused, under tracing it gives NaN.

    Example:
      >>> from ntkd import risk_bound, feature_cosines, alpha_n, oracle_norm
      >>> norm = oracle_norm(theta_ref, z_eff_ref)                      # ‖Δw_* - Δw_z‖
      >>> cos = feature_cosines(z_eff_test, theta_diag_test, norm)      # Eq. 8
      >>> bound = risk_bound(alpha_n(theta_nn, dz_n, norm), cos)        # Eq. 7 with Eq. 9
    """
    a = as_float_array(alpha_n, "alpha_n")
    acute = lambda v: (v >= 0) & (v <= jnp.pi / 2 + 1e-12)  # noqa: E731  (False for NaN)
    if not all_true(a, lambda v: acute(v).all(), "alpha_n"):
        raise ValueError(f"`alpha_n` must be an acute angle in [0, π/2] radians, not NaN; got {alpha_n!r}. "
                         "A NaN ᾱ_n comes from a NaN or non-positive `norm` in alpha_n.")
    p = _p_fn(feature_cosines)(jnp.pi / 2 - a)
    # traced values are not checked: an invalid angle gives NaN, never the optimistic p of a NaN β (0)
    return jnp.where(acute(a), p, jnp.nan)


def phuong_lampert_bound(feature_cosines, n, *, n_betas: int = 2001):
    """The bound of Phuong & Lampert (ICML 2019), min_β p(β) + p(π/2 - β)^n, minimized on a β grid of
    ``n_betas`` points in [0, π/2]. Vacuous (≥ 1) for ReLU features, where p ≡ 1 on [0, β_t], β_t ≈ π/2 (§3.2)."""
    n = check_int(n, "n", minimum=1)
    n_betas = check_int(n_betas, "n_betas", minimum=2)
    betas = jnp.linspace(0, jnp.pi / 2, n_betas)
    p = _p_fn(feature_cosines)
    return jnp.min(p(betas) + p(jnp.pi / 2 - betas) ** n)
