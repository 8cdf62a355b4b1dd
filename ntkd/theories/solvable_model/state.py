"""Replica fixed points of Saglietti & Zdeborová (2022): the teacher (ridge-logistic ERM, Mignacco et al.
2020), the Bayes-optimal proxy teacher (Eq. 24, App. A.3) and the KD student (Eqs. 16-22), at zero
temperature, replica symmetric, float64 recommended (``jax_enable_x64``; float32 runs but its quadrature
and tolerances are coarse).

The paper gives only the free entropy; the fixed-point equations are the brief's derived §2.4 (teacher)
and §2.6 (student). Keywords: ``alpha`` (α = M/N), ``p_plus`` (the paper's cluster fraction ρ), ``delta``
(Δ), ``lam_t`` (λ̃), ``lam`` (λ), ``eta`` (η), ``rho`` (the paper's χ, the soft fraction: ntkd's one
keyword for it), ``T``; label smoothing ε (Fig. 9) as ``label_smoothing``. Regularizer convention:
``Σ_μ ℓ + λ/2 ‖w‖²`` for teacher and student (brief §2.9.1), biases unpenalized.

Numerics (brief §2.8): dense uniform grids on [-8, 8] with Gaussian weights (1-D teacher, 2-D student:
(z̃, z)), never Gauss-Hermite; a damped iteration of the conjugate ("hat") variables, ``new = d·old +
(1 - d)·update`` with d = 0.3, and one Newton step of the bias per sweep; the proximal points are warm
started from the previous sweep. Convergence: ``max_i |F(x)_i - x_i| / max(1, |x_i|) <= tol`` over the
hats and the bias. A solve that does not converge raises :class:`NotConvergedError` when called eagerly
and returns NaN order parameters and error under ``jit``/``vmap`` (never a plausible number).

Derivatives (``grad`` in any parameter, teacher parameters through the student included) are implicit:
``dx = (I - ∂F/∂x)⁻¹ ∂F/∂θ dθ`` at the fixed point ``x = F(x, θ)``, never through the iterations.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.nn import sigmoid

from ..._core.checks import all_true, as_float_array, check_int, is_concrete
from ...losses import check_rho, check_T
from .mixture import bo_bias, gen_error_core
from .prox import PROX_ITERS, loss_d012, prox_core

__all__ = [
    "DAMPING",
    "NotConvergedError",
    "StudentState",
    "TeacherState",
    "bo_teacher_state",
    "solve_student_state",
    "solve_teacher_state",
]

DAMPING = 0.3  # d in new = d·old + (1 - d)·update (brief §2.8)
_WARM_ITERS = 10  # Newton steps of the warm-started proximal points per sweep


class NotConvergedError(RuntimeError):
    """The damped fixed-point iteration stopped at ``max_iter`` (or on a NaN) above ``tol``."""


class TeacherState(NamedTuple):
    """Teacher order parameters (brief §2.2/2.4; tildes of the paper dropped) and the task it was solved on.

    ``m = w̃·v/N``, ``q = ‖w̃‖²/N``, ``dq`` = δq̃ (response), ``b`` = b̃, conjugates ``mhat, qhat, dqhat``,
    ``Lam`` = Λ̃ = λ̃ + δq̂̃, test ``error`` (Eq. 12), ``train_loss`` (per pattern), ``iterations`` and
    ``residual`` of the solve; task ``alpha, p_plus, delta, label_smoothing``. The BO proxy has dq = 0."""

    m: jax.Array
    q: jax.Array
    dq: jax.Array
    b: jax.Array
    mhat: jax.Array
    qhat: jax.Array
    dqhat: jax.Array
    Lam: jax.Array
    error: jax.Array
    train_loss: jax.Array
    iterations: jax.Array
    residual: jax.Array
    alpha: jax.Array
    p_plus: jax.Array
    delta: jax.Array
    label_smoothing: jax.Array


class StudentState(NamedTuple):
    """Student order parameters (brief §2.6): ``m, q, dq`` (δq), teacher overlap ``S = w·w̃/N`` and its
    response ``dS`` (δS), bias ``b``; conjugates ``mhat, qhat, dqhat, Shat, dShat`` (Ŝ, δŜ); test ``error``;
    Fig. 11 diagnostics per pattern: ``train_loss`` (the KD loss at the optimum), ``half_mse_sigma``
    (½E[(σ(h) - σ(h̃))²]) and ``half_mse`` (½E[(h - h̃)²]); ``iterations`` and ``residual``."""

    m: jax.Array
    q: jax.Array
    dq: jax.Array
    S: jax.Array
    dS: jax.Array
    b: jax.Array
    mhat: jax.Array
    qhat: jax.Array
    dqhat: jax.Array
    Shat: jax.Array
    dShat: jax.Array
    error: jax.Array
    train_loss: jax.Array
    half_mse_sigma: jax.Array
    half_mse: jax.Array
    iterations: jax.Array
    residual: jax.Array


# ------------------------------------------------------------------------------------------- quadrature
def grid(n: int, dtype):
    """Uniform nodes on [-8, 8] and normalized Gaussian weights (sum 1)."""
    z = jnp.linspace(-8.0, 8.0, n, dtype=dtype)
    w = jnp.exp(-0.5 * z * z)
    return z, w / jnp.sum(w)


def _labels(p_plus, eps, ndim):
    """y = (1, 0) on the leading axis, its sign 2y - 1, probability and smoothed label ȳ."""
    dt = jnp.result_type(p_plus)
    y = jnp.asarray([1.0, 0.0], dt).reshape((2,) + (1,) * (ndim - 1))
    py = jnp.stack([p_plus, 1 - p_plus]).reshape(y.shape)
    return y, 2 * y - 1, py, y * (1 - eps) + (1 - y) * eps


# ------------------------------------------------------------------------------------ fixed-point driver
def _bias_step(ef, ek):
    """Newton step of the bias on E[f] = 0, capped at ±2: E[κ/(1 + Vκ)] → 0 when the fit saturates (tiny
    λ), where the raw step overflows; the cap leaves the fixed point and its derivative unchanged."""
    return jnp.clip(ef / jnp.maximum(ek, jnp.finfo(ek.dtype).tiny), -2.0, 2.0)


def _relres(fx, x):
    return jnp.max(jnp.abs(fx - x) / jnp.maximum(1.0, jnp.abs(x)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _fixed_point(fields, th, x0, ctl):
    """Damped iteration of ``x <- F(x, θ)``; ``fields(x, θ, h0, iters) -> (F(x), proximal points)``;
    ``ctl = (tol, max_iter)`` are traced (one compiled program for every tolerance)."""
    tol, max_iter = ctl
    damping = DAMPING
    mask = jnp.ones_like(x0).at[-1].set(0.0) * damping  # the bias takes its full Newton step
    fx, h = fields(x0, th, None, PROX_ITERS)

    def cond(c):
        _x, _fx, _h, k, res = c
        return (res > tol) & (k < max_iter) & jnp.isfinite(res)

    def body(c):
        x, fx, h, k, _ = c
        x = mask * x + (1 - mask) * fx
        fx, h = fields(x, th, h, _WARM_ITERS)
        return x, fx, h, k + 1, _relres(fx, x)

    x, fx, h, k, res = jax.lax.while_loop(cond, body, (x0, fx, h, jnp.asarray(0), _relres(fx, x0)))
    return x, k, res


@_fixed_point.defjvp
def _fixed_point_jvp(fields, primals, tangents):
    th, x0, ctl = primals
    x, k, res = _fixed_point(fields, th, x0, ctl)
    exact = lambda xx, tt: fields(xx, tt, None, PROX_ITERS)[0]
    jx = jax.jacfwd(exact, argnums=0)(x, th)
    _, ft = jax.jvp(lambda tt: exact(x, tt), (th,), (tangents[0],))
    dx = jnp.linalg.solve(jnp.eye(x.shape[0], dtype=x.dtype) - jx, ft)
    f0 = lambda a: jnp.zeros(jnp.shape(a), jax.dtypes.float0)
    return (x, k, res), (dx, f0(k), jnp.zeros_like(res))


def _finish(state, converged, what, k, res, tol):
    """NaN fields when not converged (traced); eagerly, a NotConvergedError."""
    if is_concrete(converged) and not bool(jnp.all(converged)):
        raise NotConvergedError(
            f"the {what} fixed point did not converge: residual {float(jnp.max(res)):.3g} > tol {tol:.1e} "
            f"after {int(jnp.max(k))} sweeps, or converged to an unphysical point (student q <= 0 or S² > q q̃, "
            "seen for pure KD from a quasi-separating teacher, e.g. λ̃ = 1e-2 at α <= 3). Raise `max_iter`, start "
            "from a converged neighbour (`init=`, as learning_curve does), or use continuation from a larger "
            "regularization (`continuation=`).")
    keep = ("iterations", "residual", "alpha", "p_plus", "delta", "label_smoothing")
    return state._replace(**{f: jnp.where(converged, getattr(state, f), jnp.nan)
                             for f in state._fields if f not in keep})


def _defaults(dtype, tol, max_iter):
    if tol is None:
        tol = 1e-10 if jnp.dtype(dtype) == jnp.float64 else 2e-5
    if not is_concrete(max_iter):  # a traced sweep budget is fine: the loop bound is dynamic
        return float(tol), max_iter
    return float(tol), check_int(max_iter, "max_iter", minimum=1)


def _check(x, name, what, lo=None, hi=None, lo_open=True, hi_open=True):
    x = as_float_array(x, name)

    def ok(a):
        r = jnp.isfinite(a)
        if lo is not None:
            r &= (a > lo) if lo_open else (a >= lo)
        if hi is not None:
            r &= (a < hi) if hi_open else (a <= hi)
        return r.all()

    if not all_true(x, ok):
        lb = "" if lo is None else ("(" if lo_open else "[") + f"{lo}"
        ub = "∞)" if hi is None else f"{hi}" + (")" if hi_open else "]")
        raise ValueError(f"`{name}` ({what}) must be finite and in {lb}, {ub}; got {x!r}.")
    return x, ok


# ---------------------------------------------------------------------------------------------- teacher
def _teacher_order(x, lam_t):
    mh, qh, dqh, b = x[0], x[1], x[2], x[3]
    Lam = lam_t + dqh
    return mh / Lam, (mh * mh + qh) / (Lam * Lam), 1 / Lam, b, Lam


def _teacher_fields(x, th, h0, iters, n):
    alpha, lam_t, p_plus, delta, eps = th
    z, w = grid(n, x.dtype)
    m, q, dq, b, _ = _teacher_order(x, lam_t)
    _y, sgn, py, yb = _labels(p_plus, eps, 2)
    V = delta * dq
    omega = sgn * m + b + jnp.sqrt(delta * q) * z[None, :]
    zero = jnp.zeros((), x.dtype)
    h = prox_core(omega, V, yb, zero, zero, zero + 1, omega if h0 is None else h0, iters)
    _, d1, d2 = loss_d012(h, yb, zero, zero, zero + 1)
    f, k = -d1, d2 / (1 + V * d2)
    E = lambda a: jnp.sum(py * w[None, :] * a)
    Ek = E(k)
    new = jnp.stack([alpha * E(sgn * f), alpha * delta * E(f * f), alpha * delta * Ek, b + _bias_step(E(f), Ek)])
    return new, h


def _teacher_solve(alpha, lam_t, p_plus, delta, eps, x0, *, n, tol, max_iter):
    th = (alpha, lam_t, p_plus, delta, eps)
    fields = functools.partial(_teacher_fields, n=n)
    x, k, res = _fixed_point(fields, th, x0, (tol, max_iter))
    m, q, dq, b, Lam = _teacher_order(x, lam_t)
    _, h = fields(x, th, None, PROX_ITERS)
    _z, w = grid(n, x.dtype)
    _, _, py, yb = _labels(p_plus, eps, 2)
    loss = jnp.sum(py * w[None, :] * loss_d012(h, yb, 0.0, 0.0, 1.0)[0])
    state = TeacherState(m, q, dq, b, x[0], x[1], x[2], Lam, gen_error_core(m, q, b, p_plus, delta), loss,
                         k, res, alpha, p_plus, delta, eps)
    return state, (res <= tol) & jnp.all(jnp.isfinite(x))


_teacher_solve_jit = jax.jit(_teacher_solve, static_argnames=("n",))


def _task_args(alpha, p_plus, delta):
    alpha, a_ok = _check(alpha, "alpha", "sample ratio α = M/N", lo=0)
    p_plus, p_ok = _check(p_plus, "p_plus", "the paper's cluster fraction ρ = P(y = 1)", lo=0, hi=1)
    delta, d_ok = _check(delta, "delta", "noise variance Δ", lo=0)
    return (alpha, p_plus, delta), (a_ok, p_ok, d_ok)


def _nan_invalid(values, oks):
    """Traced invalid arguments become NaN (so every output is NaN)."""
    bad = functools.reduce(jnp.logical_or, [~_elementwise(ok, v) for v, ok in zip(values, oks)])
    return [jnp.where(bad, jnp.nan, v) for v in values]


def _elementwise(ok, v):
    return jax.vmap(ok)(v.reshape(-1)).reshape(v.shape) if v.ndim else ok(v)


def solve_teacher_state(alpha, lam_t, *, p_plus, delta, label_smoothing=0.0, n_grid: int = 2001,
                        tol=None, max_iter: int = 5000, init=None, continuation: int = 0) -> TeacherState:
    """Teacher fixed point (brief §2.4): L2-regularized logistic regression ``Σ_μ H(ȳ^μ, σ(h̃^μ)) + λ̃/2 ‖w̃‖²``
    on the mixture, bias unpenalized, labels smoothed to ``ȳ = y(1 - ε) + (1 - y) ε`` (Fig. 9).

    Args: scalars ``alpha`` (α), ``lam_t`` (λ̃ > 0); keywords ``p_plus`` (paper's ρ), ``delta`` (Δ),
    ``label_smoothing`` (ε ∈ [0, 1/2)), ``n_grid`` (1-D quadrature nodes), ``tol`` (default 1e-10 in
    float64), ``max_iter`` sweeps, ``init`` a converged :class:`TeacherState` to start from (warm start),
    ``continuation`` stages: solve first at λ̃ geometrically spaced from 0.1 down to ``lam_t`` (for tiny λ̃
    below the separability threshold, where norms blow up).

    Returns a :class:`TeacherState` of scalars (vmap for grids). Raises :class:`NotConvergedError` eagerly.
    """
    (alpha, p_plus, delta), oks = _task_args(alpha, p_plus, delta)
    lam_t, l_ok = _check(lam_t, "lam_t", "teacher regularization λ̃", lo=0)
    eps, e_ok = _check(label_smoothing, "label_smoothing", "label-smoothing ε", lo=0, hi=0.5, lo_open=False)
    n = check_int(n_grid, "n_grid", minimum=11)
    dt = jnp.result_type(float, alpha, lam_t, p_plus, delta, eps)
    vals = [jnp.asarray(v, dt) for v in (alpha, lam_t, p_plus, delta, eps)]
    alpha, lam_t, p_plus, delta, eps = _nan_invalid(vals, [oks[0], l_ok, oks[1], oks[2], e_ok])
    tol, max_iter = _defaults(dt, tol, max_iter)
    x0 = jnp.asarray([1.0, 1.0, 1.0, 0.0], dt) if init is None else jnp.stack(
        [init.mhat, init.qhat, init.dqhat, init.b]).astype(dt)
    stages = _stages(lam_t, continuation)
    for lam_k in stages:
        state, ok = _teacher_solve_jit(alpha, lam_k, p_plus, delta, eps, x0, n=n, tol=tol, max_iter=max_iter)
        x0 = jnp.where(ok, jnp.stack([state.mhat, state.qhat, state.dqhat, state.b]), x0)
    return _finish(state, ok, "teacher", state.iterations, state.residual, tol)


def _stages(lam, k):
    """λ values of a continuation: ``k`` stages geometric from max(0.1, λ) down to λ, then λ itself."""
    k = check_int(k, "continuation", minimum=0)
    if k == 0:
        return [lam]
    top = jnp.maximum(0.1, lam)
    return [jax.lax.stop_gradient(top * (lam / top) ** (i / k)) for i in range(k)] + [lam]


def bo_teacher_state(alpha, *, p_plus, delta) -> TeacherState:
    """The Bayes-optimal proxy teacher (Eq. 24, App. A.3): ``w̃ = v + √(Δ/α) ξ``, ``b̃ = b_BO``; data
    independent, so ``m = 1, q = 1 + Δ/α, dq = 0`` (no proximal step: h̃ is its cavity field, f̃ = 0), with
    entropic inputs ``mhat = 1, qhat = Δ/α, Lam = 1`` that encode ``w̃_i = 1 + √(Δ/α) z̃_i``."""
    (alpha, p_plus, delta), oks = _task_args(alpha, p_plus, delta)
    dt = jnp.result_type(float, alpha, p_plus, delta)
    alpha, p_plus, delta = _nan_invalid([jnp.asarray(v, dt) for v in (alpha, p_plus, delta)], oks)
    one, zero = jnp.ones_like(alpha), jnp.zeros_like(alpha)
    q, b = 1 + delta / alpha, bo_bias(alpha, p_plus, delta)
    return TeacherState(one, q, zero, b, one, delta / alpha, zero, one, gen_error_core(one, q, b, p_plus, delta),
                        jnp.full_like(alpha, jnp.nan), jnp.zeros_like(jnp.asarray(0)), zero, alpha, p_plus, delta,
                        zero)


# ---------------------------------------------------------------------------------------------- student
def _student_order(x, lam, eta, t):
    mh, qh, dqh, Sh, dSh = x[0], x[1], x[2], x[3], x[4]
    Lt, Lam = t.Lam, lam + dqh
    A = mh + t.mhat * dSh / Lt
    m, dq = eta * A / Lam, eta / Lam
    q = eta / (Lam * Lam) * (A * A + qh + 2 * dSh * Sh / Lt + t.qhat * dSh * dSh / (Lt * Lt))
    dS = eta * dSh / (Lt * Lam)
    S = eta / (Lt * Lam) * (A * t.mhat + Sh + t.qhat * dSh / Lt)
    return m, q, dq, S, dS, x[5]


def _teacher_on_grid(t, zt):
    """Teacher pre-activation h̃* and f̃ = -ℓ̃'(h̃*) on the z̃ nodes (f̃ = 0 for the BO proxy, dq = 0)."""
    dt = zt.dtype
    _, sgn, _, yb = _labels(t.p_plus, t.label_smoothing, 3)
    omega = sgn * t.m + t.b + jnp.sqrt(t.delta * t.q) * zt
    zero = jnp.zeros((), dt)
    V = t.delta * t.dq
    ht = prox_core(omega, V, yb, zero, zero, zero + 1, omega, PROX_ITERS)
    ft = jnp.where(t.dq > 0, -loss_d012(ht, yb, zero, zero, zero + 1)[1], 0.0)
    return ht, ft


def _student_fields(x, th, h0, iters, n):
    t, eta, lam, rho, T, eps = th
    n1, n2 = n
    zt, wt = grid(n1, x.dtype)
    z, w = grid(n2, x.dtype)
    zt, z, wgt = zt[None, :, None], z[None, None, :], (wt[:, None] * w[None, :])[None]
    m, q, dq, S, dS, b = _student_order(x, lam, eta, t)
    _, sgn, py, yb = _labels(t.p_plus, eps, 3)
    ht, ft = _teacher_on_grid(t, zt)
    delta, alpha = t.delta, t.alpha
    resid = jnp.sqrt(jnp.maximum(delta * (q - S * S / t.q), 0.0))
    omega = sgn * m + b + delta * dS * ft + jnp.sqrt(delta / t.q) * S * zt + resid * z
    V = delta * dq
    h = prox_core(omega, V, yb, ht, rho, T, omega if h0 is None else h0, iters)
    _, d1, d2 = loss_d012(h, yb, ht, rho, T)
    f, k = -d1, d2 / (1 + V * d2)
    E = lambda a: jnp.sum(py * wgt * a)
    Ek = E(k)
    dqh = alpha * delta * Ek
    new = jnp.stack([alpha * E(sgn * f), alpha * delta * E(f * f), dqh, alpha * delta * E(f * ft),
                     alpha * jnp.sqrt(delta / t.q) * E(zt * f) + S / t.q * dqh, b + _bias_step(E(f), Ek)])
    return new, h


def _student_solve(t, eta, lam, rho, T, eps, x0, *, n, tol, max_iter):
    th = (t, eta, lam, rho, T, eps)
    fields = functools.partial(_student_fields, n=n)
    x, k, res = _fixed_point(fields, th, x0, (tol, max_iter))
    m, q, dq, S, dS, b = _student_order(x, lam, eta, t)
    _, h = fields(x, th, None, PROX_ITERS)
    zt, wt = grid(n[0], x.dtype)
    _, w = grid(n[1], x.dtype)
    _, _, py, yb = _labels(t.p_plus, eps, 3)
    ht, _ = _teacher_on_grid(t, zt[None, :, None])
    E = lambda a: jnp.sum(py * (wt[:, None] * w[None, :])[None] * a)
    loss = E(loss_d012(h, yb, ht, rho, T)[0])
    mse_s = 0.5 * E((sigmoid(h) - sigmoid(ht)) ** 2)
    mse = 0.5 * E((h - ht) ** 2)
    state = StudentState(m, q, dq, S, dS, b, *[x[i] for i in range(5)],
                         gen_error_core(m, q, b, t.p_plus, t.delta), loss, mse_s, mse, k, res)
    physical = (q > 0) & (q * t.q >= S * S * (1 - 1e-8))  # Cauchy-Schwarz (equality: student = teacher)
    return state, (res <= tol) & jnp.all(jnp.isfinite(x)) & physical


_student_solve_jit = jax.jit(_student_solve, static_argnames=("n",))


def solve_student_state(teacher: TeacherState, *, eta, lam, rho, T=1.0, label_smoothing=0.0,
                        n_grid=(401, 301), tol=None, max_iter: int = 5000, init=None,
                        continuation: int = 0) -> StudentState:
    """KD student fixed point (brief §2.6): the sparse student ``h = Σ_{i ≤ ηN} w_i x_i/√N + b`` (full-N
    normalization) minimizing ``Σ_μ ℓ_KD + λ/2 ‖w‖²`` on the teacher's training inputs.

    Args: ``teacher`` from :func:`solve_teacher_state` or :func:`bo_teacher_state` (its α, ρ, Δ are the
    task); ``eta`` (η ∈ (0, 1]), ``lam`` (λ > 0), ``rho`` (the paper's χ, soft fraction in [0, 1]; 0 is
    direct ridge-logistic regression), ``T`` (temperature of the soft term only, no T² factor),
    ``label_smoothing`` of the hard term (ε), ``n_grid = (n_z̃, n_z)`` quadrature nodes, ``tol``,
    ``max_iter``, ``init`` (a :class:`StudentState` warm start), ``continuation`` (stages in λ from 0.1).

    Returns a :class:`StudentState` of scalars. Raises :class:`NotConvergedError` eagerly.
    """
    eta, e_ok = _check(eta, "eta", "trainable fraction η", lo=0, hi=1, hi_open=False)
    lam, l_ok = _check(lam, "lam", "student regularization λ", lo=0)
    rho = check_rho(rho)
    T = check_T(T)
    eps, s_ok = _check(label_smoothing, "label_smoothing", "label-smoothing ε", lo=0, hi=0.5, lo_open=False)
    n = tuple(check_int(v, "n_grid", minimum=11) for v in n_grid)
    if len(n) != 2:
        raise ValueError(f"`n_grid` must be a pair (n_z_tilde, n_z); got {n_grid!r}.")
    dt = jnp.result_type(float, teacher.alpha, eta, lam, rho, T, eps)
    teacher = jax.tree_util.tree_map(lambda a: a.astype(dt) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                                     teacher)
    r_ok = lambda a: ((a >= 0) & (a <= 1)).all()
    T_ok = lambda a: (jnp.isfinite(a) & (a > 0)).all()
    vals = [jnp.asarray(v, dt) for v in (eta, lam, rho, T, eps)]
    eta, lam, rho, T, eps = _nan_invalid(vals, [e_ok, l_ok, r_ok, T_ok, s_ok])
    tol, max_iter = _defaults(dt, tol, max_iter)
    x0 = jnp.asarray([0.5] * 5 + [0.0], dt) if init is None else jnp.stack(
        [init.mhat, init.qhat, init.dqhat, init.Shat, init.dShat, init.b]).astype(dt)
    for lam_k in _stages(lam, continuation):
        state, ok = _student_solve_jit(teacher, eta, lam_k, rho, T, eps, x0, n=n, tol=tol, max_iter=max_iter)
        x0 = jnp.where(ok, jnp.stack([state.mhat, state.qhat, state.dqhat, state.Shat, state.dShat, state.b]), x0)
    return _finish(state, ok, "student", state.iterations, state.residual, tol)
