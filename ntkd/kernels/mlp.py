"""Infinite-width NNGP and NTK kernels of fully connected networks: :func:`mlp_kernel_fn`.

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
from typing import Callable, Optional, Sequence, Union

import jax.numpy as jnp

from .._core.checks import check_inputs_2d, check_int, check_positive
from ._programs import Cfg, attach_config, evaluate
from .activations import parse_activation
from .base import normalize_get, pack

__all__ = ["mlp_kernel_fn", "shared_mlp_kernel_fn"]

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
    act = parse_activation(activation)
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
    cfg = Cfg(depth, act, W_std, b_std, parameterization, width, ())

    def kernel_fn(x1, x2=None, get=None):
        get, names = normalize_get(get)
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
        return pack(get, evaluate(x1, x2, cfg._replace(names=names)))

    attach_config(kernel_fn, cfg)  # kernel_matrix runs it as packed tiles (one fused pass for both kernels)
    kernel_fn.__doc__ = (
        f"Analytic kernel of a depth-{depth} {act.name}{act.params} MLP "
        f"(W_std={W_std}, b_std={b_std}, {parameterization} parameterization). "
        "Call as kernel_fn(x1, x2=None, get=None)."
    )
    return kernel_fn


@functools.lru_cache(maxsize=64)
def shared_mlp_kernel_fn(depth: int, activation="relu", W_std: float = 1.0, b_std: Optional[float] = 1.0) -> Callable:
    """:func:`mlp_kernel_fn` of one configuration, one kernel_fn object per process (hashable arguments
    only), so that programs compiled for it, here and by its callers, are reused across calls."""
    return mlp_kernel_fn(depth, activation=activation, W_std=W_std, b_std=b_std)
