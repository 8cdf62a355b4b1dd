"""Empirical (finite-width) NTK and linearization of any ``apply_fn(params, x)``.

``params`` is any pytree (a Flax linen variables dict, the ``nnx.State`` of an NNX model, a tuple of
arrays ...). Outputs of ``apply_fn`` are ``(n,)`` (one logit) or ``(n, k)``. Only public JAX
transformations are used (``jax.jvp``, ``jax.vjp``, ``jax.vmap``).

Convention (neural-tangents' ``empirical_ntk_fn``): ``Θ̂(x, x') = Σ_p ∂f(x)/∂p ∂f(x')/∂p``. With
``trace_axes=(-1,)`` (default) the output axis is traced and divided by k, giving ``(n1, n2)``; with
``trace_axes=()`` the full ``(n1, n2, k, k)`` block kernel is returned (``(n1, n2)`` for scalar outputs).

Methods: structured derivatives for dense layers (:mod:`.structured`, chosen by ``method="auto"`` when
it applies), per-example Jacobian contraction, NTK-vector products.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._core.checks import check_finite, check_int
from .._core.linalg import einsum, mm
from .base import normalize_get, pack
from .structured import structured_ntk, structured_plan

__all__ = ["METHODS", "empirical_kernel_fn", "empirical_ntk", "flat_params", "linearize", "nnx_apply_fn"]

METHODS = ("auto", "structured", "jacobian", "ntvp")  #: values of ``empirical_ntk(method=...)``


def _check_x(x, name):
    if x is None:
        raise ValueError(f"`{name}` is None; pass a batch of inputs.")
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"`{name}` must have a leading batch axis; got a scalar.")
    check_finite(x, name)
    return x


def _as_2d(out):
    """(n,) -> (n, 1); (n, k) stays; anything else is flattened after the batch axis."""
    return out.reshape(out.shape[0], -1)


def _finish(theta, k, trace_axes, scalar_out):
    """theta: (n1, n2, k, k) -> requested layout."""
    if scalar_out:
        return theta[:, :, 0, 0]
    if trace_axes in ((-1,), (1,)):
        return jnp.trace(theta, axis1=2, axis2=3) / k
    return theta


def _per_example(apply_fn, x):
    """``x_i -> (k,)`` outputs of ``apply_fn`` on the single example ``x_i`` (a batch of one)."""
    return lambda p, xi: _as_2d(apply_fn(p, xi[None]))[0]


def _ntk_jacobian(apply_fn, params, x1, x2, per_example):
    """Θ̂ by materialized Jacobians: J1 (n1 k, P) @ J2^T (P, n2 k), leaf by leaf (no ravel copy).

    ``per_example``: each row of J is one reverse pass through one example, ``vmap``-ed over examples
    (cost O(n) passes). Otherwise ``jacrev`` of the whole batch (n·k reverse passes through all n
    examples, O(n²)), for models whose examples interact (e.g. batch statistics)."""
    def jac(x):
        if per_example:
            f = _per_example(apply_fn, x)
            return jax.vmap(lambda xi: jax.jacrev(f)(params, xi))(x)  # leaves (n, k, ...)
        return jax.jacrev(lambda p: _as_2d(apply_fn(p, x)))(params)

    j1 = jac(x1)
    j2 = j1 if x2 is None else jac(x2)
    leaves1, leaves2 = jax.tree_util.tree_leaves(j1), jax.tree_util.tree_leaves(j2)
    n1, k = leaves1[0].shape[:2]
    n2 = leaves2[0].shape[0]
    theta = 0
    for a, b in zip(leaves1, leaves2):
        a2 = a.reshape(n1 * k, -1)
        b2 = b.reshape(n2 * k, -1)
        theta = theta + mm(a2, b2.T)
    return theta.reshape(n1, k, n2, k).transpose(0, 2, 1, 3), k


def _ntk_ntvp(apply_fn, params, x1, x2, batch_size, per_example):
    """Θ̂ by NTK-vector products: column (j, c) is J1 (J2^T e_jc) = jvp(f(·, x1), vjp(f(·, x2), e_jc)).

    ``per_example``: the vjp runs through example j alone (one pass), otherwise through the whole batch
    x2. Memory is O(batch_size · P) instead of O(n · P); columns are mapped in batches of ``batch_size``.
    """
    x2_ = x1 if x2 is None else x2
    out2 = jax.eval_shape(lambda p: _as_2d(apply_fn(p, x2_)), params)
    n2, k = out2.shape
    f1 = lambda p: _as_2d(apply_fn(p, x1))

    if per_example:
        f = _per_example(apply_fn, x2_)
        f1 = lambda p: jax.vmap(lambda xi: f(p, xi))(x1)

        def column(args):
            xj, ct = args
            _, vjp_fn = jax.vjp(lambda p: f(p, xj), params)
            (tangent,) = vjp_fn(ct)
            return jax.jvp(f1, (params,), (tangent,))[1]  # (n1, k)

        xs = jnp.repeat(x2_, k, axis=0)  # row j k + c: example j, output c
        cts = jnp.tile(jnp.eye(k, dtype=out2.dtype), (n2, 1))
        cols = jax.lax.map(column, (xs, cts), batch_size=min(batch_size, n2 * k))
    else:
        _, vjp_fn = jax.vjp(lambda p: _as_2d(apply_fn(p, x2_)), params)

        def column(ct_flat):
            (tangent,) = vjp_fn(ct_flat.reshape(n2, k))
            return jax.jvp(f1, (params,), (tangent,))[1]

        cols = jax.lax.map(column, jnp.eye(n2 * k, dtype=out2.dtype), batch_size=min(batch_size, n2 * k))
    n1 = cols.shape[1]
    return cols.reshape(n2, k, n1, k).transpose(2, 0, 3, 1), k


def empirical_ntk(apply_fn: Callable, params, x1, x2=None, *, trace_axes=(-1,), method="auto",
                  batch_size: int = 64, per_example: bool = True):
    """Empirical NTK ``Θ̂(x1, x2)`` of ``apply_fn`` at ``params``.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n,) or (n, k)`` outputs. A linen ``model.apply`` works as is;
        for Flax NNX use ``ntkd.nnx_apply_fn(model)``.
      params: pytree of parameters to differentiate (only these; other state is closed over).
      x1: inputs with a leading batch axis ``(n1, ...)``. x2: ``(n2, ...)`` or ``None`` (x2 = x1).
      trace_axes: ``(-1,)`` averages over the k outputs (neural-tangents' default), giving
        ``(n1, n2)``; ``()`` keeps the ``(n1, n2, k, k)`` block kernel.
      method: ``"auto"`` (default): ``"structured"`` when some parameter is the weight of a dense
        product and ``per_example`` is true, else ``"jacobian"``; :func:`ntkd.kernels.structured_plan`
        says which and why. ``"structured"``: structured derivatives (:mod:`ntkd.kernels.structured`),
        ``Σ_layers (A1 A2ᵀ) ⊙ (G1 G2ᵀ)`` for dense weights and Jacobian rows for the other leaves,
        O(n · Σ widths) memory, matrix products over the layers instead of O(n · P) Jacobians.
        ``"jacobian"`` (materialize per-example Jacobians and contract) or ``"ntvp"`` (NTK-vector
        products, memory O(batch_size · P)). All agree to rounding.
      batch_size: columns per batch in ``"ntvp"``.
      per_example: ``True`` (default) when each output row depends only on its own input row, as
        for MLPs and any model without batch statistics: derivatives are taken one example at a time
        and ``vmap``-ed (neural-tangents' ``vmap_axes=0``), O(n) passes. ``False`` differentiates the
        whole batch at once (O(n²) passes), correct also when examples interact.

    Returns:
      ``(n1, n2)`` (or ``(n1, n2, k, k)``) array in the dtype of the outputs.
    """
    if not callable(apply_fn):
        raise ValueError("`apply_fn` must be callable as apply_fn(params, x).")
    trace_axes = tuple(trace_axes)
    if trace_axes not in ((), (-1,), (1,)):
        raise ValueError(f"`trace_axes` must be (-1,) or (); got {trace_axes!r}.")
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(map(repr, METHODS))}; got {method!r}.")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    x1 = _check_x(x1, "x1")
    if x2 is not None:
        x2 = _check_x(x2, "x2")
        if x2.shape[1:] != x1.shape[1:]:
            raise ValueError(f"`x2` has per-example shape {x2.shape[1:]} but `x1` has {x1.shape[1:]}.")
    if method == "auto":
        method = structured_plan(apply_fn, params, x1, per_example=per_example).method
    if method == "structured":
        if not per_example:
            raise ValueError("`method`='structured' needs per-example outputs; with per_example=False use "
                             "method='jacobian' or 'ntvp'.")
        return structured_ntk(apply_fn, params, x1, x2, trace_axes=trace_axes)
    scalar_out = jax.eval_shape(lambda p: apply_fn(p, x1[:1]), params).ndim == 1
    if method == "jacobian":
        theta, k = _ntk_jacobian(apply_fn, params, x1, x2, per_example)
    else:
        theta, k = _ntk_ntvp(apply_fn, params, x1, x2, batch_size, per_example)
    return _finish(theta, k, trace_axes, scalar_out)


def empirical_kernel_fn(apply_fn: Callable, params, *, trace_axes=(-1,), method="auto"):
    """Wrap the empirical kernels of a finite model as a neural-tangents style ``kernel_fn``.

    Returns ``kernel_fn(x1, x2=None, get=None)``: ``ntk`` is :func:`empirical_ntk`; ``nngp`` is the
    output product ``f(x1) f(x2)^T / k`` (neural-tangents' ``empirical_nngp_fn`` with the same
    ``trace_axes``). Usable wherever ntkd takes a kernel_fn, e.g. :func:`ntkd.kernel_matrix`.
    """
    def kernel_fn(x1, x2=None, get=None):
        get, names = normalize_get(get)
        values = {}
        if "ntk" in names:
            values["ntk"] = empirical_ntk(apply_fn, params, x1, x2, trace_axes=trace_axes, method=method)
        if "nngp" in names:
            f1 = _as_2d(apply_fn(params, x1))
            f2 = f1 if x2 is None else _as_2d(apply_fn(params, x2))
            full = einsum("ia,jb->ijab", f1, f2)
            values["nngp"] = _finish(full, f1.shape[1], tuple(trace_axes),
                                     jax.eval_shape(lambda p: apply_fn(p, x1[:1]), params).ndim == 1)
        return pack(get, values)

    return kernel_fn


def linearize(apply_fn: Callable, params) -> Callable:
    """First-order Taylor expansion of ``apply_fn`` around ``params`` (the "linearized network").

    Returns ``f_lin(new_params, x) = f(params, x) + J(params, x) · (new_params - params)``, computed with
    one ``jax.jvp`` (no Jacobian is stored). ``new_params`` must have the structure of ``params``.
    """
    def f_lin(new_params, x):
        delta = jax.tree_util.tree_map(lambda a, b: a - b, new_params, params)
        f0, df = jax.jvp(lambda p: apply_fn(p, x), (params,), (delta,))
        return f0 + df

    return f_lin


def nnx_apply_fn(model):
    """Split a Flax NNX module into ``(apply_fn, params)`` for :func:`empirical_ntk` / :func:`linearize`.

    ``params`` is the ``nnx.Param`` state; other state (batch statistics, RNG counters) is closed over
    unchanged. ``apply_fn(params, x)`` merges and calls the module.
    """
    from flax import nnx

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def apply_fn(p, x):
        return nnx.merge(graphdef, p, rest)(x)

    return apply_fn, params


def flat_params(params):
    """Ravel a parameter pytree into one vector (utility for weight-space quantities such as ‖Δw‖)."""
    return ravel_pytree(params)[0]

