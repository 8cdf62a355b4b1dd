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

import math
from collections import namedtuple
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_inputs_2d, check_int, check_positive

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
# and ``q2`` (1, n2), and a flag ``symmetric`` (x2 is x1: the diagonal has correlation exactly 1), and
# returns (E[φ(u)φ(v)], E[φ'(u)φ'(v)] or None, new q1, new q2).
# ----------------------------------------------------------------------------------------------------
def _set_diag(m, value):
    n = min(m.shape)
    idx = jnp.arange(n)
    return m.at[idx, idx].set(value)


def _erf(params, sigma, q1, q2, symmetric, want_dot):
    a, b, c = params
    b2 = 2 * b * b
    d1, d2 = 1 + b2 * q1, 1 + b2 * q2
    arg = jnp.clip(b2 * sigma / jnp.sqrt(d1 * d2), -1, 1)
    nngp = (a * a * 2 / jnp.pi) * jnp.arcsin(arg) + c * c
    dot = None
    if want_dot:
        det = d1 * d2 - (b2 * sigma) ** 2
        if symmetric:  # diagonal: det = (1 + b2 q)^2 - (b2 q)^2 = 1 + 2 b2 q exactly
            det = _set_diag(det, 1 + 2 * b2 * q1[:, 0])
        dot = (a * a * b * b * 4 / jnp.pi) / jnp.sqrt(jnp.maximum(det, jnp.finfo(sigma.dtype).tiny))
    qq1 = (a * a * 2 / jnp.pi) * jnp.arcsin(b2 * q1 / (1 + b2 * q1)) + c * c
    qq2 = (a * a * 2 / jnp.pi) * jnp.arcsin(b2 * q2 / (1 + b2 * q2)) + c * c
    return nngp, dot, qq1, qq2


def _identity(params, sigma, q1, q2, symmetric, want_dot):
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
#: (exact for near-duplicates); wider inputs use the Gram matrix (cheaper, ~eps·sqrt(d) absolute error).
EXACT_DISTANCE_MAX_DIM = 64


def _theta_minus_sin(theta):
    """θ - sin θ without cancellation: Taylor series below 0.5, direct above."""
    t2 = theta * theta
    c = (1 / 6, 1 / 120, 1 / 5040, 1 / 362880, 1 / 39916800, 1 / 6227020800, 1 / 1307674368000)  # 1/(2k+1)!
    series = c[6]
    for coef in c[5::-1]:
        series = coef - t2 * series
    series = theta * t2 * series
    return jnp.where(theta < 0.5, series, theta - jnp.sin(theta))


def _one_minus_cos_inputs(x1, x2, q1, q2, symmetric):
    """δ = 1 - cos(x1_i, x2_j), accurate also when the two inputs nearly coincide."""
    d = x1.shape[1]
    n1 = jnp.sqrt(q1 * d)
    n2 = jnp.sqrt(q2 * d)
    if d <= EXACT_DISTANCE_MAX_DIM:
        sq = jnp.zeros((x1.shape[0], x2.shape[0]), x1.dtype)
        for i in range(d):  # unrolled: n1 x n2 memory, no (n1, n2, d) intermediate
            diff = x1[:, i:i + 1] - x2[None, :, i]
            sq = sq + diff * diff
        delta = (sq - (n1 - n2) ** 2) / (2 * n1 * n2)
    else:
        gram = jnp.matmul(x1, x2.T, precision=jax.lax.Precision.HIGHEST)
        delta = 1 - gram / (n1 * n2)
    delta = jnp.where(n1 * n2 > 0, delta, 1)
    delta = jnp.clip(delta, 0, 2)
    if symmetric:
        delta = _set_diag(delta, 0)
    return delta


def _dense_delta(delta_in, a1, a2, b2):
    """1 - correlation after a Dense layer ``Σ' = W²Σ + b²`` given δ_in, A = W² q (both points).

    sqrt(Q Q') - Σ' = b² (√A - √A')² / (√(QQ') + √(AA') + b²) + √(AA') δ_in, with Q = A + b²:
    a sum of non-negative terms, so no cancellation when the two points nearly coincide.
    """
    ra1, ra2 = jnp.sqrt(a1), jnp.sqrt(a2)
    rq = jnp.sqrt((a1 + b2) * (a2 + b2))
    raa = ra1 * ra2
    gap = b2 * (ra1 - ra2) ** 2 / (rq + raa + b2) + raa * delta_in
    return jnp.where(rq > 0, gap / jnp.where(rq > 0, rq, 1), 1)


def _mlp_kernel(x1, x2, *, depth, act, W_std, b_std, parameterization, width, want_ntk):
    """Core recursion. ``x2 is None`` means the symmetric kernel k(x1, x1) with an exact diagonal.

    For the ReLU family the angle between the two pre-activations is carried as δ = 1 - cos θ, updated
    by cancellation-free formulas (``_dense_delta``; 1/2 - J(θ) = ((π-θ)δ + θ - sin θ)/(2π)), so that
    θ = 2 asin(sqrt(δ/2)) stays accurate in float32 for near-duplicate inputs, where θ ≈ sqrt(2δ) would
    otherwise amplify the rounding of cos θ (neural-tangents loses up to ~1e-4 there and on the diagonal).
    """
    symmetric = x2 is None
    dtype = x1.dtype
    d = x1.shape[1]
    if symmetric:
        x2 = x1
    w2 = W_std**2
    b2 = 0.0 if b_std is None else b_std**2
    has_bias = b_std is not None
    relu_family = act.name == "ab_relu"

    # Input layer statistics: nngp_in = x1 x2^T / d.
    nngp_in = jnp.matmul(x1, x2.T, precision=jax.lax.Precision.HIGHEST) / d
    q1 = (jnp.sum(x1 * x1, axis=1) / d)[:, None]
    q2 = (jnp.sum(x2 * x2, axis=1) / d)[None, :]
    if symmetric:
        nngp_in = _set_diag(nngp_in, q1[:, 0])
    delta = _one_minus_cos_inputs(x1, x2, q1, q2, symmetric) if relu_family else None

    def dense(sig_in, ntk_in, q1_in, q2_in, fan_in):
        sig = w2 * sig_in + b2
        ntk = None
        if want_ntk:
            if parameterization == "ntk":
                ntk = sig if ntk_in is None else sig + w2 * ntk_in
            else:  # standard: fan_in * nngp_in (+1 for the bias) + W_std^2 ntk_in
                ntk = fan_in * sig_in + (1.0 if has_bias else 0.0)
                if ntk_in is not None:
                    ntk = ntk + w2 * ntk_in
        return sig, ntk, w2 * q1_in + b2, w2 * q2_in + b2

    def relu_act(sigma, delta, q1, q2):
        a, b = act.params
        s = jnp.sqrt(q1 * q2)
        delta = jnp.clip(delta, 0, 2)
        theta = 2 * jnp.arcsin(jnp.sqrt(delta / 2))
        cos = 1 - delta
        sin = jnp.sqrt(delta * (2 - delta))
        j = (sin + (jnp.pi - theta) * cos) * (1 / (2 * jnp.pi))  # E[relu relu] / s
        half_minus_j = ((jnp.pi - theta) * delta + _theta_minus_sin(theta)) * (1 / (2 * jnp.pi))
        amb2, ab = (a - b) ** 2, a * b
        big_s = (a * a + b * b) / 2
        nngp = s * (amb2 * j + ab * cos)
        delta_act = (amb2 * half_minus_j + ab * delta) / big_s if big_s > 0 else jnp.ones_like(delta)
        dot = amb2 * (jnp.pi - theta) * (1 / (2 * jnp.pi)) + ab if want_ntk else None
        return nngp, dot, big_s * q1, big_s * q2, delta_act

    sigma, ntk, q1n, q2n = dense(nngp_in, None, q1, q2, d)
    if relu_family:
        delta = _dense_delta(delta, w2 * q1, w2 * q2, b2)
    q1, q2 = q1n, q2n
    act_fn = _ACT_FNS.get(act.name)
    for _ in range(depth):
        if relu_family:
            sig_act, dot, q1a, q2a, delta = relu_act(sigma, delta, q1, q2)
            delta = _dense_delta(delta, w2 * q1a, w2 * q2a, b2)
        else:
            sig_act, dot, q1a, q2a = act_fn(act.params, sigma, q1, q2, symmetric, want_ntk)
        ntk_act = ntk * dot if want_ntk else None
        sigma, ntk, q1, q2 = dense(sig_act, ntk_act, q1a, q2a, width)
    return sigma.astype(dtype), (ntk.astype(dtype) if want_ntk else None)


# One compiled program per (configuration, shapes, dtype): called outside ``jax.jit`` the recursion would
# otherwise dispatch op by op (about 15x slower for a 4096 x 2048 depth-5 kernel on CPU); inside an outer
# jit or vmap this nested jit is inlined.
_mlp_kernel_jit = jax.jit(_mlp_kernel, static_argnames=("depth", "act", "W_std", "b_std", "parameterization",
                                                        "width", "want_ntk"))


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
        nngp, ntk = _mlp_kernel_jit(
            x1, x2, depth=depth, act=act, W_std=W_std, b_std=b_std,
            parameterization=parameterization, width=width, want_ntk="ntk" in names,
        )
        return _pack(get, {"nngp": nngp, "ntk": ntk})

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
    """Pad ``x`` to ``size`` rows by repeating its last row (keeps every row a valid input)."""
    n = x.shape[0]
    if n == size:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(x[-1:], (size - n,) + x.shape[1:])], axis=0)


def kernel_matrix(kernel_fn: Callable, x1, x2=None, *, get="ntk", block_size: int = 2048, progress=None):
    """Evaluate ``kernel_fn`` on all pairs of rows in tiles, with bounded peak memory.

    The ``n1 × n2`` result is assembled on the host (NumPy) from ``block_size × block_size`` tiles
    computed by a jitted ``kernel_fn``; device memory stays O(block_size²) whatever n is, and only
    one compilation happens (the last tile is padded to the full block shape). With ``x2=None`` only the
    tiles on and above the diagonal are computed and mirrored; diagonal tiles are evaluated as
    ``kernel_fn(xb, None)`` so the exact-diagonal treatment of ``kernel_fn`` is kept.

    Args:
      kernel_fn: any callable with the neural-tangents signature ``kernel_fn(x1, x2, get)``; ntkd's
        own, an ``ntkd.empirical_kernel_fn``, or a neural-tangents ``stax`` kernel_fn (duck typing).
      x1: inputs ``(n1, d)``. x2: inputs ``(n2, d)`` or ``None`` for the symmetric kernel.
      get: ``"ntk"``, ``"nngp"`` (one ``(n1, n2)`` array) or a tuple of names (a namedtuple of arrays).
      block_size: tile edge. Memory on the device is a few ``block_size²`` arrays.
      progress: optional callable ``progress(done_tiles, total_tiles)``.

    Returns:
      NumPy arrays of dtype ``x1.dtype``; shaped like ``kernel_fn``'s output for ``get``.
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
    b1, b2 = min(block_size, n1), min(block_size, n2)

    def as_tuple(out):
        return (out,) if single else tuple(out)

    cross = jax.jit(lambda a, b: as_tuple(kernel_fn(a, b, get)))
    diag = jax.jit(lambda a: as_tuple(kernel_fn(a, None, get)))
    out = [np.empty((n1, n2), dtype=np.dtype(x1.dtype)) for _ in names]
    starts1, starts2 = range(0, n1, b1), range(0, n2, b2)
    tiles = [(i, j) for i in starts1 for j in starts2 if not (symmetric and j < i)]
    for t, (i, j) in enumerate(tiles):
        xa = _pad_rows(x1[i:i + b1], b1)
        ia, ja = min(b1, n1 - i), min(b2, n2 - j)
        if symmetric and i == j:
            blocks = diag(xa)
        else:
            blocks = cross(xa, _pad_rows(x2[j:j + b2], b2))
        for o, blk in zip(out, blocks):
            blk = np.asarray(blk)[:ia, :ja]
            o[i:i + ia, j:j + ja] = blk
            if symmetric and i != j:
                o[j:j + ja, i:i + ia] = blk.T
        if progress is not None:
            progress(t + 1, len(tiles))
    if single:
        return out[0]
    return _pack(tuple(names), dict(zip(names, out)))
