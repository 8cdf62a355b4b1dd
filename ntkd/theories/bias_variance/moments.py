"""Bias, variance and MSE of the risk estimators: predicted (§1.2–1.5, exact forms) and measured (Monte Carlo).

For a fixed predictor ``f`` write, at an input ``x``: ``c = p*ᵀℓ`` (conditional risk), ``t = p^tᵀℓ``,
``b = t - c`` (teacher deviation) and ``Var_y ℓ = p*ᵀℓ² - c²`` (label noise). With ``N`` examples:

* ``V[R̂] = V_{x,y}[ℓ(y, f(x))] / N``, ``V[R̃_*] = V_x[c] / N``; Lemma 1's exact gap
  ``V[R̂] - V[R̃_*] = E_x Var_y ℓ / N ≥ 0``;
* ``E[R̃] - R = E_x b`` and ``E[(R̃ - R)²] = V_x[t] / N + (E_x b)²`` (Prop. 3, exact); the Cauchy–Schwarz
  bound ``|E_x b| ≤ E_x ‖p^t - p*‖₂ ‖ℓ‖₂``;
* mixed ``R_ω``: mean ``R + ω E b``, ``MSE(ω) = (V_x[c + ω b] + (1 - ω)² E_x Var_y ℓ) / N + ω² (E b)²``,
  minimized over [0, 1] by ``ω* = clip((G - Cov(b, c)) / (V[b] + G + N (E b)²), 0, 1)``, ``G = E_x Var_y ℓ``.

Population expectations take rows ``ell, p_star, p_t (M, K)`` of inputs ``x_m`` with probabilities
``weights (M,)`` (exact for a finite input law; ``1/M`` for ``M`` Monte-Carlo draws of ``x``).
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..._core.checks import all_true, as_float_array, check_int
from ...losses import check_probs, probs_valid
from .estimators import check_loss_matrix, check_rho
from .tasks import bayes_probs, population, sample

__all__ = [
    "ESTIMATORS",
    "estimator_moments",
    "optimal_mixing_weight",
    "population_risk",
    "probability_metrics",
    "risk_estimator_stats",
]

#: estimator names in :func:`risk_estimator_stats`
ESTIMATORS = ("onehot", "bayes", "teacher", "mixed")


def _inputs(ell, p_star, p_t, weights, n):
    ell = check_loss_matrix(ell)
    ps = check_probs(p_star, "p_star", ell.shape).astype(ell.dtype)
    pt = check_probs(p_t, "p_t", ell.shape).astype(ell.dtype)
    M = ell.shape[0]
    w = jnp.full((M,), 1.0 / M, ell.dtype) if weights is None else check_probs(weights, "weights", (M,)).astype(ell.dtype)
    nn = as_float_array(n, "n").astype(ell.dtype)
    if not all_true(nn, lambda a: (a >= 1).all()):
        raise ValueError(f"`n` (sample size N) must be >= 1; got {n!r}.")
    ok = probs_valid(ps).all() & probs_valid(pt).all() & probs_valid(w) & (nn >= 1)
    return ell, ps, pt, w, jnp.where(ok, nn, jnp.nan)


def norm(v):
    """Row norms ``‖v‖₂`` over the last axis with gradient 0 (not NaN) at 0, e.g. for an exact teacher."""
    s = (v * v).sum(-1)
    return jnp.where(s > 0, jnp.sqrt(jnp.where(s > 0, s, 1)), 0)


def _moments(ell, ps, pt, w, n, rho):
    E = lambda v: jnp.sum(w * v)
    c = (ps * ell).sum(-1)
    t = (pt * ell).sum(-1)
    bdev = t - c
    noise = (ps * ell * ell).sum(-1) - c * c
    R = E(c)
    Vc, Vt, G = E((c - R) ** 2), E((t - E(t)) ** 2), E(noise)
    Eb = E(bdev)
    Vb, Cbc = E((bdev - Eb) ** 2), E((bdev - Eb) * (c - R))
    cs = E(norm(pt - ps) * norm(ell))
    var_mix = (Vc + 2 * rho * Cbc + rho**2 * Vb + (1 - rho) ** 2 * G) / n
    return {
        "risk": R,
        "var_onehot": (Vc + G) / n,
        "var_bayes": Vc / n,
        "gap": G / n,
        "var_teacher": Vt / n,
        "bias_teacher": Eb,
        "mse_teacher": Vt / n + Eb**2,
        "bias_bound": cs,
        "mse_bound": Vt / n + cs**2,
        "teacher_distance": E(norm(pt - ps)),
        "var_mixed": var_mix,
        "bias_mixed": rho * Eb,
        "mse_mixed": var_mix + (rho * Eb) ** 2,
        "rho_star": jnp.clip((G - Cbc) / (Vb + G + n * Eb**2), 0.0, 1.0),
    }


def estimator_moments(ell, p_star, p_t, *, n, weights=None, rho=0.5) -> dict:
    """Predicted moments of the estimators at sample size ``N = n`` (scalar; vmap for a grid).

    Args: ``ell, p_star, p_t (M, K)``: loss vectors, Bayes and teacher probabilities at population inputs;
    ``weights (M,)`` their probabilities (default ``1/M``); ``rho``: the mixing weight (the paper's ω) of the mixed estimator.

    Returns a dict of scalars: ``risk`` R(f); ``var_onehot``, ``var_bayes``, ``gap`` (= their difference,
    Lemma 1), ``var_teacher``, ``bias_teacher`` (``E b``), ``mse_teacher`` (Prop. 3 exact), ``bias_bound``
    (Cauchy–Schwarz ``E ‖p^t-p*‖ ‖ℓ‖``), ``mse_bound``, ``teacher_distance`` (``E ‖p^t - p*‖₂``),
    ``var_mixed``, ``bias_mixed``, ``mse_mixed`` at ``rho``, and ``rho_star``.
    """
    ell, ps, pt, w, nn = _inputs(ell, p_star, p_t, weights, n)
    return _moments(ell, ps, pt, w, nn, check_rho(rho, ell.dtype))


def optimal_mixing_weight(ell, p_star, p_t, *, n, weights=None):
    """``ω* ∈ [0, 1]`` minimizing the MSE of ``(1 - ω) R̂ + ω R̃`` at sample size ``n`` (§1.5 iv, closed form
    of the quadratic; see the module docstring). ``ω* → 0`` as ``n → ∞`` unless the teacher is unbiased for
    this ``f`` (``E b = 0``)."""
    ell, ps, pt, w, nn = _inputs(ell, p_star, p_t, weights, n)
    return _moments(ell, ps, pt, w, nn, jnp.zeros((), ell.dtype))["rho_star"]


def population_risk(loss_fn: Callable, task, *, key=None, draws: int = 2**16):
    """``(R(f), standard error)``: ``R(f) = E_x[p*(x)ᵀ ℓ(f(x))]`` with ``loss_fn(x (m, d)) -> ell (m, K)``.

    Exact (s.e. 0; ``key`` unused) for a :class:`~.tasks.FiniteTask`; else a Monte-Carlo mean over ``draws``
    inputs drawn with ``key`` (required) of the
    conditional risk ``p*ᵀℓ`` (conditioning on x removes the label noise from the error), s.e. = sample
    standard deviation / √draws.
    """
    draws = check_int(draws, "draws", minimum=2)
    if key is None and not _finite(task):
        raise ValueError("`key` is required for a Monte-Carlo population risk (only a FiniteTask is exact); pass "
                         "a jax.random key.")
    x, w = population(task, key, draws)
    c = (bayes_probs(task, x) * loss_fn(x)).sum(-1)
    R = jnp.sum(w * c)
    se = 0.0 if _finite(task) else jnp.std(c, ddof=1) / jnp.sqrt(draws)
    return R, jnp.asarray(se, c.dtype)


def _finite(task):
    return type(task).__name__ == "FiniteTask"


def risk_estimator_stats(key, task, loss_fn: Callable, teacher: Callable, *, n: int, reps: int,
                         rho: float = 0.5, pop_draws: int = 2**16) -> dict:
    """Measured and predicted statistics of the four estimators for one fixed predictor (§4.1 item 4).

    ``reps`` samples ``S`` of size ``n`` are drawn from ``task``; on each, ``ell = loss_fn(x)`` ``(n, K)`` and
    ``p^t = teacher(x)`` give ``R̂`` (``onehot``), ``R̃_*`` (``bayes``), ``R̃`` (``teacher``) and the mixture
    at ``rho`` (``mixed``). The truth ``R(f)`` and the predictions come from :func:`population` (exact
    for a finite task, else ``pop_draws`` inputs).

    Returns ``{"risk", "risk_se", "predicted": estimator_moments(...), <estimator>: {"mean", "mean_se",
    "var", "var_se", "bias", "mse", "mse_se"}, "gap": {"var", "var_se"}}``: sample variance (ddof 1),
    ``bias = mean - risk``, ``mse = mean((R̂ - risk)²)``, and delta-method standard errors of each; ``gap`` is
    Lemma 1's ``V[R̂] - V[R̃_*]`` measured as ``V[R̂ - R̃_*]`` (equal because ``Cov(R̂ - R̃_*, R̃_*) = 0``; far
    less noisy than the difference of two variances). Traceable: jit/vmap it through
    a closure with ``n``, ``reps``, ``pop_draws`` fixed.
    """
    n = check_int(n, "n", minimum=1)
    reps = check_int(reps, "reps", minimum=2)
    pop_draws = check_int(pop_draws, "pop_draws", minimum=2)
    k_pop, k_rep = jax.random.split(key)

    def one(k):
        x, y = sample(task, k, n)
        ell = loss_fn(x)
        ps, pt = bayes_probs(task, x), teacher(x)
        hard = jnp.take_along_axis(ell, y[:, None], axis=1)[:, 0].mean()
        bayes = (ps * ell).sum(-1).mean()
        soft = jnp.where(probs_valid(pt).all(), (pt * ell).sum(-1).mean(), jnp.nan)
        return jnp.stack([hard, bayes, soft, (1 - rho) * hard + rho * soft])

    est = jax.vmap(one)(jax.random.split(k_rep, reps))  # (reps, 4)
    xp, wp = population(task, k_pop, pop_draws)
    ell_p = loss_fn(xp)
    pred = _moments(ell_p, bayes_probs(task, xp), teacher(xp), wp, jnp.asarray(n, ell_p.dtype),
                    jnp.asarray(rho, ell_p.dtype))
    R = pred["risk"]
    c = (bayes_probs(task, xp) * ell_p).sum(-1)
    risk_se = 0.0 if _finite(task) else jnp.std(c, ddof=1) / jnp.sqrt(pop_draws)
    out = {"risk": R, "risk_se": jnp.asarray(risk_se, R.dtype), "predicted": pred}
    rt = jnp.sqrt(jnp.asarray(reps, R.dtype))
    for j, name in enumerate(ESTIMATORS):
        v = est[:, j]
        m = v.mean()
        d2, e2 = (v - m) ** 2, (v - R) ** 2
        out[name] = {"mean": m, "mean_se": jnp.std(v, ddof=1) / rt, "var": jnp.var(v, ddof=1),
                     "var_se": jnp.std(d2, ddof=1) / rt, "bias": m - R, "mse": e2.mean(),
                     "mse_se": jnp.std(e2, ddof=1) / rt}
    # Lemma 1's gap measured directly: R̂ - R̃_* is uncorrelated with R̃_*, so V[R̂] - V[R̃_*] = V[R̂ - R̃_*]
    diff = est[:, 0] - est[:, 1]
    dd = (diff - diff.mean()) ** 2
    out["gap"] = {"var": jnp.var(diff, ddof=1), "var_se": jnp.std(dd, ddof=1) / rt}
    return out


def probability_metrics(p, p_star, *, weights=None) -> dict:
    """Quality of class probabilities ``p (M, K)`` (a student's or a teacher's) against ``p* (M, K)``, in
    expectation over the labels given x (Rao-Blackwellized, no label sampling) and over inputs with
    ``weights`` (default ``1/M``):

    ``accuracy`` ``E_x p*(x)[argmax p(x)]``; ``bayes_accuracy`` ``E_x max p*``; ``log_loss``
    ``E_x Σ_y p*_y (-log p_y)``; ``bayes_log_loss`` ``E_x H(p*)``; ``excess_risk`` (CE) = log_loss -
    bayes_log_loss = ``E_x KL(p* ‖ p)``, the excess over the best predictor, attained by a well-specified
    class; ``sq_distance`` ``E_x ‖p - p*‖²``; ``distance`` ``E_x ‖p - p*‖₂`` (the teacher quality of §1.4).
    """
    p = as_float_array(p, "p")
    if p.ndim != 2:
        raise ValueError(f"`p` must have shape (M, K); got {p.shape}.")
    p = check_probs(p, "p", p.shape)
    ps = check_probs(p_star, "p_star", p.shape).astype(p.dtype)
    M = p.shape[0]
    w = jnp.full((M,), 1.0 / M, p.dtype) if weights is None else check_probs(weights, "weights", (M,)).astype(p.dtype)
    ok = probs_valid(p) & probs_valid(ps)
    w = jnp.where(ok.all() & probs_valid(w), w, jnp.nan)
    E = lambda v: jnp.sum(w * v)
    xlogy = jax.scipy.special.xlogy
    acc = jnp.take_along_axis(ps, jnp.argmax(p, -1)[:, None], 1)[:, 0]
    ll = -(xlogy(ps, p)).sum(-1)
    ent = -(xlogy(ps, ps)).sum(-1)
    diff = p - ps
    return {"accuracy": E(acc), "bayes_accuracy": E(ps.max(-1)), "log_loss": E(ll), "bayes_log_loss": E(ent),
            "excess_risk": E(ll - ent), "sq_distance": E((diff**2).sum(-1)),
            "distance": E(norm(diff))}
