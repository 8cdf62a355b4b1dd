"""Numerics of the analytic kernels: stable arcsin, the angle from 1 - cos θ, and 1 - cos θ itself from
the inputs (direct differences for narrow inputs; the Gram matrix for wide ones, with near-duplicate
pairs recomputed from differences)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# ----------------------------------------------------------------------------------------------------
# Activation maps. Each takes the pre-activation covariance ``sigma`` (n1, n2), the variances ``q1`` (n1, 1)
# and ``q2`` (1, n2), and ``diag``: None, or a boolean (n1, n2) mask of the pairs that are the same input
# point (correlation exactly 1 there), and returns (E[φ(u)φ(v)], E[φ'(u)φ'(v)] or None, new q1, new q2).
# ----------------------------------------------------------------------------------------------------
def set_diag(m, value, diag):
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


def asin_small(x):
    """arcsin(x) for |x| <= 1/2 by the polynomial above (float32 or float64 set by x's dtype)."""
    coef = _ASIN_P32 if x.dtype == jnp.float32 else _ASIN_P64
    z = x * x
    p = jnp.asarray(coef[-1], x.dtype)
    for c in coef[-2::-1]:
        p = p * z + c
    return x + x * (z * p)


def asin(x):
    """arcsin on [-1, 1] from :func:`asin_small`: |x| > 1/2 uses asin|x| = π/2 - 2 asin(√((1-|x|)/2))."""
    ax = jnp.abs(x)
    big = ax > 0.5
    r = asin_small(jnp.where(big, jnp.sqrt((1 - jnp.minimum(ax, 1)) / 2), x))
    return jnp.where(big, jnp.sign(x) * (jnp.pi / 2 - 2 * r), r)


@jax.custom_jvp
def sqrt0(x):
    """``√x`` for ``x >= 0`` whose derivative at ``x = 0`` is taken as 0 (instead of +∞).

    Used for √δ and √(δ(2 - δ)) of a δ = 1 - cos θ ∈ [0, 2]. δ reaches 0 (the same point, or
    duplicates) and 2 (antipodal points) only at its own minimum or maximum, where its derivative is 0,
    so the chain rule meets ∞ · 0 and ``jax.grad`` would give NaN. With this choice the NNGP, which is
    differentiable there, gets its true gradient, and the NTK, which has a cone in θ at duplicates
    (ReLU: π - θ with θ ∝ |x - x'|), gets the symmetric subgradient 0 for that part: what central
    differences give (tests/test_kernels.py)."""
    return jnp.sqrt(x)


@sqrt0.defjvp
def _sqrt0_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    r = jnp.sqrt(x)
    pos = r > 0
    return r, jnp.where(pos, dx / (2 * jnp.where(pos, r, 1)), 0)


def angle_from_delta(delta, at_most_one=False):
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
        a = asin_small(jnp.where(lo, sqrt0(delta / 2), 1 - delta))
        return jnp.where(lo, 2 * a, half_pi - a), jnp.where(lo, jnp.pi - 2 * a, half_pi + a)
    lo, hi = delta <= 0.5, delta >= 1.5
    mid = ~(lo | hi)
    u = sqrt0(jnp.where(lo, delta, 2 - delta) / 2)
    a = asin_small(jnp.where(mid, 1 - delta, u))
    theta = jnp.where(lo, 2 * a, jnp.where(mid, half_pi - a, jnp.pi - 2 * a))
    pi_minus = jnp.where(lo, jnp.pi - 2 * a, jnp.where(mid, half_pi + a, 2 * a))
    return theta, pi_minus


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


def sq_distances(x1, x2):
    """|x1_i - x2_j|² ``(n1, n2)`` from differences, summed over the features in order: n1 x n2
    memory, no (n1, n2, d) intermediate. Up to :data:`EXACT_DISTANCE_MAX_DIM` features the sum is
    unrolled; wider inputs loop over unrolled groups of 16 features (zero padded, which adds exact
    zeros); groups of 16 ran faster than 8 or 64 on ``benchmarks/kernel_pair.py --cluster`` (benchmarks/README.md, "Design decisions"), and
    fewer unrolled operations also compile faster."""
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
        delta = set_diag(delta, 0, diag)
    return delta


def gram_delta(gram, q1, q2, diag, d):
    """δ = 1 - gram / (|x||x'|) and the mask of near-duplicate pairs (δ < :data:`NEAR_DELTA`, not the
    same point), for inputs wider than :data:`EXACT_DISTANCE_MAX_DIM`."""
    n1, n2 = _norms(q1, q2, d)
    delta = _finish_delta(1 - gram / (n1 * n2), n1, n2, diag)
    near = delta < NEAR_DELTA
    return delta, (near if diag is None else near & ~diag)


def needs_near_check(act, depth, d):
    """Whether the recursion uses 1 - cos of the inputs from the Gram matrix (the ReLU family, wide inputs)."""
    return act.name == "ab_relu" and depth > 0 and d > EXACT_DISTANCE_MAX_DIM


def one_minus_cos_inputs(x1, x2, q1, q2, diag, gram, exact_near):
    """δ = 1 - cos(x1_i, x2_j), accurate also when the two inputs nearly coincide: from differences,
    ``(|x - x'|² - (|x| - |x'|)²) / (2|x||x'|)`` (no cancellation), for inputs of at most
    :data:`EXACT_DISTANCE_MAX_DIM` features. Wider inputs take ``1 - gram / (|x||x'|)`` (``gram`` =
    x1 x2^T), and with ``exact_near`` their near-duplicate pairs (:data:`NEAR_DELTA`) take the
    formula of differences: only those pairs, gathered, when no point has more than
    :data:`NEAR_PER_ROW` of them, else every pair of the block. :func:`packed_pass` sets ``exact_near``
    for the blocks that have any."""
    d = x1.shape[1]
    n1, n2 = _norms(q1, q2, d)

    def from_differences():
        return _finish_delta(_delta_from_sq(sq_distances(x1, x2), n1, n2), n1, n2, diag)

    if d <= EXACT_DISTANCE_MAX_DIM:
        return from_differences()
    delta, near = gram_delta(gram, q1, q2, diag, d)
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

    return jax.lax.cond(any_unbatched(jnp.max(per_row) > NEAR_PER_ROW), many, few)


def dense_vectors(a, b2):
    """Per-point factors of a Dense layer whose input variance times W_std² is ``a`` (a vector):
    (√A, √Q, √(A/Q), b/√Q) with Q = A + b² the output variance (0 where Q = 0)."""
    u, p = jnp.sqrt(a), jnp.sqrt(a + b2)
    inv_p = jnp.where(p > 0, 1 / jnp.where(p > 0, p, 1), 0)
    return u, p, u * inv_p, math.sqrt(b2) * inv_p


def dense_delta(delta_in, v1, v2, b2):
    """1 - correlation after a Dense layer ``Σ' = W²Σ + b²``, from δ_in and the per-point factors
    ``v = (√A, √Q, √(A/Q), b/√Q)`` of :func:`dense_vectors` (shapes (n1, 1) and (1, n2)):

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


@jax.custom_batching.custom_vmap
def any_unbatched(m):
    """``jnp.any(m)``; under ``jax.vmap`` one unbatched scalar, any over the whole batch (so that a
    conditional on it stays a conditional, not a select that runs both branches)."""
    return jnp.any(m)


@any_unbatched.def_vmap
def _any_unbatched_vmap(axis_size, in_batched, m):
    return any_unbatched(m), False
