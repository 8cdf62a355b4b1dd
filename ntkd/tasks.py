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

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ._checks import check_int, check_positive

__all__ = ["sample_inputs", "GaussianMixture", "gaussian_mixture", "flip_signs", "random_logits",
           "zero_function", "kernel_teacher"]


def sample_inputs(key, n: int, *, d: int = 2, scale: float = 5.0, dtype=None):
    """x ~ N(0, scale² I_d), shape ``(n, d)`` (Ji & Zhu: d = 2, scale = 5)."""
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    scale = check_positive(scale, "scale")
    return scale * jax.random.normal(key, (n, d), dtype or jnp.result_type(float))


class GaussianMixture(NamedTuple):
    """Parameters of a Gaussian-mixture logit function; call ``logits(x)`` for ``(n,)`` values."""

    amplitudes: jax.Array  # (q,)
    centers: jax.Array  # (q, d)
    widths: jax.Array  # (q,)

    def logits(self, x):
        d2 = jnp.sum((x[:, None, :] - self.centers[None]) ** 2, axis=-1)
        return jnp.sum(self.amplitudes * jnp.exp(-d2 / self.widths**2), axis=-1)


def gaussian_mixture(key, q: int, *, amplitude: float = 1.0, d: int = 2, center_std: float = 5.0,
                     width: float = None) -> GaussianMixture:
    """A random q-mode Gaussian-mixture logit function (Fig. 3, S2); see the module notes for [G] choices."""
    q = check_int(q, "q", minimum=1)
    amplitude = check_positive(amplitude, "amplitude")
    width = 15.0 / q**0.5 if width is None else check_positive(width, "width")
    k1, k2, k3 = jax.random.split(key, 3)
    dtype = jnp.result_type(float)
    signs = jnp.where(jax.random.bernoulli(k1, 0.5, (q,)), 1.0, -1.0).astype(dtype)
    centers = center_std * jax.random.normal(k2, (q, d), dtype)
    widths = width * jax.random.uniform(k3, (q,), dtype, 0.75, 1.25)
    return GaussianMixture(amplitude * signs, centers, widths)


def flip_signs(key, z, p_flip: float):
    """Multiply each entry of ``z`` by an independent sign s with P(s = -1) = p_flip (Fig. 3 right)."""
    if not 0 <= p_flip <= 1:
        raise ValueError(f"`p_flip` must lie in [0, 1]; got {p_flip!r}.")
    return jnp.where(jax.random.bernoulli(key, p_flip, jnp.shape(z)), -z, z)


def random_logits(key, n: int, dtype=None):
    """The "random" reference task: Δz ~ N(0, 1) i.i.d. (upper dashed line of Fig. 3)."""
    return jax.random.normal(key, (check_int(n, "n", minimum=1),), dtype or jnp.result_type(float))


def zero_function(x):
    """The zero function z ≡ 0 (lower dashed line of Fig. 3; Δz = -z0)."""
    return jnp.zeros(x.shape[0], x.dtype)


def kernel_teacher(kernel_fn: Callable, x_fit, z_fit, *, r: float = 1.0, diag_reg: float = 0.0) -> Callable:
    """A teacher given as a kernel predictor ``x -> r · Θ(x, X) Θ⁻¹ z`` (an RKHS-smooth teacher), with the
    paper's reduction factor ``r`` (z_t,new = r z_t; r = 0.3 in Figs. 2 and 5)."""
    from .predict import kernel_regression

    r = check_positive(r, "r")
    k_ff = kernel_fn(x_fit, None, "ntk")

    def teacher(x):
        return r * kernel_regression(k_ff, z_fit, kernel_fn(x, x_fit, "ntk"), diag_reg=diag_reg)

    return teacher
