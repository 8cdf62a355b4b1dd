"""ntkd: knowledge distillation in the neural-tangent-kernel regime, in JAX.

Public API (everything else is private):

* kernels: :func:`mlp_kernel_fn`, :func:`kernel_matrix`, :class:`Kernel`
* finite networks: :func:`empirical_ntk`, :func:`empirical_kernel_fn`, :func:`linearize`,
  :func:`nnx_apply_fn`
* predictors: :mod:`ntkd.predict` (:func:`gradient_descent_mse`, :func:`kernel_regression`,
  :func:`gp_inference`)
"""
from importlib.metadata import PackageNotFoundError, version as _version

from . import predict
from .empirical import empirical_kernel_fn, empirical_ntk, flat_params, linearize, nnx_apply_fn
from .kernels import ACTIVATIONS, Kernel, kernel_matrix, mlp_kernel_fn
from .predict import GPPosterior, gp_inference, gradient_descent_mse, kernel_regression

try:
    __version__ = _version("ntkd")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0.dev0"

__all__ = [
    "ACTIVATIONS", "Kernel", "mlp_kernel_fn", "kernel_matrix",
    "empirical_ntk", "empirical_kernel_fn", "linearize", "nnx_apply_fn", "flat_params",
    "predict", "gradient_descent_mse", "kernel_regression", "gp_inference", "GPPosterior",
    "__version__",
]
