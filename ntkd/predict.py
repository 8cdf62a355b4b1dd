"""Closed-form predictors: gradient-flow MSE training at any time t, kernel ridge regression, GP posterior.

Conventions (neural-tangents ``nt.predict``):

* Loss ``0.5 * mean((f(X) - Y)**2)`` over all ``N = Y.size`` entries, so the function-space gradient flow
  is ``df/dτ = -η K (f - Y) / N`` with ``τ = learning_rate * t``: times ``t`` are in training steps of
  size ``learning_rate``, and only ``learning_rate * t`` matters.
* ``diag_reg`` adds ``diag_reg * trace(K)/n`` to the training kernel's diagonal (``diag_reg * 1`` with
  ``diag_reg_absolute_scale=True``).
* Closed form: with ``K + reg·I = V diag(λ) V^T`` and residual ``r0 = Y - f0(X)``, the model is
  ``f_t(x) = f0(x) + K(x, X) α(t)`` with ``α(t) = V diag(φ(λ, τ)) V^T r0`` and
  ``φ(λ, τ) = (1 - exp(-λ τ / N)) / λ`` (``= τ / N`` at ``λ = 0``: no NaN). Training outputs use the
  same formula at ``x ∈ X`` (for ``diag_reg = 0`` this is ``Y - V e^{-λτ/N} V^T r0``).
* ``t = inf`` (or ``None``) solves ``(K + reg·I) α = r0`` by Cholesky; a singular kernel, on which
  Cholesky fails, falls back to the minimum-norm (pseudo-inverse) solution, which is also the limit of
  gradient flow started from ``α = 0``.

Target arrays ``Y`` may carry many columns ``(n, k)``; all are solved with one factorization.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from ._core.checks import all_true, as_float_array, check_finite, check_positive, is_concrete
from ._core.linalg import einsum, mm
from ._core.spectral import factor_usable, flow_phi, pinv_coeffs, pinv_solve

__all__ = ["gradient_descent_mse", "gradient_flow_weights", "kernel_regression", "gp_inference", "GPPosterior",
           "FLOAT32_MAX_CONDITION"]

#: Above this (estimated) condition number a float32 solve loses more than ~1% and is refused.
FLOAT32_MAX_CONDITION = 1e5


def _regularize(k, diag_reg, absolute):
    n = k.shape[0]
    reg = diag_reg if absolute else diag_reg * jnp.trace(k) / n
    return k + reg * jnp.eye(n, dtype=k.dtype)


def _check_train(k_train_train, y_train):
    k = as_float_array(k_train_train, "k_train_train")
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"`k_train_train` must be a square (n, n) kernel; got shape {k.shape}.")
    check_finite(k, "k_train_train")
    y = as_float_array(y_train, "y_train").astype(k.dtype)
    if y.ndim not in (1, 2) or y.shape[0] != k.shape[0]:
        raise ValueError(
            f"`y_train` must have shape (n,) or (n, k) with n = {k.shape[0]} (rows of k_train_train); "
            f"got {y.shape}."
        )
    check_finite(y, "y_train")
    return k, y


def _check_test_kernel(k_test_train, n, dtype):
    if k_test_train is None:
        return None
    kt = as_float_array(k_test_train, "k_test_train").astype(dtype)
    if kt.ndim != 2 or kt.shape[1] != n:
        raise ValueError(f"`k_test_train` must have shape (m, {n}); got {kt.shape}.")
    check_finite(kt, "k_test_train")
    return kt


def _as_init(f0, like, name):
    f0 = jnp.asarray(f0, dtype=like.dtype)
    try:
        f0 = jnp.broadcast_to(f0, like.shape)
    except ValueError:
        raise ValueError(f"`{name}` must broadcast to shape {like.shape}; got {f0.shape}.") from None
    check_finite(f0, name)
    return f0


def _condition_estimate(k_reg, chol):
    """cond_2(K) from 30 power iterations on K (λ_max) and on K^{-1} through the Cholesky factor
    (1/λ_min): O(n²) each, converging from below; tight for the ill-conditioned kernels that matter."""
    n = k_reg.shape[0]
    v0 = jnp.cos(jnp.arange(1, n + 1, dtype=k_reg.dtype) * 2.39996)  # deterministic, not aligned
    v0 = v0 / jnp.linalg.norm(v0)

    def power(apply, v):
        def body(_, carry):
            v, _ = carry
            w = apply(v)
            nw = jnp.linalg.norm(w)
            return w / jnp.where(nw > 0, nw, 1), nw
        return jax.lax.fori_loop(0, 30, body, (v, jnp.zeros((), k_reg.dtype)))[1]

    lam_max = power(lambda v: mm(k_reg, v), v0)
    inv_lam_min = power(lambda v: jsl.cho_solve(chol, v), v0)
    return lam_max * inv_lam_min


def _condition_guard(k_reg, chol, what, failed=None):
    """Refuse float32 solves on ill-conditioned kernels (a clear error instead of silent garbage).

    A failed factorization (``failed``; by default read off the factor) counts as infinitely
    ill-conditioned. float64 solves are never refused: a numerically singular float64 kernel gets the
    minimum-norm solution instead. Traced factors are not checked.
    """
    if k_reg.dtype != jnp.float32 or not is_concrete(chol[0]):
        return
    failed = not bool(factor_usable(chol[0])) if failed is None else failed
    cond = float("inf") if failed else float(_condition_estimate(k_reg, chol))
    if not (cond <= FLOAT32_MAX_CONDITION):
        raise ValueError(
            f"`{what}` is ill-conditioned for float32 (condition number ~{cond:.2e} > "
            f"{FLOAT32_MAX_CONDITION:.0e}); the solve would be inaccurate. Fix: enable float64 with "
            "jax.config.update('jax_enable_x64', True) and pass float64 kernels, or increase `diag_reg` "
            "(e.g. diag_reg=1e-4), or use a finite time t."
        )


def gradient_descent_mse(k_train_train, y_train, *, learning_rate: float = 1.0, diag_reg: float = 0.0,
                         diag_reg_absolute_scale: bool = False, allow_ill_conditioned: bool = False):
    """Predictions of a linearized model trained by gradient flow on MSE, at any times t.

    Args:
      k_train_train: ``(n, n)`` NTK (or NNGP) on the training inputs.
      y_train: targets ``(n,)`` or ``(n, k)``; k columns are solved at once.
      learning_rate: η; times are in units of steps of size η (``τ = η t``).
      diag_reg: ridge on the diagonal, relative to ``trace(K)/n`` unless ``diag_reg_absolute_scale``.
      allow_ill_conditioned: skip the float32 conditioning guard of the ``t = inf`` solve (a float32
        kernel whose estimated condition number exceeds ``FLOAT32_MAX_CONDITION`` is otherwise refused
        with a ValueError; numerically singular ones then get the minimum-norm solution).

    Returns:
      ``predict_fn(t=None, fx_train_0=0., fx_test_0=0., k_test_train=None)``. ``t``: ``None``/``inf``
      (converged), a scalar, or a 1-D array of times (then outputs get a leading time axis). Returns
      ``fx_train_t`` or, if ``k_test_train`` ``(m, n)`` is given, ``(fx_train_t, fx_test_t)``. The
      eigendecomposition (finite t) and the Cholesky factor (t = inf) are each computed once, on first
      use, and cached.
    """
    k, y = _check_train(k_train_train, y_train)
    learning_rate = check_positive(learning_rate, "learning_rate")
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    n = k.shape[0]
    normalization = y.size
    k_reg = _regularize(k, diag_reg, diag_reg_absolute_scale)
    cache = {}

    def eig():
        if "eig" not in cache:
            evals, evecs = jnp.linalg.eigh(k_reg)
            if not is_concrete(evals):
                return evals, evecs
            cache["eig"] = (evals, evecs)
        return cache["eig"]

    def chol():
        if "chol" not in cache:
            c = jsl.cho_factor(k_reg, lower=True)
            if not is_concrete(c[0]):
                return c
            cache["chol"] = c
        return cache["chol"]

    def predict_fn(t=None, fx_train_0=0.0, fx_test_0=0.0, k_test_train=None):
        f0_train = _as_init(fx_train_0, y, "fx_train_0")
        kt = _check_test_kernel(k_test_train, n, k.dtype)
        r0 = (y - f0_train).reshape(n, -1)
        if t is None or (jnp.ndim(t) == 0 and is_concrete(t) and float(t) == float("inf")):
            c = chol()
            alpha = jsl.cho_solve(c, r0)
            ok = factor_usable(c[0]) & jnp.isfinite(alpha).all()
            if not is_concrete(ok):
                alpha = jax.lax.cond(ok, lambda: alpha, lambda: pinv_solve(*jnp.linalg.eigh(k_reg), r0))
            else:
                if not allow_ill_conditioned:
                    _condition_guard(k_reg, c, "k_train_train", failed=not bool(ok))
                if not bool(ok):  # (numerically) singular kernel: minimum-norm solution
                    alpha = pinv_solve(*eig(), r0)
            times_shape = ()
            alphas = alpha[None]
        else:
            t = jnp.asarray(t, dtype=k.dtype)
            if t.ndim > 1:
                raise ValueError(f"`t` must be None, a scalar or a 1-D array of times; got shape {t.shape}.")
            if not all_true(t, lambda a: (a >= 0).all(), "t"):
                raise ValueError(f"`t` must be >= 0 and not NaN (times since the start of training); got {t}.")
            t = jnp.where(t >= 0, t, jnp.nan)  # a traced negative time: NaN, not a flow run backwards
            times_shape = t.shape
            evals, evecs = eig()
            coef = mm(evecs.T, r0)  # (n, k)
            tau = jnp.atleast_1d(t) * learning_rate
            inf_t = jnp.isinf(tau)
            phi = jnp.where(inf_t[:, None], 0.0, flow_phi(evals[None, :], jnp.where(inf_t, 0, tau)[:, None],
                                                       normalization))
            phi_inf = pinv_coeffs(evals)
            phi = jnp.where(inf_t[:, None], phi_inf[None, :], phi)
            alphas = einsum("ij,tj,jk->tik", evecs, phi, coef)  # (T, n, k)
        fx_train = f0_train.reshape(n, -1)[None] + einsum("ij,tjk->tik", k, alphas)
        out_train = fx_train.reshape((-1,) + y.shape)
        if times_shape == ():
            out_train = out_train[0]
        if kt is None:
            return out_train
        m = kt.shape[0]
        test_shape = (m,) + y.shape[1:]
        f0_test = _as_init(fx_test_0, jnp.zeros(test_shape, k.dtype), "fx_test_0")
        fx_test = f0_test.reshape(m, -1)[None] + einsum("ij,tjk->tik", kt, alphas)
        out_test = fx_test.reshape((-1,) + test_shape)
        if times_shape == ():
            out_test = out_test[0]
        return out_train, out_test

    return predict_fn


def gradient_flow_weights(k_train_train, y_train, t=None, *, eig=None):
    """Dual weights ``α(t)`` of gradient flow from ``f0 = 0`` on ``0.5·mean((f - y)²)``, so that
    ``f_t(x) = K(x, X) α(t)``: ``α(t) = V diag(φ(λ, t)) Vᵀ y`` with ``φ`` as in :func:`gradient_descent_mse`
    (learning rate 1, normalization ``y.size``).

    ``t = None`` or ``inf`` gives the minimum-norm weights ``K⁺ y`` (eigenvalues below ``n·eps·max λ``
    dropped), the exact limit of the flow, singular kernels included; :func:`gradient_descent_mse` solves
    the same limit by Cholesky. ``eig``: a precomputed ``jnp.linalg.eigh(k_train_train)``, to reuse one
    decomposition for several times. Shapes: ``k_train_train (n, n)``, ``y_train (n,)|(n, k)`` -> like
    ``y_train``; ``k_train_train`` may be None when ``eig`` is given.
    """
    if eig is None:
        k, y = _check_train(k_train_train, y_train)
        evals, evecs = jnp.linalg.eigh(k)
    else:
        evals, evecs = eig
        y = as_float_array(y_train, "y_train").astype(evals.dtype)
        if y.ndim not in (1, 2) or y.shape[0] != evals.shape[0]:
            raise ValueError(f"`y_train` must have shape (n,) or (n, k) with n = {evals.shape[0]} (the size of "
                             f"`eig`); got {y.shape}.")
    if t is None or (is_concrete(t) and float(t) == float("inf")):
        coef = pinv_coeffs(evals)
    else:
        t = jnp.asarray(t, evals.dtype)
        if t.ndim or not all_true(t, lambda a: a >= 0, "t"):
            raise ValueError(f"`t` must be a scalar time >= 0 (or None/inf), not NaN; got {t}.")
        coef = jnp.where(jnp.isinf(t), pinv_coeffs(evals), flow_phi(evals, jnp.where(t >= 0, t, jnp.nan), y.size))
    if y.ndim == 2:
        coef = coef[:, None]
    return mm(evecs, coef * mm(evecs.T, y))


def kernel_regression(k_train_train, y_train, k_test_train, *, diag_reg: float = 0.0,
                      diag_reg_absolute_scale: bool = False, allow_ill_conditioned: bool = False):
    """Kernel (ridge) regression mean ``K(x, X) (K + reg I)^{-1} Y``: the ``t = inf`` gradient-flow predictor.

    Shapes: ``k_train_train (n, n)``, ``y_train (n,)|(n, k)``, ``k_test_train (m, n)`` -> ``(m,)|(m, k)``.
    """
    predict_fn = gradient_descent_mse(k_train_train, y_train, diag_reg=diag_reg,
                                      diag_reg_absolute_scale=diag_reg_absolute_scale,
                                      allow_ill_conditioned=allow_ill_conditioned)
    return predict_fn(None, 0.0, 0.0, k_test_train)[1]


class GPPosterior(NamedTuple):
    """Gaussian-process posterior: ``mean (m,)|(m, k)`` and ``covariance (m, m)`` (shared by columns)."""

    mean: jax.Array
    covariance: Optional[jax.Array]


def gp_inference(k_train_train, y_train, k_test_train, k_test_test=None, *, diag_reg: float = 0.0,
                 diag_reg_absolute_scale: bool = False, allow_ill_conditioned: bool = False) -> GPPosterior:
    """Exact GP posterior (Bayesian inference with the NNGP, or any kernel) with observation noise.

    ``mean = K*ᵀ (K + reg I)^{-1} Y`` and ``covariance = K** - K*ᵀ (K + reg I)^{-1} K*``, with ``reg`` as in
    :func:`gradient_descent_mse`. ``k_test_test`` ``(m, m)`` is needed for the covariance; without it
    ``covariance`` is ``None``.
    """
    k, y = _check_train(k_train_train, y_train)
    diag_reg = check_positive(diag_reg, "diag_reg", allow_zero=True)
    n = k.shape[0]
    kt = _check_test_kernel(k_test_train, n, k.dtype)
    if kt is None:
        raise ValueError("`k_test_train` is required: the (m, n) kernel between test and training inputs.")
    k_reg = _regularize(k, diag_reg, diag_reg_absolute_scale)
    c = jsl.cho_factor(k_reg, lower=True)
    if not allow_ill_conditioned:
        _condition_guard(k_reg, c, "k_train_train")
    mean = mm(kt, jsl.cho_solve(c, y.reshape(n, -1)))
    mean = mean.reshape((kt.shape[0],) + y.shape[1:])
    cov = None
    if k_test_test is not None:
        ktt = as_float_array(k_test_test, "k_test_test").astype(k.dtype)
        if ktt.shape != (kt.shape[0], kt.shape[0]):
            raise ValueError(f"`k_test_test` must have shape {(kt.shape[0], kt.shape[0])}; got {ktt.shape}.")
        cov = ktt - mm(kt, jsl.cho_solve(c, kt.T))
    return GPPosterior(mean, cov)
