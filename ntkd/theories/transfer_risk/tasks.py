"""Synthetic tasks of Ji & Zhu (2020) (§4.3, §6): inputs x ~ N(0, 5² I) with d = 2, ground-truth logit
functions, noise, and teachers.

Decisions where the paper is silent or inconsistent ([G] in the brief), fixed here and tested:
* Gaussian mixture ``z(x) = Σ_j A_j exp(-‖x - x_j‖² / σ_j²)`` uses σ_j² as in the main text (the appendix
  writes σ_j); amplitudes ``A_j = A · s_j`` with random signs s_j; centres ``x_j ~ N(0, σ_p² I)`` with
  σ_p = 5 (the input scale); widths ``σ_j = σ · u_j`` with u_j ~ U(0.75, 1.25) and ``σ = 15/√q`` (the PDF's
  "15/q²" gives modes narrower than the input grid for q ≥ 50; 15/√q keeps the mixture resolvable).
* Sign-flip noise flips each *sample's* target independently with probability p_flip.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ..._core.checks import all_true, as_float_array, check_int, check_positive
from ..._core.linalg import mm
from ...predict import gradient_flow_weights

__all__ = ["sample_inputs", "GaussianMixture", "gaussian_mixture", "flip_signs", "random_logits",
           "zero_function", "kernel_teacher"]


def sample_inputs(key, n: int, *, d: int = 2, scale: float = 5.0, dtype=None):
    """x ~ N(0, scale² I_d), shape ``(n, d)`` (Ji & Zhu: d = 2, scale = 5)."""
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    scale = check_positive(scale, "scale")
    return _scaled_normal(key, scale, n=n, d=d, dtype=jnp.dtype(dtype or jnp.result_type(float)))


@partial(jax.jit, static_argnames=("n", "d", "dtype"))
def _scaled_normal(key, scale, *, n, d, dtype):
    """``scale · N(0, I)`` of shape (n, d): one program per shape, not a sampler and a product. The
    barrier keeps XLA from folding ``scale`` into the sampler's constants (the draws stay bitwise those
    of ``scale * jax.random.normal(key, (n, d))``)."""
    return scale * jax.lax.optimization_barrier(jax.random.normal(key, (n, d), dtype))


class GaussianMixture(NamedTuple):
    """Parameters of a Gaussian-mixture logit function; call ``logits(x)`` for ``(n,)`` values."""

    amplitudes: jax.Array  # (q,)
    centers: jax.Array  # (q, d)
    widths: jax.Array  # (q,)

    def logits(self, x):
        return _mixture_logits(self.amplitudes, self.centers, self.widths, x)


@jax.jit
def _mixture_logits(amplitudes, centers, widths, x):
    """Σ_j A_j exp(-‖x - x_j‖² / σ_j²), one program per input shape (not one per eager operation)."""
    d2 = jnp.sum((x[:, None, :] - centers[None]) ** 2, axis=-1)
    return jnp.sum(amplitudes[None, :] * jnp.exp(-d2 / (widths**2)[None, :]), axis=-1)  # explicit ranks


def gaussian_mixture(key, q: int, *, amplitude: float = 1.0, d: int = 2, center_std: float = 5.0,
                     width: float = None) -> GaussianMixture:
    """A random q-mode Gaussian-mixture logit function (Fig. 3, S2); see the module notes for [G] choices."""
    q = check_int(q, "q", minimum=1)
    d = check_int(d, "d", minimum=1)
    amplitude = check_positive(amplitude, "amplitude")
    width = 15.0 / q**0.5 if width is None else check_positive(width, "width")
    return GaussianMixture(*_mixture_params(key, amplitude, center_std, width, q=q, d=d))


@partial(jax.jit, static_argnames=("q", "d"))
def _mixture_params(key, amplitude, center_std, width, *, q, d):
    """The draws of :func:`gaussian_mixture` as one program (not one per eager operation)."""
    k1, k2, k3 = jax.random.split(key, 3)
    dtype = jnp.result_type(float)
    signs = jnp.where(jax.random.bernoulli(k1, 0.5, (q,)), 1.0, -1.0).astype(dtype)
    centers = center_std * jax.lax.optimization_barrier(jax.random.normal(k2, (q, d), dtype))  # bitwise eager
    widths = width * jax.random.uniform(k3, (q,), dtype, 0.75, 1.25)
    return amplitude * signs, centers, widths


def flip_signs(key, z, p_flip: float):
    """Multiply each entry of ``z`` by an independent sign s with P(s = -1) = p_flip (Fig. 3 right)."""
    p = as_float_array(p_flip, "p_flip")
    valid = (p >= 0) & (p <= 1)
    if not all_true(p, lambda a: ((a >= 0) & (a <= 1)).all(), "p_flip"):
        raise ValueError(f"`p_flip` must lie in [0, 1]; got {p_flip!r}.")
    z = jnp.asarray(z)
    flipped = jnp.where(jax.random.bernoulli(key, jnp.where(valid, p, 0.5), jnp.shape(z)), -z, z)
    return jnp.where(valid, flipped, jnp.nan)  # a traced p_flip outside [0, 1] gives NaN


def random_logits(key, n: int, dtype=None):
    """The "random" reference task: Δz ~ N(0, 1) i.i.d. (upper dashed line of Fig. 3)."""
    return jax.random.normal(key, (check_int(n, "n", minimum=1),), dtype or jnp.result_type(float))


def zero_function(x):
    """The zero function z ≡ 0 (lower dashed line of Fig. 3; Δz = -z0)."""
    return jnp.zeros(x.shape[0], x.dtype)


def kernel_teacher(kernel_fn: Callable, x_fit, z_fit, *, r: float = 1.0, stop_time: float = float("inf"),
                   eig=None, batch_size: int = 4096) -> Callable:
    """A teacher that is a wide network in the kernel limit: the NTK predictor trained by gradient flow
    (MSE, from f0 = 0) on targets ``z_fit`` at inputs ``x_fit`` and stopped at ``stop_time`` (``inf``: the
    minimum-norm interpolant), times the paper's reduction factor ``r`` (z_t,new = r z_t; r = 0.3 in
    Figs. 2 and 5): ``x -> r · Θ(x, X) α(stop_time)`` (:func:`ntkd.predict.gradient_flow_weights`).

    ``eig``: a precomputed ``eigh`` of ``Θ(X, X)`` to share between stopping times; inputs are evaluated in
    batches of ``batch_size`` rows (bounded memory for large test sets).
    """
    r = check_positive(r, "r")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    k_ff = None if eig is not None else kernel_fn(x_fit, None, "ntk")
    coef = gradient_flow_weights(k_ff, z_fit, stop_time, eig=eig)

    def teacher(x):
        parts = [_kernel_predict(kernel_fn, x[i:i + batch_size], x_fit, coef, r)
                 for i in range(0, x.shape[0], batch_size)]
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts)

    return teacher


@partial(jax.jit, static_argnums=0)
def _kernel_predict(kernel_fn, x, x_fit, coef, r):
    """r · Θ(x, X) α as one program per batch shape (kernel_fn is static: one trace per kernel)."""
    return r * mm(kernel_fn(x, x_fit, "ntk"), coef)
