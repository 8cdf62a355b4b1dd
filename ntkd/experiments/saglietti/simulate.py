"""Finite-N simulations of Saglietti & Zdeborová (2022): ERM of teacher and sparse KD student on the
binary Gaussian mixture by full-batch L-BFGS (``optax.lbfgs``), test errors from the order parameters
(Eq. 12), mean ± SEM over seeds (brief §4.2).

Protocol: ``M = ⌊αN⌋`` training points; teacher ``"erm"`` (ridge-logistic, bias unpenalized), ``"bo"``
(the Bayes-optimal proxy ``w̃ = v + √(Δ/α) ξ``, Eq. 24) or ``"hebbian"`` (Eq. 13 on the same data);
teacher pre-activations on the training inputs; the student keeps the first ``⌊ηN⌋`` weights with the
full-N normalization ``h = Σ_{i ≤ ηN} w_i x_i/√N + b`` and minimizes ``Σ ℓ_KD + λ/2 ‖w‖²``. Objectives
are divided by M for the optimizer (same minimizer); it stops when the gradient norm is below ``gtol``.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..._core.linalg import mm
from ..._core.stats import mean_sem
from ...losses import loss_terms
from ...theories.solvable_model import bo_bias, gen_error, gmm_sample

__all__ = ["TEACHERS", "simulate_kd", "simulate_seed"]

TEACHERS = ("erm", "bo", "hebbian")


def _lbfgs(f, params, gtol, max_steps):
    """Minimize ``f`` from ``params`` by L-BFGS (zoom line search) until ‖∇f‖ <= gtol; returns
    ``(params, gradient norm, steps)``."""
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    def body(c):
        p, st, _, k = c
        v, g = vg(p, state=st)
        u, st = opt.update(g, st, p, value=v, grad=g, value_fn=f)
        return optax.apply_updates(p, u), st, optax.tree.norm(g), k + 1

    def cond(c):
        return (c[2] > gtol) & (c[3] < max_steps)

    p, _, _gn, k = jax.lax.while_loop(cond, body, (params, opt.init(params), jnp.inf, 0))
    return p, optax.tree.norm(jax.grad(f)(p)), k


@functools.partial(jax.jit, static_argnames=("n_features", "n_samples", "n_student", "teacher", "max_steps",
                                             "student"))
def _seed(key, lam_t, lam, rho, T, p_plus, delta, *, n_features, n_samples, n_student, teacher, gtol, max_steps,
          student=True):
    N, M, k = n_features, n_samples, n_student
    dt = lam.dtype
    kd, kt = jax.random.split(key)
    v, X, y = gmm_sample(kd, N, M, p_plus=p_plus, delta=delta, dtype=dt)
    sq = jnp.sqrt(jnp.asarray(N, dt))
    alpha = M / N
    zero = jnp.zeros((), dt)
    if teacher == "erm":
        def ft(p):
            h = mm(X, p[0]) / sq + p[1]
            return (jnp.sum(loss_terms(h, zero, y, zero, zero + 1, 1.0)) + 0.5 * lam_t * jnp.sum(p[0] ** 2)) / M
        (wt, bt), gt, kt_steps = _lbfgs(ft, (jnp.zeros(N, dt), zero), gtol, max_steps)
    else:
        if teacher == "bo":
            wt = v + jnp.sqrt(delta / alpha) * jax.random.normal(kt, (N,), dt)
            bt = bo_bias(alpha, p_plus, delta)
        else:  # Hebbian plug-in, Eq. 13
            wt = mm(2 * y - 1, X) / (alpha * sq)
            bt = delta * jnp.sum(wt**2) / N / 2 * jnp.log(p_plus / (1 - p_plus))
        gt, kt_steps = zero, 0
    mt, qt = jnp.sum(wt * v) / N, jnp.sum(wt**2) / N
    out = {"teacher_m": mt, "teacher_q": qt, "teacher_b": bt, "teacher_grad": gt, "teacher_steps": kt_steps}
    if not student:
        return out
    zt = mm(X, wt) / sq + bt
    Xs = X[:, :k]

    def fs(p):
        h = mm(Xs, p[0]) / sq + p[1]
        return (jnp.sum(loss_terms(h, zt, y, rho, T, 1.0)) + 0.5 * lam * jnp.sum(p[0] ** 2)) / M

    (ws, bs), gs, ks = _lbfgs(fs, (jnp.zeros(k, dt), zero), gtol, max_steps)
    m, q, S = jnp.sum(ws * v[:k]) / N, jnp.sum(ws**2) / N, jnp.sum(ws * wt[:k]) / N
    return {**out, "m": m, "q": q, "S": S, "b": bs, "student_grad": gs, "student_steps": ks}


def simulate_seed(key, *, n_features: int, alpha: float, p_plus: float, delta: float, eta: float, lam: float,
                  rho: float, T: float = 1.0, lam_t: float = 0.1, teacher: str = "erm", gtol: float = 1e-9,
                  max_steps: int = 3000, student: bool = True) -> dict:
    """One seed of the protocol: order parameters ``m, q, S, b`` of the student, ``teacher_m/q/b``, test
    errors ``teacher_error``/``student_error`` (Eq. 12) and the optimizers' final gradient norms and steps
    (check them: a norm above ``gtol`` means ``max_steps`` stopped it). ``rho`` is the paper's χ.
    ``student=False`` trains the teacher only (Fig. 1); the student's fields are then NaN."""
    if teacher not in TEACHERS:
        raise ValueError(f"`teacher` must be one of {TEACHERS}; got {teacher!r}.")
    M, k = math.floor(alpha * n_features), math.floor(eta * n_features)
    if M < 1 or k < 1:
        raise ValueError(f"alpha·n_features and eta·n_features must be >= 1; got M = {M}, ηN = {k}.")
    dt = jnp.result_type(float)
    f = lambda x: jnp.asarray(x, dt)
    out = _seed(key, f(lam_t), f(lam), f(rho), f(T), f(p_plus), f(delta), n_features=n_features,
                n_samples=M, n_student=k, teacher=teacher, gtol=f(gtol), max_steps=max_steps, student=bool(student))
    out = {a: float(b) for a, b in out.items()}
    out["teacher_error"] = float(gen_error(out["teacher_m"], out["teacher_q"], out["teacher_b"], p_plus=p_plus,
                                           delta=delta))
    if not student:
        return {**out, **dict.fromkeys(("m", "q", "S", "b", "student_grad", "student_steps", "student_error"),
                                       float("nan"))}
    out["student_error"] = float(gen_error(out["m"], out["q"], out["b"], p_plus=p_plus, delta=delta))
    return out


def simulate_kd(key, *, n_seeds: int, **kw) -> dict:
    """``n_seeds`` independent seeds of :func:`simulate_seed` (same keywords); returns ``{"rows": [...],
    "<metric>": (mean, SEM)}`` for the errors and order parameters."""
    rows = [simulate_seed(k, **kw) for k in jax.random.split(key, n_seeds)]
    out = {"rows": rows}
    for name in ("teacher_error", "student_error", "m", "q", "S", "b"):
        mu, se = mean_sem(np.array([r[name] for r in rows]))
        out[name] = (float(mu), float(se))
    return out
