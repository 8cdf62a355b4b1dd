"""Effective logits, the converged student and the KD dynamics of Ji & Zhu (2020), "Knowledge
Distillation in Wide Neural Networks: Risk Bound, Data Efficiency and Imperfect Teacher" (NeurIPS 2020),
§2 and §5.

The loss itself (Eq. 2) is paper-neutral and lives in :mod:`ntkd.losses` (``kd_loss`` and ``kd_grad_z``
are re-exported here). Binary task, single student logit ``z_s``, teacher logit ``z_t``, hard label
``y_g ∈ {0, 1}``, soft ratio ``ρ ∈ [0, 1]``, temperature ``T > 0``, soft-term factor ``s = 1`` (the
paper's) or ``T²``.
"""
from __future__ import annotations

import functools
import math
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import log_sigmoid, sigmoid

from ..._core.checks import all_true, as_float_array, check_finite, check_int, check_positive, is_concrete
from ..._core.linalg import mm
from ...losses import (broadcast_args, check_labels, check_rho, check_T, grad_z, kd_grad_z, kd_inputs, kd_loss,
                      soft_factor)
from ...predict import gradient_descent_mse

__all__ = [
    "kd_loss", "kd_grad_z", "effective_logits", "threshold", "rho_for_threshold", "label_smoothing_logit",
    "correction_logits", "pointwise_correct", "converged_student", "weight_change_norm",
    "kd_function_space_flow",
]


# ---------------------------------------------------------------------------------- effective logits
def _log_residual(z, zt, rho, T, s):
    """For y_g = 1 and z > z_t: log[ρs/T (σ(-z_t/T) - σ(-z/T))] - log[(1-ρ) σ(-z)], strictly increasing
    in z, -inf at z = z_t and +inf as z -> inf; its root is z_eff.

    The difference of sigmoids is evaluated as σ(-z_t/T) σ(z/T) (-expm1((z_t - z)/T)), exact to relative
    rounding even when z - z_t is far below eps·|z_t| (ρ within 1e-16 of 1 puts the root there), and
    everything stays in log space, so saturated sigmoids (|z| up to 1e3 and beyond) do not underflow.
    """
    gap = -jnp.expm1(jnp.minimum((zt - z) / T, 0.0))
    # log ρ + log s - log T: no underflow for subnormal ρ
    lhs = jnp.log(rho) + jnp.log(s) - jnp.log(T) + log_sigmoid(-zt / T) + log_sigmoid(z / T) + jnp.log(gap)
    return lhs - (jnp.log1p(-rho) + log_sigmoid(-z))


def _solve_one(zt, rho, T, s):
    """Roots of Eq. 3 for y_g = 1 by bracketing and bisection to the last bit (0 < ρ < 1), elementwise
    over arrays: each loop runs while any entry is active and updates only the active ones (what
    ``vmap`` of a scalar loop does, written out so that ``checkify`` can transform it)."""
    f = lambda z: _log_residual(z, zt, rho, T, s)  # noqa: E731
    lo = zt  # the residual is -inf at z_t: the root is above z_t
    step = jnp.maximum(1.0, jnp.abs(zt)).astype(zt.dtype)

    def expanding(c):
        hi, _, k = c
        return (f(hi) < 0) & (k < 200)

    def expand(c):
        hi, step, k = c
        on = expanding(c)
        return jnp.where(on, hi + step, hi), jnp.where(on, step * 2, step), jnp.where(on, k + 1, k)

    zeros = jnp.zeros(zt.shape, jnp.int32)
    hi, _, _ = jax.lax.while_loop(lambda c: expanding(c).any(), expand, (lo + step, step, zeros))

    def bisecting(c):
        lo, hi, k = c
        mid = lo + (hi - lo) / 2
        return (mid > lo) & (mid < hi) & (k < 2200)

    def bisect(c):
        lo, hi, k = c
        on = bisecting(c)
        mid = lo + (hi - lo) / 2
        below = f(mid) < 0
        return (jnp.where(on & below, mid, lo), jnp.where(on & ~below, mid, hi), jnp.where(on, k + 1, k))

    lo, hi, _ = jax.lax.while_loop(lambda c: bisecting(c).any(), bisect, (lo, hi, zeros))
    flo, fhi = f(lo), f(hi)
    return jnp.where(jnp.abs(flo) <= jnp.abs(fhi), lo, hi)


def _closed_form_T1(zt, rho):
    """T = 1, s = 1: σ(z) = ρσ(z_t) + (1-ρ) (y_g = 1) ⇔ e^z = (e^{z_t} + 1 - ρ)/ρ, i.e.
    z = logaddexp(z_t, log(1-ρ)) - log ρ: no cancellation, also for ρ within an ulp of 1."""
    return jnp.logaddexp(zt, jnp.log1p(-rho)) - jnp.log(rho)


@functools.partial(jax.jit, static_argnums=(5, 6, 7))
def _paper_gd(zt, y, rho, T, s, lr, iters, from_teacher):
    """The paper's solver (S4): gradient descent on ℓ(z), ``iters`` steps of size ``lr``, from z = 0 or
    from z = z_t."""
    def body(_, z):
        return z - lr * grad_z(z, zt, y, rho, T, s)

    return jax.lax.fori_loop(0, iters, body, zt if from_teacher else jnp.zeros_like(zt))


def effective_logits(z_t, y_g, rho, T, *, method: str = "exact", soft_scale: Union[float, str] = 1.0,
                     lr: float = 10.0, iters: int = 10000, init: str = "zero"):
    """Effective student logit z_eff(z_t, y_g; ρ, T): the per-sample minimizer of Eq. 2 (Eq. 3).

    A wide student trained to convergence outputs exactly these logits on its training points.

    Args:
      z_t: teacher logits, any shape; y_g: hard labels in {0, 1}; rho ∈ [0, 1]; T > 0 (all broadcast).
      method: ``"exact"`` — bracketed bisection on the log-space residual of Eq. 3, exact to the last
        bit of the dtype (float64 with ``jax_enable_x64``) and stable for saturated sigmoids
        (|z_t| ≥ 1e3); ``"paper_gd"`` — the paper's truncated gradient descent (lr 10, 10,000 steps from 0,
        S4), which stalls for T < 1 and produces the T-independent "plateau" of Fig. 1 right (E5).
        ``init`` (paper_gd only): ``"zero"`` starts at z = 0; ``"teacher"`` at z = z_t. The paper does not
        state its start [G]; its Fig. 1 right, whose T < 1 curves rejoin z_eff = z_t beyond |z_t| ≈ 11.5, is
        what a start at z_t gives (from 0 they stay flat at ≈ ±11.46), so the reproduction uses it.
      soft_scale: 1 (paper) or ``"T2"``.

    Special cases (exact method): ρ = 1 returns z_t for every T; T = 1 (with soft_scale 1) uses the
    closed form σ(z_eff) = ρσ(z_t) + (1 - ρ) y_g; ρ = 0 has no finite root (σ(z) = y_g ∈ {0, 1}) and
    returns ``+inf`` for y_g = 1 and ``-inf`` for y_g = 0 — the logit a pure hard-label student diverges
    to (XLA flushes subnormal floats to zero, so a subnormal ρ counts as 0). Otherwise the root is unique
    (the residual is strictly monotone). Mirror symmetry
    z_eff(z_t, 0) = -z_eff(-z_t, 1) reduces y_g = 0 to y_g = 1.

    Derivatives (exact method): with respect to z_t, ρ, T (and the soft factor) by the implicit function
    theorem on Eq. 3, in forward and reverse mode, never through the bisection; at ρ = 1 the ρ-derivative
    is minus the correction logits (§5.3); at ρ = 0 (an infinite root) every derivative is NaN.

    Returns: array of the broadcast shape and dtype of the inputs. jit/vmap compatible.
    """
    if method not in ("exact", "paper_gd"):
        raise ValueError(f"`method` must be 'exact' or 'paper_gd'; got {method!r}.")
    z_t, y_g, rho, T = kd_inputs(z_t, y_g, rho, T)
    s = soft_factor(soft_scale, T)
    s = jnp.broadcast_to(jnp.asarray(s, z_t.dtype), z_t.shape)
    if method == "paper_gd":
        lr = check_positive(lr, "lr")
        iters = check_int(iters, "iters", minimum=0)
        if init not in ("zero", "teacher"):
            raise ValueError(f"`init` must be 'zero' or 'teacher'; got {init!r}.")
        return _paper_gd(z_t, y_g, rho, T, s, lr, iters, init == "teacher")
    return _exact(z_t, y_g, rho, T, s)


@jax.custom_jvp
@jax.jit
def _exact(z_t, y_g, rho, T, s):
    """Compiled once per shape and dtype (the solver has data-dependent loops); differentiated by the
    implicit function theorem (:func:`_exact_jvp`), never through the bisection."""
    sign = 2 * y_g - 1
    zt1 = sign * z_t  # reduce to y_g = 1
    interior = (rho > 0) & (rho < 1)
    safe_rho = jnp.where(interior, rho, 0.5)
    root = _solve_one(zt1, safe_rho, T, s)
    closed = _closed_form_T1(zt1, safe_rho)
    root = jnp.where((T == 1) & (s == 1), closed, root)
    root = jnp.where(rho == 1, zt1, jnp.where(rho == 0, jnp.inf, root))
    # an invalid traced argument arrives as NaN (losses.check_*): the logit is NaN, not the ρ = 1/2 root
    bad = jnp.isnan(z_t) | jnp.isnan(rho) | jnp.isnan(T) | jnp.isnan(s)
    return jnp.where(bad, jnp.nan, sign * root)



@_exact.defjvp
def _exact_jvp(primals, tangents):
    """Implicit derivative of the root of Eq. 3 in (z_t, ρ, T, s); labels are discrete (no tangent).

    Interior ρ: the root z of the log-space residual G(z; z_t, ρ, T, s) = 0 (:func:`_log_residual`, in the
    y_g = 1 frame) moves by dz = -(∂G/∂θ · dθ) / (∂G/∂z), both from ``jax.jvp`` of G, which stays finite
    for saturated sigmoids. ρ = 1: z = z_t for every T and s, and Eq. 3's gradient form gives
    dz = dz_t - dρ · T² σ(-z_t) / (s σ(z_t/T) σ(-z_t/T)) (the correction logits of §5.3 with their sign).
    ρ = 0: the root is infinite and its tangent NaN, never a finite number."""
    z_t, y_g, rho, T, s = primals
    dzt, _, drho, dT, ds = tangents
    z = _exact(*primals)
    sign = 2 * y_g - 1
    zt1, z1 = sign * z_t, sign * z
    interior = (rho > 0) & (rho < 1)
    r_in = jnp.where(interior, rho, 0.5)
    z_in = jnp.where(interior, z1, zt1 + 1)  # any point where G is finite, for the masked-out entries
    g_z = jax.jvp(lambda v: _log_residual(v, zt1, r_in, T, s), (z_in,), (jnp.ones_like(z_in),))[1]
    g_th = jax.jvp(lambda a, r, t, c: _log_residual(z_in, a, r, t, c), (zt1, r_in, T, s),
                   (sign * dzt, drho, dT, ds))[1]
    dz_in = -g_th / g_z
    # every branch is linear in the tangents with coefficients that are finite where the branch is not
    # taken (0 there), so reverse mode, which multiplies each branch's cotangent, picks up no NaN
    one = rho == 1
    u = jnp.where(one, zt1, 0.0) / T
    c_one = jnp.where(one, T * T / s * jnp.exp(log_sigmoid(-u * T) - log_sigmoid(u) - log_sigmoid(-u)), 0.0)
    c_nan = jnp.where(rho == 0, jnp.nan, 0.0)
    dz1 = (jnp.where(interior, dz_in, 0.0) + jnp.where(one, sign * dzt, 0.0) - c_one * drho
           + c_nan * (sign * dzt + drho + dT + ds))
    return z, sign * dz1

def threshold(rho, T, *, soft_scale: Union[float, str] = 1.0):
    """t(ρ, T) = z_eff(0⁺, y_g = 1): the smallest |logit| a correct-teacher student outputs (§4.2).

    Solves ρs/T (σ(t/T) - 1/2) = (1 - ρ) σ(-t). For ρ → 0, KD tends to label smoothing with logit ±t.
    """
    rho = check_rho(rho)
    T = check_T(T)
    return effective_logits(jnp.zeros(jnp.broadcast_shapes(rho.shape, T.shape), jnp.result_type(rho, T)),
                            1.0, rho, T, soft_scale=soft_scale)


def rho_for_threshold(t, T):
    """Inverse of :func:`threshold` (soft_scale 1): ρ = σ(-t) / ((σ(t/T) - 1/2)/T + σ(-t)), for t > 0."""
    t = as_float_array(t, "t")
    if not all_true(t, lambda a: (a > 0).all(), "t"):
        raise ValueError("`t` (threshold) must be > 0.")
    T = check_T(T)
    t = jnp.where(t > 0, t, jnp.nan)  # traced t <= 0 or NaN: NaN
    return sigmoid(-t) / ((sigmoid(t / T) - 0.5) / T + sigmoid(-t))


def label_smoothing_logit(eps):
    """Effective logit a = log(2/ε - 1) of binary label smoothing y_LS = ε/2 + (1 - ε) y_g (§4.2)."""
    eps = as_float_array(eps, "eps")
    if not all_true(eps, lambda a: ((a > 0) & (a <= 1)).all(), "eps"):
        raise ValueError("`eps` (label smoothing) must lie in (0, 1].")
    return jnp.where((eps > 0) & (eps <= 1), jnp.log(2 / eps - 1), jnp.nan)  # traced eps outside (0, 1]: NaN


def correction_logits(z_t, y_g, T, *, soft_scale: Union[float, str] = 1.0):
    """Correction logits δz_h = ∂z_eff/∂(1 - ρ) at ρ = 1 (§5.3, by implicit differentiation of Eq. 3):

        δz_h = T² (y_g - σ(z_t)) / (s · σ(z_t/T) σ(-z_t/T)),

    so that z_eff ≈ z_t + (1 - ρ) δz_h near ρ = 1. Grows like T² e^{|z_t|/T}; evaluated in log space.
    """
    z_t = as_float_array(z_t, "z_t")
    check_finite(z_t, "z_t")
    z_t, y_g, T = broadcast_args([("z_t", z_t), ("y_g", check_labels(y_g)), ("T", check_T(T))])
    s = soft_factor(soft_scale, T)
    u = z_t / T
    return T * T / s * (y_g - sigmoid(z_t)) * jnp.exp(-log_sigmoid(u) - log_sigmoid(-u))


def pointwise_correct(rho, T):
    """True where every wrong teacher is corrected in sign (z_eff > 0 for all z_t when y_g = 1):
    ρ < T/(1 + T) (§5.1; 1/2 at T = 1). Boolean, so a traced invalid ρ or T (NaN after the checks) gives
    False: "not guaranteed", never a false guarantee."""
    return check_rho(rho) < check_T(T) / (1 + check_T(T))


# --------------------------------------------------------------------------------- converged student
def converged_student(theta_test_train, theta_train_train, z_eff_train, *, z0_train=None, z0_test=None,
                      diag_reg: float = 0.0, allow_ill_conditioned: bool = False):
    """The converged wide student (Eq. 4) evaluated at test points:

        f̂(x) = f(x; w0) + Θ(x, X) Θ_n⁻¹ (z_eff(X) - f(X; w0)).

    With ``z0_train = z0_test = None`` this is the mean predictor over initializations
    ``Θ(x, X) Θ_n⁻¹ z_eff(X)`` (infinite width, f(·; w0) ~ GP(0, K_nngp)). Shapes: ``theta_test_train
    (m, n)``, ``theta_train_train (n, n)``, ``z_eff_train (n,)|(n, k)`` (k target columns, e.g. a ρ×T grid,
    share one factorization) -> ``(m,)|(m, k)``.
    """
    if (z0_train is None) != (z0_test is None):
        raise ValueError("give both `z0_train` and `z0_test` (the initial outputs), or neither.")
    predict = gradient_descent_mse(theta_train_train, z_eff_train, diag_reg=diag_reg,
                                   allow_ill_conditioned=allow_ill_conditioned)
    z0_train = 0.0 if z0_train is None else z0_train
    z0_test = 0.0 if z0_test is None else z0_test
    return predict(None, z0_train, z0_test, theta_test_train)[1]


def weight_change_norm(theta_train_train, dz, *, jitter: float = 0.0):
    """‖Δŵ‖ = sqrt(Δzᵀ Θ_n⁻¹ Δz) (Eq. 4 / Eq. 9 / Eq. 10): the weight change of the converged linearized
    student, from kernels only. ``dz`` ``(n,)`` -> scalar, ``(n, k)`` -> ``(k,)``. Cholesky with optional
    absolute ``jitter`` on the diagonal."""
    k = as_float_array(theta_train_train, "theta_train_train")
    dz = as_float_array(dz, "dz").astype(k.dtype)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or dz.shape[0] != k.shape[0]:
        raise ValueError(f"`theta_train_train` (n, n) and `dz` (n,)|(n, k) disagree: {k.shape} vs {dz.shape}.")
    jitter = check_positive(jitter, "jitter", allow_zero=True)
    chol = jnp.linalg.cholesky(k + jitter * jnp.eye(k.shape[0], dtype=k.dtype))
    u = jax.scipy.linalg.solve_triangular(chol, dz, lower=True)
    return jnp.sqrt(jnp.sum(u * u, axis=0))


def kd_function_space_flow(theta_train_train, z_t, y_g, rho, T, times, *, theta_test_train=None,
                           z0_train=0.0, z0_test=0.0, learning_rate: float = 1.0, steps_per_unit: float = 20,
                           soft_scale: Union[float, str] = 1.0):
    """Finite-time dynamics of a linearized student on the KD loss, in function space (App. S1):

        dz/dτ = -η Θ_n ∇_z L,   [∇_z L]_i = kd_grad_z(z_i, ...)/n,   df(x)/dτ = -η Θ(x, X) ∇_z L,

    integrated with classical RK4 (``steps_per_unit`` steps per unit of η·t between requested times).
    ``times``: increasing 1-D array (t ≥ 0). Returns ``z_train (len(times), n)`` or, with
    ``theta_test_train (m, n)``, ``(z_train, f_test (len(times), m))``. As t → ∞, z_train → z_eff.
    """
    k = as_float_array(theta_train_train, "theta_train_train")
    n = k.shape[0]
    # the flow runs in the kernel's dtype (float32 data under x64 must not promote the RK4 carry)
    z_t, y_g, rho, T = (jnp.asarray(a, k.dtype) for a in kd_inputs(z_t, y_g, rho, T))
    if z_t.shape != (n,):
        raise ValueError(f"`z_t` must have shape ({n},) to match theta_train_train; got {z_t.shape}.")
    s = soft_factor(soft_scale, T)
    if not is_concrete(times):
        raise ValueError("`times` must be concrete (they fix the number of RK4 steps); under jit close over "
                         "them or pass them through static_argnames.")
    times = np.asarray(times, np.float64)
    if times.ndim != 1 or not ((np.diff(times) >= 0).all() and (times >= 0).all()):
        raise ValueError("`times` must be a 1-D increasing array of non-negative, finite times.")
    eta = check_positive(learning_rate, "learning_rate")
    steps_per_unit = check_positive(steps_per_unit, "steps_per_unit")  # a rate: fractions allowed
    kt = None if theta_test_train is None else as_float_array(theta_test_train, "theta_test_train").astype(k.dtype)
    z = jnp.broadcast_to(jnp.asarray(z0_train, k.dtype), (n,))
    f = None if kt is None else jnp.broadcast_to(jnp.asarray(z0_test, k.dtype), (kt.shape[0],))

    def grad(z):
        return grad_z(z, z_t, y_g, rho, T, s) / n

    def rk4(state, h):
        z, f = state

        def rhs(z):
            g = grad(z)
            return -eta * mm(k, g), (None if kt is None else -eta * mm(kt, g))

        k1 = rhs(z)
        k2 = rhs(z + h / 2 * k1[0])
        k3 = rhs(z + h / 2 * k2[0])
        k4 = rhs(z + h * k3[0])
        z_new = z + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        f_new = None if kt is None else f + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        return z_new, f_new

    out_z, out_f = [], []
    t_prev = 0.0
    state = (z, f)
    for t in times.tolist():
        span = t - t_prev
        n_steps = max(1, math.ceil(span * eta * steps_per_unit)) if span > 0 else 0
        if n_steps:
            h = span / n_steps
            state = jax.lax.fori_loop(0, n_steps, lambda _, st: rk4(st, h), state)
        out_z.append(state[0])
        if kt is not None:
            out_f.append(state[1])
        t_prev = t
    zs = jnp.stack(out_z)
    return zs if kt is None else (zs, jnp.stack(out_f))
