"""Risks against the exact conditional law and sampler diagnostics (Kaplun et al. 2022, brief §1.2, §5.2).

Predictions ``pred`` are int labels ``(n,)`` or, for randomised predictors, label distributions
``(n, K)`` (rows summing to 1); ``p (n, K)`` is the exact D(·|x) of the test points (``task.cond_probs``).
Risks are computed analytically per test point, L̂(h) = mean_j [1 - p_j(h(x_j))], not against sampled
noisy labels (lower variance). All functions are jit/vmap-compatible; those of distributions are
differentiable in them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..._core.checks import check_int, is_concrete
from ...losses import one_hot

__all__ = [
    "REGIMES",
    "accuracy",
    "as_distribution",
    "bayes_risk",
    "disagreement",
    "feature_calibration",
    "label_frequencies",
    "loss_shift",
    "noise_replication_ratio",
    "pointwise_sampler_gap",
    "replication_regime",
    "risk",
    "sampler_gap",
    "sampler_risk",
    "threshold_family",
]


def as_distribution(pred, num_classes: int, dtype=None):
    """Int labels ``(n,)`` -> one-hot ``(n, K)``; a distribution ``(n, K)`` is returned as is."""
    pred = jnp.asarray(pred)
    if jnp.issubdtype(pred.dtype, jnp.integer):
        return one_hot(pred, num_classes, dtype=dtype)
    return pred


def risk(pred, p):
    """0-1 risk against D: mean_j [1 - Σ_y q_j(y) p_j(y)] (= mean_j [1 - p_j(pred_j)] for labels)."""
    q = as_distribution(pred, p.shape[-1], p.dtype)
    return jnp.mean(1 - jnp.sum(q * p, axis=-1))


def accuracy(pred, labels):
    """Fraction of ``pred == labels`` (e.g. against ``task.clean(x)``)."""
    return jnp.mean((jnp.asarray(pred) == jnp.asarray(labels)).astype(jnp.result_type(float)))


def disagreement(pred, other):
    """Fraction of points where two labelings differ (e.g. against ``task.bayes(x)``)."""
    return 1 - accuracy(pred, other)


def bayes_risk(p):
    """Monte-Carlo L* = mean_j [1 - max_y p_j(y)] over test points."""
    return jnp.mean(1 - jnp.max(p, axis=-1))


def sampler_risk(p):
    """Monte-Carlo exact-sampler risk mean_j [1 - Σ_y p_j(y)²] (brief §1.3)."""
    return jnp.mean(1 - jnp.sum(p * p, axis=-1))


def loss_shift(teacher, p, family):
    """L_{D_f}(h) - L_D(h) = E_x[p(h(x)|x) - q(h(x)|x)] for every h of a finite family (brief §1.2, S2):
    ``teacher`` labels ``(n,)`` or label law ``(n, K)`` of f, ``family (H, n)`` int predictions of the
    test hypotheses -> ``(H,)``."""
    q = as_distribution(teacher, p.shape[-1], p.dtype)
    pick = jax.vmap(lambda h: jnp.mean(jnp.take_along_axis(p - q, h[:, None], axis=-1)))
    return pick(jnp.asarray(family))


def sampler_gap(teacher, p, family):
    """ε_H(f) = max_h |L_{D_f}(h) - L_D(h)| over the family: the (S2) sampler gap (0 for an exact sampler
    in expectation; see :func:`loss_shift`)."""
    return jnp.max(jnp.abs(loss_shift(teacher, p, family)))


def label_frequencies(labels, num_classes: int):
    """Empirical label law of R independently trained teachers: ``labels (R, n)`` -> ``(n, K)``."""
    return jnp.mean(one_hot(labels, check_int(num_classes, "num_classes", minimum=2)), axis=0)


def pointwise_sampler_gap(freq, p):
    """(S1) gap E_x TV(Pr_S[f_S(x) = ·], D(·|x)) = mean_j ½ Σ_y |freq_j(y) - p_j(y)|; with ``freq`` from
    R teachers (:func:`label_frequencies`) it is biased upward by the R-sample noise (~√(p(1-p)/R))."""
    return jnp.mean(0.5 * jnp.sum(jnp.abs(freq - p), axis=-1))


def noise_replication_ratio(pred, p):
    """r = Pr[f ≠ f*] / Pr_{y~D}[y ≠ f*] with f* = argmax p: 1 for an exact sampler (in expectation),
    0 for the Bayes classifier (brief §5.2)."""
    q = as_distribution(pred, p.shape[-1], p.dtype)
    star = jnp.argmax(p, axis=-1)
    off = 1 - jnp.take_along_axis(q, star[:, None], axis=-1)[:, 0]
    noise = 1 - jnp.take_along_axis(p, star[:, None], axis=-1)[:, 0]
    return jnp.mean(off) / jnp.mean(noise)


#: the names of :func:`replication_regime`'s codes 0..3
REGIMES = ("bayes-like", "partial sampler", "sampler", "not a sampler")


def replication_regime(pred, p, *, tol=0.1):
    """Which regime a teacher is in by its noise replication ratio r (:func:`noise_replication_ratio`):
    code 0 ``"bayes-like"`` (r ≤ tol), 1 ``"partial sampler"`` (tol < r < 1 - tol, tempered: removes some
    of the noise), 2 ``"sampler"`` (|r - 1| ≤ tol), 3 ``"not a sampler"`` (r > 1 + tol: more label noise
    than D has, e.g. the catastrophic intermediate-bandwidth Gaussian interpolant of brief C5); names in
    :data:`REGIMES`.

    [RECON] decision: the brief labels teachers by replication, not by a threshold of the paper; r ≈ 1 is
    necessary but not sufficient for (S1)/(S2) (where the errors fall matters: see :func:`sampler_gap`).
    With constant noise rate (halfspace_flip, pair flips), r > 1 iff the risk against D exceeds the
    exact-sampler risk. Returns the code as a float of p's dtype, NaN when r is NaN (e.g. noiseless D, or
    a traced ``tol`` outside (0, 0.5)); a concrete ``tol`` outside (0, 0.5) raises ``ValueError``."""
    tol = jnp.asarray(tol, jnp.asarray(p).dtype)
    if is_concrete(tol) and not bool((tol > 0) & (tol < 0.5)):
        raise ValueError(f"`tol` must be in (0, 0.5); got {float(tol)!r}.")
    r = noise_replication_ratio(pred, p)
    code = jnp.where(r > 1 + tol, 3, jnp.where(r >= 1 - tol, 2, jnp.where(r > tol, 1, 0))).astype(r.dtype)
    return jnp.where(jnp.isnan(r) | ~((tol > 0) & (tol < 0.5)), jnp.nan, code)


def feature_calibration(pred, p, *, bins: int = 10):
    """Distributional-generalisation diagnostic: over all (point, class) pairs binned by D(c|x) into
    ``bins`` equal bins of [0, 1], the mean D(c|x) and the frequency of f(x) = c per bin (equal for a
    sampler; 0/1 steps for Bayes). Returns ``(mean_p (bins,), freq (bins,), count (bins,))``; empty bins
    give NaN means."""
    b = check_int(bins, "bins", minimum=1)
    q = as_distribution(pred, p.shape[-1], p.dtype).reshape(-1)
    pv = p.reshape(-1)
    idx = jnp.clip(jnp.floor(pv * b), 0, b - 1).astype(jnp.int32)
    cnt = jax.ops.segment_sum(jnp.ones_like(pv), idx, b)
    mp = jax.ops.segment_sum(pv, idx, b) / cnt
    fq = jax.ops.segment_sum(q, idx, b) / cnt
    return mp, fq, cnt


def threshold_family(x1d, taus):
    """Predictions ``(H, n)`` of the thresholds {1[x > τ]}: ``x1d (n,)``, ``taus (H,)``."""
    return (jnp.asarray(x1d)[None, :] > jnp.asarray(taus)[:, None]).astype(jnp.int32)
