"""Empirical NTK by structured derivatives: dense layers at the cost of matrix products over the layers.

For a dense product ``y = dot_general(a, W)`` (``a`` the layer input of one example, ``W`` a parameter
leaf), ``∂f_c(x)/∂W = Σ_s a_s(x) ⊗ g_{c,s}(x)`` with ``g_c`` the cotangent of output ``c`` at ``y`` and
``s`` the free (non-contracted) positions of ``a`` (one position for an MLP). Hence

    ⟨∂f_c(x)/∂W, ∂f_d(x')/∂W⟩ = Σ_{s,t} (a_s(x)·a_t(x')) (g_{c,s}(x)·g_{d,t}(x')),

and ``Θ̂ = Σ_layers (A1 A2ᵀ) ⊙ (G1 G2ᵀ) + J1_rest J2_restᵀ``: O(n · Σ widths) memory and matrix products
of that size instead of the O(n · L m²) Jacobian (Novak, Sohl-Dickstein & Schoenholz 2022, "structured
derivatives"). Any scaling after the product (``W_std / √m`` of the NTK parameterization) or before it
(standard parameterization keeps it in ``W``) is part of ``g`` or ``W`` and needs no rule.

Mechanism: ``apply_fn`` on one example is traced to a jaxpr and re-interpreted. Each ``dot_general``
without batch dimensions whose one operand is a parameter leaf (possibly through a dtype cast or copy)
that is used nowhere else is a *tap*: the interpreter records its other operand (``A``) and adds a zero
perturbation ``ε`` to its output, so that ``∂f/∂ε`` is ``G``. Every other leaf (biases, leaves inside
control flow, custom derivatives, shared weights, products of two parameters ...) keeps exact per-example
Jacobian rows, contracted as in the Jacobian method; :func:`structured_plan` says which leaf went where
and why. Calls into ``jit``-ed functions are interpreted recursively when they contain a tap.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from .._core.linalg import einsum, mm

__all__ = ["StructuredPlan", "structured_ntk", "structured_plan"]

_CALLS = ("jit", "pjit", "closed_call", "core_call")  # call primitives interpreted recursively
_TRANSPARENT = ("convert_element_type", "copy", "copy_p")  # leaf -> same values (derivative 1)


class _Tap(NamedTuple):
    leaf: int  # index of the parameter leaf W
    act: int  # operand index of the layer input a (0 or 1)
    act_perm: tuple  # axes of a: free positions first, then contracted
    out_perm: tuple  # axes of y: a's free positions first, then W's free positions
    S: int  # number of free positions of a per example (1 for an MLP)
    D: int  # contracted size (fan-in)
    M: int  # W's free size (fan-out)


class StructuredPlan(NamedTuple):
    """Which parameter leaves the structured method handles (``structured``: leaf paths) and which keep
    Jacobian rows (``fallback``: leaf path -> reason); ``method`` is what ``method="auto"`` runs and
    ``reason`` why."""
    structured: tuple
    fallback: dict
    method: str
    reason: str


def _analyze(jaxpr, origins, uses, taps, calls, path):
    """Walk ``jaxpr`` with ``origins`` (var -> leaf index) and record each leaf's uses; dense taps go to
    ``taps`` (path -> _Tap), call paths holding a leaf-dependent product to ``calls``."""
    env = dict(origins)

    def origin(v):
        return None if isinstance(v, jcore.Literal) else env.get(v)

    for i, eqn in enumerate(jaxpr.eqns):
        p = path + (i,)
        ins = [origin(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in _TRANSPARENT and ins[0] is not None:
            env[eqn.outvars[0]] = ins[0]
            continue
        if name in _CALLS and "jaxpr" in eqn.params and any(o is not None for o in ins):
            inner = eqn.params["jaxpr"]
            inner = getattr(inner, "jaxpr", inner)
            before = len(taps)
            _analyze(inner, {v: o for v, o in zip(inner.invars, ins) if o is not None}, uses, taps, calls, p)
            for v in inner.outvars:  # a leaf returned from the call escapes the analysis
                o = None if isinstance(v, jcore.Literal) else _origin_in(inner, v, ins)
                if o is not None:
                    uses[o].append((p, f"returned from `{name}`"))
            if len(taps) > before:
                calls.add(p)
            continue
        if name == "dot_general":
            (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
            if sum(o is not None for o in ins) == 1 and not lb and not rb:
                w = 0 if ins[0] is not None else 1
                a_aval, w_aval = eqn.invars[1 - w].aval, eqn.invars[w].aval
                ca, cw = (lc, rc) if w == 1 else (rc, lc)
                fa = [d for d in range(a_aval.ndim) if d not in ca]
                fw = [d for d in range(w_aval.ndim) if d not in cw]
                nfw = len(fw)
                out_perm = tuple(range(len(fa) + nfw)) if w == 1 else \
                    tuple(range(nfw, nfw + len(fa))) + tuple(range(nfw))
                tap = _Tap(ins[w], 1 - w, tuple(fa) + tuple(ca), out_perm,
                           math.prod(a_aval.shape[d] for d in fa), math.prod(a_aval.shape[d] for d in ca),
                           math.prod(w_aval.shape[d] for d in fw))
                uses[ins[w]].append((p, tap))
                taps[p] = tap
                continue
            why = ("`dot_general` with batch dimensions" if (lb or rb) and sum(o is not None for o in ins) == 1
                   else "`dot_general` of two parameters")
            for o in ins:
                if o is not None:
                    uses[o].append((p, why))
            continue
        for o in ins:
            if o is not None:
                uses[o].append((p, f"used by `{name}`"))


def _origin_in(jaxpr, v, ins):
    """Origin of an inner output var that is an inner input var (identity pass-through), else None."""
    for iv, o in zip(jaxpr.invars, ins):
        if iv is v:
            return o
    return None


def _trace(apply_fn, params, x_example):
    """Per-example jaxpr of ``apply_fn``: inputs (leaves..., x_i), output f(x_i) of shape () or (k,)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    spec = lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a))
    f = lambda ls, xi: apply_fn(jax.tree_util.tree_unflatten(treedef, ls), xi[None])[0]
    closed = jax.make_jaxpr(f)([spec(a) for a in leaves], spec(x_example))
    return closed, leaves, treedef


def _plan(closed, n_leaves):
    """(taps kept: path -> _Tap, calls to interpret, fallback: leaf -> reason)."""
    jaxpr = closed.jaxpr
    uses = {i: [] for i in range(n_leaves)}
    taps, calls = {}, set()
    _analyze(jaxpr, {v: i for i, v in enumerate(jaxpr.invars[:n_leaves])}, uses, taps, calls, ())
    for v in jaxpr.outvars:
        o = _origin_in(jaxpr, v, list(range(n_leaves)) + [None])
        if o is not None:
            uses[o].append(((), "returned as an output"))
    keep, fallback = {}, {}
    for leaf, u in uses.items():
        if len(u) == 1 and isinstance(u[0][1], _Tap):
            keep[u[0][0]] = u[0][1]
        elif not u:
            fallback[leaf] = "not used by the model (zero derivative)"
        elif len(u) > 1:
            fallback[leaf] = f"used in {len(u)} places (" + ", ".join(
                "a dense product" if isinstance(w, _Tap) else w for _, w in u[:3]) + ")"
        else:
            fallback[leaf] = u[0][1]
    calls = {c for c in calls if any(t[:len(c)] == c for t in keep)}
    return keep, calls, fallback


def _interpret(jaxpr, consts, args, taps, calls, eps, acts, path=()):
    """Evaluate ``jaxpr`` by binding its primitives; at each tap record the layer input and add ``eps``."""
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for i, eqn in enumerate(jaxpr.eqns):
        p = path + (i,)
        invals = [read(v) for v in eqn.invars]
        if p in calls:
            inner = eqn.params["jaxpr"]
            outvals = _interpret(inner.jaxpr, inner.consts, invals, taps, calls, eps, acts, p)
        else:
            params = eqn.primitive.get_bind_params(eqn.params)
            subfuns, params = params if isinstance(params, tuple) else ((), params)  # older JAX: a pair
            with eqn.ctx.manager:
                outvals = eqn.primitive.bind(*subfuns, *invals, **params)
            if not eqn.primitive.multiple_results:
                outvals = [outvals]
        if p in taps:
            acts[p] = invals[taps[p].act]
            outvals = [outvals[0] + eps[p]]
        for v, val in zip(eqn.outvars, outvals):
            env[v] = val
    return [read(v) for v in jaxpr.outvars]


def _leaf_names(params):
    return [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def structured_plan(apply_fn: Callable, params, x, *, per_example: bool = True) -> StructuredPlan:
    """How :func:`ntkd.empirical_ntk` with ``method="structured"``/``"auto"`` treats ``apply_fn``.

    Args: as :func:`ntkd.empirical_ntk`; ``x`` is a batch ``(n, ...)`` (only its shape and dtype are used).
    Returns a :class:`StructuredPlan`. ``method`` is ``"structured"`` when at least one parameter leaf is
    the weight of a dense product (the other leaves keep exact Jacobian rows), else ``"jacobian"``
    with the reason (no dense product found, or ``per_example=False``: examples interact).
    """
    x = jnp.asarray(x)
    names = _leaf_names(params)
    if not per_example:
        return StructuredPlan((), {n: "per_example=False" for n in names}, "jacobian",
                              "per_example=False: the outputs of different examples interact, so the "
                              "per-example structure does not apply")
    closed, leaves, _ = _trace(apply_fn, params, x[0])
    keep, _, fallback = _plan(closed, len(leaves))
    structured = tuple(names[t.leaf] for t in keep.values())
    fb = {names[i]: r for i, r in sorted(fallback.items())}
    if not structured:
        return StructuredPlan((), fb, "jacobian", "no parameter is the weight of a dense product (`dot_general` "
                              "with one parameter operand, used once): " + "; ".join(
                                  f"{k}: {v}" for k, v in fb.items()))
    return StructuredPlan(structured, fb, "structured",
                          f"{len(structured)} dense weight(s) by structured derivatives, {len(fb)} leaf(s) by "
                          "Jacobian rows")


def _features(closed, leaves, keep, calls, fallback, x):
    """Per-example factors: A (n, S, D), G (n, k, S, M) per tap, and Jacobian rows J (n, k, P_rest)."""
    jaxpr, consts = closed.jaxpr, closed.consts
    rest = sorted(fallback)
    eps = {p: jnp.zeros(a.shape, a.dtype) for p, a in ((p, _out_aval(jaxpr, p)) for p in keep)}

    def f(eps_, rest_vals, xi):
        ls = list(leaves)
        for i, v in zip(rest, rest_vals):
            ls[i] = v
        acts = {}
        (out,) = _interpret(jaxpr, consts, ls + [xi], keep, calls, eps_, acts)
        return out.reshape(-1), acts

    def one(xi):
        (g, j), acts = jax.jacrev(f, argnums=(0, 1), has_aux=True)(eps, [leaves[i] for i in rest], xi)
        return g, j, acts

    g, j, acts = jax.vmap(one)(x)
    n = x.shape[0]
    A, G = [], []
    for p, t in keep.items():
        A.append(jnp.transpose(acts[p], (0,) + tuple(d + 1 for d in t.act_perm)).reshape(n, t.S, t.D))
        gp = g[p]  # (n, k, *out)
        k = gp.shape[1]
        G.append(jnp.transpose(gp, (0, 1) + tuple(d + 2 for d in t.out_perm)).reshape(n, k, t.S, t.M))
    J = jnp.concatenate([a.reshape(n, a.shape[1], -1) for a in j], axis=-1) if rest else None
    return A, G, J


def _out_aval(jaxpr, path):
    """Abstract value (shape, dtype) of the output of the eqn at ``path`` (through call primitives)."""
    eqn = None
    for i in path:
        if eqn is not None:
            jaxpr = eqn.params["jaxpr"]
            jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
        eqn = jaxpr.eqns[i]
    return eqn.outvars[0].aval


def _contract(f1, f2, trace):
    """Θ̂ (n1, n2) summed over the output (trace) or (n1, n2, k, k) from the per-example factors."""
    (A1, G1, J1), (A2, G2, J2) = f1, f2
    theta = 0
    for a1, g1, a2, g2 in zip(A1, G1, A2, G2):
        n1, k, S, M = g1.shape
        n2 = g2.shape[0]
        if S == 1:
            aa = mm(a1[:, 0], a2[:, 0].T)
            if trace:
                gg = mm(g1.reshape(n1, k * M), g2.reshape(n2, k * M).T)
            else:
                gg = einsum("icm,jdm->ijcd", g1[:, :, 0], g2[:, :, 0])
                aa = aa[:, :, None, None]
            theta = theta + aa * gg
        else:
            aa = einsum("isd,jtd->ijst", a1, a2)
            if trace:
                theta = theta + einsum("ijst,icsm,jctm->ij", aa, g1, g2)
            else:
                theta = theta + einsum("ijst,icsm,jdtm->ijcd", aa, g1, g2)
    if J1 is not None:
        n1, k, _ = J1.shape
        if trace:
            theta = theta + mm(J1.reshape(n1, -1), J2.reshape(J2.shape[0], -1).T)
        else:
            theta = theta + einsum("icp,jdp->ijcd", J1, J2)
    return theta


def structured_ntk(apply_fn: Callable, params, x1, x2=None, *, trace_axes=(-1,)):
    """Empirical NTK ``Θ̂(x1, x2)`` by structured derivatives (see the module notes).

    Same arguments, conventions and result as :func:`ntkd.empirical_ntk` (which calls this for
    ``method="structured"``); each output row must depend on its own input row only (per-example).
    ``(n1, n2)`` with ``trace_axes=(-1,)`` (the k outputs traced and divided by k), ``(n1, n2, k, k)``
    with ``trace_axes=()``; ``(n1, n2)`` for a scalar output. Raises ``ValueError`` when no parameter is
    a dense weight (use ``method="jacobian"`` or ``"auto"``; :func:`structured_plan` says why).
    """
    x1 = jnp.asarray(x1)
    closed, leaves, _ = _trace(apply_fn, params, x1[0])
    keep, calls, fallback = _plan(closed, len(leaves))
    if not keep:
        raise ValueError("`method`='structured' found no dense weight in `apply_fn` ("
                         + structured_plan(apply_fn, params, x1).reason + "); use method='jacobian' or 'auto'.")
    scalar_out = closed.jaxpr.outvars[0].aval.ndim == 0
    f1 = _features(closed, leaves, keep, calls, fallback, x1)
    f2 = f1 if x2 is None else _features(closed, leaves, keep, calls, fallback, jnp.asarray(x2))
    k = f1[1][0].shape[1]
    trace = tuple(trace_axes) in ((-1,), (1,)) or scalar_out
    theta = _contract(f1, f2, trace)
    return theta / k if trace and not scalar_out else theta
