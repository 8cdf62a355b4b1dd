"""Loss vectors and the risk estimators of Menon et al. (2020), §1.1 and §2.1.

A predictor's loss on a sample is the **loss matrix** ``ell (n, K)``: row ``i`` is the loss vector
``ℓ(f(x_i)) = (ℓ(1, f(x_i)), …, ℓ(K, f(x_i)))`` (the paper's ``L`` classes are ``K`` here). Every estimator is
a mean of one number per example:

* one-hot (empirical) risk ``R̂ = mean_i ℓ(y_i, f(x_i)) = mean_i e_{y_i}ᵀ ℓ(f(x_i))``;
* distilled risk ``R̃ = mean_i p^t(x_i)ᵀ ℓ(f(x_i))`` (teacher probabilities ``p^t``);
* Bayes-distilled risk ``R̃_* = mean_i p*(x_i)ᵀ ℓ(f(x_i))`` (the distilled risk with ``p^t = p*``);
* mixed risk ``(1 - ω) R̂ + ω R̃``: the paper's ω is the keyword ``rho``, ntkd's soft fraction in every theory.

Binary problems are ``K = 2`` with logits ``[0, z]`` (:func:`binary_logits`): softmax CE then equals Ji &
Zhu's single-logit binary CE of ``z`` (:mod:`ntkd.losses`, label 1 ↔ class 1).

Invalid values: eager calls raise ``ValueError``; traced calls give NaN in the affected rows (and hence the
mean), never a plausible risk.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..._core.checks import all_true, as_float_array, check_finite
from ...losses import check_probs, one_hot, probs_valid

__all__ = [
    "LOSSES",
    "bayes_distilled_risk",
    "binary_logits",
    "distilled_risk",
    "empirical_bernstein_bound",
    "empirical_risk",
    "loss_vector",
    "mixed_risk",
]

#: kinds accepted by :func:`loss_vector`
LOSSES = ("softmax_ce", "clipped_ce", "brier", "zero_one")


def check_loss_matrix(ell, name="ell"):
    ell = as_float_array(ell, name)
    if ell.ndim != 2:
        raise ValueError(f"`{name}` must be a loss matrix of shape (n, K) (row i = loss vector of example i); "
                         f"got shape {ell.shape}.")
    check_finite(ell, name)
    return ell


# probs_valid / check_probs: ntkd.losses (shared by the multi-class theories), importable from here as before


def check_labels(y, n, K, name="y"):
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`{name}` must hold integer class labels in [0, {K}); got dtype {y.dtype}.")
    if y.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},), one label per row of the loss matrix; got {y.shape}.")
    if not all_true(y, lambda a: ((a >= 0) & (a < K)).all()):
        raise ValueError(f"`{name}` labels must lie in [0, {K}) (K = number of columns of the loss matrix).")
    return y


def check_rho(rho, dtype):
    w = as_float_array(rho, "rho").astype(dtype)
    if not all_true(w, lambda a: ((a >= 0) & (a <= 1)).all()):
        raise ValueError(f"`rho` (the paper's ω, weight of the teacher term) must lie in [0, 1]; got {rho!r}.")
    return jnp.where((w >= 0) & (w <= 1), w, jnp.nan)


def loss_vector(logits, kind: str = "softmax_ce", *, bound: float | None = None):
    """The loss of every class: ``logits (..., K) -> ell (..., K)``, ``ell[..., y] = ℓ(y, f(x))``.

    Kinds: ``"softmax_ce"`` ``-log softmax(z)_y`` (unbounded, the paper's canonical loss);
    ``"clipped_ce"`` ``min(CE, bound)`` (bounded by ``bound``, as §1.3–1.4 assume; zero gradient above it);
    ``"brier"`` ``‖softmax(z) - e_y‖²`` (smooth, in [0, 2]); ``"zero_one"`` ``1[y ≠ argmax z]`` (first
    maximum on ties; zero gradient).
    """
    z = as_float_array(logits, "logits")
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"`logits` must have a last axis of K >= 2 classes; got shape {z.shape}. For one binary "
                         "logit use binary_logits(z).")
    if kind not in LOSSES:
        raise ValueError(f"`kind` must be one of {LOSSES}; got {kind!r}.")
    bad_bound = bound is None or not (isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0)
    if kind == "clipped_ce" and bad_bound:
        raise ValueError(f"`bound` must be a finite number > 0 for kind='clipped_ce'; got {bound!r}.")
    K = z.shape[-1]
    if kind in ("softmax_ce", "clipped_ce"):
        ce = -jax.nn.log_softmax(z, axis=-1)
        return ce if kind == "softmax_ce" else jnp.minimum(ce, jnp.asarray(bound, z.dtype))
    if kind == "brier":
        p = jax.nn.softmax(z, axis=-1)
        # ‖p - e_y‖² = ‖p‖² - 2 p_y + 1
        return (p * p).sum(-1, keepdims=True) - 2 * p + 1
    hit = one_hot(jnp.argmax(z, axis=-1), K, dtype=z.dtype)
    return jnp.where(jnp.isnan(z).any(-1, keepdims=True), jnp.nan, 1 - hit)


def binary_logits(z):
    """A single binary logit ``z (...)`` as two-class logits ``[0, z]`` ``(..., 2)``: ``softmax([0, z])_1 =
    σ(z)``, so class 1 is Ji & Zhu's label ``y_g = 1``."""
    z = as_float_array(z, "z")
    return jnp.stack([jnp.zeros_like(z), z], axis=-1)


def _mean(v, per_example):
    return v if per_example else jnp.mean(v)


def empirical_risk(ell, y, *, per_example: bool = False):
    """One-hot risk ``R̂ = mean_i ell[i, y_i]``: ``ell (n, K)``, integer labels ``y (n,)`` -> scalar
    (or ``(n,)`` per-example values with ``per_example=True``)."""
    ell = check_loss_matrix(ell)
    n, K = ell.shape
    y = check_labels(y, n, K)
    v = jnp.take_along_axis(ell, jnp.clip(y, 0, K - 1)[:, None], axis=1)[:, 0]
    return _mean(jnp.where((y >= 0) & (y < K), v, jnp.nan), per_example)


def distilled_risk(ell, p_t, *, per_example: bool = False):
    """Distilled risk ``R̃ = mean_i p^t(x_i)ᵀ ell[i]``: ``ell (n, K)``, teacher probabilities ``p_t (n, K)``
    -> scalar (or ``(n,)``). Rows of ``p_t`` off the simplex give NaN."""
    ell = check_loss_matrix(ell)
    p = check_probs(p_t, "p_t", ell.shape).astype(ell.dtype)
    v = jnp.where(probs_valid(p), (p * ell).sum(-1), jnp.nan)
    return _mean(v, per_example)


def bayes_distilled_risk(ell, p_star, *, per_example: bool = False):
    """Bayes-distilled risk ``R̃_* = mean_i p*(x_i)ᵀ ell[i]`` (the oracle of Lemma 1): :func:`distilled_risk`
    with the Bayes class-probabilities ``p_star (n, K)``."""
    ell = check_loss_matrix(ell)
    p = check_probs(p_star, "p_star", ell.shape).astype(ell.dtype)
    v = jnp.where(probs_valid(p), (p * ell).sum(-1), jnp.nan)
    return _mean(v, per_example)


def mixed_risk(ell, y, p_t, rho, *, per_example: bool = False):
    """``(1 - ω) R̂ + ω R̃`` (§1.5 iv, the label/teacher mixture; ω = ``rho`` in [0, 1], ntkd's soft fraction; out of range gives
    NaN when traced). ``ω = 0`` is :func:`empirical_risk`, ``ω = 1`` :func:`distilled_risk`."""
    ell = check_loss_matrix(ell)
    w = check_rho(rho, ell.dtype)
    if w.ndim:
        raise ValueError(f"`rho` must be a scalar (vmap over it for a grid); got shape {w.shape}.")
    hard = empirical_risk(ell, y, per_example=True)
    soft = distilled_risk(ell, p_t, per_example=True)
    return _mean((1 - w) * hard + w * soft, per_example)


def empirical_bernstein_bound(values, delta, *, log_cover=None, value_range: float = 1.0):
    """Maurer & Pontil (2009) empirical-Bernstein upper bound on ``E[Z]`` from ``values (n,)`` of ``Z ∈ [0, b]``
    (``b = value_range``), holding with probability ≥ 1 - δ (Menon et al. §1.3, Prop. 2).

    ``V_n`` is the sample variance (ddof = 1) of ``values / b``:

    * ``log_cover=None`` (one fixed function, M–P Thm 4):
      ``mean + b·(√(2 V_n ln(2/δ) / n) + 7 ln(2/δ) / (3 (n - 1)))``;
    * ``log_cover = ln N_∞(1/n, H, 2n)`` (uniform over a class, M–P Thm 6, the brief's [GUESS] constants):
      ``mean + b·(√(18 V_n ln(M/δ) / n) + 15 ln(M/δ) / (n - 1))`` with ``M = 10 N_∞``.

    Applied to per-example distilled losses ``p^t(x_i)ᵀ ℓ(f(x_i))`` it is the bound of Prop. 2 / its teacher
    corollary (the latter still needs the teacher-bias term, which is not included). Values outside
    ``[0, b]`` raise eagerly and give NaN when traced; ``n >= 2``.
    """
    v = as_float_array(values, "values")
    if v.ndim != 1 or v.shape[0] < 2:
        raise ValueError(f"`values` must have shape (n,) with n >= 2; got {v.shape}.")
    check_finite(v, "values")
    b = float(value_range)
    if not (math.isfinite(b) and b > 0):
        raise ValueError(f"`value_range` must be finite and > 0; got {value_range!r}.")
    if not all_true(v, lambda a: ((a >= 0) & (a <= b)).all()):
        raise ValueError(f"`values` must lie in [0, value_range={b}]; rescale them or pass a larger value_range.")
    d = as_float_array(delta, "delta").astype(v.dtype)
    if not all_true(d, lambda a: ((a > 0) & (a < 1)).all()):
        raise ValueError(f"`delta` must lie in (0, 1); got {delta!r}.")
    n = v.shape[0]
    z = v / b
    var = jnp.var(z, ddof=1)
    if log_cover is None:
        lg = jnp.log(2 / d)
        dev = jnp.sqrt(2 * var * lg / n) + 7 * lg / (3 * (n - 1))
    else:
        lc = as_float_array(log_cover, "log_cover").astype(v.dtype)
        if not all_true(lc, lambda a: (a >= 0).all()):
            raise ValueError(f"`log_cover` (ln of the covering number) must be >= 0; got {log_cover!r}.")
        lg = jnp.log(10.0) + jnp.where(lc >= 0, lc, jnp.nan) - jnp.log(d)
        dev = jnp.sqrt(18 * var * lg / n) + 15 * lg / (n - 1)
    ok = ((z >= 0) & (z <= 1)).all() & (d > 0) & (d < 1)
    return jnp.where(ok, jnp.mean(v) + b * dev, jnp.nan)

