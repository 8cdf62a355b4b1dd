"""Activations of ntkd's MLPs: their names and parameters, their infinite-width kernel maps
(the non-ReLU ones; the ReLU family is closed-form in :mod:`ntkd.kernels._recursion`), and the
elementwise functions finite networks apply (:func:`activation_fn`)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from typing import NamedTuple

from ._numerics import asin, set_diag

__all__ = ["ACTIVATIONS", "activation_fn"]

ACTIVATIONS = ("relu", "erf", "identity", "leaky_relu", "ab_relu")


class Act(NamedTuple):
    name: str
    params: tuple


def parse_activation(activation) -> Act:
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
        return Act("ab_relu", (0.0, 1.0))
    if name == "leaky_relu" and len(args) <= 1:
        return Act("ab_relu", (args[0] if args else 0.01, 1.0))
    if name == "ab_relu" and len(args) == 2:
        return Act("ab_relu", args)
    if name == "erf" and len(args) in (0, 3):
        return Act("erf", args or (1.0, 1.0, 0.0))
    if name == "identity" and not args:
        return Act("identity", ())
    raise ValueError(
        f"`activation`={activation!r} is not supported; use one of 'relu', 'erf', 'identity', "
        "('leaky_relu', alpha), ('ab_relu', a, b), ('erf', a, b, c)."
    )


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
    nngp = (a * a * 2 / jnp.pi) * asin(arg) + c * c
    dot = None
    if want_dot:
        one_minus_r2 = (1 - arg) * (1 + arg)
        if diag is not None:  # same point: (D² - (2b²q)²)/D² = (1 + 2·2b²q)/D² exactly
            one_minus_r2 = set_diag(one_minus_r2, (1 + 2 * b2 * q1[:, 0]) / (d1[:, 0] * d1[:, 0]), diag)
        m = jnp.maximum(one_minus_r2, jnp.finfo(sigma.dtype).tiny)
        # √m / m, not 1/√m: XLA rewrites x/√m into x·rsqrt(m), which costs 5x a sqrt in float64 on CPU
        dot = (a * a * b * b * 4 / jnp.pi) * inv_s * (jnp.sqrt(m) / m)
    qq1 = (a * a * 2 / jnp.pi) * asin(b2 * q1 / (1 + b2 * q1)) + c * c
    qq2 = (a * a * 2 / jnp.pi) * asin(b2 * q2 / (1 + b2 * q2)) + c * c
    return nngp, dot, qq1, qq2


def _identity(params, sigma, q1, q2, diag, want_dot):
    return sigma, (jnp.ones((), sigma.dtype) if want_dot else None), q1, q2


ACT_FNS = {"erf": _erf, "identity": _identity}  # the ReLU family is handled in mlp_kernel


def activation_fn(activation):
    """The pointwise function behind an ``activation`` spec of :func:`ntkd.mlp_kernel_fn`."""
    act = parse_activation(activation)
    if act.name == "ab_relu":
        a, b = act.params
        return lambda x: a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0)
    if act.name == "erf":
        a, b, c = act.params
        return lambda x: a * jax.scipy.special.erf(b * x) + c
    return lambda x: x
