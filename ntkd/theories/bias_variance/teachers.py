"""The teacher zoo of Menon et al. (2020), §1.5 and §4.1 item 7: teachers as functions ``x (n, d) -> p^t (n, K)``
built from the Bayes probabilities (``p_star_fn``, e.g. ``functools.partial(bayes_probs, task)``), and the
probability transforms behind them (each ``(..., K) -> (..., K)``):

* ``exact``: ``p*``;  ``tempered(τ)``: ``softmax(log p* / τ) ∝ p*^{1/τ}`` (τ > 1 flattens, τ < 1 sharpens);
* ``smoothed(ε)``: ``(1 - ε) p* + ε / K``;  ``hard``: ``e_{argmax p*}`` (the most accurate teacher, biased);
* ``logit_noise(σ)``: ``softmax(log p* + σ ξ(x))`` with ``ξ`` a **fixed random function** of x (not fresh noise
  per call): [G] ``ξ_k(x) = √(2/J) Σ_j a_jk cos(ω_jᵀx + β_j)``, ``J = 256`` random Fourier features of an RBF
  kernel of length scale ``noise_scale`` (default 1), ``a ~ N(0, 1)``, ``ω ~ N(0, I/ℓ²)``, ``β ~ U[0, 2π)``
  drawn from ``key``; for each x, ``ξ_k(x)`` has mean 0 and variance ≈ 1 over keys, and nearby inputs get
  nearby noise, as a smooth fitted teacher's errors would;
* ``memorizer``: ``e_{y_n}`` on the training points ``x_n`` (exact row match), ``p*`` elsewhere: on its own
  training sample the distilled risk equals the one-hot risk (§1.5 ii);
* fitted: :func:`kernel_teacher` (NTK/NNGP kernel regression on one-hot labels, from :mod:`ntkd.predict`);
  a trained Flax network is any ``x -> softmax(apply_fn(params, x))`` (see the Menon study).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..._core.checks import all_true, as_float_array, check_inputs_2d, check_positive
from ..._core.linalg import mm
from ...losses import one_hot, smoothed_probs, tempered_probs
from ...predict import kernel_regression

__all__ = [
    "TEACHERS",
    "hard",
    "kernel_teacher",
    "logit_noise",
    "memorizer",
    "noise_function",
    "smoothed",
    "teacher_zoo",
    "tempered",
]

#: kinds of :func:`teacher_zoo`
TEACHERS = ("exact", "tempered", "smoothed", "logit_noise", "hard")

_FEATURES = 256


def _logp(p):
    return jnp.log(jnp.clip(p, jnp.finfo(p.dtype).tiny))


def _param(value, name, ok, what):
    v = as_float_array(value, name)
    if not all_true(v, ok):
        raise ValueError(f"`{name}` must be {what}; got {value!r}.")
    return v, ok(v)


#: ``softmax(log p / τ)`` (:func:`ntkd.losses.tempered_probs`); for K = 2 and ``p = σ(z)`` it is ``σ(z / τ)``
tempered = tempered_probs
#: ``(1 - ε) p + ε / K`` (:func:`ntkd.losses.smoothed_probs`)
smoothed = smoothed_probs


def hard(p):
    """``e_{argmax p}`` (first maximum on ties); a row with a NaN gives a NaN row."""
    p = as_float_array(p, "p")
    return jnp.where(jnp.isnan(p).any(-1, keepdims=True), jnp.nan,
                     one_hot(jnp.argmax(p, axis=-1), p.shape[-1], dtype=p.dtype))


def noise_function(key, d: int, K: int, *, noise_scale: float = 1.0, dtype=jnp.float32) -> Callable:
    """The fixed random function ``ξ: (n, d) -> (n, K)`` of :func:`logit_noise` (see the module docstring)."""
    ls = check_positive(noise_scale, "noise_scale")
    k1, k2, k3 = jax.random.split(key, 3)
    om = jax.random.normal(k1, (d, _FEATURES), dtype) / ls
    beta = jax.random.uniform(k2, (_FEATURES,), dtype, 0, 2 * math.pi)
    a = jax.random.normal(k3, (_FEATURES, K), dtype) * math.sqrt(2.0 / _FEATURES)
    return lambda x: mm(jnp.cos(mm(x, om) + beta), a)


def logit_noise(p, x, sigma, key, *, noise_scale: float = 1.0):
    """``softmax(log p + σ ξ(x))`` with ``ξ`` = :func:`noise_function` of ``key``: ``p (n, K)``, ``x (n, d)``."""
    p = as_float_array(p, "p")
    x = as_float_array(x, "x").astype(p.dtype)
    s, ok = _param(sigma, "sigma", lambda a: (a >= 0).all() & jnp.isfinite(a).all(), "finite and >= 0")
    xi = noise_function(key, x.shape[-1], p.shape[-1], noise_scale=noise_scale, dtype=p.dtype)(x)
    return jnp.where(ok, jax.nn.softmax(_logp(p) + s.astype(p.dtype) * xi, axis=-1), jnp.nan)


def teacher_zoo(p_star_fn: Callable, kind: str, param=None, *, key=None, noise_scale: float = 1.0) -> Callable:
    """A teacher ``x (n, d) -> p^t (n, K)`` of the given ``kind`` (:data:`TEACHERS`) from ``p_star_fn(x)``.

    ``param``: τ for ``tempered``, ε for ``smoothed``, σ for ``logit_noise`` (which also needs ``key``);
    unused for ``exact`` and ``hard``. The memorizer and fitted teachers need data: :func:`memorizer`,
    :func:`kernel_teacher`.
    """
    if not callable(p_star_fn):
        raise TypeError("`p_star_fn` must be callable as p_star_fn(x) -> (n, K) probabilities.")
    if kind not in TEACHERS:
        raise ValueError(f"`kind` must be one of {TEACHERS} (or use memorizer / kernel_teacher); got {kind!r}.")
    if kind in ("tempered", "smoothed", "logit_noise") and param is None:
        raise ValueError(f"kind={kind!r} needs `param` (tau, eps or sigma).")
    if kind == "exact":
        return p_star_fn
    if kind == "hard":
        return lambda x: hard(p_star_fn(x))
    if kind == "tempered":
        tempered(jnp.full((1, 2), 0.5), param)  # validate eagerly
        return lambda x: tempered(p_star_fn(x), param)
    if kind == "smoothed":
        smoothed(jnp.full((1, 2), 0.5), param)
        return lambda x: smoothed(p_star_fn(x), param)
    if key is None:
        raise ValueError("kind='logit_noise' needs `key` (a jax.random key fixing the noise function ξ).")
    check_positive(noise_scale, "noise_scale")
    return lambda x: logit_noise(p_star_fn(x), x, param, key, noise_scale=noise_scale)


def memorizer(x_train, y_train, p_star_fn: Callable) -> Callable:
    """The memorizing teacher: ``e_{y_n}`` at the training inputs ``x_train (N, d)`` (labels ``y_train (N,)``),
    ``p_star_fn(x)`` elsewhere. On its own training sample ``R̃ ≡ R̂``: no variance reduction (M7)."""
    xt = check_inputs_2d(x_train, "x_train")
    yt = jnp.asarray(y_train)
    if yt.shape != (xt.shape[0],) or not jnp.issubdtype(yt.dtype, jnp.integer):
        raise ValueError(f"`y_train` must hold {xt.shape[0]} integer labels; got shape {yt.shape}, dtype {yt.dtype}.")

    def teacher(x):
        ps = p_star_fn(x)
        x = jnp.asarray(x, ps.dtype)
        hit = (x[:, None, :] == xt.astype(ps.dtype)[None]).all(-1)  # (n, N)
        onehot = one_hot(yt[jnp.argmax(hit, axis=1)], ps.shape[-1], dtype=ps.dtype)
        return jnp.where(hit.any(1, keepdims=True), onehot, ps)

    return teacher


def kernel_teacher(kernel_fn: Callable, x_train, y_train, K: int, *, scale: float = 1.0, diag_reg: float = 1e-4,
                   get: str = "ntk") -> Callable:
    """A fitted teacher: kernel regression (the converged wide network trained on MSE, :func:`ntkd.kernel_regression`)
    of centred one-hot targets ``e_y - 1/K`` on ``(x_train (N, d), y_train (N,))``, read out as
    ``softmax(scale · K f(x))``.

    [G] The readout: regression outputs are not probabilities; ``scale`` plays an inverse temperature (for
    ``scale = 1`` and small outputs ``softmax(K f) ≈ 1/K + f`` ≈ the regression estimate of p). Tune ``scale``
    on held-out log-loss. ``kernel_fn(x1, x2, get)`` is an ntkd kernel (e.g. ``ntkd.mlp_kernel_fn(2)``).
    """
    xt = check_inputs_2d(x_train, "x_train")
    yt = jnp.asarray(y_train)
    if yt.shape != (xt.shape[0],) or not jnp.issubdtype(yt.dtype, jnp.integer):
        raise ValueError(f"`y_train` must hold {xt.shape[0]} integer labels; got shape {yt.shape}, dtype {yt.dtype}.")
    check_positive(scale, "scale")
    targets = one_hot(yt, K, dtype=xt.dtype) - 1.0 / K
    k_tt = kernel_fn(xt, xt, get)

    def teacher(x):
        f = kernel_regression(k_tt, targets, kernel_fn(jnp.asarray(x, xt.dtype), xt, get), diag_reg=diag_reg)
        return jax.nn.softmax(scale * K * f, axis=-1)

    return teacher
