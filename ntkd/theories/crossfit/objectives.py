"""Multi-class distillation losses over logits with the orthogonal (doubly robust) correction, after the
authors' ``kd.py`` (Dao, Kamath, Syrgkanis & Mackey 2021).

Per example, over the last axis of K classes: student logits ``z_s``, teacher logits ``z_t``, labels ``y``
(integer ``(...,)`` or one-hot ``(..., K)``); ``p̂ = softmax(z_t)``, smoothed ``p̃ = (1 − s)p̂ + s/K``;
``w = softmax(z_t/T)``, ``q = softmax(z_s/T)``; ``r = y / max(p̃, ε) − 1``. Every loss returns
``(1 − α)·CE(z_s, y) + α·L_KD`` **per example** (shape ``z_s.shape[:-1]``): the mean over a batch is the
authors' value (their KL uses ``batchmean`` and ``mse_loss`` averages batch × classes), and the per-example
form is what :func:`ntkd.finite.train_classifier` takes as ``loss_fn`` (wrap with :func:`trainer_loss`).

All functions are jit/vmap/grad-able; they are pure ``jnp`` and do no eager value checks beyond shapes.
"""
from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp

from ...losses import one_hot, smoothed_probs, softmax_cross_entropy, tempered_probs

__all__ = ["tempered_ce", "label_ce", "kd_kl_loss", "ortho_correction", "kd_ortho_loss",
           "first_order_correction", "kd_mse_loss", "kd_mse_ortho_loss", "kd_mse_varred_ortho_loss",
           "kd_mse_gamma_loss", "trainer_loss"]


def _onehot(y, like):
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer):
        return one_hot(y, like.shape[-1], dtype=like.dtype)
    if y.shape != like.shape:
        raise ValueError(f"`y` must be integer labels of shape {like.shape[:-1]} or one-hot rows of shape "
                         f"{like.shape}; got {y.shape}.")
    return y.astype(like.dtype)


def _pair(z_s, z_t):
    z_s, z_t = jnp.asarray(z_s), jnp.asarray(z_t)
    if not jnp.issubdtype(z_s.dtype, jnp.floating):
        z_s = z_s.astype(jnp.result_type(float))
    if z_s.ndim < 1 or z_t.shape != z_s.shape:
        raise ValueError(f"`z_s` and `z_t` must be logits of the same shape (..., K); got {z_s.shape} and "
                         f"{z_t.shape}.")
    return z_s, z_t.astype(z_s.dtype)


def label_ce(z_s, y):
    """Label cross-entropy ``−log softmax(z_s)_y`` per example (``F.cross_entropy``;
    :func:`ntkd.losses.softmax_cross_entropy` with one-hot targets)."""
    z_s = jnp.asarray(z_s)
    return softmax_cross_entropy(z_s, _onehot(y, z_s))


def tempered_ce(z_s, p, *, T: float = 4.0):
    """Hinton's tempered cross-entropy as a function of the teacher probabilities ``p`` (the nuisance):
    ``ℓ_T = −Σ_j w_j(p) log q_j``, ``w(p) = softmax(log p / T)``, ``q = softmax(z_s / T)`` (no T² factor).
    ``p`` ``(..., K)`` in the open simplex. Per example."""
    z_s = jnp.asarray(z_s)
    return softmax_cross_entropy(z_s / T, tempered_probs(p, T))


def _kl(z_s, z_t, T):
    # KL(w ‖ q) in log space: CE(w, q) − H(w), w = softmax(z_t/T), q = softmax(z_s/T)
    w = jax.nn.softmax(z_t / T, axis=-1)
    return softmax_cross_entropy(z_s / T, w) - softmax_cross_entropy(z_t / T, w)


def kd_kl_loss(z_s, z_t, y, *, T: float = 4.0, alpha: float = 0.5):
    """``KDLoss``: ``(1 − α) CE(z_s, y) + α T² KL(w ‖ q)`` per example."""
    z_s, z_t = _pair(z_s, z_t)
    return (1 - alpha) * label_ce(z_s, y) + alpha * T ** 2 * _kl(z_s, z_t, T)


def ortho_correction(z_s, z_t, y, *, T: float = 4.0, eps: float = 1e-2, smoothing: float = 0.0):
    """The first-order term of ``KDOrthoLoss`` (before its T² factor):
    ``(1/T) [(Σ_j r_j w_j)(Σ_i w_i log q_i) − Σ_j r_j w_j log q_j]``, which equals
    ``⟨∇_p ℓ_T(z_s, p)|_{p=p̂}, y − p̂⟩`` (:func:`first_order_correction` of :func:`tempered_ce`) when the
    clamp ε is inactive and s = 0. ``w`` uses the raw teacher logits; s enters only through r."""
    z_s, z_t = _pair(z_s, z_t)
    y = _onehot(y, z_s)
    w = jax.nn.softmax(z_t / T, axis=-1)
    logq = jax.nn.log_softmax(z_s / T, axis=-1)
    r = y / jnp.maximum(smoothed_probs(jax.nn.softmax(z_t, axis=-1), smoothing), eps) - 1.0
    rw = r * w
    return (jnp.sum(rw, -1) * jnp.sum(w * logq, -1) - jnp.sum(rw * logq, -1)) / T


def kd_ortho_loss(z_s, z_t, y, *, T: float = 4.0, alpha: float = 0.5, eps: float = 1e-2,
                  smoothing: float = 0.0):
    """``KDOrthoLoss``: ``(1 − α) CE + α T² [KL(w‖q) + ortho_correction]`` per example (defaults T = 4,
    α = 0.5, ε = 1e-2, s = 0). At T = 1 (ε inactive, s = 0) the KD part equals ``CE(y, q) − H(p̂)``."""
    z_s, z_t = _pair(z_s, z_t)
    kd = _kl(z_s, z_t, T) + ortho_correction(z_s, z_t, y, T=T, eps=eps, smoothing=smoothing)
    return (1 - alpha) * label_ce(z_s, y) + alpha * T ** 2 * kd


def first_order_correction(loss_fn: Callable, z_s, p_hat, y):
    """``⟨∇_p ℓ(z_s, p)|_{p=p̂}, y − p̂⟩`` by one forward-mode ``jax.jvp`` of ``p ↦ loss_fn(z_s, p)`` along
    ``y − p̂`` (the orthogonal correction of any loss ``ℓ(f(x), p(x))``). ``y`` integer or one-hot; the
    output has ``loss_fn``'s shape (per example for the losses here)."""
    p_hat = jnp.asarray(p_hat)
    y = _onehot(y, p_hat)
    return jax.jvp(lambda p: loss_fn(z_s, p), (p_hat,), (y - p_hat,))[1]


def _mse_mix(z_s, target, y, alpha):
    return (1 - alpha) * label_ce(z_s, y) + alpha * jnp.mean((z_s - target) ** 2, axis=-1)


def kd_mse_loss(z_s, z_t, y, *, alpha: float = 0.5, scale: str = "logp"):
    """``KDMSELoss``: logit matching ``mean_j (z_s − z_t)²`` (``scale="logp"``), or the student logits
    regressed onto ``p̂ = softmax(z_t)`` (``scale="p"``, as in the code), mixed with label CE."""
    z_s, z_t = _pair(z_s, z_t)
    if scale not in ("p", "logp"):
        raise ValueError(f"`scale` must be 'p' or 'logp'; got {scale!r}.")
    return _mse_mix(z_s, z_t if scale == "logp" else jax.nn.softmax(z_t, axis=-1), y, alpha)


def kd_mse_ortho_loss(z_s, z_t, y, *, alpha: float = 0.5, eps: float = 1e-2, smoothing: float = 0.0):
    """``KDMSEOrthoLoss``: target ``z_t + y / max(p̃, ε) − 1`` (the log-scale orthogonal target)."""
    z_s, z_t = _pair(z_s, z_t)
    yy = _onehot(y, z_s)
    p = smoothed_probs(jax.nn.softmax(z_t, axis=-1), smoothing)
    return _mse_mix(z_s, z_t + yy / jnp.maximum(p, eps) - 1.0, y, alpha)


def kd_mse_varred_ortho_loss(z_s, z_t, y, *, alpha: float = 0.5, smoothing: float = 0.0):
    """``KDMSEVarRedOrthoLoss``: ``mean_j p̃_j (z_s − z_t − y/p̃ + 1)²``, evaluated as the equal
    ``mean_j [p̃ d² − 2(y − p̃) d + (y − p̃)²/p̃]`` (d = z_s − z_t), whose gradient in z_s has no 1/p̃."""
    z_s, z_t = _pair(z_s, z_t)
    yy = _onehot(y, z_s)
    p = smoothed_probs(jax.nn.softmax(z_t, axis=-1), smoothing)
    d = z_s - z_t
    kd = jnp.mean(p * d ** 2 - 2 * (yy - p) * d + (yy - p) ** 2 / p, axis=-1)
    return (1 - alpha) * label_ce(z_s, y) + alpha * kd


def kd_mse_gamma_loss(z_s, z_t, y, *, gamma: Union[str, Callable, float] = "one", alpha: float = 0.5,
                      scale: str = "logp", smoothing: float = 0.0):
    """γ-corrected MSE: target ``z_t + γ ⊙ (y − p̃)`` (``scale="logp"``) or ``p̃ + γ ⊙ (y − p̃)`` (``"p"``).

    ``gamma``: ``"one"`` (``KDMSEGamma1Loss``), ``"var"`` (γ = 1 − p̃, ``KDMSEGammaVarLoss``), a number or
    array broadcasting to ``(..., K)``, or a callable ``gamma(p̃, y_onehot) -> (..., K)``, e.g.
    ``lambda p, y: gamma_boundfast(p, y, c=1.0, scale="logp", clip=1e-3)`` (``KDMSEBoundFast``; the NN
    code clips at 1e-3) or ``lambda p, y: gamma_minimax(p, kind="relerr", c=2.0, alpha=0.5, scale="logp")``.
    """
    z_s, z_t = _pair(z_s, z_t)
    if scale not in ("p", "logp"):
        raise ValueError(f"`scale` must be 'p' or 'logp'; got {scale!r}.")
    yy = _onehot(y, z_s)
    p = smoothed_probs(jax.nn.softmax(z_t, axis=-1), smoothing)
    if isinstance(gamma, str):
        if gamma not in ("one", "var"):
            raise ValueError(f"`gamma` must be 'one', 'var', a number/array or a callable; got {gamma!r}.")
        g = jnp.ones_like(p) if gamma == "one" else 1.0 - p
    elif callable(gamma):
        g = gamma(p, yy)
    else:
        g = jnp.asarray(gamma, p.dtype)
    base = z_t if scale == "logp" else p
    return _mse_mix(z_s, base + g * (yy - p), y, alpha)


def trainer_loss(loss: Callable, **config) -> Callable:
    """``loss_fn(logits, targets) -> (b,)`` for :func:`ntkd.finite.train_classifier`, from a loss above:
    ``targets`` is a dict ``{"z_t": (b, K) teacher logits, "y": (b,) int labels}`` (the rows of
    per-example teacher logits, cross-fitted or not)."""
    def loss_fn(logits, targets):
        return loss(logits, targets["z_t"], targets["y"], **config)
    return loss_fn
