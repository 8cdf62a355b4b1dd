"""The layer-by-layer NNGP/NTK recursion of an MLP (Lee et al. 2019, App. C/E; Ji & Zhu §2.2): the ReLU
family in closed form in the angle, other activations through :mod:`ntkd.kernels.activations`."""
from __future__ import annotations

import math

import jax.numpy as jnp

from ._numerics import (angle_from_delta, dense_delta, dense_vectors, one_minus_cos_inputs, set_diag,
                        sqrt0)
from .activations import ACT_FNS

def _ntk_step(ntk, sigma, sig_act, dot, *, w2, parameterization, width, has_bias):
    """Θ after a Dense layer from Θ before the activation: ``Σ' + W² Θ·E[φ'φ']`` (NTK
    parameterization), or ``width·Σ_act (+1 for the bias) + W² Θ·E[φ'φ']`` (standard)."""
    if parameterization == "ntk":
        return sigma + w2 * (ntk * dot)
    return width * sig_act + (1.0 if has_bias else 0.0) + w2 * (ntk * dot)


def _relu_recursion(x1, x2, q1, q2, diag, gram, sigma, ntk, *, depth, act, W_std, b_std, parameterization, width,
                    want_ntk, exact_near):
    """Hidden layers of the ReLU family ``a·min(u,0) + b·max(u,0)`` on the angle representation.

    Each entry carries δ = 1 - cos θ of its two pre-activations (``dense_delta`` after each Dense
    layer, and 1 - E[φφ]/S = (amb2((π-θ)δ + θ - sin θ)/(2π) + ab δ)/S after the activation,
    S = (a²+b²)/2), so that θ = 2 asin(√(δ/2)) stays accurate in float32 for near-duplicate inputs,
    where θ ≈ √(2δ) would otherwise amplify the rounding of cos θ (neural-tangents loses up to ~1e-4
    there and on the diagonal). θ and π - θ come from :func:`angle_from_delta` (polynomial arcsin, no
    transcendental calls) and sin θ from √(δ(2-δ)). The per-point variances are vectors, so per entry
    a layer costs one δ update, Σ = √(QQ')(1 - δ) and the NTK step; everything is one elementwise
    chain, which XLA fuses into a single pass over the entries.

    What δ needs is an absolute error of ~eps·θ (the next θ then moves by ~eps, as from any other
    rounding; the outputs depend on θ only through π - θ and cos θ = 1 - δ). So θ - sin θ is taken
    directly: its cancellation leaves an absolute error ~eps·θ, which is within that (a Taylor series
    below θ = 1/2 gave the same float32 errors to two digits, depth 1-10, near-duplicates down to a
    1e-5 relative gap, at 17 more operations per entry and layer). For an activation of one sign
    (ab <= 0: ReLU, a·|u|-like), E[φφ] >= 0, so after the first activation every correlation is >= 0
    and the angle skips its θ > 2π/3 branch.
    """
    w2 = W_std**2
    b2 = 0.0 if b_std is None else b_std**2
    a, b = act.params
    amb2, ab = (a - b) ** 2, a * b
    big_s = (a * a + b * b) / 2
    inv2pi = 1 / (2 * math.pi)
    # pre-activation variances (vectors), and the first Dense layer on δ
    Q1, Q2 = w2 * q1 + b2, w2 * q2 + b2
    delta = one_minus_cos_inputs(x1, x2, q1, q2, diag, gram, exact_near)
    delta = dense_delta(delta, dense_vectors(w2 * q1, b2), dense_vectors(w2 * q2, b2), b2)
    for layer in range(depth):
        last = layer == depth - 1
        delta = jnp.clip(delta, 0, 2)
        theta, pim = angle_from_delta(delta, at_most_one=ab <= 0 and layer > 0)
        sin = sqrt0(delta * (2 - delta))
        a1, a2 = w2 * big_s * Q1, w2 * big_s * Q2
        v1, v2 = dense_vectors(a1, b2), dense_vectors(a2, b2)
        sig_act = None
        if last or parameterization == "standard":  # Σ_act = √(QQ') E[φφ]/√(QQ') directly
            cos = 1 - delta
            e = amb2 * (sin + pim * cos) * inv2pi
            if ab:
                e = e + ab * cos
            sig_act = (jnp.sqrt(Q1) * jnp.sqrt(Q2)) * e
            sigma = w2 * sig_act + b2
        if not last:
            if big_s > 0:
                dact = (amb2 * inv2pi / big_s) * (pim * delta + (theta - sin))
                if ab:
                    dact = dact + (ab / big_s) * delta
            else:  # φ = 0: the next layer sees the bias alone (correlation 1, or all zero)
                dact = jnp.zeros_like(delta)
            delta = dense_delta(dact, v1, v2, b2)
            if parameterization == "ntk":
                sigma = (v1[1] * v2[1]) * (1 - delta)
        if want_ntk:
            dot = (amb2 * inv2pi) * pim
            if ab:
                dot = dot + ab
            ntk = _ntk_step(ntk, sigma, sig_act, dot, w2=w2, parameterization=parameterization, width=width,
                            has_bias=b_std is not None)
        Q1, Q2 = a1 + b2, a2 + b2
    return sigma, ntk


def mlp_kernel(x1, x2, q1, q2, diag, gram, *, depth, act, W_std, b_std, parameterization, width, want_ntk,
                exact_near=False):
    """Core recursion on x1 ``(n1, d)`` against x2 ``(n2, d)`` with their input variances ``q1 (n1, 1)``,
    ``q2 (1, n2)`` (``|x|²/d``), their Gram matrix ``gram = x1 x2^T`` and ``diag``: None, or the
    ``(n1, n2)`` mask of pairs that are the same input point, which then get correlation exactly 1 (the
    exact diagonal of a symmetric kernel). ``exact_near``: see :func:`one_minus_cos_inputs`.
    Returns (nngp, ntk or None), the NTK only with ``want_ntk``."""
    dtype = x1.dtype
    d = x1.shape[1]
    w2 = W_std**2
    b2 = 0.0 if b_std is None else b_std**2
    has_bias = b_std is not None

    # Input layer statistics: nngp_in = x1 x2^T / d, then the first Dense layer.
    nngp_in = gram / d
    if diag is not None:
        nngp_in = set_diag(nngp_in, q1[:, 0], diag)
    sigma = w2 * nngp_in + b2
    if parameterization == "standard":
        ntk = d * nngp_in + (1.0 if has_bias else 0.0)
    else:
        ntk = sigma
    if act.name == "ab_relu" and depth > 0:
        kw = dict(depth=depth, act=act, W_std=W_std, b_std=b_std, parameterization=parameterization,
                  width=width, want_ntk=want_ntk, exact_near=exact_near)
        sigma, ntk = _relu_recursion(x1, x2, q1, q2, diag, gram, sigma, ntk, **kw)
    else:
        q1, q2 = w2 * q1 + b2, w2 * q2 + b2
        act_fn = ACT_FNS.get(act.name)
        for _ in range(depth):
            sig_act, dot, q1a, q2a = act_fn(act.params, sigma, q1, q2, diag, want_ntk)
            sigma = w2 * sig_act + b2
            if want_ntk:
                ntk = _ntk_step(ntk, sigma, sig_act, dot, w2=w2, parameterization=parameterization, width=width,
                                has_bias=has_bias)
            q1, q2 = w2 * q1a + b2, w2 * q2a + b2
    return sigma.astype(dtype), (ntk.astype(dtype) if want_ntk else None)
