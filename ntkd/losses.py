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

from typing import Union

import jax.numpy as jnp
from jax.nn import sigmoid, softplus

from ._core.checks import all_true, as_float_array, check_finite, positive_array, valid_positive

__all__ = ["kd_loss", "kd_grad_z"]

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
def kd_loss(z_s, z_t, y_g, rho, T, *, soft_scale: Union[float, str] = 1.0):
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


def kd_grad_z(z_s, z_t, y_g, rho, T, *, soft_scale: Union[float, str] = 1.0):
    """Per-sample logit gradient dℓ/dz_s (the left side of Eq. 3), same shape as the inputs.

    ``ρ s/T (σ(z_s/T) - σ(z_t/T)) + (1 - ρ)(σ(z_s) - y_g)``; the gradient of :func:`kd_loss` is this / n.
    """
    z_t, y_g, rho, T, z_s = kd_inputs(z_t, y_g, rho, T, [("z_s", as_float_array(z_s, "z_s"))])
    return grad_z(z_s, z_t, y_g, rho, T, soft_factor(soft_scale, T))


def grad_z(z_s, z_t, y_g, rho, T, s):
    """Unvalidated left side of Eq. 3 (shared by kd_grad_z, the paper's GD solver and the flow)."""
    return rho * s / T * (sigmoid(z_s / T) - sigmoid(z_t / T)) + (1 - rho) * (sigmoid(z_s) - y_g)
