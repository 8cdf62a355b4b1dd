"""Every Ji & Zhu (2020) metric of one training set on a ρ × T × t grid, from one kernel factorization.

The batched twin of the scalar theory functions (tests/theories/test_transfer_risk_grid.py checks it
against them): effective logits are elementwise, so every (ρ, T) point is one column of a batched
right-hand side and every t a diagonal rescaling in the kernel's eigenbasis:

* ``t = inf`` only: one Cholesky factor of Θ_n, all (ρ, T) columns in one ``cho_solve`` (falling back to
  the minimum-norm eigen-solution if the factor is unusable);
* finite t: one ``eigh`` of Θ_n; the student at time t follows the linear dynamics of App. S1, Eq. S1,
  ``dz/dτ = -η Θ (z - z_eff) / n``, i.e. gradient flow on ``0.5·mean((z - z_eff)²)`` in steps of size η.
  At t = inf this is the converged student of Eq. 4 exactly; at finite t it is the paper's
  near-convergence approximation of the KD dynamics (the exact flow of one configuration is
  :func:`ntkd.kd_function_space_flow`).

Angles against the oracle neglect Δw_z (as Eq. 9 does).
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..._core.checks import check_finite, check_positive
from ..._core.linalg import einsum, mm
from ..._core.spectral import factor_usable, flow_phi, pinv_coeffs, solve_psd
from ...losses import check_labels
from .distill import correction_logits, effective_logits

__all__ = ["evaluate_grid", "METRICS", "BETAS"]

INF = float("inf")


# β grid of the stored accumulative angle distributions p(β): uniform, plus a dense tail near π/2 where
# p drops (§3.3).
BETAS = np.unique(np.concatenate([np.linspace(0, np.pi / 2, 201),
                                  np.pi / 2 - np.geomspace(1e-5, 0.2, 200)]))


METRICS = (
    "risk",            # transfer risk P_x[z_t f̂ < 0] on the test set (§3.1)
    "error",           # test error against the ground-truth labels 1{z_g > 0}
    "w_norm",          # ‖Δŵ_n‖ = sqrt(Δzᵀ Θ_n⁻¹ Δz) at time t (Eq. 4, 10)
    "alpha",           # ᾱ(Δŵ_n, Δw_*) in radians, Δw_* the min-norm oracle on the reference set
    "alpha_eq9",       # arccos(‖Δŵ_n‖ / ‖Δw_*‖) (Eq. 9)
    "bound",           # Theorem 1: p(π/2 - ᾱ_n) with p(β) from the test set (Eq. 6-8)
    "oracle_norm",     # ‖Δw_*‖ estimated on the reference set (§3.4)
    "cos_g",           # cos of the angle between Δŵ_n and the ground-truth oracle P_Φ Δw_g (Eq. 11)
    "hle",             # ⟨δŵ_h, Δŵ_c⟩, the Eq. 12 bracket (Theorem 2); depends on T, not on ρ
    "teacher_error",   # the teacher's test error against the ground truth
)


@jax.jit
def grid_targets(zt, yg, rho, T, T_unique):
    """The training targets of :func:`grid_core`: effective logits ``z_eff (n, P)`` at the grid points
    (ρ_p, T_p) and correction logits ``(n, Q)`` at the distinct temperatures, for teacher logits ``zt (n,)``
    and labels ``yg (n,)``. A program of its own (one per n), so that the training-set-size buckets of
    :func:`grid_core` do not each compile the root finder of Eq. 3."""
    z_eff = effective_logits(zt[:, None], yg[:, None], rho[None, :], T[None, :])
    return z_eff, correction_logits(zt[:, None], yg[:, None], T_unique[None, :])


def grid_core(kernel_fn, x_tr, zt_tr, zeff_tr, zh_tr, zg_tr, z0_tr, x_te, zt_te, yg_te, z0_te, x_ref, a_star,
              onorm, cos_te, T_index, times, n_valid=None, *, method, jitter, has_ref):
    """All metrics of one training set. Shapes: x_tr (n, d); zt_tr, zg_tr, z0_tr (n,); zeff_tr (n, P) and
    zh_tr (n, Q) from :func:`grid_targets`; x_te (m, d); zt_te, yg_te, z0_te (m,); x_ref (R, d);
    a_star (R, P); onorm (P,); cos_te (m, P); T_index (P,) (column of each point's T in zh_tr); times (M,).
    Returns a dict of (M, P) arrays plus ``ok`` (factor usable).

    ``n_valid`` (a traced integer scalar, or None for all n): only the first ``n_valid`` training rows are
    real; the others pad the training set to a bucket size so that one compiled program serves every
    smaller n. The padding is exact: padded rows and columns of Θ_n are replaced by ``Θ_n[0, 0]·I``
    (decoupled from the real points; that value changes neither the largest eigenvalue nor the largest or
    smallest Cholesky pivot), their right-hand sides and kernel rows against test and reference points
    are zero, their coefficients are set to zero, and the relative cutoffs and the flow's 1/n use
    ``n_valid``. The real points' solution is the unpadded one to rounding (tests/experiments/
    test_scale_buckets.py); the metrics are means over test points only."""
    N = x_tr.shape[0]
    n = N if n_valid is None else n_valid
    dt = x_tr.dtype
    k = kernel_fn(x_tr, None, "ntk")
    k = k + jitter * jnp.eye(N, dtype=dt)
    kx = kernel_fn(x_te, x_tr, "ntk")
    dz = zeff_tr - z0_tr[:, None]  # (n, P)
    dzg, dzt = zg_tr - z0_tr, zt_tr - z0_tr
    rhs = jnp.concatenate([dz, dzg[:, None], dzt[:, None], zh_tr], axis=1)  # zh_tr: (n, Q)
    if n_valid is not None:  # exact padding: decoupled padded points with zero targets
        valid = jnp.arange(N) < n_valid
        both = valid[:, None] & valid[None, :]
        k = jnp.where(both, k, jnp.where(jnp.eye(N, dtype=bool), k[0, 0], 0))
        kx = jnp.where(valid[None, :], kx, 0)
        rhs = jnp.where(valid[:, None], rhs, 0)
        dzg, dzt = jnp.where(valid, dzg, 0), jnp.where(valid, dzt, 0)
    P = dz.shape[1]
    if method == "chol":
        c = jax.scipy.linalg.cho_factor(k, lower=True)
        sol = jax.scipy.linalg.cho_solve(c, rhs)
        ok = factor_usable(c[0], n) & jnp.isfinite(sol).all()
        coef_t = sol[None, :, :P]  # times are all inf
    else:
        evals, evecs = jnp.linalg.eigh(k)
        proj = mm(evecs.T, rhs)
        sol = mm(evecs, pinv_coeffs(evals, n)[:, None] * proj)  # proj reused: one projection
        inf_t = jnp.isinf(times)
        phi = flow_phi(evals[None, :], jnp.where(inf_t, 0, times)[:, None], n)
        phi = jnp.where(inf_t[:, None], pinv_coeffs(evals, n)[None, :], phi)  # (M, n)
        coef_t = einsum("ij,tj,jp->tip", evecs, phi, proj[:, :P])  # (M, n, P)
        ok = jnp.isfinite(sol).all()
    if n_valid is not None:  # the padded points' coefficients are 0 (eigh may mix them in at rounding level)
        sol = jnp.where(valid[:, None], sol, 0)
        coef_t = jnp.where(valid[None, :, None], coef_t, 0)
    f_te = z0_te[None, :, None] + einsum("mn,tnp->tmp", kx, coef_t)  # (M, m, P)
    dt = f_te.dtype
    bad_f = jnp.isnan(f_te).any(axis=1)  # a NaN prediction makes the fractions NaN, never an optimistic 0
    risk = jnp.where(bad_f, jnp.nan, jnp.mean((zt_te[None, :, None] * f_te < 0).astype(dt), axis=1))
    error = jnp.where(bad_f, jnp.nan, jnp.mean(((f_te > 0) != (yg_te[None, :, None] > 0.5)).astype(dt), axis=1))
    kc = einsum("ij,tjp->tip", k, coef_t)
    w_norm = jnp.sqrt(jnp.maximum(jnp.sum(coef_t * kc, axis=1), 0))  # (M, P)
    # ⟨a, b⟩_Θ = aᵀ Θ⁻¹ b from the t = inf solution columns
    g_col, t_col, h_cols = sol[:, P], sol[:, P + 1], sol[:, P + 2:]
    gg = mm(dzg, g_col)
    cos_g = einsum("tnp,n->tp", coef_t, dzg) / (w_norm * jnp.sqrt(gg))
    tt = mm(dzt, t_col)
    gt = mm(dzg, t_col)
    gh = mm(dzg, h_cols)  # (Q,)
    th = mm(dzt, h_cols)
    hle_q = gh - gt / tt * th
    hle = jnp.broadcast_to(hle_q[T_index][None, :], w_norm.shape)
    out = dict(risk=risk, error=error, w_norm=w_norm, cos_g=cos_g, hle=hle,
               teacher_error=jnp.broadcast_to(jnp.mean(((zt_te > 0) != (yg_te > 0.5)).astype(dt)), w_norm.shape))
    if has_ref:
        kr = kernel_fn(x_tr, x_ref, "ntk")  # (n, R)
        if n_valid is not None:
            kr = jnp.where(valid[:, None], kr, 0)
        inner = einsum("tnp,np->tp", coef_t, mm(kr, a_star))
        cos = inner / (w_norm * onorm[None, :])
        alpha = jnp.arccos(jnp.clip(jnp.abs(cos), 0, 1))
        out["alpha"] = alpha
        out["alpha_eq9"] = jnp.arccos(jnp.clip(w_norm / onorm[None, :], 0, 1))
        angles_te = jnp.arccos(jnp.clip(cos_te, 0, 1))  # (m, P)
        out["bound"] = jnp.where(jnp.isnan(alpha), jnp.nan,
                                 jnp.mean((angles_te[None] > (jnp.pi / 2 - alpha)[:, None, :]).astype(dt), axis=1))
        out["oracle_norm"] = jnp.broadcast_to(onorm[None, :], w_norm.shape)
    out["ok"] = ok
    return out


def grid_points(rho, T):
    rho = np.atleast_1d(np.asarray(rho, float))
    T = np.atleast_1d(np.asarray(T, float))
    r, tt = np.meshgrid(rho, T, indexing="ij")
    T_unique = np.unique(T)
    return r.ravel(), tt.ravel(), T_unique, np.searchsorted(T_unique, tt.ravel())


def evaluate_grid(kernel_fn: Callable, x_train, z_t_train, y_g_train, x_test, z_t_test, y_g_test, *,
                  rho, T, t=(INF,), z_g_train=None, z0_train=None, z0_test=None, jitter: float = 0.0,
                  reference=None):
    """Every Ji & Zhu metric of one training set on a ρ × T × t grid, with one kernel factorization.

    Args:
      kernel_fn: an ntkd / neural-tangents style ``kernel_fn(x1, x2, get)`` (the student's NTK).
      x_train ``(n, d)``, z_t_train ``(n,)`` teacher logits, y_g_train ``(n,)`` hard labels in {0, 1};
      x_test ``(m, d)``, z_t_test, y_g_test ``(m,)`` (test error is against y_g_test, transfer risk
      against z_t_test).
      rho ``(R,)`` in (0, 1], T ``(S,)`` > 0, t ``(M,)`` >= 0 (``inf`` = converged, Eq. 4; finite t
        follows Eq. S1, see the module docstring).
      z_g_train: ground-truth logits for ``cos_g`` and ``hle`` (default: the teacher's).
      z0_train, z0_test: the student's initial outputs (default 0, the mean predictor).
      jitter: absolute diagonal added to Θ_n.
      reference: optional ``(x_ref (R, d), z_t_ref, y_g_ref)`` to estimate the oracle Δw_* (§3.4) and
        get ``alpha``, ``alpha_eq9``, ``bound`` (Theorem 1) and ``oracle_norm``.

    Returns: dict of NumPy arrays of shape ``(M, len(rho), len(T))`` for the metrics of
    :data:`METRICS` (those needing ``reference`` only when it is given), and ``factor``.
    """
    dt = jnp.result_type(float)
    arr = lambda a: jnp.asarray(a, dt)  # noqa: E731
    x_tr, x_te = arr(x_train), arr(x_test)
    n, m = x_tr.shape[0], x_te.shape[0]
    zt_tr, yg_tr, zt_te, yg_te = arr(z_t_train), arr(y_g_train), arr(z_t_test), arr(y_g_test)
    for name, a, size in (("z_t_train", zt_tr, n), ("y_g_train", yg_tr, n), ("z_t_test", zt_te, m),
                          ("y_g_test", yg_te, m)):
        if a.shape != (size,):
            raise ValueError(f"`{name}` must have shape ({size},); got {a.shape}")
    zg_tr = zt_tr if z_g_train is None else arr(z_g_train)
    z0_tr = jnp.zeros(n, dt) if z0_train is None else arr(z0_train)
    z0_te = jnp.zeros(m, dt) if z0_test is None else arr(z0_test)
    for name, a in (("x_train", x_tr), ("x_test", x_te), ("z_t_train", zt_tr), ("z_t_test", zt_te),
                    ("z_g_train", zg_tr), ("z0_train", z0_tr), ("z0_test", z0_te)):
        check_finite(a, name)
    check_labels(yg_tr)
    check_labels(yg_te)
    jitter = check_positive(jitter, "jitter", allow_zero=True)
    r, tt, T_unique, T_index = grid_points(rho, T)
    if not ((r > 0) & (r <= 1)).all():
        raise ValueError("`rho` must lie in (0, 1] (not NaN): ρ = 0 has no finite converged student (z_eff = ±inf).")
    if not ((tt > 0) & np.isfinite(tt)).all():
        raise ValueError("`T` must be finite and > 0.")
    times = np.atleast_1d(np.asarray(t, float))
    if (times < 0).any() or np.isnan(times).any():
        raise ValueError("`t` must be >= 0 (inf for the converged student).")
    has_ref = reference is not None
    if has_ref:
        a_star, onorm, cos_te, x_ref = oracle_reference(kernel_fn, reference, x_te, zt_te, yg_te, r, tt, jitter)
    else:
        x_ref, a_star, onorm, cos_te = x_tr[:1], jnp.zeros((1, len(r)), dt), jnp.ones(len(r), dt), \
            jnp.zeros((m, len(r)), dt)
    method = "chol" if np.isinf(times).all() else "eigh"
    zeff_tr, zh_tr = grid_targets(zt_tr, yg_tr, arr(r), arr(tt), arr(T_unique))
    args = (x_tr, zt_tr, zeff_tr, zh_tr, zg_tr, z0_tr, x_te, zt_te, yg_te, z0_te, x_ref, a_star, onorm, cos_te,
            jnp.asarray(T_index), arr(times))
    out = compiled_grid(kernel_fn, method, float(jitter), has_ref)(*args)
    factor = method
    if method == "chol" and not bool(out["ok"]):
        out = compiled_grid(kernel_fn, "eigh", float(jitter), has_ref)(*args)
        factor = "eigh"
    res = {k: np.asarray(v).reshape(len(times), len(np.atleast_1d(rho)), len(np.atleast_1d(T)))
           for k, v in out.items() if k != "ok"}
    res["factor"] = factor
    return res


_CORE_CACHE: dict = {}


def compiled_grid(kernel_fn, method, jitter, has_ref, batched=False, padded=False):
    """The jitted :func:`grid_core` of one configuration (cached per kernel_fn object). ``batched``:
    ``vmap`` over seeds (the 6 training arrays and the 3 test arrays); ``padded``: takes ``n_valid``
    as a last argument (shared by the batch), for training sets padded to a bucket size."""
    key = (id(kernel_fn), method, jitter, has_ref, batched, padded)
    if key not in _CORE_CACHE:
        f = partial(grid_core, kernel_fn, method=method, jitter=jitter, has_ref=has_ref)
        if batched:  # 6 per-seed training arrays, x_te, 3 per-seed test arrays, then shared ones
            f = jax.vmap(f, in_axes=(0,) * 6 + (None,) + (0,) * 3 + (None,) * (7 if padded else 6))
        _CORE_CACHE[key] = (kernel_fn, jax.jit(f))  # keep kernel_fn alive so its id stays unique
    return _CORE_CACHE[key][1]


def oracle_reference(kernel_fn, reference, x_te, zt_te, yg_te, r, tt, jitter):
    """Min-norm oracle on the reference set: a_* = Θ_R⁻¹ z_eff(R) (R, P), ‖Δw_*‖ (P,), and the test
    cosines |cos ᾱ(φ(x), Δw_*)| (m, P) of Eq. 8."""
    dt = x_te.dtype
    x_ref, zt_ref, yg_ref = (jnp.asarray(a, dt) for a in reference)
    a_star, onorm, cos_te = _oracle(kernel_fn, x_ref, zt_ref, yg_ref, x_te, zt_te, yg_te,
                                    jnp.asarray(r, dt), jnp.asarray(tt, dt), jitter)
    return a_star, onorm, cos_te, x_ref


@partial(jax.jit, static_argnums=0)
def _oracle(kernel_fn, x_ref, zt_ref, yg_ref, x_te, zt_te, yg_te, r, tt, jitter):
    """:func:`oracle_reference` as one program per shape (reference and test effective logits in one call)."""
    R, dt = x_ref.shape[0], x_te.dtype
    z_all = effective_logits(jnp.concatenate([zt_ref, zt_te])[:, None], jnp.concatenate([yg_ref, yg_te])[:, None],
                             r[None, :], tt[None, :])
    z_ref, z_te = z_all[:R], z_all[R:]
    k_ref = kernel_fn(x_ref, None, "ntk") + jitter * jnp.eye(R, dtype=dt)
    a_star = solve_psd(k_ref, z_ref)
    onorm = jnp.sqrt(jnp.maximum(jnp.sum(z_ref * a_star, axis=0), 0))
    diag = jax.vmap(lambda x: kernel_fn(x[None], None, "ntk")[0, 0])(x_te)
    cos_te = jnp.clip(jnp.abs(z_te) / (onorm[None, :] * jnp.sqrt(diag)[:, None]), 0, 1)
    return a_star, onorm, cos_te
