"""Infinite-width NNGP and NTK kernels of fully connected networks.

Conventions (identical to neural-tangents 0.6.5 ``stax`` so numbers can be compared one to one):

* The network is ``Dense, act, Dense, act, ..., Dense``: ``depth`` hidden layers (``depth`` activations)
  and ``depth + 1`` Dense layers, i.e. ``stax.serial(*[Dense(width, W_std, b_std), act] * depth,
  Dense(out, W_std, b_std))``. ``depth`` is the *L* of Ji & Zhu (2020), Eq. 1.
* Input covariance ``x1 @ x2.T / d`` (d = number of features).
* ``parameterization="ntk"``: ``h = W_std * W x / sqrt(fan_in) + b_std * b`` with W, b ~ N(0, 1) and the
  gradient taken w.r.t. (W, b).
  ``parameterization="standard"``: the same forward distribution, gradient w.r.t. the standard weights;
  its NTK depends on the finite hidden ``width`` (neural-tangents' ``Dense(width, ..., "standard")``).
* ``b_std=None`` means no bias at all (not even in the NTK of the standard parameterization).
* ReLU kernels carry no factor 2: He scaling is ``W_std=sqrt(2)``.

Recursion, layer by layer (Ji & Zhu §2.2; Lee et al. 2019, App. C/E): after a Dense layer
``Σ ← W_std² Σ_act + b_std²`` and ``Θ ← Σ + W_std² Θ_act`` (NTK parameterization); an activation maps
``Σ_act = E[φ(u)φ(v)]`` and ``Θ_act = Θ · E[φ'(u)φ'(v)]`` with (u, v) ~ N(0, [[q, Σ], [Σ, q']]).
"""
from __future__ import annotations

import functools
import math
import os
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_inputs_2d, check_int, check_positive
from ._linalg import mm

__all__ = ["Kernel", "mlp_kernel_fn", "kernel_matrix", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "erf", "identity", "leaky_relu", "ab_relu")
_GETS = ("nngp", "ntk")


class Kernel(NamedTuple):
    """Pytree of kernel matrices, shape ``(n1, n2)`` each (same field names as neural-tangents)."""

    nngp: jax.Array
    ntk: jax.Array


class _Act(NamedTuple):
    name: str
    params: tuple


def _parse_activation(activation) -> _Act:
    """Accept ``"relu"``, ``"erf"``, ``"identity"``, ``("leaky_relu", alpha)``, ``("ab_relu", a, b)``,
    ``("erf", a, b, c)`` (a * erf(b x) + c, neural-tangents' ``Erf``)."""
    if isinstance(activation, str):
        name, args = activation.lower(), ()
    elif isinstance(activation, (tuple, list)) and activation and isinstance(activation[0], str):
        name, args = activation[0].lower(), tuple(activation[1:])
    else:
        raise ValueError(
            f"`activation` must be one of {ACTIVATIONS} or a tuple like ('leaky_relu', 0.1); got {activation!r}."
        )
    try:
        args = tuple(float(a) for a in args)
    except (TypeError, ValueError):
        raise ValueError(f"`activation` parameters must be numbers; got {activation!r}.") from None
    if not all(math.isfinite(a) for a in args):
        raise ValueError(f"`activation` parameters must be finite; got {activation!r}.")
    if name == "relu" and not args:
        return _Act("ab_relu", (0.0, 1.0))
    if name == "leaky_relu" and len(args) <= 1:
        return _Act("ab_relu", (args[0] if args else 0.01, 1.0))
    if name == "ab_relu" and len(args) == 2:
        return _Act("ab_relu", args)
    if name == "erf" and len(args) in (0, 3):
        return _Act("erf", args or (1.0, 1.0, 0.0))
    if name == "identity" and not args:
        return _Act("identity", ())
    raise ValueError(
        f"`activation`={activation!r} is not supported; use one of 'relu', 'erf', 'identity', "
        "('leaky_relu', alpha), ('ab_relu', a, b), ('erf', a, b, c)."
    )


# ----------------------------------------------------------------------------------------------------
# Activation maps. Each takes the pre-activation covariance ``sigma`` (n1, n2), the variances ``q1`` (n1, 1)
# and ``q2`` (1, n2), and ``diag``: None, or a boolean (n1, n2) mask of the pairs that are the same input
# point (correlation exactly 1 there), and returns (E[φ(u)φ(v)], E[φ'(u)φ'(v)] or None, new q1, new q2).
# ----------------------------------------------------------------------------------------------------
def _set_diag(m, value, diag):
    """``m`` with ``value`` (a scalar or a ``(n1,)`` vector, one per row) where ``diag`` (a boolean
    ``(n1, n2)`` mask of the pairs that are the same input point) is true."""
    value = jnp.asarray(value, m.dtype)
    if value.ndim == 1:
        value = value[:, None]
    return jnp.where(diag, value, m)


# Polynomials for arcsin on |x| <= 1/2: asin(x) = x + x z P(z), z = x². Coefficients (power basis, lowest
# first) from `python scripts/fit_asin.py 4 11`: a Chebyshev least-squares fit of the exact power series
# of P on z ∈ [0, 1/4]. Max relative error of P: 3.7e-7 (float32 set) and 1.5e-15 (float64 set); in
# asin it is scaled by z P/(1 + z P) <= 0.045, i.e. 1.6e-8 and 7e-17, below half an ulp of each dtype.
# XLA's CPU arcsin/arccos are scalar calls (~10 ns per float32 entry, 5x a sqrt): the recursion's cost.
_ASIN_P32 = (0.1666667276469839, 0.0749880917576955, 0.04501070005572601, 0.02649427678682241,
             0.038206452064651064)
_ASIN_P64 = (0.16666666666666663, 0.07500000000017687, 0.04464285710590241, 0.03038194727869691,
             0.022372049290950175, 0.017355242728722506, 0.013929743720517534, 0.011875411660381502,
             0.007801174086137568, 0.01604588685460681, -0.010773408828960688, 0.02819104916205157)


def _asin_small(x):
    """arcsin(x) for |x| <= 1/2 by the polynomial above (float32 or float64 set by x's dtype)."""
    coef = _ASIN_P32 if x.dtype == jnp.float32 else _ASIN_P64
    z = x * x
    p = jnp.asarray(coef[-1], x.dtype)
    for c in coef[-2::-1]:
        p = p * z + c
    return x + x * (z * p)


def _asin(x):
    """arcsin on [-1, 1] from :func:`_asin_small`: |x| > 1/2 uses asin|x| = π/2 - 2 asin(√((1-|x|)/2))."""
    ax = jnp.abs(x)
    big = ax > 0.5
    r = _asin_small(jnp.where(big, jnp.sqrt((1 - jnp.minimum(ax, 1)) / 2), x))
    return jnp.where(big, jnp.sign(x) * (jnp.pi / 2 - 2 * r), r)


@jax.custom_jvp
def _sqrt0(x):
    """``√x`` for ``x >= 0`` whose derivative at ``x = 0`` is taken as 0 (instead of +∞).

    Used for √δ and √(δ(2 - δ)) of a δ = 1 - cos θ ∈ [0, 2]. δ reaches 0 (the same point, or
    duplicates) and 2 (antipodal points) only at its own minimum or maximum, where its derivative is 0,
    so the chain rule meets ∞ · 0 and ``jax.grad`` would give NaN. With this choice the NNGP, which is
    differentiable there, gets its true gradient, and the NTK, which has a cone in θ at duplicates
    (ReLU: π - θ with θ ∝ |x - x'|), gets the symmetric subgradient 0 for that part: what central
    differences give (tests/test_kernels.py)."""
    return jnp.sqrt(x)


@_sqrt0.defjvp
def _sqrt0_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    r = jnp.sqrt(x)
    pos = r > 0
    return r, jnp.where(pos, dx / (2 * jnp.where(pos, r, 1)), 0)


def _angle_from_delta(delta, at_most_one=False):
    """(θ, π - θ) for θ = arccos(1 - δ), δ ∈ [0, 2], each without cancellation:

    δ <= 1/2:        θ = 2 asin(√(δ/2))             (relative accuracy as θ -> 0)
    1/2 < δ < 3/2:   θ = π/2 - asin(1 - δ)          (1 - δ is exact there)
    δ >= 3/2:        π - θ = 2 asin(√((2 - δ)/2))    (relative accuracy of π - θ as θ -> π)

    ``at_most_one``: the caller knows δ <= 1 up to rounding (a non-negative correlation), so the last
    branch is left out (the middle one is exact up to δ = 3/2); five fewer operations per entry.
    """
    half_pi = jnp.pi / 2
    if at_most_one:
        lo = delta <= 0.5
        a = _asin_small(jnp.where(lo, _sqrt0(delta / 2), 1 - delta))
        return jnp.where(lo, 2 * a, half_pi - a), jnp.where(lo, jnp.pi - 2 * a, half_pi + a)
    lo, hi = delta <= 0.5, delta >= 1.5
    mid = ~(lo | hi)
    u = _sqrt0(jnp.where(lo, delta, 2 - delta) / 2)
    a = _asin_small(jnp.where(mid, 1 - delta, u))
    theta = jnp.where(lo, 2 * a, jnp.where(mid, half_pi - a, jnp.pi - 2 * a))
    pi_minus = jnp.where(lo, jnp.pi - 2 * a, jnp.where(mid, half_pi + a, 2 * a))
    return theta, pi_minus


def _erf(params, sigma, q1, q2, diag, want_dot):
    """a·erf(b x) + c. With D = 1 + 2b²q per point (rank one: √(D D') is an outer product of vectors):
    E[φφ] = (2a²/π) asin(2b²Σ/√(DD')) + c², E[φ'φ'] = (4a²b²/π) / √(DD' - (2b²Σ)²)
    = (4a²b²/π) / (√(DD') √((1 - r)(1 + r))) with r = 2b²Σ/√(DD'); on the same point
    DD' - (2b²q)² = 1 + 4b²q exactly."""
    a, b, c = params
    b2 = 2 * b * b
    d1, d2 = 1 + b2 * q1, 1 + b2 * q2
    inv_s = jax.lax.rsqrt(d1) * jax.lax.rsqrt(d2)  # (n1, 1) x (1, n2)
    arg = jnp.clip(b2 * sigma * inv_s, -1, 1)
    nngp = (a * a * 2 / jnp.pi) * _asin(arg) + c * c
    dot = None
    if want_dot:
        one_minus_r2 = (1 - arg) * (1 + arg)
        if diag is not None:  # same point: (D² - (2b²q)²)/D² = (1 + 2·2b²q)/D² exactly
            one_minus_r2 = _set_diag(one_minus_r2, (1 + 2 * b2 * q1[:, 0]) / (d1[:, 0] * d1[:, 0]), diag)
        m = jnp.maximum(one_minus_r2, jnp.finfo(sigma.dtype).tiny)
        # √m / m, not 1/√m: XLA rewrites x/√m into x·rsqrt(m), which costs 5x a sqrt in float64 on CPU
        dot = (a * a * b * b * 4 / jnp.pi) * inv_s * (jnp.sqrt(m) / m)
    qq1 = (a * a * 2 / jnp.pi) * _asin(b2 * q1 / (1 + b2 * q1)) + c * c
    qq2 = (a * a * 2 / jnp.pi) * _asin(b2 * q2 / (1 + b2 * q2)) + c * c
    return nngp, dot, qq1, qq2


def _identity(params, sigma, q1, q2, diag, want_dot):
    return sigma, (jnp.ones((), sigma.dtype) if want_dot else None), q1, q2


_ACT_FNS = {"erf": _erf, "identity": _identity}  # the ReLU family is handled in _mlp_kernel


def _normalize_get(get):
    if get is None:
        return None, _GETS
    if isinstance(get, str):
        if get not in _GETS:
            raise ValueError(f"`get` must be None, 'nngp', 'ntk' or a tuple of those; got {get!r}.")
        return get, (get,)
    get = tuple(get)
    if not get or any(g not in _GETS for g in get):
        raise ValueError(f"`get` must be None, 'nngp', 'ntk' or a tuple of those; got {get!r}.")
    return get, get


_namedtuple_cache = {}


def _pack(get, values: dict):
    if get is None:
        return Kernel(values["nngp"], values["ntk"])
    if isinstance(get, str):
        return values[get]
    if get == _GETS:
        return Kernel(values["nngp"], values["ntk"])
    cls = _namedtuple_cache.setdefault(get, namedtuple("Kernel", get))
    return cls(*(values[g] for g in get))


#: Inputs with at most this many features get 1 - cos(x, x') from direct pairwise differences
#: (exact for near-duplicates); wider inputs use the Gram matrix (cheaper, ~eps·sqrt(d) absolute error),
#: and pairs whose Gram value falls below :data:`NEAR_DELTA` are recomputed from differences.
EXACT_DISTANCE_MAX_DIM = 64
#: For inputs wider than :data:`EXACT_DISTANCE_MAX_DIM`: pairs of distinct points with 1 - cos below this
#: (by the Gram matrix) are near-duplicates. The Gram matrix gets their 1 - cos with a large relative
#: error, which the angle amplifies (the float32 ReLU NTK was off by up to 1.1e-4 at d = 784), so a
#: block that has any takes their 1 - cos from differences instead (a conditional: blocks without any
#: pay only the check). Pairs just above 2^-6 (cos θ < 0.984) keep the Gram's error, which stays within
#: the 1e-5 float32 target (tests/test_kernels.py checks d = 784 at depth 5); real data's nearest
#: distinct neighbours are rarely that close, random points never.
NEAR_DELTA = 2.0**-6
#: A block whose points have at most this many near-duplicates each recomputes only those pairs
#: (gathered); one with more recomputes all its pairs from differences and keeps the near ones.
NEAR_PER_ROW = 2


def _sq_distances(x1, x2):
    """|x1_i - x2_j|² ``(n1, n2)`` from differences, summed over the features in order: n1 x n2
    memory, no (n1, n2, d) intermediate. Up to :data:`EXACT_DISTANCE_MAX_DIM` features the sum is
    unrolled; wider inputs loop over unrolled groups of 16 features (zero padded, which adds exact
    zeros). ``benchmarks/kernel_pair.py --d 784 --cluster --depth 3`` (every block near-duplicate) took
    1.3 s with groups of 16, 1.6 s with 64 and 2.2 s with 8; fewer unrolled operations also compile
    faster."""
    d, g = x1.shape[1], (EXACT_DISTANCE_MAX_DIM if x1.shape[1] <= EXACT_DISTANCE_MAX_DIM else 16)

    def group(xa, xb, sq):
        for i in range(xa.shape[1]):
            diff = xa[:, i:i + 1] - xb[None, :, i]
            sq = sq + diff * diff
        return sq

    sq = jnp.zeros((x1.shape[0], x2.shape[0]), x1.dtype)
    if d <= g:
        return group(x1, x2, sq)
    pad = -d % g
    x1p, x2p = jnp.pad(x1, ((0, 0), (0, pad))), jnp.pad(x2, ((0, 0), (0, pad)))

    def body(k, sq):
        xa = jax.lax.dynamic_slice_in_dim(x1p, k * g, g, axis=1)
        xb = jax.lax.dynamic_slice_in_dim(x2p, k * g, g, axis=1)
        return group(xa, xb, sq)

    return jax.lax.fori_loop(0, (d + pad) // g, body, sq)


def _norms(q1, q2, d):
    return jnp.sqrt(q1 * d), jnp.sqrt(q2 * d)


def _delta_from_sq(sq, n1, n2):
    """1 - cos from |x - x'|² and the norms: ``(|x - x'|² - (|x| - |x'|)²) / (2|x||x'|)``."""
    return (sq - (n1 - n2) ** 2) / (2 * n1 * n2)


def _finish_delta(delta, n1, n2, diag):
    delta = jnp.where(n1 * n2 > 0, delta, 1)
    delta = jnp.clip(delta, 0, 2)
    if diag is not None:
        delta = _set_diag(delta, 0, diag)
    return delta


def _gram_delta(gram, q1, q2, diag, d):
    """δ = 1 - gram / (|x||x'|) and the mask of near-duplicate pairs (δ < :data:`NEAR_DELTA`, not the
    same point), for inputs wider than :data:`EXACT_DISTANCE_MAX_DIM`."""
    n1, n2 = _norms(q1, q2, d)
    delta = _finish_delta(1 - gram / (n1 * n2), n1, n2, diag)
    near = delta < NEAR_DELTA
    return delta, (near if diag is None else near & ~diag)


def _needs_near_check(act, depth, d):
    """Whether the recursion uses 1 - cos of the inputs from the Gram matrix (the ReLU family, wide inputs)."""
    return act.name == "ab_relu" and depth > 0 and d > EXACT_DISTANCE_MAX_DIM


def _one_minus_cos_inputs(x1, x2, q1, q2, diag, gram, exact_near):
    """δ = 1 - cos(x1_i, x2_j), accurate also when the two inputs nearly coincide: from differences,
    ``(|x - x'|² - (|x| - |x'|)²) / (2|x||x'|)`` (no cancellation), for inputs of at most
    :data:`EXACT_DISTANCE_MAX_DIM` features. Wider inputs take ``1 - gram / (|x||x'|)`` (``gram`` =
    x1 x2^T), and with ``exact_near`` their near-duplicate pairs (:data:`NEAR_DELTA`) take the
    formula of differences: only those pairs, gathered, when no point has more than
    :data:`NEAR_PER_ROW` of them, else every pair of the block. :func:`_packed` sets ``exact_near``
    for the blocks that have any."""
    d = x1.shape[1]
    n1, n2 = _norms(q1, q2, d)

    def from_differences():
        return _finish_delta(_delta_from_sq(_sq_distances(x1, x2), n1, n2), n1, n2, diag)

    if d <= EXACT_DISTANCE_MAX_DIM:
        return from_differences()
    delta, near = _gram_delta(gram, q1, q2, diag, d)
    if not exact_near:
        return delta
    per_row = jnp.sum(near, axis=1, dtype=jnp.int32)

    def few():  # each row's nearest columns (at most NEAR_PER_ROW of them near), gathered
        k = min(NEAR_PER_ROW, x2.shape[0])
        _, j = jax.lax.top_k(-jnp.where(near, delta, jnp.inf), k)  # (n1, k)
        i = jnp.broadcast_to(jnp.arange(x1.shape[0])[:, None], j.shape)
        diff = x1[i] - x2[j]  # (n1, k, d)
        fixed = jnp.clip(_delta_from_sq(jnp.sum(diff * diff, axis=-1), n1[i, 0], n2[0, j]), 0, 2)
        unused = jnp.arange(k)[None, :] >= per_row[:, None]
        return delta.at[jnp.where(unused, x1.shape[0], i), j].set(fixed, mode="drop")

    def many():  # every pair of the block from differences, the near ones kept
        return jnp.where(near, from_differences(), delta)

    return jax.lax.cond(_any_unbatched(jnp.max(per_row) > NEAR_PER_ROW), many, few)


def _dense_vectors(a, b2):
    """Per-point factors of a Dense layer whose input variance times W_std² is ``a`` (a vector):
    (√A, √Q, √(A/Q), b/√Q) with Q = A + b² the output variance (0 where Q = 0)."""
    u, p = jnp.sqrt(a), jnp.sqrt(a + b2)
    inv_p = jnp.where(p > 0, 1 / jnp.where(p > 0, p, 1), 0)
    return u, p, u * inv_p, math.sqrt(b2) * inv_p


def _dense_delta(delta_in, v1, v2, b2):
    """1 - correlation after a Dense layer ``Σ' = W²Σ + b²``, from δ_in and the per-point factors
    ``v = (√A, √Q, √(A/Q), b/√Q)`` of :func:`_dense_vectors` (shapes (n1, 1) and (1, n2)):

    δ' = 1 - Σ'/√(QQ') = b² (√A - √A')² / (√(QQ') (√(QQ') + √(AA') + b²)) + √(AA'/(QQ')) δ_in,

    a sum of non-negative terms, so no cancellation when the two points nearly coincide. Only the
    first term needs a division per entry; the rest are products of per-point vectors.
    """
    (u1, p1, r1, c1), (u2, p2, r2, c2) = v1, v2
    out = (r1 * r2) * delta_in
    if b2 > 0:  # the denominator √(QQ') + √(AA') + b² >= b² > 0; b/√Q is 0 where Q = 0
        du = u1 - u2
        out = (du * du) * (c1 * c2) / (p1 * p2 + u1 * u2 + b2) + out
    return out


def _ntk_step(ntk, sigma, sig_act, dot, *, w2, parameterization, width, has_bias):
    """Θ after a Dense layer from Θ before the activation: ``Σ' + W² Θ·E[φ'φ']`` (NTK
    parameterization), or ``width·Σ_act (+1 for the bias) + W² Θ·E[φ'φ']`` (standard)."""
    if parameterization == "ntk":
        return sigma + w2 * (ntk * dot)
    return width * sig_act + (1.0 if has_bias else 0.0) + w2 * (ntk * dot)


def _relu_recursion(x1, x2, q1, q2, diag, gram, sigma, ntk, *, depth, act, W_std, b_std, parameterization, width,
                    want_ntk, exact_near):
    """Hidden layers of the ReLU family ``a·min(u,0) + b·max(u,0)`` on the angle representation.

    Each entry carries δ = 1 - cos θ of its two pre-activations (``_dense_delta`` after each Dense
    layer, and 1 - E[φφ]/S = (amb2((π-θ)δ + θ - sin θ)/(2π) + ab δ)/S after the activation,
    S = (a²+b²)/2), so that θ = 2 asin(√(δ/2)) stays accurate in float32 for near-duplicate inputs,
    where θ ≈ √(2δ) would otherwise amplify the rounding of cos θ (neural-tangents loses up to ~1e-4
    there and on the diagonal). θ and π - θ come from :func:`_angle_from_delta` (polynomial arcsin, no
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
    delta = _one_minus_cos_inputs(x1, x2, q1, q2, diag, gram, exact_near)
    delta = _dense_delta(delta, _dense_vectors(w2 * q1, b2), _dense_vectors(w2 * q2, b2), b2)
    for layer in range(depth):
        last = layer == depth - 1
        delta = jnp.clip(delta, 0, 2)
        theta, pim = _angle_from_delta(delta, at_most_one=ab <= 0 and layer > 0)
        sin = _sqrt0(delta * (2 - delta))
        a1, a2 = w2 * big_s * Q1, w2 * big_s * Q2
        v1, v2 = _dense_vectors(a1, b2), _dense_vectors(a2, b2)
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
            delta = _dense_delta(dact, v1, v2, b2)
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


def _mlp_kernel(x1, x2, q1, q2, diag, gram, *, depth, act, W_std, b_std, parameterization, width, want_ntk,
                exact_near=False):
    """Core recursion on x1 ``(n1, d)`` against x2 ``(n2, d)`` with their input variances ``q1 (n1, 1)``,
    ``q2 (1, n2)`` (``|x|²/d``), their Gram matrix ``gram = x1 x2^T`` and ``diag``: None, or the
    ``(n1, n2)`` mask of pairs that are the same input point, which then get correlation exactly 1 (the
    exact diagonal of a symmetric kernel). ``exact_near``: see :func:`_one_minus_cos_inputs`.
    Returns (nngp, ntk or None), the NTK only with ``want_ntk``."""
    dtype = x1.dtype
    d = x1.shape[1]
    w2 = W_std**2
    b2 = 0.0 if b_std is None else b_std**2
    has_bias = b_std is not None

    # Input layer statistics: nngp_in = x1 x2^T / d, then the first Dense layer.
    nngp_in = gram / d
    if diag is not None:
        nngp_in = _set_diag(nngp_in, q1[:, 0], diag)
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
        act_fn = _ACT_FNS.get(act.name)
        for _ in range(depth):
            sig_act, dot, q1a, q2a = act_fn(act.params, sigma, q1, q2, diag, want_ntk)
            sigma = w2 * sig_act + b2
            if want_ntk:
                ntk = _ntk_step(ntk, sigma, sig_act, dot, w2=w2, parameterization=parameterization, width=width,
                                has_bias=has_bias)
            q1, q2 = w2 * q1a + b2, w2 * q2a + b2
    return sigma.astype(dtype), (ntk.astype(dtype) if want_ntk else None)


class _Cfg(NamedTuple):
    """Static configuration of one analytic kernel evaluation (hashable: a jit static argument)."""

    depth: int
    act: _Act
    W_std: float
    b_std: Optional[float]
    parameterization: str
    width: Optional[int]
    names: tuple  # the outputs wanted, in order: ("nngp",), ("ntk",), ("nngp", "ntk") or ("ntk", "nngp")


@jax.custom_batching.custom_vmap
def _any_unbatched(m):
    """``jnp.any(m)``; under ``jax.vmap`` one unbatched scalar, any over the whole batch (so that a
    conditional on it stays a conditional, not a select that runs both branches)."""
    return jnp.any(m)


@_any_unbatched.def_vmap
def _any_unbatched_vmap(axis_size, in_batched, m):
    return _any_unbatched(m), False


def _opaque_true(x):
    """True for any x without NaN at its first entry, a value XLA cannot know at compile time (the
    predicate of :func:`_guarded`'s conditional, whose branches are equal, so the value itself never
    matters). Unbatched under ``jax.vmap`` (:func:`_any_unbatched`), and a comparison, so ``jax.grad``
    has nothing to differentiate."""
    v = x.reshape(-1)[:1]
    return _any_unbatched(v == v)


def _packed(xr, xc, row_start, col_start, *, symmetric, cfg: _Cfg, qr=None, qc=None):
    """The kernel of the points ``xr`` against ``xc``, packed into ONE array: the wanted output itself,
    or for two outputs ``complex(first, second)`` in ``cfg.names`` order (see :func:`_unpack`).
    ``symmetric``: both are rows of one input, ``xr`` from row ``row_start`` and ``xc`` from
    ``col_start`` (either may be traced), and the pairs of the same row get the exact diagonal.
    ``qr``, ``qc``: the points' ``|x|²/d`` when the caller has them.

    For the ReLU family on inputs wider than :data:`EXACT_DISTANCE_MAX_DIM` a conditional on the Gram
    block chooses between two fused passes: without near-duplicate pairs (:data:`NEAR_DELTA`) 1 - cos
    comes from the Gram block alone; with any, their 1 - cos comes from pairwise differences. Checking
    costs one more read of the Gram block; only blocks with near-duplicates pay for the differences.
    Under ``jax.vmap`` one check covers the whole batch (a conditional, not a select).
    """
    d = xr.shape[1]
    qr = jnp.sum(xr * xr, axis=1) / d if qr is None else qr
    qc = jnp.sum(xc * xc, axis=1) / d if qc is None else qc

    def same_point():  # built where it is used: an operand of the conditional would be written out
        if not symmetric:
            return None
        return (row_start + jnp.arange(xr.shape[0]))[:, None] == (col_start + jnp.arange(xc.shape[0]))[None, :]

    gram = mm(xr, xc.T)

    def run(exact_near):
        nngp, ntk = _mlp_kernel(xr, xc, qr[:, None], qc[None, :], same_point(), gram, depth=cfg.depth, act=cfg.act,
                                W_std=cfg.W_std, b_std=cfg.b_std, parameterization=cfg.parameterization,
                                width=cfg.width, want_ntk="ntk" in cfg.names, exact_near=exact_near)
        vals = {"nngp": nngp, "ntk": ntk}
        if len(cfg.names) == 1:
            return vals[cfg.names[0]]
        return jax.lax.complex(vals[cfg.names[0]], vals[cfg.names[1]])

    if not _needs_near_check(cfg.act, cfg.depth, d):
        return run(False)
    # the branches compute δ from the Gram block again (in their fused pass): passed in, it would be written out
    near = _gram_delta(gram, qr[:, None], qc[None, :], same_point(), d)[1]
    # rows first: XLA fuses the mask into a row reduction (a reduction of the whole block is not fused)
    return jax.lax.cond(_any_unbatched(jnp.any(near, axis=1)), lambda: run(True), lambda: run(False))


def _block(x1, x2, start, *, rows, symmetric, cfg: _Cfg, guard: bool = False):
    """Rows ``start .. start + rows`` of ``x1`` against the points ``x2`` (``symmetric``: ``x2`` is x1
    itself, and those pairs get the exact diagonal), packed by :func:`_packed`.

    Packing is what makes XLA on CPU compute the recursion in a single fused pass: a program with two
    outputs that share one elementwise chain is split into several passes that recompute parts of it
    and write n1 x n2 intermediates (measured 1.4x slower at depth 5, 1.6x at depth 10 for ReLU;
    benchmarks/README.md).
    """
    xr = x1 if rows == x1.shape[0] else jax.lax.dynamic_slice_in_dim(x1, start, rows)

    def packed(xr, x2, start):
        return _packed(xr, x2, start, 0, symmetric=symmetric, cfg=cfg)

    if not guard or len(cfg.names) == 1 or jax.default_backend() != "cpu":
        return packed(xr, x2, start)
    # ``guard``: the caller unpacks in the same program (under a user's jit). XLA would fold
    # real(complex(a, b)) -> a there and split the pass again; a conditional (measured: 0.17 s against
    # 0.28 s for three layers at n = 4000) keeps the packed array intact.
    return _guarded(packed, cfg, xr, x2, start)


def _guarded(packed, cfg: _Cfg, xr, *args):
    """``packed(xr, *args)`` (a :func:`_packed` call) as the output of a conditional, which XLA neither
    fuses into its consumers nor looks through: on a predicate it cannot evaluate at compile time
    (:func:`_opaque_true`; both branches are the same function, so its value does not matter), unless
    :func:`_packed` has its own near-duplicate conditional, which does the same (a second around it
    would only compile the recursion twice more)."""
    if _needs_near_check(cfg.act, cfg.depth, xr.shape[1]):
        return packed(xr, *args)
    return jax.lax.cond(_opaque_true(xr), packed, packed, xr, *args)


#: A symmetric kernel on CPU with more than this many points is computed in square tiles of at most
#: this edge (:func:`_symmetric_tiles`). On one 2-core machine edges of 400-800 ran alike at n = 4000
#: and 8000 and 256 was slower (a prototype, not kept); on a second, slower one 400 was up to 17 %
#: faster than 500 (one of 16 cases 5 % slower) and 286 slower than both
#: (`benchmarks/kernel_pair.py --tile-edge`, benchmarks/README.md).
TILE_EDGE = 400


def _tile_edge(n):
    """The tile edge for a symmetric kernel of ``n`` points, or None for one untiled pass: not on CPU,
    or ``n <= TILE_EDGE``. Tiles are as even as possible: ``ceil(n / ceil(n / TILE_EDGE))``."""
    if jax.default_backend() != "cpu" or n <= TILE_EDGE:
        return None
    return -(-n // -(-n // TILE_EDGE))


def _symmetric_tiles(x, cfg: _Cfg, edge: int):
    """The symmetric kernel of ``x`` ``(n, d)`` as a dict name -> ``(n, n)`` array, computed in
    ``edge × edge`` tiles on and above the diagonal, each mirrored into the lower triangle.

    A loop (one compiled body) goes over the tiles: a tile's Gram block and its packed recursion stay
    in cache, each is written into the outputs (and transposed into the mirror position) right after
    it is computed, and only ~(n² + n·edge)/2 entries are computed. Against one untiled pass at
    n = 4000 on 2 CPU cores this is 1.3-1.7x faster (benchmarks/README.md), and the temporaries are a
    few tiles whatever n is. The tile starts are ``k·edge`` clipped to ``n - edge``, so a ragged last
    tile overlaps its neighbour; overlapping entries are written again with the same formula, and
    every pair of the same row gets the exact diagonal wherever it falls (the mask is built from the
    tile offsets). Mirrored entries are exact copies (``K[j, i]`` is ``K[i, j]``); inside diagonal
    tiles the two orientations come from the same symmetric arithmetic. The conditional around each
    tile (:func:`_guarded`) keeps XLA from fusing the recursion into both writes (it would compute each
    tile twice) and, for two outputs, from splitting the packed pass (see :func:`_block`).
    """
    n = x.shape[0]
    starts = np.minimum(np.arange(-(-n // edge)) * edge, n - edge)
    ii, jj = np.triu_indices(len(starts))
    rows = jnp.asarray(starts[ii], jnp.int32)
    cols = jnp.asarray(starts[jj], jnp.int32)

    q = jnp.sum(x * x, axis=1) / x.shape[1]  # once, not per tile

    def tile(a, b, qa, qb, i, j):
        return _packed(a, b, i, j, symmetric=True, cfg=cfg, qr=qa, qc=qb)

    def body(k, outs):
        i, j = rows[k], cols[k]
        a = jax.lax.dynamic_slice_in_dim(x, i, edge)
        b = jax.lax.dynamic_slice_in_dim(x, j, edge)
        qa = jax.lax.dynamic_slice_in_dim(q, i, edge)
        qb = jax.lax.dynamic_slice_in_dim(q, j, edge)
        z = _guarded(tile, cfg, a, b, qa, qb, i, j)
        parts = _unpack(z, cfg.names)
        # the mirror first: on a diagonal tile (i == j) the tile itself is written last
        return tuple(jax.lax.dynamic_update_slice(jax.lax.dynamic_update_slice(o, parts[name].T, (j, i)),
                                                  parts[name], (i, j))
                     for o, name in zip(outs, cfg.names))

    outs = tuple(jnp.zeros((n, n), x.dtype) for _ in cfg.names)
    outs = jax.lax.fori_loop(0, len(ii), body, outs)
    return dict(zip(cfg.names, outs))


def _one_program(x1, x2, *, symmetric, cfg: _Cfg, edge):
    """The kernel as a dict name -> array in one program: tiles for a symmetric kernel on CPU
    (``edge`` from :func:`_tile_edge`), else one packed pass unpacked behind :func:`_block`'s guard."""
    if symmetric and edge is not None:
        return _symmetric_tiles(x1, cfg, edge)
    return _unpack(_block(x1, x2, 0, rows=x1.shape[0], symmetric=symmetric, cfg=cfg, guard=True), cfg.names)


def _unpack(z, names):
    """Inverse of the packing of :func:`_block`: a dict name -> array."""
    if len(names) == 1:
        return {names[0]: z}
    return {names[0]: jnp.real(z), names[1]: jnp.imag(z)}


def _assemble(zs, n1, names):
    return _unpack((zs[0] if len(zs) == 1 else jnp.concatenate(zs, axis=0))[:n1], names)


#: Entries per row block of an eagerly evaluated kernel that is not tiled (a cross kernel, or any kernel
#: off CPU; symmetric CPU kernels go through :func:`_symmetric_tiles`), by backend. Up to this many entries the kernel
#: is one program (packed pass and unpacking behind :func:`_block`'s guard); larger kernels go through
#: it in row blocks, which bounds the temporaries (Gram block, packed block) to a few block sizes, and
#: one more program concatenates and unpacks (n = 8000 on CPU: 0.69 s as one program, 0.82 s in four
#: blocks, which use 0.8 GB less memory). benchmarks/README.md has the measurements.
BLOCK_ENTRIES = {"cpu": 2**26, "other": 2**26}
#: At most this many row blocks: XLA's CPU code for the concatenating (and unpacking) program slows
#: down 2.5x beyond 8 operands, so larger kernels get larger blocks.
MAX_BLOCKS = 8

# One compiled program per (configuration, shapes, dtype): called outside ``jax.jit`` the recursion would
# otherwise dispatch op by op; inside an outer jit or vmap these nested jits are inlined.
_block_jit = jax.jit(_block, static_argnames=("rows", "symmetric", "cfg"))
_assemble_jit = jax.jit(_assemble, static_argnames=("n1", "names"))
_whole_jit = jax.jit(_one_program, static_argnames=("symmetric", "cfg", "edge"))


def _evaluate(x1, x2, cfg: _Cfg):
    """The kernel of x1 against x2 (``x2=None``: x1 against itself with the exact diagonal) as a dict
    name -> array for ``cfg.names``. A symmetric kernel of more than :data:`TILE_EDGE` points on CPU
    is one program of tiles (:func:`_symmetric_tiles`, eager or traced). Otherwise, up to
    :data:`BLOCK_ENTRIES` entries (and always under a trace: an outer jit or vmap) it is one packed
    pass unpacked behind :func:`_block`'s guard; larger eager kernels go in row blocks of that many
    entries (at most :data:`MAX_BLOCKS`) through :func:`_block`, and one more program concatenates and
    unpacks them."""
    symmetric = x2 is None
    xc = x1 if symmetric else x2
    n1, n2 = x1.shape[0], xc.shape[0]
    edge = _tile_edge(n1) if symmetric else None
    if isinstance(x1, jax.core.Tracer) or isinstance(xc, jax.core.Tracer):
        # the body of _whole_jit, not a call to it: a nested jit here compiles differently (51 fusions
        # instead of 35 for a jitted depth-3 pair; vmap of the NTK 0.018 -> 0.023 s at 4 x 1000 points)
        return _one_program(x1, xc, symmetric=symmetric, cfg=cfg, edge=edge)
    per = BLOCK_ENTRIES["cpu" if jax.default_backend() == "cpu" else "other"]
    nb = min(MAX_BLOCKS, max(1, -(-n1 * n2 // per)))
    rows = -(-n1 // nb)
    nb = -(-n1 // rows)
    if nb == 1 or edge is not None:  # one program (the tiles' temporaries are a few tiles at any n)
        return _whole_jit(x1, xc, symmetric=symmetric, cfg=cfg, edge=edge)
    xp = _pad_rows(x1, nb * rows)
    zs = [_block_jit(xp, xc, i * rows, rows=rows, symmetric=symmetric, cfg=cfg) for i in range(nb)]
    return _assemble_jit(zs, n1, cfg.names)


def mlp_kernel_fn(
    depth: int,
    *,
    activation: Union[str, Sequence] = "relu",
    W_std: float = 1.0,
    b_std: Optional[float] = 1.0,
    parameterization: str = "ntk",
    width: Optional[int] = None,
) -> Callable:
    """Analytic infinite-width NNGP/NTK of an MLP with ``depth`` hidden layers.

    Args:
      depth: number of hidden layers L >= 0 (``depth=0`` is a linear model ``Dense``).
      activation: ``"relu"``, ``"erf"``, ``"identity"``, ``("leaky_relu", alpha)`` (``alpha*min(x,0) +
        max(x,0)``), ``("ab_relu", a, b)`` (``a*min(x,0) + b*max(x,0)``), or ``("erf", a, b, c)``
        (``a*erf(b*x) + c``); all as in neural-tangents ``stax``.
      W_std: weight standard deviation σ_W > 0 (Ji & Zhu use 1.0).
      b_std: bias standard deviation σ_b >= 0, or ``None`` for a network without biases.
      parameterization: ``"ntk"`` (default) or ``"standard"``.
      width: hidden width; required for ``parameterization="standard"`` (its NTK scales with the
        fan-in), ignored for ``"ntk"``.

    Returns:
      ``kernel_fn(x1, x2=None, get=None)`` with the neural-tangents calling convention: ``x1`` of shape
      ``(n1, d)``, ``x2`` of shape ``(n2, d)`` or ``None`` (then ``x2 = x1`` and the diagonal is computed
      exactly, with correlation 1, which keeps float32 accurate). ``get=None`` returns a ``Kernel``
      ``(nngp, ntk)``, ``get="ntk"`` or ``"nngp"`` one ``(n1, n2)`` array, a tuple of names a namedtuple
      in that order. The result has the dtype of ``x1`` (float32, or float64 with ``jax_enable_x64``).
      ``kernel_fn`` is pure and jit/vmap friendly (``get`` must be static under ``jax.jit``).
      It is differentiable with respect to ``x1`` and ``x2`` (``jax.grad``, also under jit). Where two
      inputs coincide (the diagonal, duplicates) or are antipodal, the ReLU family's NTK has a cone in
      the angle θ; its gradient there takes the symmetric subgradient 0 for that part (what central
      differences tend to), and the NNGP, smooth there, its true gradient. Compiling a gradient takes
      several times as long as compiling the kernel itself, seconds even for a handful of points.

    Example:
      >>> kernel_fn = ntkd.mlp_kernel_fn(3)                 # Ji & Zhu's student, L = 3, σ_W = σ_b = 1
      >>> theta = kernel_fn(x_train, None, "ntk")           # (n, n)
      >>> k = kernel_fn(x_test, x_train)                    # Kernel(nngp=(m, n), ntk=(m, n))
    """
    depth = check_int(depth, "depth", minimum=0)
    act = _parse_activation(activation)
    W_std = check_positive(W_std, "W_std")
    if b_std is not None:
        b_std = check_positive(b_std, "b_std", allow_zero=True)
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"`parameterization` must be 'ntk' or 'standard'; got {parameterization!r}.")
    if parameterization == "standard":
        if width is None:
            raise ValueError(
                "`width` is required for parameterization='standard' (its NTK depends on the hidden "
                "fan-in); pass e.g. width=1024."
            )
        width = check_int(width, "width", minimum=1)
    cfg = _Cfg(depth, act, W_std, b_std, parameterization, width, ())

    def kernel_fn(x1, x2=None, get=None):
        get, names = _normalize_get(get)
        same = x2 is None or x2 is x1  # decided before x1 is converted (x2 = x1 gets the exact diagonal)
        x1 = check_inputs_2d(x1, "x1")
        if not same:
            x2 = check_inputs_2d(x2, "x2")
            if x2.shape[1] != x1.shape[1]:
                raise ValueError(
                    f"`x2` has {x2.shape[1]} features but `x1` has {x1.shape[1]}; both must be (n, d) "
                    "with the same d."
                )
            x2 = x2.astype(jnp.result_type(x1, x2))
            x1 = x1.astype(x2.dtype)
        else:
            x2 = None
        return _pack(get, _evaluate(x1, x2, cfg._replace(names=names)))

    kernel_fn._ntkd_cfg = cfg  # lets kernel_matrix run packed tiles (one fused pass for both kernels)
    kernel_fn.__doc__ = (
        f"Analytic kernel of a depth-{depth} {act.name}{act.params} MLP "
        f"(W_std={W_std}, b_std={b_std}, {parameterization} parameterization). "
        "Call as kernel_fn(x1, x2=None, get=None)."
    )
    return kernel_fn


# ----------------------------------------------------------------------------------------------------
# Tiled evaluation.
# ----------------------------------------------------------------------------------------------------
def _pad_rows(x, size):
    """Pad ``x`` to ``size`` rows by repeating its last row (keeps every row a valid input). A NumPy
    array stays on the host (kernel_matrix's tiles), a JAX array stays a JAX array."""
    n = x.shape[0]
    if n == size:
        return x
    xp = np if isinstance(x, np.ndarray) else jnp
    return xp.concatenate([x, xp.broadcast_to(x[-1:], (size - n,) + x.shape[1:])], axis=0)


def _devices(devices):
    """``None`` -> all local devices; an int k -> the first k; else a sequence of devices."""
    local = jax.local_devices()
    if devices is None:
        return local
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        k = check_int(devices, "devices", minimum=1)
        if k > len(local):
            raise ValueError(f"`devices`={k} but only {len(local)} local device(s) exist; pass at most "
                             f"{len(local)} or None for all.")
        return local[:k]
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` is empty; pass None for all local devices.")
    return devices


#: Host copies of kernel_matrix's tiles: stripes of _STRIPE tile rows are copied by a pool of at most
#: _COPY_THREADS threads (NumPy releases the GIL while it copies), and a symmetric kernel's mirrored tile
#: is written _MIRROR_CHUNK rows at a time, since one transposed copy of a whole tile strides through
#: memory. End to end: n = 50,000 on an H100 37.7 -> 21.7 s, n = 20,000 on 2 CPU cores 9.5-9.8 -> 8.0-8.6 s
#: (benchmarks/README.md, "Kernels on a GPU").
_STRIPE = 256
_MIRROR_CHUNK = 16
_COPY_THREADS = 8


def _copy_stripe(o, t, i, j, s, mirror):
    """Copy rows s .. s + _STRIPE of tile ``t`` to ``o[i + s.., j..]`` and, with ``mirror``, their
    transpose to ``o[j.., i + s..]``."""
    e = min(s + _STRIPE, t.shape[0])
    ja = t.shape[1]
    o[i + s:i + e, j:j + ja] = t[s:e]
    if mirror:
        for c in range(s, e, _MIRROR_CHUNK):
            c2 = min(c + _MIRROR_CHUNK, e)
            o[j:j + ja, i + c:i + c2] = t[c:c2].T


def _sharding(devs):
    """Tiles (the leading axis) spread over ``devs``: a 1-D mesh."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    return NamedSharding(Mesh(np.array(devs), ("tiles",)), PartitionSpec("tiles"))


@functools.lru_cache(maxsize=16)
def _own_tile_program(cfg: _Cfg, b1: int, b2: int, symmetric: bool, devs: tuple):
    """kernel_matrix's one program for ntkd's analytic kernels, kept across calls (tracing and compiling
    it costs 1-3 s on CPU): a ``(devices, b1, d)`` and a ``(devices, b2, d)`` stack of tiles and their
    row offsets in, the packed tiles (:func:`_packed`) out. For a symmetric kernel the offsets give the
    pairs of the same point their exact diagonal, so diagonal and off-diagonal tiles share the program."""
    spread = _sharding(devs)

    def tile(a, b, i, j):
        return _packed(a, b, i, j, symmetric=symmetric, cfg=cfg)

    return jax.jit(jax.vmap(tile), out_shardings=spread), spread


@functools.lru_cache(maxsize=16)
def _generic_tile_programs(kernel_fn, get, devs: tuple):
    """kernel_matrix's two programs for any neural-tangents style ``kernel_fn`` (cross tiles and
    diagonal tiles ``kernel_fn(a, None, get)``), kept across calls with the same ``kernel_fn``."""
    spread = _sharding(devs)
    single = isinstance(get, str)

    def as_tuple(o):
        return (o,) if single else tuple(o)

    cross = jax.jit(jax.vmap(lambda a, b: as_tuple(kernel_fn(a, b, get))), out_shardings=spread)
    diag = jax.jit(jax.vmap(lambda a: as_tuple(kernel_fn(a, None, get))), out_shardings=spread)
    return (cross, diag), spread


def kernel_matrix(kernel_fn: Callable, x1, x2=None, *, get="ntk", block_size: int = 2048, devices=None,
                  out=None, progress=None):
    """Evaluate ``kernel_fn`` on all pairs of rows in tiles, spread over devices, with bounded memory.

    The ``n1 × n2`` result is assembled on the host (NumPy) from ``block_size × block_size`` tiles.
    Tiles are computed in groups of one per device: each group is a ``(devices, block, d)`` stack
    sharded over a 1-D ``jax.sharding.Mesh`` of ``devices`` and mapped through a jitted, ``vmap``-ed
    ``kernel_fn``, so every device runs the same one-tile program and the result does not depend on the
    number of devices (tested bitwise on forced host devices). The next group is dispatched before the
    previous one is copied to the host, so host copies overlap device work. Device memory stays a few
    ``block_size²`` arrays per device whatever n is (the last tiles are padded to the full block shape).

    With ``x2=None`` only the tiles on and above the diagonal are computed and mirrored, and the pairs
    of the same point keep ``kernel_fn``'s exact diagonal.

    Programs: for ntkd's analytic kernels (``mlp_kernel_fn``) one program computes every tile, both
    kernels of a pair in one fused pass; the tile offsets mark the pairs of the same point. Any other
    ``kernel_fn`` gets two, cross tiles ``kernel_fn(a, b, get)`` and diagonal tiles
    ``kernel_fn(a, None, get)``. The compiled programs are kept (an LRU cache of 16 per kind) for later
    calls with the same kernel, tile shapes and devices: tracing and compiling a depth-5 ReLU tile
    takes 1-3 s on a 2-core CPU.

    Args:
      kernel_fn: any callable with the neural-tangents signature ``kernel_fn(x1, x2, get)`` that is
        jit- and vmap-compatible: ntkd's own, an ``ntkd.empirical_kernel_fn``, or a neural-tangents
        ``stax`` kernel_fn (duck typing).
      x1: inputs ``(n1, d)``. x2: inputs ``(n2, d)`` or ``None`` for the symmetric kernel.
      get: ``"ntk"``, ``"nngp"`` (one ``(n1, n2)`` array) or a tuple of names (a namedtuple of arrays).
      block_size: tile edge. On CPU 2048 is a good default. A symmetric CPU kernel that fits in memory
        is faster as ``kernel_fn(x)`` itself, one program of small tiles that computes only one
        triangle and mirrors inside the program (n = 20,000, depth-5 ReLU pair on a 2-core CPU:
        7.4 s against 9.7-11.1 s; benchmarks/README.md). On a GPU the host's copies of the tiles take
        nearly all the time (n = 50,000 on an H100: 20.5 s with 8192, 21.7 s with 2048, of which the
        device's share is under 0.1 s; benchmarks/README.md).
      devices: ``None`` (all ``jax.local_devices()``), a count k (the first k), or a list of devices.
      out: optional preallocated host arrays to write into, ``(n1, n2)`` of ``x1``'s dtype: one array
        for a single ``get``, else a sequence in the order of ``get``. Pass ``np.lib.format.open_memmap``
        arrays for kernels larger than RAM (n = 50,000 in float32 is 10 GB per kernel).
      progress: optional callable ``progress(done_tiles, total_tiles)``.

    Returns:
      NumPy arrays of dtype ``x1.dtype`` (``out`` itself when given); shaped like ``kernel_fn``'s
      output for ``get``.
    """
    block_size = check_int(block_size, "block_size", minimum=1)
    single = isinstance(get, str)
    names = (get,) if single else tuple(get)
    if not names or any(n not in _GETS for n in names):
        raise ValueError(f"`get` must be 'nngp', 'ntk' or a tuple of those; got {get!r}.")
    x1 = check_inputs_2d(x1, "x1")
    symmetric = x2 is None or x2 is x1
    x2 = x1 if symmetric else check_inputs_2d(x2, "x2")
    if x2.shape[1] != x1.shape[1]:
        raise ValueError(f"`x2` has {x2.shape[1]} features but `x1` has {x1.shape[1]}; they must match.")
    n1, n2 = x1.shape[0], x2.shape[0]
    dtype = np.dtype(x1.dtype)
    if out is None:
        out = [np.empty((n1, n2), dtype=dtype) for _ in names]
    else:
        out = [out] if single else list(out)
        if len(out) != len(names) or any(getattr(o, "shape", None) != (n1, n2) or getattr(o, "dtype", None) != dtype
                                          for o in out):
            raise ValueError(f"`out` must be {len(names)} array(s) of shape {(n1, n2)} and dtype {dtype} "
                             f"(one per name in get={get!r}); got "
                             f"{[(getattr(o, 'shape', None), getattr(o, 'dtype', None)) for o in out]}.")
    devs = tuple(_devices(devices))
    n_dev = len(devs)
    b1, b2 = min(block_size, n1), min(block_size, n2)
    cfg = getattr(kernel_fn, "_ntkd_cfg", None)
    own = cfg is not None  # ntkd's analytic kernels: one packed program for every tile
    if own:
        program, spread = _own_tile_program(cfg._replace(names=names), b1, b2, symmetric, devs)
    else:
        key = get if single else names
        try:
            hash(kernel_fn)
        except TypeError:  # not cacheable: programs for this call only
            (cross, diag), spread = _generic_tile_programs.__wrapped__(kernel_fn, key, devs)
        else:
            (cross, diag), spread = _generic_tile_programs(kernel_fn, key, devs)
    x1h = np.asarray(x1)
    x2h = x1h if symmetric else np.asarray(x2)
    starts1, starts2 = range(0, n1, b1), range(0, n2, b2)
    tiles = [(i, j) for i in starts1 for j in starts2 if not (symmetric and j < i)]
    if own:  # one program: diagonal tiles get the exact diagonal from the tile offsets
        kinds = ([], tiles)
    else:  # a generic kernel_fn's diagonal tiles are kernel_fn(a, None): a second program
        kinds = ([t for t in tiles if t[0] == t[1]], [t for t in tiles if t[0] != t[1]]) if symmetric else ([], tiles)
    groups = [(k == 0, g[s:s + n_dev]) for k, g in enumerate(kinds) for s in range(0, len(g), n_dev)]

    def stack(rows, start, size):
        xs = [_pad_rows(rows[s:s + size], size) for s in start]
        xs += [xs[-1]] * (n_dev - len(xs))  # pad the last group with repeats
        return jax.device_put(np.stack(xs), spread)

    def offsets(start):
        start = list(start) + [start[-1]] * (n_dev - len(start))
        return jax.device_put(np.asarray(start, np.int32), spread)

    def launch(is_diag, group):
        xa = stack(x1h, [i for i, _ in group], b1)
        if is_diag:
            return diag(xa)
        xb = stack(x2h, [j for _, j in group], b2)
        if own:
            return program(xa, xb, offsets([i for i, _ in group]), offsets([j for _, j in group]))
        return cross(xa, xb)

    def store(group, blocks):
        if own:  # one packed array: both kernels as complex(first, second), split as views (no copy)
            z = np.asarray(blocks)
            blocks = (z.real, z.imag) if len(names) == 2 else (z,)
        tasks = []
        for o, blk in zip(out, blocks):
            blk = np.asarray(blk)
            for k, (i, j) in enumerate(group):
                t = blk[k, :min(b1, n1 - i), :min(b2, n2 - j)]
                tasks += [(o, t, i, j, s, symmetric and i != j) for s in range(0, t.shape[0], _STRIPE)]
        for f in [pool.submit(_copy_stripe, *a) for a in tasks]:
            f.result()

    done = 0
    pending = None
    with ThreadPoolExecutor(max_workers=min(_COPY_THREADS, os.cpu_count() or 1)) as pool:
        for item in groups + [None]:  # None: no further launch, only the last copy
            # dispatch is asynchronous: this launch overlaps the host copy of the previous group below
            launched = None if item is None else (item[1], launch(*item))
            if pending is not None:
                store(*pending)
                done += len(pending[0])
                if progress is not None:
                    progress(done, len(tiles))
            pending = launched
    if single:
        return out[0]
    return _pack(tuple(names), dict(zip(names, out)))
