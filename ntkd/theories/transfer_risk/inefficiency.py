"""Data inefficiency I(n) (Ji & Zhu 2020, §4, Definition 1, Eq. 10) and imperfect-teacher quantities (§5)."""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..._core.checks import all_true, as_float_array, check_int, positive_array, valid_positive
from ..._core.linalg import mm

__all__ = ["data_inefficiency", "expected_weight_norm", "weight_norm_curve", "kernel_inner",
           "cos_student_oracle", "hard_label_effect"]


def data_inefficiency(n_grid, expected_norms, *, mode: str = "loglog"):
    """I(n), a discrete ∂ ln E‖Δŵ_n‖ / ∂ ln n (Eq. 10).

    Args:
      n_grid: increasing sample sizes ``(g,)``; expected_norms: E‖Δŵ_n‖ ``(g,)`` (average over runs
        *before* the log, as the paper does) or ``(g, k)`` for k curves.
      mode: ``"loglog"`` — (ln E_{i+1} - ln E_i) / (ln n_{i+1} - ln n_i) at the geometric midpoint
        √(n_i n_{i+1}) (what the paper's figures plot on a geometric grid); ``"eq10"`` — the literal
        n_i (ln E_{i+1} - ln E_i) / (n_{i+1} - n_i), which is Eq. 10 exactly when n_{i+1} = n_i + 1.

    Returns: ``(n_mid, I)`` with ``g - 1`` points (``n_mid = n_i`` for ``"eq10"``).
    """
    if mode not in ("loglog", "eq10"):
        raise ValueError(f"`mode` must be 'loglog' or 'eq10'; got {mode!r}.")
    e = as_float_array(expected_norms, "expected_norms")
    n = as_float_array(n_grid, "n_grid")
    if n.ndim != 1 or n.size < 2:
        raise ValueError(f"`n_grid` must be 1-D with >= 2 sizes; got shape {n.shape}.")
    if e.shape[0] != n.size:
        raise ValueError(f"`expected_norms` must have {n.size} rows (one per n); got shape {e.shape}.")
    n_ok = lambda a: (jnp.diff(a) > 0).all() & (a > 0).all() & jnp.isfinite(a).all()  # noqa: E731
    e_ok = lambda a: valid_positive(a).all()  # noqa: E731
    if not all_true(n, n_ok, "n_grid"):
        raise ValueError("`n_grid` must be strictly increasing positive sizes.")
    if not all_true(e, e_ok, "expected_norms"):
        raise ValueError("`expected_norms` must be finite and > 0 (they are norms averaged over runs).")
    dlog = jnp.diff(jnp.log(e), axis=0)
    shape = (-1,) + (1,) * (e.ndim - 1)
    if mode == "loglog":
        n_mid, scale = jnp.sqrt(n[1:] * n[:-1]), 1 / jnp.diff(jnp.log(n))
    else:
        n_mid, scale = n[:-1], n[:-1] / jnp.diff(n)
    # traced invalid sizes or norms: NaN, not a slope of garbage
    ok = n_ok(n) & e_ok(e)
    return jnp.where(ok, n_mid, jnp.nan), jnp.where(ok, dlog * scale.reshape(shape).astype(e.dtype), jnp.nan)


def weight_norm_curve(theta, dz, n_grid, *, jitter: float = 0.0):
    """‖Δŵ_n‖ for the nested prefixes X_n = first n points, for every n in ``n_grid``, in one Cholesky.

    The Cholesky factor of a leading block is the leading block of the factor, so with u = L⁻¹Δz,
    ‖Δŵ_n‖² = Δz_nᵀ Θ_n⁻¹ Δz_n = Σ_{i<n} u_i². Shapes: ``theta (N, N)``, ``dz (N,)|(N, k)`` -> ``(g,)|(g, k)``.
    """
    k = as_float_array(theta, "theta")
    dz = as_float_array(dz, "dz").astype(k.dtype)
    idx = _sizes(n_grid, k.shape[0])
    chol = jnp.linalg.cholesky(k + jitter * jnp.eye(k.shape[0], dtype=k.dtype))
    u = jax.scipy.linalg.solve_triangular(chol, dz, lower=True)
    cum = jnp.cumsum(u * u, axis=0)
    valid = (idx >= 1) & (idx <= k.shape[0])  # a traced out-of-range size would be clamped: NaN instead
    return jnp.where(valid.reshape((-1,) + (1,) * (dz.ndim - 1)), jnp.sqrt(cum[jnp.clip(idx, 1) - 1]), jnp.nan)


def _sizes(n_grid, n_max):
    """``n_grid`` as integer sizes; concrete ones must be whole numbers in [1, n_max]."""
    g = jnp.asarray(n_grid)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"`n_grid` must be a non-empty 1-D array of sizes; got shape {g.shape}.")
    if not jnp.issubdtype(g.dtype, jnp.integer):
        if not all_true(g, lambda a: (a == jnp.round(a)).all(), "n_grid"):
            raise ValueError(f"`n_grid` must hold whole numbers (training-set sizes); got {n_grid!r}.")
        g = g.astype(int)
    if not all_true(g, lambda a: ((a >= 1) & (a <= n_max)).all(), "n_grid"):
        raise ValueError(f"`n_grid` entries must lie in [1, {n_max}] (the kernel's size).")
    return g


def expected_weight_norm(key, kernel_fn: Callable, sample_inputs: Callable, target_fn: Callable, n_grid, *,
                         runs: int = 20, z0: str = "zero", jitter: float = 0.0,
                         nngp_fn: Optional[Callable] = None):
    """E‖Δŵ_n‖ over random training sets (and initializations) on a grid of n (Fig. 3, S4, S5).

    For each of ``runs`` runs: draw ``max(n_grid)`` inputs with ``sample_inputs(key, n) -> (n, d)``, targets
    ``target_fn(key, x) -> (n,)`` (the effective logits z_eff of the task), initial outputs z0 (``"zero"``:
    0; ``"nngp"``: a draw from GP(0, K_nngp), the infinite-width initialized network, using
    ``nngp_fn(x) -> (n, n)``), and ‖Δŵ_n‖ for the nested prefixes (:func:`weight_norm_curve`). The mean over
    runs is taken before any log, as in the paper. Returns ``(g,)`` means and ``(runs, g)`` samples.
    """
    runs = check_int(runs, "runs", minimum=1)
    n_grid = np.asarray(n_grid)
    if n_grid.ndim != 1 or n_grid.size == 0 or (n_grid != np.round(n_grid)).any() or (n_grid < 1).any():
        raise ValueError(f"`n_grid` must be a non-empty 1-D array of whole sizes >= 1; got {n_grid!r}.")
    n_grid = n_grid.astype(int)
    n_max = int(n_grid.max())
    if z0 not in ("zero", "nngp"):
        raise ValueError(f"`z0` must be 'zero' or 'nngp'; got {z0!r}.")
    if z0 == "nngp" and nngp_fn is None:
        raise ValueError("`nngp_fn` (x -> NNGP kernel (n, n)) is required for z0='nngp'.")
    curves = []
    for key_r in jax.random.split(key, runs):
        kx, ky, kz = jax.random.split(key_r, 3)
        x = sample_inputs(kx, n_max)
        theta = kernel_fn(x)
        dz = jnp.asarray(target_fn(ky, x), theta.dtype)
        if z0 == "nngp":
            kn = nngp_fn(x)
            lchol = jnp.linalg.cholesky(kn + 1e-10 * jnp.trace(kn) / n_max * jnp.eye(n_max, dtype=kn.dtype))
            dz = dz - mm(lchol, jax.random.normal(kz, (n_max,), kn.dtype))
        curves.append(weight_norm_curve(theta, dz, n_grid, jitter=jitter))
    curves = jnp.stack(curves)
    return curves.mean(axis=0), curves


# ------------------------------------------------------------------------------------ imperfect teacher
def _inner_fn(theta_train_train):
    """⟨·, ·⟩_Θ with Θ_n factored once (Cholesky), for several inner products on one kernel."""
    k = as_float_array(theta_train_train, "theta_train_train")
    c = jax.scipy.linalg.cho_factor(k, lower=True)
    return lambda a, b: mm(jnp.asarray(a, k.dtype), jax.scipy.linalg.cho_solve(c, jnp.asarray(b, k.dtype)))


def kernel_inner(theta_train_train, a, b):
    """⟨a, b⟩_Θ = aᵀ Θ_n⁻¹ b (§5.2 notation), via one Cholesky. a, b: ``(n,)``."""
    return _inner_fn(theta_train_train)(a, b)


def cos_student_oracle(theta_train_train, dz_g, dz_s, *, norm_w_g: float = 1.0):
    """cos α(Δŵ, Δw_g) = ⟨Δz_g, Δz_s⟩_Θ / (‖Δw_g‖ sqrt(⟨Δz_s, Δz_s⟩_Θ)) (Eq. 11).

    ``norm_w_g`` = ‖Δw_g‖, a positive constant (1 by default: then only signs and ratios are meaningful).
    """
    norm = positive_array(norm_w_g, "norm_w_g")
    ip = _inner_fn(theta_train_train)
    return jnp.where(valid_positive(norm), ip(dz_g, dz_s) / (norm * jnp.sqrt(ip(dz_s, dz_s))), jnp.nan)


def hard_label_effect(theta_train_train, dz_g, dz_t, dz_h, *, norm_w_g: Optional[float] = None):
    """Theorem 2 (Eq. 12): the effect of a little hard-label weight at ρ = 1 on the student–oracle angle.

    Returns the bracket ⟨δŵ_h, Δŵ_c⟩ = ⟨Δz_g, δz_h⟩_Θ - ⟨Δz_g, Δz_t⟩_Θ ⟨Δz_t, δz_h⟩_Θ / ⟨Δz_t, Δz_t⟩_Θ
    (positive: adding hard labels helps). With ``norm_w_g`` = ‖Δw_g‖ it returns the full derivative
    ∂cos α(Δŵ, Δw_g)/∂(1 - ρ) at ρ = 1, i.e. the bracket / (‖Δw_g‖ sqrt(⟨Δz_t, Δz_t⟩_Θ)).
    ``dz_h`` are the correction logits (:func:`ntkd.correction_logits`).
    """
    ip = _inner_fn(theta_train_train)
    tt = ip(dz_t, dz_t)
    bracket = ip(dz_g, dz_h) - ip(dz_g, dz_t) * ip(dz_t, dz_h) / tt
    if norm_w_g is None:
        return bracket
    norm = positive_array(norm_w_g, "norm_w_g")
    return jnp.where(valid_positive(norm), bracket / (norm * jnp.sqrt(tt)), jnp.nan)
