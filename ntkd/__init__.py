"""ntkd: knowledge distillation in the neural-tangent-kernel regime, in JAX.

Public API (everything else is private):

* kernels: :func:`mlp_kernel_fn`, :func:`kernel_matrix`, :class:`Kernel`
* finite networks: :func:`empirical_ntk`, :func:`empirical_kernel_fn`, :func:`linearize`,
  :func:`nnx_apply_fn`
* predictors: :mod:`ntkd.predict` (:func:`gradient_descent_mse`, :func:`kernel_regression`,
  :func:`gp_inference`)
* Ji & Zhu (2020) KD theory: :mod:`ntkd.distill` (Eq. 2-4), :mod:`ntkd.risk` (Thm 1, :func:`risk_bound`),
  :mod:`ntkd.inefficiency` (Eq. 10, Thm 2), :mod:`ntkd.tasks` (synthetic tasks)
* sweeps and reproductions: :mod:`ntkd.sweep` (:func:`evaluate_grid`, :func:`run_sweep`,
  :func:`load_config`), :mod:`ntkd.store` (:class:`ResultsStore`), :mod:`ntkd.reproduce`
"""
from importlib.metadata import PackageNotFoundError, version as _version

from . import distill, finite, inefficiency, predict, risk, store, sweep, tasks
from .distill import (converged_student, correction_logits, effective_logits, kd_function_space_flow,
                      kd_grad_z, kd_loss, label_smoothing_logit, pointwise_correct, rho_for_threshold,
                      threshold, weight_change_norm)
from .inefficiency import (cos_student_oracle, data_inefficiency, expected_weight_norm, hard_label_effect,
                           kernel_inner, weight_norm_curve)
from .risk import (alpha_n, alpha_n_exact, angle_distribution, feature_cosines, oracle_norm,
                   phuong_lampert_bound, risk_bound, transfer_risk)
from .empirical import empirical_kernel_fn, empirical_ntk, flat_params, linearize, nnx_apply_fn
from .kernels import ACTIVATIONS, Kernel, kernel_matrix, mlp_kernel_fn
from .predict import GPPosterior, gp_inference, gradient_descent_mse, kernel_regression
from .store import ResultsStore
from .sweep import SweepConfig, evaluate_grid, load_config, run_sweep

try:
    __version__ = _version("ntkd")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0.dev0"

__all__ = [
    "ACTIVATIONS", "Kernel", "mlp_kernel_fn", "kernel_matrix",
    "empirical_ntk", "empirical_kernel_fn", "linearize", "nnx_apply_fn", "flat_params",
    "predict", "gradient_descent_mse", "kernel_regression", "gp_inference", "GPPosterior",
    "__version__",
    # Ji & Zhu (2020) distillation theory
    "distill", "risk", "inefficiency", "tasks", "finite",
    "kd_loss", "kd_grad_z", "effective_logits", "threshold", "rho_for_threshold", "label_smoothing_logit",
    "correction_logits", "pointwise_correct", "converged_student", "weight_change_norm",
    "kd_function_space_flow", "transfer_risk", "feature_cosines", "oracle_norm", "angle_distribution",
    "alpha_n", "alpha_n_exact", "risk_bound", "phuong_lampert_bound", "data_inefficiency",
    "expected_weight_norm", "weight_norm_curve", "kernel_inner", "cos_student_oracle", "hard_label_effect",
    # sweeps
    "store", "sweep", "ResultsStore", "SweepConfig", "evaluate_grid", "load_config", "run_sweep",
]
