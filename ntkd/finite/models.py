"""Finite MLPs with exactly the conventions of :func:`ntkd.mlp_kernel_fn`, in the NTK parameterization
(Ji & Zhu Eq. 1): every weight and bias is drawn from N(0, 1) and a layer computes
``h = W_std * x @ W / sqrt(fan_in) + b_std * b``. As the width grows, the empirical NTK at initialization
converges to ``mlp_kernel_fn(depth, ...)`` and the outputs to a GP with the NNGP kernel. :func:`mlp` gives
the same network as a pure pair ``init_fn(key) -> params`` / ``apply_fn(params, x)``, so that many seeds
can be initialized and trained in one ``vmap``."""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from ..kernels import activation_fn
from .._core.checks import check_int, check_positive
from .._core.linalg import mm

__all__ = ["NTKMLP", "mlp"]

class NTKMLP(nnx.Module):
    """``depth`` hidden layers of ``width`` units, NTK parameterization, ``out_dim`` outputs.

    Call on ``x`` of shape ``(n, d)``; returns ``(n, out_dim)`` (or ``(n,)`` when ``out_dim is None``, the
    single logit of Ji & Zhu). ``b_std=None`` builds a network without biases.
    """

    def __init__(self, in_dim: int, width: int, depth: int, *, out_dim: Optional[int] = None,
                 activation="relu", W_std: float = 1.0, b_std: Optional[float] = 1.0,
                 rngs: nnx.Rngs, dtype=jnp.float32):
        in_dim = check_int(in_dim, "in_dim", minimum=1)
        width = check_int(width, "width", minimum=1)
        depth = check_int(depth, "depth", minimum=0)
        self.W_std = check_positive(W_std, "W_std")
        self.b_std = None if b_std is None else check_positive(b_std, "b_std", allow_zero=True)
        self.act = activation_fn(activation)
        self.scalar = out_dim is None
        dims = [in_dim] + [width] * depth + [1 if out_dim is None else check_int(out_dim, "out_dim", minimum=1)]
        self.weights = nnx.List([nnx.Param(jax.random.normal(rngs.params(), (a, b), dtype))
                                 for a, b in zip(dims[:-1], dims[1:])])
        self.biases = nnx.List([nnx.Param(jax.random.normal(rngs.params(), (b,), dtype)) for b in dims[1:]]
                               if self.b_std is not None else [])

    def __call__(self, x):
        h = x
        n_layers = len(self.weights)
        for i in range(n_layers):
            w = self.weights[i][...]
            h = self.W_std * mm(h, w) / jnp.sqrt(jnp.asarray(w.shape[0], h.dtype))
            if self.b_std is not None:
                h = h + self.b_std * self.biases[i][...]
            if i < n_layers - 1:
                h = self.act(h)
        return h[:, 0] if self.scalar else h


def mlp(in_dim: int, width: int, depth: int, *, out_dim: Optional[int] = None, activation="relu",
        W_std: float = 1.0, b_std: Optional[float] = 1.0, dtype=jnp.float32):
    """:class:`NTKMLP` as a pure pair ``(init_fn, apply_fn)``.

    ``init_fn(key) -> params`` (an ``nnx.State`` pytree; ``jax.vmap(init_fn)(keys)`` initializes many
    seeds at once, each identical to ``NTKMLP(..., rngs=nnx.Rngs(params=key))``) and
    ``apply_fn(params, x (n, in_dim)) -> (n,) | (n, out_dim)``. Its infinite-width kernels are
    ``mlp_kernel_fn(depth, W_std=W_std, b_std=b_std, activation=activation)``.
    """
    def build(key):
        return NTKMLP(in_dim, width, depth, out_dim=out_dim, activation=activation, W_std=W_std,
                      b_std=b_std, rngs=nnx.Rngs(params=key), dtype=dtype)

    abstract = nnx.eval_shape(lambda: build(jax.random.PRNGKey(0)))
    graphdef, _, rest = nnx.split(abstract, nnx.Param, ...)

    def init_fn(key):
        return nnx.split(build(key), nnx.Param, ...)[1]

    def apply_fn(params, x):
        return nnx.merge(graphdef, params, rest)(x)

    return init_fn, apply_fn
