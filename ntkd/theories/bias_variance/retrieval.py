"""Extreme retrieval with sampled softmax, teacher-mined negatives and teacher-weighted positives (Menon et al.
2020, §2.2 and task T3 of §4.2).

With ``K`` labels (hundreds to thousands) a student ranks labels by its scores ``f(x) (K,)``; training uses a
sampled softmax over a few positives ``P(x)`` and ``m`` negatives ``N(x)`` instead of all ``K`` classes.

**The objective is a reconstruction** (the brief's [GUESS]; the paper's exact loss was not recovered). The
documented choice, :func:`sampled_softmax_loss`, per example::

    ℓ(x; f) = Σ_{j ∈ P} w_j [ -f_{y_j} + log( e^{f_{y_j}} + Σ_{i : n_i ≠ y_j} e^{f_{n_i} - log_q_i} ) ]

* positives ``pos_idx (..., P)`` with weights ``pos_weights (..., P)`` (a probability vector over the P slots;
  repeated labels are allowed and simply add their weights): one-hot/label positives are the observed labels
  with weights ``1/P``; teacher-weighted positives (:func:`teacher_positives`) are the teacher's top-P labels
  with its probabilities renormalised over them;
* negatives ``neg_idx (..., m)``: a negative equal to the positive ``y_j`` is dropped from that positive's
  denominator (the brief's ``N \\ {y}``; TensorFlow's "remove accidental hits"), a negative equal to *another*
  positive stays (it competes with ``y_j`` as in the full softmax);
* ``log_q (..., m)`` the optional sampling-bias ("logQ") correction, **the log of the expected number of times
  the negative appears in the sample**, ``log(m q(n_i | x))`` for ``m`` draws from ``q`` (as in TensorFlow's
  ``sampled_softmax_loss``), so that ``Σ_i e^{f_{n_i} - log_q_i}`` is unbiased for ``Σ_y e^{f_y}``.

With every class as a negative (``neg_idx = arange(K)``) and no correction the loss is exactly the full softmax
cross-entropy ``-Σ_j w_j log softmax(f)_{y_j}``. Double distillation (:func:`double_distillation_loss`) is
teacher-weighted positives plus teacher-mined (hard) negatives.

Negative samplers: :func:`uniform_negatives` (``m`` uniform draws with replacement, ``log_q = log(m / K)``),
:func:`teacher_hard_negatives` (the teacher's ``m`` top-scoring non-positive labels, deterministic, no
correction), :func:`teacher_sampled_negatives` (``m`` draws from ``q ∝ p^t`` restricted to non-positives, optionally mixed
with the uniform law, logQ-corrected).

Metrics (piecewise constant, no useful gradient): :func:`precision_at_k` / :func:`recall_at_k` against a
label set, and :func:`oracle_precision_at_k` against ``p*``'s own top-k. The synthetic task T3 is a
:class:`~.tasks.LogisticTask` with many classes (:func:`retrieval_task`); :func:`sample_positives` draws the
positives of each ``x`` from ``p*(· | x)``.

Invalid indices or weights: eager calls raise ``ValueError``; traced calls give NaN for the affected example.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..._core.checks import (
    all_true,
    as_float_array,
    check_finite,
    check_int,
    check_positive,
)
from ...losses import probs_valid
from .tasks import LogisticTask, bayes_logits, logistic_task, sample

__all__ = [
    "double_distillation_loss",
    "negative_proposal",
    "oracle_precision_at_k",
    "precision_at_k",
    "recall_at_k",
    "retrieval_task",
    "sample_negatives",
    "sample_positives",
    "sampled_softmax_loss",
    "teacher_hard_negatives",
    "teacher_positives",
    "teacher_sampled_negatives",
    "uniform_negatives",
]


def _check_idx(idx, name, K, batch):
    idx = jnp.asarray(idx)
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ValueError(f"`{name}` must hold integer class indices in [0, {K}); got dtype {idx.dtype}.")
    if idx.ndim < 1 or idx.shape[:-1] != batch:
        raise ValueError(f"`{name}` must have shape {batch + ('m',)} (batch axes of the scores, then a slot axis); "
                         f"got {idx.shape}.")
    if not all_true(idx, lambda a: ((a >= 0) & (a < K)).all(), name):
        raise ValueError(f"`{name}` entries must lie in [0, {K}) (K = number of classes, the last axis of the scores).")
    return idx


def _idx_ok(idx, K):
    return ((idx >= 0) & (idx < K)).all(-1)


def _check_scores(scores, name="logits"):
    z = as_float_array(scores, name)
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"`{name}` must have a last axis of K >= 2 classes; got shape {z.shape}.")
    return z


def sampled_softmax_loss(logits, pos_idx, pos_weights, neg_idx, *, log_q=None):
    """Per-example sampled-softmax loss (the module's documented reconstruction of §2.2).

    Args:
      logits: student scores ``f(x)`` of shape ``(..., K)``.
      pos_idx: integer positives ``(..., P)``; pos_weights: ``(..., P)`` weights ``w_j`` (≥ 0, sum 1 per row).
      neg_idx: integer negatives ``(..., m)`` (may repeat; entries equal to a positive are dropped from *that*
        positive's denominator only).
      log_q: optional ``(..., m)`` log expected count of each negative in the sample, ``log(m q)``, subtracted
        from its logit; ``None`` means no correction (mined negatives).

    Returns:
      ``(...)`` losses in the logits' dtype. With ``neg_idx = arange(K)`` and ``log_q=None`` this equals the full
      softmax CE ``-Σ_j w_j log softmax(f)_{pos_j}``. Differentiable in ``logits`` (and ``log_q``); ``vmap`` over
      any leading axis.
    """
    z = _check_scores(logits)
    K, batch = z.shape[-1], z.shape[:-1]
    pi = _check_idx(pos_idx, "pos_idx", K, batch)
    ni = _check_idx(neg_idx, "neg_idx", K, batch)
    w = as_float_array(pos_weights, "pos_weights")
    if w.shape != pi.shape:
        raise ValueError(f"`pos_weights` must have the shape of `pos_idx` {pi.shape}; got {w.shape}.")
    w_ok = probs_valid(w)  # in the weights' own precision (float32 thirds do not sum to 1 in float64)
    if not all_true(w_ok, lambda a: a.all(), "pos_weights"):
        raise ValueError("`pos_weights` rows must be >= 0 and sum to 1 (renormalise the positives' weights).")
    w = w.astype(z.dtype)
    if log_q is None:
        lq = jnp.zeros(ni.shape, z.dtype)
    else:
        lq = as_float_array(log_q, "log_q").astype(z.dtype)
        if lq.shape != ni.shape:
            raise ValueError(f"`log_q` must have the shape of `neg_idx` {ni.shape}; got {lq.shape}.")
        check_finite(lq, "log_q")
    f_pos = jnp.take_along_axis(z, jnp.clip(pi, 0, K - 1), axis=-1)  # (..., P)
    f_neg = jnp.take_along_axis(z, jnp.clip(ni, 0, K - 1), axis=-1) - lq  # (..., m)
    hit = pi[..., :, None] == ni[..., None, :]  # (..., P, m): accidental hits
    neg = jnp.where(hit, -jnp.inf, f_neg[..., None, :])
    denom = jnp.logaddexp(f_pos, jax.nn.logsumexp(neg, axis=-1))  # (..., P); finite since f_pos is
    loss = jnp.sum(w * (denom - f_pos), axis=-1)
    ok = _idx_ok(pi, K) & _idx_ok(ni, K) & w_ok & jnp.isfinite(lq).all(-1)
    return jnp.where(ok, loss, jnp.nan)


def uniform_negatives(key, K: int, m: int, batch_shape=()):
    """``m`` negatives per example drawn uniformly with replacement from all ``K`` classes:
    ``(neg_idx (*batch_shape, m) int32, log_q)`` with ``log_q = log(m / K)`` (expected count) everywhere.
    Accidental hits of a positive are dropped inside :func:`sampled_softmax_loss`."""
    K = check_int(K, "K", minimum=2)
    m = check_int(m, "m", minimum=1)
    shape = tuple(batch_shape) + (m,)
    idx = jax.random.randint(key, shape, 0, K, dtype=jnp.int32)
    return idx, jnp.full(shape, jnp.log(m / K), jnp.result_type(float))


def _excluded(scores, exclude):
    K = scores.shape[-1]
    if exclude is None:
        return jnp.zeros(scores.shape, bool)
    ex = _check_idx(exclude, "exclude", K, scores.shape[:-1])
    return (jnp.arange(K) == ex[..., :, None]).any(-2)


def teacher_hard_negatives(teacher_scores, m: int, *, exclude=None):
    """Teacher-mined negatives: the ``m`` labels with the highest teacher scores ``(..., K)`` (logits or
    probabilities) that are not in ``exclude (..., P)`` (the positives), in decreasing order (lower index first
    on ties). Returns ``(..., m)`` int32; use with ``log_q=None``. ``m`` must leave room: ``m ≤ K - P``."""
    s = _check_scores(teacher_scores, "teacher_scores")
    m = check_int(m, "m", minimum=1)
    P = 0 if exclude is None else jnp.shape(exclude)[-1]
    if m > s.shape[-1] - P:
        raise ValueError(f"`m`={m} negatives exceed the {s.shape[-1] - P} classes left after excluding {P} positives.")
    masked = jnp.where(_excluded(s, exclude), -jnp.inf, s)
    return jax.lax.top_k(masked, m)[1].astype(jnp.int32)


def negative_proposal(teacher_probs, *, exclude=None, uniform_mix: float = 0.0):
    """The log proposal ``log q (..., K)`` of :func:`teacher_sampled_negatives`: ``q = (1 - α) p̄^t + α ū`` with
    ``p̄^t`` the teacher probabilities and ``ū`` the uniform law, each restricted to the labels not in
    ``exclude (..., P)`` and renormalised (``-inf`` at excluded labels); ``α = uniform_mix`` ∈ [0, 1]."""
    p = _check_scores(teacher_probs, "teacher_probs")
    a = check_positive(uniform_mix, "uniform_mix", allow_zero=True)
    if a > 1:
        raise ValueError(f"`uniform_mix` must lie in [0, 1]; got {uniform_mix!r}.")
    if not all_true(p, lambda v: (v >= 0).all(), "teacher_probs"):
        raise ValueError("`teacher_probs` must be probabilities (>= 0); pass softmax(teacher logits).")
    keep = ~_excluded(p, exclude)
    pn = jnp.where(keep, p, 0)
    un = keep.astype(p.dtype)
    q = (1 - a) * pn / pn.sum(-1, keepdims=True) + a * un / un.sum(-1, keepdims=True)
    return jnp.where(jnp.isfinite(p).all(-1, keepdims=True), jnp.log(q), jnp.nan)


def sample_negatives(key, log_proposal, m: int):
    """``m`` i.i.d. draws per example from ``q = exp(log_proposal) (..., K)`` (normalised):
    ``(neg_idx (..., m) int32, log_q (..., m))`` with ``log_q = log(m q(n_i))``, the logQ correction of
    :func:`sampled_softmax_loss`."""
    lp = _check_scores(log_proposal, "log_proposal")
    m = check_int(m, "m", minimum=1)
    lp = lp - jax.nn.logsumexp(lp, axis=-1, keepdims=True)
    # inverse CDF: O(K + m log K) per example (categorical's Gumbel trick would draw m·K numbers)
    cdf = jnp.cumsum(jnp.exp(lp), axis=-1)
    u = jax.random.uniform(key, lp.shape[:-1] + (m,), lp.dtype) * cdf[..., -1:]
    ss = partial(jnp.searchsorted, side="right")
    for _ in range(lp.ndim - 1):
        ss = jax.vmap(ss)
    idx = jnp.clip(ss(cdf, u), 0, lp.shape[-1] - 1)
    lq = jnp.take_along_axis(lp, idx, axis=-1)
    # a rounding draw past the last label of positive mass falls back to the most likely label
    idx = jnp.where(jnp.isfinite(lq), idx, jnp.argmax(lp, axis=-1, keepdims=True)).astype(jnp.int32)
    return idx, jnp.log(jnp.asarray(m, lp.dtype)) + jnp.take_along_axis(lp, idx, axis=-1)


def teacher_sampled_negatives(key, teacher_probs, m: int, *, exclude=None, uniform_mix: float = 0.0):
    """``m`` negatives drawn with replacement from the teacher's :func:`negative_proposal` ``q ∝ (1 - α) p^t + α u``
    over the non-excluded labels (``α = uniform_mix > 0`` is "defensive" importance sampling: every label can
    be drawn, so the logQ-corrected denominator stays unbiased for ``Σ_{y ∉ exclude} e^{f_y}``):
    ``(neg_idx (..., m) int32, log_q (..., m))`` with ``log_q = log(m q(n_i))``. With ``α = 0`` a label of
    teacher probability 0 is never drawn."""
    return sample_negatives(key, negative_proposal(teacher_probs, exclude=exclude, uniform_mix=uniform_mix), m)


def teacher_positives(teacher_probs, num_pos: int):
    """Teacher-weighted positives: the teacher's top-``num_pos`` labels and its probabilities renormalised over
    them, ``(pos_idx (..., P) int32, pos_weights (..., P))`` ([GUESS] the brief's ``P_t(x)``, ``p̄^t``)."""
    p = _check_scores(teacher_probs, "teacher_probs")
    P = check_int(num_pos, "num_pos", minimum=1)
    if P > p.shape[-1]:
        raise ValueError(f"`num_pos`={P} exceeds the K={p.shape[-1]} classes.")
    val, idx = jax.lax.top_k(p, P)
    tot = val.sum(-1, keepdims=True)
    return idx.astype(jnp.int32), jnp.where(tot > 0, val / jnp.where(tot > 0, tot, 1), jnp.nan)


def double_distillation_loss(logits, teacher_probs, *, num_pos: int, num_neg: int):
    """The brief's double-distillation objective ([GUESS], §2.2): :func:`sampled_softmax_loss` with the
    teacher's top-``num_pos`` labels as positives weighted by its renormalised probabilities and the teacher's
    next ``num_neg`` labels (top-scoring non-positives) as negatives, no logQ correction. ``logits``,
    ``teacher_probs (..., K)`` -> ``(...)``."""
    pi, pw = teacher_positives(teacher_probs, num_pos)
    ni = teacher_hard_negatives(teacher_probs, num_neg, exclude=pi)
    return sampled_softmax_loss(logits, pi, pw, ni)


def _topk(scores, k):
    s = _check_scores(scores, "scores")
    k = check_int(k, "k", minimum=1)
    if k > s.shape[-1]:
        raise ValueError(f"`k`={k} exceeds the K={s.shape[-1]} classes.")
    return s, jax.lax.top_k(s, k)[1]


def _first(idx):
    # (..., P) bool: slot j holds the first occurrence of its label (duplicates count once)
    P = idx.shape[-1]
    earlier = jnp.tril(jnp.ones((P, P), bool), -1)
    return ~((idx[..., :, None] == idx[..., None, :]) & earlier).any(-1)


def precision_at_k(scores, relevant, k: int):
    """Precision@k: the fraction of the ``k`` top-scoring labels of ``scores (..., K)`` that are in the set
    ``relevant (..., P)`` (integer labels, duplicates count once). Ties: lower index first. Returns ``(...)``."""
    s, top = _topk(scores, k)
    rel = _check_idx(relevant, "relevant", s.shape[-1], s.shape[:-1])
    hit = (top[..., :, None] == rel[..., None, :]).any(-1)
    return jnp.where(_idx_ok(rel, s.shape[-1]), hit.mean(-1).astype(s.dtype), jnp.nan)


def recall_at_k(scores, relevant, k: int):
    """Recall@k: the fraction of the distinct labels in ``relevant (..., P)`` among the top ``k`` of
    ``scores (..., K)``. Returns ``(...)``."""
    s, top = _topk(scores, k)
    rel = _check_idx(relevant, "relevant", s.shape[-1], s.shape[:-1])
    first = _first(rel)
    found = (rel[..., :, None] == top[..., None, :]).any(-1) & first
    ratio = found.sum(-1) / first.sum(-1)
    return jnp.where(_idx_ok(rel, s.shape[-1]), ratio.astype(s.dtype), jnp.nan)


def oracle_precision_at_k(scores, p_star, k: int):
    """Precision@k against the exact ranking: the fraction of the top ``k`` of ``scores (..., K)`` that are
    among the top ``k`` of ``p_star (..., K)`` (ties in p* broken by lower index). 1 for ``scores = p*``."""
    s, top = _topk(scores, k)
    ps = as_float_array(p_star, "p_star").astype(s.dtype)
    if ps.shape != s.shape:
        raise ValueError(f"`p_star` must have the shape of `scores` {s.shape}; got {ps.shape}.")
    best = jax.lax.top_k(ps, k)[1]
    hit = (top[..., :, None] == best[..., None, :]).any(-1)
    return jnp.where(jnp.isfinite(ps).all(-1), hit.mean(-1).astype(s.dtype), jnp.nan)


def retrieval_task(key, K: int, d: int, *, tau0: float = 1.0, dtype=None) -> LogisticTask:
    """T3: ``x ~ N(0, I_d)``, ``p*(· | x) = softmax(V x / τ₀)`` with ``V (K, d)`` of i.i.d. ``N(0, 1)`` entries
    drawn from ``key``: a :class:`~.tasks.LogisticTask` (``W = V / τ₀``, no bias), so :func:`~.tasks.sample`
    and :func:`~.tasks.bayes_probs` apply. Smaller ``τ₀`` concentrates ``p*`` on fewer labels. ``dtype``
    defaults to JAX's default float (float32, float64 under ``jax_enable_x64``)."""
    K = check_int(K, "K", minimum=2)
    d = check_int(d, "d", minimum=1)
    t = check_positive(tau0, "tau0")
    V = jax.random.normal(key, (K, d), jnp.zeros(()).dtype if dtype is None else dtype)
    return logistic_task(V / jnp.asarray(t, dtype))


def sample_positives(task: LogisticTask, key, n: int, num_pos: int):
    """``n`` inputs with ``num_pos`` positives each drawn i.i.d. from ``p*(· | x)`` (with replacement, so a
    label may repeat: its empirical frequency is the one-hot analogue of ``p*``): ``(x (n, d), pos (n, P))``."""
    if not isinstance(task, LogisticTask):
        raise TypeError(f"`task` must be a LogisticTask (see retrieval_task); got {type(task).__name__}.")
    n = check_int(n, "n", minimum=1)
    P = check_int(num_pos, "num_pos", minimum=1)
    k1, k2 = jax.random.split(key)
    x, _ = sample(task, k1, n)
    pos = jax.random.categorical(k2, bayes_logits(task, x), axis=-1, shape=(P, n))
    return x, pos.T.astype(jnp.int32)

