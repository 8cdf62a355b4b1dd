"""The knowledge-distillation loss shared by every theory: the soft/hard mix with a temperature, and its
argument checks (Hinton et al. 2015; the single-logit form of Ji & Zhu 2020, Eq. 2).

Binary task, single student logit ``z_s``, teacher logit ``z_t``, hard label ``y_g ∈ {0, 1}``, soft ratio
``ρ ∈ [0, 1]`` (the keyword ``rho`` in every theory of ntkd), temperature ``T > 0``. Per-sample loss:

    ℓ = ρ · s · H(σ(z_t/T), σ(z_s/T)) + (1 - ρ) · H(y_g, σ(z_s)),      H = binary cross-entropy,

with ``s = 1`` (Ji & Zhu's convention, default) or ``s = T²`` (``soft_scale="T2"``, Hinton's). The
temperature divides the student logit only in the soft term.

:func:`kd_loss` and :func:`kd_grad_z` validate their arguments; :func:`loss_terms` and :func:`grad_z` are
their unvalidated cores for traced code (the finite-width trainer, solvers).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.nn import sigmoid, softplus
from jax.scipy.special import xlogy

from ._core.checks import (
    all_true,
    as_float_array,
    check_finite,
    check_int,
    positive_array,
    valid_positive,
)

__all__ = [
    "check_probs",
    "kd_grad_z",
    "kd_loss",
    "kl_divergence",
    "one_hot",
    "probs_valid",
    "smoothed_probs",
    "softmax_cross_entropy",
    "tempered_probs",
]

# ------------------------------------------------------------------------------------------ validation
# Each check refuses an invalid concrete value with a ValueError naming it; a traced value cannot be
# checked, so an invalid one becomes NaN, which every result it enters then carries (never a plausible
# number).
def check_rho(rho):
    r = as_float_array(rho, "rho")
    valid = (r >= 0) & (r <= 1)
    if not all_true(r, lambda a: ((a >= 0) & (a <= 1)).all(), "rho"):
        raise ValueError(f"`rho` (soft ratio) must lie in [0, 1]; got {rho!r}.")
    return jnp.where(valid, r, jnp.nan)


def check_T(T):
    t = as_float_array(T, "T")
    if not all_true(t, lambda a: valid_positive(a).all(), "T"):
        raise ValueError(f"`T` (temperature) must be finite and > 0; got {T!r}.")
    return jnp.where(valid_positive(t), t, jnp.nan)


def check_labels(y_g):
    y = as_float_array(y_g, "y_g")
    if not all_true(y, lambda a: ((a == 0) | (a == 1)).all(), "y_g"):
        raise ValueError("`y_g` (hard labels) must contain only 0 and 1; map ±1 labels with (y + 1) / 2.")
    return jnp.where((y == 0) | (y == 1), y, jnp.nan)


def soft_factor(soft_scale, T):
    """The soft-term factor s: ``T²`` for ``"T2"``, else the number (finite, > 0; may be traced)."""
    if isinstance(soft_scale, str):
        if soft_scale != "T2":
            raise ValueError(f"`soft_scale` must be a number or 'T2'; got {soft_scale!r}.")
        return T * T
    s = positive_array(soft_scale, "soft_scale")
    return jnp.where(valid_positive(s), s, jnp.nan)


def broadcast_args(name_values):
    names = [n for n, _ in name_values]
    values = [v for _, v in name_values]
    try:
        shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in values))
    except ValueError:
        shapes = ", ".join(f"{n}{tuple(jnp.shape(v))}" for n, v in name_values)
        raise ValueError(f"shapes do not broadcast: {shapes}; give {', '.join(names)} matching shapes.") from None
    dtype = jnp.result_type(*[v.dtype for v in values])
    return [jnp.broadcast_to(v, shape).astype(dtype) for v in values]


def kd_inputs(z_t, y_g, rho, T, extra=()):
    z_t = as_float_array(z_t, "z_t")
    check_finite(z_t, "z_t")
    pairs = [("z_t", z_t), ("y_g", check_labels(y_g)), ("rho", check_rho(rho)), ("T", check_T(T))]
    return broadcast_args(pairs + list(extra))


# ---------------------------------------------------------------------------------------------- loss
def kd_loss(z_s, z_t, y_g, rho, T, *, soft_scale: float | str = 1.0):
    """Mean distillation loss (Ji & Zhu Eq. 2) over samples.

    Args:
      z_s, z_t: student and teacher logits, shape ``(n,)`` (any broadcastable shapes).
      y_g: hard labels in {0, 1}. rho: soft ratio in [0, 1]. T: temperature > 0.
      soft_scale: factor on the soft term: 1 (paper, default) or ``"T2"`` (T², Hinton et al.).

    Returns: scalar mean of the per-sample losses, computed with log-sigmoids (no overflow).
    """
    z_t, y_g, rho, T, z_s = kd_inputs(z_t, y_g, rho, T, [("z_s", as_float_array(z_s, "z_s"))])
    return jnp.mean(loss_terms(z_s, z_t, y_g, rho, T, soft_factor(soft_scale, T)))


def loss_terms(z_s, z_t, y_g, rho, T, s):
    """Unvalidated per-sample loss of Eq. 2 (shared by kd_loss and the finite-width trainer)."""
    p_t = sigmoid(z_t / T)
    soft = p_t * softplus(-z_s / T) + (1 - p_t) * softplus(z_s / T)  # H(σ(z_t/T), σ(z_s/T))
    hard = y_g * softplus(-z_s) + (1 - y_g) * softplus(z_s)  # H(y_g, σ(z_s))
    return rho * s * soft + (1 - rho) * hard


def kd_grad_z(z_s, z_t, y_g, rho, T, *, soft_scale: float | str = 1.0):
    """Per-sample logit gradient dℓ/dz_s (the left side of Eq. 3), same shape as the inputs.

    ``ρ s/T (σ(z_s/T) - σ(z_t/T)) + (1 - ρ)(σ(z_s) - y_g)``; the gradient of :func:`kd_loss` is this / n.
    """
    z_t, y_g, rho, T, z_s = kd_inputs(z_t, y_g, rho, T, [("z_s", as_float_array(z_s, "z_s"))])
    return grad_z(z_s, z_t, y_g, rho, T, soft_factor(soft_scale, T))


def grad_z(z_s, z_t, y_g, rho, T, s):
    """Unvalidated left side of Eq. 3 (shared by kd_grad_z, the paper's GD solver and the flow)."""
    return rho * s / T * (sigmoid(z_s / T) - sigmoid(z_t / T)) + (1 - rho) * (sigmoid(z_s) - y_g)


# ------------------------------------------------------------------------------------------ multi-class
# Shared by the multi-class theories (Menon et al. 2020, Dao/Kamath et al. 2021, Malach et al. 2022):
# probability rows ``(..., K)`` with the class axis last. Eager calls refuse invalid values with a
# ValueError naming the argument; traced invalid values give NaN in the affected rows.
def _prob_tol(dtype):
    # float64 allows float32 rounding (≈ 1e-7 per entry): float32 probabilities cast up must stay valid
    return 1e-4 if jnp.finfo(dtype).bits <= 32 else 1e-6


def probs_valid(p):
    """Per-row validity of probability vectors ``p (..., K) -> (...,)`` bool: finite entries ≥ -tol summing
    to 1 within ``tol·K`` (tol = 1e-4 for float32, 1e-6 for float64, so float32 rows cast up pass)."""
    tol = _prob_tol(p.dtype)
    return (p >= -tol).all(-1) & (jnp.abs(p.sum(-1) - 1) <= tol * p.shape[-1]) & jnp.isfinite(p).all(-1)


def check_probs(p, name: str = "p", shape=None):
    """``p`` as a float array of probability rows ``(..., K)`` (optionally of exactly ``shape``).

    A concrete ``p`` whose rows are not probability vectors (see :func:`probs_valid`) raises a ValueError
    naming ``name``; a traced one is returned unchecked: callers mask their result with
    :func:`probs_valid` (NaN rows)."""
    p = as_float_array(p, name)
    if p.ndim < 1:
        raise ValueError(f"`{name}` must have a last axis of K classes (..., K); got a scalar.")
    if shape is not None and p.shape != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)}; got {p.shape}.")
    if not all_true(p, lambda a: probs_valid(a).all(), name):
        raise ValueError(f"`{name}` rows must be probability vectors (entries >= 0, summing to 1 over the last "
                         "axis); normalize them, e.g. with jax.nn.softmax on logits.")
    return p


def one_hot(labels, num_classes: int, *, dtype=None):
    """Integer class labels ``(...,)`` in ``[0, K)`` -> one-hot rows ``(..., K)`` of float ``dtype`` (default
    the JAX default float: float32, float64 under ``jax_enable_x64``).

    Unlike ``jax.nn.one_hot`` (a zero row), a label out of range raises eagerly and gives a NaN row when
    traced, so it never enters a risk or loss as a plausible number."""
    y = jnp.asarray(labels)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`labels` must hold integer class labels; got dtype {y.dtype}. Cast with "
                         ".astype(int), or pass probability rows to the function that wanted labels.")
    K = check_int(num_classes, "num_classes", minimum=1)
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"`dtype` must be a float dtype (a NaN marks an invalid label); got {dtype}.")
    ok = (y >= 0) & (y < K)
    if not all_true(y, lambda a: ((a >= 0) & (a < K)).all(), "labels"):
        raise ValueError(f"`labels` must lie in [0, num_classes={K}); got values outside.")
    return jnp.where(ok[..., None], jax.nn.one_hot(y, K, dtype=dtype), jnp.nan)


def _row_param(value, name, batch_shape, dtype, ok, what):
    # a per-row parameter: a scalar or an array broadcasting to the rows' batch shape p.shape[:-1]
    v = as_float_array(value, name)
    if not all_true(v, lambda a: ok(a).all(), name):
        raise ValueError(f"`{name}` must be {what}; got {value!r}.")
    try:
        v = jnp.broadcast_to(v, batch_shape)
    except ValueError:
        raise ValueError(f"`{name}` must be a scalar or broadcast to the rows' shape {batch_shape}; got shape "
                         f"{v.shape}.") from None
    return v.astype(dtype), ok(v)


def tempered_probs(p, tau):
    """Tempered probabilities ``p^{1/τ} / Σ_k p_k^{1/τ} = softmax(log p / τ)`` over the last axis.

    Args:
      p: probability rows ``(..., K)``. tau: temperature τ > 0, a scalar or one per row (broadcasting to
        ``p.shape[:-1]``); τ > 1 flattens (an under-confident teacher), τ < 1 sharpens, τ = 1 is ``p``.

    Returns ``(..., K)`` in ``p``'s dtype. For K = 2 and ``p = (1 - σ(z), σ(z))`` class 1 is ``σ(z/τ)``, Ji &
    Zhu's tempered teacher. Zero entries stay exactly 0 (``0^{1/τ} = 0``, no clipping floor) with zero
    derivative. Invalid rows of ``p`` or τ (≤ 0, non-finite) raise eagerly and give NaN rows when traced.
    """
    p = check_probs(p, "p")
    t, t_ok = _row_param(tau, "tau", p.shape[:-1], p.dtype, valid_positive, "finite and > 0")
    pos = p > 0
    # log p / τ on the positive entries only, then -inf: no inf·0 in the derivative at exact zeros
    z = jnp.where(pos, jnp.log(jnp.where(pos, p, 1)) / t[..., None], -jnp.inf)
    out = jax.nn.softmax(z, axis=-1)
    return jnp.where((probs_valid(p) & t_ok)[..., None], out, jnp.nan)


def smoothed_probs(p, eps):
    """Label-smoothed probabilities ``(1 - ε) p + ε / K`` over the last axis (K = ``p.shape[-1]``).

    ``p`` probability rows ``(..., K)``; ``eps`` ε ∈ [0, 1], a scalar or one per row. Returns ``(..., K)``
    in ``p``'s dtype; invalid rows of ``p`` or ε raise eagerly and give NaN rows when traced."""
    p = check_probs(p, "p")
    e, e_ok = _row_param(eps, "eps", p.shape[:-1], p.dtype, lambda a: (a >= 0) & (a <= 1), "in [0, 1]")
    e = e[..., None]
    out = (1 - e) * p + e / p.shape[-1]
    return jnp.where((probs_valid(p) & e_ok)[..., None], out, jnp.nan)


def softmax_cross_entropy(logits, targets):
    """Per-example softmax cross-entropy ``-Σ_k q_k log softmax(z)_k`` over the last axis.

    Args:
      logits: ``z (..., K)``.
      targets: probability rows ``q (..., K)`` (soft labels; shape of ``logits``) or integer labels
        ``(...,)`` in ``[0, K)`` (one-hot ``q``: ``-log softmax(z)_y``).

    Returns ``(...,)`` in ``logits``' dtype, computed with ``log_softmax`` (no overflow); classes with
    ``q_k = 0`` contribute 0 even at ``z_k = -inf``. For K = 2, logits ``(0, z)`` and label 1 this is Ji &
    Zhu's ``softplus(-z)``. Invalid targets (labels out of range, rows off the simplex, wrong shape) raise
    eagerly and give NaN when traced. Differentiable in ``logits`` and soft ``targets``.
    """
    z = as_float_array(logits, "logits")
    if z.ndim < 1:
        raise ValueError("`logits` must have a last axis of K classes (..., K); got a scalar.")
    K = z.shape[-1]
    logp = jax.nn.log_softmax(z, axis=-1)
    t = jnp.asarray(targets)
    if jnp.issubdtype(t.dtype, jnp.integer):
        if t.shape != z.shape[:-1]:
            raise ValueError(f"integer `targets` must have shape {z.shape[:-1]} (one label per row of `logits`); "
                             f"got {t.shape}. Soft targets have the shape of `logits`.")
        if not all_true(t, lambda a: ((a >= 0) & (a < K)).all(), "targets"):
            raise ValueError(f"`targets` labels must lie in [0, K={K}).")
        v = -jnp.take_along_axis(logp, jnp.clip(t, 0, K - 1)[..., None], axis=-1)[..., 0]
        return jnp.where((t >= 0) & (t < K), v, jnp.nan)
    q = check_probs(t, "targets", z.shape)
    ok = probs_valid(q)  # in the targets' own precision
    q = q.astype(z.dtype)
    v = -jnp.sum(jnp.where(q == 0, 0, q * logp), axis=-1)
    return jnp.where(ok, v, jnp.nan)


def kl_divergence(p, q):
    """``KL(p ‖ q) = Σ_k p_k log(p_k / q_k)`` of probability rows ``p, q (..., K)`` -> ``(...,)``.

    Conventions: ``0 log 0 = 0``; ``p_k > 0 = q_k`` gives ``+inf``. Returns ``p``'s dtype (``q`` cast to
    it). Invalid rows raise eagerly (naming ``p`` or ``q``) and give NaN when traced. For logits use
    ``softmax_cross_entropy(z_q, p) - softmax_cross_entropy(z_p, p)`` (log-space, no underflow)."""
    p = check_probs(p, "p")
    q = check_probs(q, "q", p.shape)
    ok = probs_valid(p) & probs_valid(q)
    q = q.astype(p.dtype)
    v = jnp.sum(xlogy(p, p) - xlogy(p, q), axis=-1)
    return jnp.where(ok, v, jnp.nan)
