"""Kernels of MLPs: infinite-width NNGP/NTK (:func:`mlp_kernel_fn`), tiled evaluation of any kernel_fn
(:func:`kernel_matrix`), and empirical NTKs and linearizations of finite models (:func:`empirical_ntk`).

Layout (layer L1; imports only :mod:`ntkd._core`): :mod:`.base` (the :class:`Kernel` type and the ``get``
convention), :mod:`.activations`, private :mod:`._numerics` (angles and 1 - cos θ), :mod:`._recursion`
(the layer recursion), :mod:`._programs` (packed passes, tiles, row blocks, compiled once per
configuration), :mod:`.mlp`, :mod:`.tiled`, :mod:`.empirical` and :mod:`.structured` (empirical NTKs of
dense layers by structured derivatives; :func:`structured_plan` says which parameters it covers).

A kernel_fn made by :func:`mlp_kernel_fn` carries its static configuration as ``kernel_fn.ntkd_config``;
:func:`kernel_matrix` runs such kernels through one packed tile program, any other kernel_fn through
generic tile programs.
"""
from ._numerics import EXACT_DISTANCE_MAX_DIM, NEAR_DELTA, NEAR_PER_ROW
from ._programs import BLOCK_ENTRIES, MAX_BLOCKS, TILE_EDGE
from .activations import ACTIVATIONS, activation_fn
from .base import Kernel
from .empirical import empirical_kernel_fn, empirical_ntk, flat_params, linearize, nnx_apply_fn
from .mlp import mlp_kernel_fn, shared_mlp_kernel_fn
from .structured import StructuredPlan, structured_plan
from .tiled import kernel_matrix

__all__ = ["Kernel", "ACTIVATIONS", "activation_fn", "mlp_kernel_fn", "kernel_matrix", "empirical_ntk",
           "empirical_kernel_fn", "linearize", "nnx_apply_fn", "flat_params", "structured_plan", "StructuredPlan",
           "shared_mlp_kernel_fn", "TILE_EDGE", "BLOCK_ENTRIES",
           "MAX_BLOCKS", "EXACT_DISTANCE_MAX_DIM", "NEAR_DELTA", "NEAR_PER_ROW"]
