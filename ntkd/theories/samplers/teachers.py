"""Teachers that may be (approximate) conditional samplers (Kaplun et al. 2022, brief §3 and §5.2):
exact k-nearest neighbours, kernel machines (interpolating, ridge, or NTK gradient flow stopped at time
t), and ensembles of teachers.

Shapes: training inputs ``x_train (m, d)``, labels ``y_train (m,)`` int in 0..K-1 (or soft targets
``(m, K)`` for kernel machines), queries ``x (n, d)``. Scores are ``(n, K)``; a teacher's hard label is
``argmax`` of its scores (ties -> the lowest class). All functions are jit-compatible; kernel machines
are differentiable in the kernel bandwidth, the targets, the ridge and t.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..._core.checks import check_inputs_2d, check_int, is_concrete
from ..._core.linalg import mm
from ..._core.spectral import factor_usable, flow_phi, pinv_coeffs
from ...kernels import shared_mlp_kernel_fn
from ...losses import one_hot as _one_hot

__all__ = [
    "KernelMachine",
    "ensemble_sum_logits",
    "ensemble_vote",
    "fit_kernel_machine",
    "gaussian_kernel",
    "hard_labels",
    "kernel_machine_scores",
    "knn_votes",
    "laplace_kernel",
    "nearest_neighbors",
    "one_hot",
    "random_teacher_labels",
    "relu_kernel",
]


def _check_pair(x_train, x):
    x_train = check_inputs_2d(x_train, "x_train")
    x = check_inputs_2d(x, "x").astype(x_train.dtype)
    if x.shape[1] != x_train.shape[1]:
        raise ValueError(f"`x` has {x.shape[1]} features but `x_train` has {x_train.shape[1]}; both must be "
                         "(·, d) with the same d.")
    return x_train, x


def _check_labels(y, m, name="y_train"):
    y = jnp.asarray(y)
    if y.shape != (m,) or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`{name}` must be integer class labels of shape ({m},); got {y.dtype} {y.shape}.")
    return y


def _blocked(fn, x, block):
    """``fn`` applied to row blocks of ``x`` (padded to a multiple of ``block``) with ``lax.map``: memory
    O(block · m) instead of O(n · m)."""
    n = x.shape[0]
    if n <= block:
        return fn(x)
    nb = -(-n // block)
    xp = jnp.concatenate([x, jnp.broadcast_to(x[:1], (nb * block - n,) + x.shape[1:])])
    out = jax.lax.map(fn, xp.reshape((nb, block) + x.shape[1:]))
    return jax.tree_util.tree_map(lambda a: a.reshape((nb * block,) + a.shape[2:])[:n], out)


#: up to this many features squared distances are summed from differences (exact 0 at coincident points)
EXACT_DISTANCE_MAX_DIM = 4


def _sq_dist(a, b):
    """Squared Euclidean distances ``(na, nb)``: from differences for d <= EXACT_DISTANCE_MAX_DIM, else
    from the expansion |a|² - 2a·b + |b|² clipped at 0 (absolute error ~eps·|x|²)."""
    if a.shape[1] <= EXACT_DISTANCE_MAX_DIM:
        return sum((a[:, i, None] - b[None, :, i]) ** 2 for i in range(a.shape[1]))
    d2 = jnp.sum(a * a, 1)[:, None] - 2 * mm(a, b.T) + jnp.sum(b * b, 1)[None, :]
    return jnp.maximum(d2, 0)


def _k_smallest(d2, k):
    """Indices and values of the k smallest entries of each row, in (value, index) order: k passes of
    argmin over the entries after the previous (value, index) pair (XLA's CPU sort/top_k is ~50x slower)."""
    cols = jnp.arange(d2.shape[1])

    def step(prev, _):
        pv, pi = prev
        after = (d2 > pv[:, None]) | ((d2 == pv[:, None]) & (cols[None, :] > pi[:, None]))
        i = jnp.argmin(jnp.where(after, d2, jnp.inf), axis=1)
        v = jnp.take_along_axis(d2, i[:, None], axis=1)[:, 0]
        return (v, i), (i, v)

    init = (jnp.full(d2.shape[0], -jnp.inf, d2.dtype), jnp.full(d2.shape[0], -1, cols.dtype))
    idx, val = jax.lax.scan(step, init, None, length=k)[1]
    return idx.T.astype(jnp.int32), val.T


@functools.partial(jax.jit, static_argnames=("k", "block"))
def _knn(x_train, x, k, block):
    return _blocked(lambda xb: _k_smallest(_sq_dist(xb, x_train), k), x, block)


def nearest_neighbors(x_train, x, *, k: int = 1, block: int = 1024):
    """Exact k nearest training points of each query (Euclidean), by brute force over row blocks.

    Returns ``(idx (n, k) int32, sq_dist (n, k))``, nearest first; among equal distances the lower
    training index comes first. Distances are exact differences for d <= 4, else from |a|² - 2a·b + |b|² (rounding
    ~eps·|x|², so points closer than that may swap). Memory is O(block · m), time O(k · n · m); compiled once per (shapes, k, block).
    """
    x_train, x = _check_pair(x_train, x)
    k = check_int(k, "k", minimum=1)
    if k > x_train.shape[0]:
        raise ValueError(f"`k`={k} exceeds the {x_train.shape[0]} training points.")
    return _knn(x_train, x, k, check_int(block, "block", minimum=1))


def one_hot(y, num_classes: int, dtype=None):
    """``(n,)`` int labels -> ``(n, K)`` one-hot rows (float dtype ``dtype``, default the JAX float):
    :func:`ntkd.losses.one_hot` (labels outside [0, K) raise eagerly, NaN rows when traced)."""
    return _one_hot(y, num_classes, dtype=dtype)


def knn_votes(x_train, y_train, x, *, k: int = 1, num_classes: int, block: int = 1024):
    """k-NN teacher: fraction of the k nearest training labels in each class, ``(n, K)`` (k = 1: the 1-NN
    rule f_S(x) = y_π(x) of brief §3.1, a one-hot row). ``hard_labels`` of it is the k-NN majority vote."""
    x_train, x = _check_pair(x_train, x)
    y_train = _check_labels(y_train, x_train.shape[0])
    K = check_int(num_classes, "num_classes", minimum=2)
    idx, _ = nearest_neighbors(x_train, x, k=k, block=block)
    return jnp.mean(one_hot(y_train[idx], K, x_train.dtype), axis=1)


def hard_labels(scores):
    """``argmax`` over the last axis (the class), int32; ties -> the lowest class."""
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def _bandwidth(sigma):
    s = jnp.asarray(sigma)
    if is_concrete(s) and not bool(jnp.all(s > 0)):
        raise ValueError(f"`sigma` must be > 0; got {sigma!r}.")
    return jnp.where(s > 0, s, jnp.nan)


def _safe_sqrt(d2):
    pos = d2 > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, d2, 1)), 0)


def laplace_kernel(sigma) -> Callable:
    """``k(x, x') = exp(-|x - x'| / σ)``; returns ``kernel_fn(x1 (n1, d), x2 (n2, d)) -> (n1, n2)``
    (differentiable in σ and in the inputs, with derivative 0 at coincident points)."""
    s = _bandwidth(sigma)
    return lambda x1, x2: jnp.exp(-_safe_sqrt(_sq_dist(x1, x2)) / s.astype(x1.dtype))


def gaussian_kernel(sigma) -> Callable:
    """``k(x, x') = exp(-|x - x'|² / (2σ²))``; returns ``kernel_fn(x1, x2) -> (n1, n2)``."""
    s = _bandwidth(sigma)
    return lambda x1, x2: jnp.exp(-_sq_dist(x1, x2) / (2 * s.astype(x1.dtype) ** 2))


def relu_kernel(depth: int = 2, *, get: str = "ntk", center=0.0, offset=1.0) -> Callable:
    """He-normalised ReLU NTK or NNGP (arc-cosine recursion, brief Appendix A) on inputs embedded on the
    sphere: z = (x - center, offset) / |(x - center, offset)|, Σ⁰ = ⟨z, z'⟩, Σʰ = (sin θ + (π - θ) cos θ)/π,
    Θʰ = Θʰ⁻¹ (π - θ)/π + Σʰ, Θ⁰ = Σ⁰. This is ``ntkd.mlp_kernel_fn(depth, W_std=√2, b_std=None)`` on
    √(d+1)·z (ntkd's input covariance divides by the d+1 features), halved (its readout layer's W_std² = 2
    is not part of the brief's recursion; the scale matters for ridge and time units). The brief uses center 0.5, offset 0.5
    for the [0,1]^d tasks and center 0, offset 1 for Gaussian inputs."""
    depth = check_int(depth, "depth", minimum=1)
    if get not in ("ntk", "nngp"):
        raise ValueError(f"`get` must be 'ntk' or 'nngp'; got {get!r}.")
    kf = shared_mlp_kernel_fn(depth, "relu", math.sqrt(2.0), None)

    def embed(x):
        z = jnp.concatenate([x - center, jnp.full((x.shape[0], 1), offset, x.dtype)], axis=1)
        return z / jnp.linalg.norm(z, axis=1, keepdims=True) * math.sqrt(z.shape[1])

    return lambda x1, x2: kf(embed(x1), embed(x2), get) / 2  # ntkd's readout Dense has W_std² = 2


def _solve_psd(k, y):
    """K⁺ y: Cholesky (3x cheaper than eigh), or the minimum-norm eigen-solution when the factor is
    unusable (numerically singular K); a ``lax.cond`` under tracing."""
    c = jax.scipy.linalg.cho_factor(k, lower=True)
    sol = jax.scipy.linalg.cho_solve(c, y)
    ok = factor_usable(c[0]) & jnp.isfinite(sol).all()

    def pinv():
        evals, evecs = jnp.linalg.eigh(k)
        return mm(evecs, pinv_coeffs(evals)[:, None] * mm(evecs.T, y))
    if is_concrete(ok):
        return sol if bool(ok) else pinv()
    return jax.lax.cond(ok, lambda: sol, pinv)


class KernelMachine(NamedTuple):
    """A fitted kernel machine f(x) = k(x, X) α: training inputs ``x_train (m, d)`` and dual weights
    ``alpha (m, K)``."""
    x_train: jax.Array
    alpha: jax.Array


def fit_kernel_machine(kernel_fn: Callable, x_train, y_train, *, num_classes=None, ridge=0.0,
                       t=None) -> KernelMachine:
    """Kernel teacher/student on one-hot (or soft) targets Y ``(m, K)``, brief §3.2:

    * ``t=None`` (or inf): α = (K + ridge·I)⁺ Y by Cholesky, the minimum-norm interpolant at ridge = 0
      (a numerically singular K falls back to the eigen pseudo-inverse, eigenvalues below m·eps·λ_max
      dropped) and kernel ridge regression at ridge > 0 (absolute ridge, as in the
      brief's ``solve(K + λI, ·)``);
    * finite ``t``: gradient flow on the MSE ``(1/2m) Σ_i |f(x_i) - y_i|²`` from f = 0 (the NTK teacher at
      time t with K = Θ), α(t) = V diag((1 - e^{-λ t/m})/λ) Vᵀ Y: the rate is Θ/m per unit time, the
      brief's units, whatever K; t = ∞ recovers the interpolant.

    One-hot and centred one-hot targets give the same argmax (linearity), and for K = 2 the score
    difference equals the ±1-target predictor. ``y_train`` int ``(m,)`` needs ``num_classes``; float
    ``(m, K)`` targets are used as given. Differentiable in the targets, ridge, t and the kernel's
    parameters (eigenvalue derivatives: distinct eigenvalues assumed).
    """
    x_train = check_inputs_2d(x_train, "x_train")
    m = x_train.shape[0]
    y = jnp.asarray(y_train)
    if jnp.issubdtype(y.dtype, jnp.integer):
        if num_classes is None:
            raise ValueError("integer `y_train` needs `num_classes` (the number of classes K).")
        y = one_hot(_check_labels(y, m), check_int(num_classes, "num_classes", minimum=2), x_train.dtype)
    elif y.ndim != 2 or y.shape[0] != m:
        raise ValueError(f"`y_train` must be int labels ({m},) or targets ({m}, K); got {y.shape}.")
    y = y.astype(x_train.dtype)
    ridge = jnp.asarray(ridge, x_train.dtype)
    if is_concrete(ridge) and not bool(ridge >= 0):
        raise ValueError(f"`ridge` must be >= 0; got {ridge!r}.")
    ridge = jnp.where(ridge >= 0, ridge, jnp.nan)
    k = kernel_fn(x_train, x_train)
    k = (k + k.T) / 2 + ridge * jnp.eye(m, dtype=k.dtype)
    if t is None or (is_concrete(t) and math.isinf(float(t))):
        return KernelMachine(x_train, _solve_psd(k, y))
    evals, evecs = jnp.linalg.eigh(k)
    t = jnp.asarray(t, k.dtype)
    if is_concrete(t) and not bool(t >= 0):
        raise ValueError(f"`t` must be >= 0 or None (t = ∞); got {t!r}.")
    coef = jnp.where(t >= 0, flow_phi(evals, t, m), jnp.nan)
    return KernelMachine(x_train, mm(evecs, coef[:, None] * mm(evecs.T, y)))


def kernel_machine_scores(kernel_fn: Callable, machine: KernelMachine, x, *, block: int = 2048):
    """Scores ``k(x, X) α`` ``(n, K)`` of a fitted :class:`KernelMachine`, over row blocks of ``x``
    (compiled once per ``kernel_fn`` object and shapes: build a kernel once and reuse it)."""
    x_train, x = _check_pair(machine.x_train, x)
    return _scores(kernel_fn, x_train, machine.alpha, x, check_int(block, "block", minimum=1))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _scores(kernel_fn, x_train, alpha, x, block):
    # compiled once per kernel_fn object and shapes: reuse one kernel_fn across calls
    return _blocked(lambda xb: mm(kernel_fn(xb, x_train), alpha), x, block)


def ensemble_vote(labels, num_classes: int):
    """Majority vote of R teachers: ``labels (R, n)`` int -> ``(n,)`` (ties -> the lowest class)."""
    return hard_labels(jnp.sum(one_hot(labels, num_classes), axis=0))


def ensemble_sum_logits(scores):
    """The code's ``ensemble=True``: argmax of the summed scores ``(R, n, K)`` of R teachers -> ``(n,)``."""
    return hard_labels(jnp.sum(scores, axis=0))


def random_teacher_labels(key, labels, *, per: str = "example", batch_size: int = 128):
    """Labels from a teacher drawn uniformly at random out of R: ``labels (R, n)`` -> ``(n,)``.

    ``per="example"``: an independent teacher for every example; ``per="batch"``: one teacher for each
    consecutive block of ``batch_size`` examples (the authors' code, ``max_teachers`` with one
    ``randperm`` draw per minibatch)."""
    R, n = labels.shape
    if per == "example":
        which = jax.random.randint(key, (n,), 0, R)
    elif per == "batch":
        b = check_int(batch_size, "batch_size", minimum=1)
        which = jnp.repeat(jax.random.randint(key, (-(-n // b),), 0, R), b)[:n]
    else:
        raise ValueError(f"`per` must be 'example' or 'batch'; got {per!r}.")
    return jnp.take_along_axis(labels, which[None], axis=0)[0]
