"""ntkd: knowledge distillation in the neural-tangent-kernel regime, in JAX.

The public API, by layer (each layer imports only the layers below it):

* kernels (:mod:`ntkd.kernels`): :func:`mlp_kernel_fn`, :func:`kernel_matrix`, :class:`Kernel`,
  :func:`empirical_ntk`, :func:`empirical_kernel_fn`, :func:`linearize`, :func:`nnx_apply_fn`;
* predictors (:mod:`ntkd.predict`): :func:`gradient_descent_mse`, :func:`kernel_regression`,
  :func:`gp_inference`, :func:`gradient_flow_weights`; the KD loss (:mod:`ntkd.losses`);
* theories (:mod:`ntkd.theories`): Ji & Zhu (2020) in :mod:`ntkd.theories.transfer_risk` (effective
  logits, converged student, :func:`risk_bound`, data inefficiency, :func:`evaluate_grid`, ...);
* finite networks (:mod:`ntkd.finite`: Flax models, training, teachers; imported on first use);
* experiments (:mod:`ntkd.experiments`: :func:`run_sweep`, :class:`ResultsStore`, reproductions;
  imported on first use).

Module paths of earlier releases (``ntkd.risk``, ``ntkd.sweep``, ...) still import, with a warning.
"""
import importlib as _importlib

from . import _deprecated
from ._core.checks import checked
from ._version import VERSION as __version__
from .kernels import (ACTIVATIONS, Kernel, empirical_kernel_fn, empirical_ntk, flat_params, kernel_matrix,
                      linearize, mlp_kernel_fn, nnx_apply_fn, structured_plan)
from .losses import kd_grad_z, kd_loss
from .predict import GPPosterior, gp_inference, gradient_descent_mse, gradient_flow_weights, kernel_regression
from .theories.transfer_risk import (alpha_n, alpha_n_exact, angle_distribution, converged_student,
                                     correction_logits, cos_student_oracle, data_inefficiency, effective_logits,
                                     evaluate_grid, expected_weight_norm, feature_cosines, hard_label_effect,
                                     kd_function_space_flow, kernel_inner, label_smoothing_logit, oracle_norm,
                                     phuong_lampert_bound, pointwise_correct, rho_for_threshold, risk_bound,
                                     threshold, transfer_risk, weight_change_norm, weight_norm_curve)

_deprecated.install()

# Imported on first use: finite networks bring flax and optax, experiments the study machinery.
_LAZY = {
    "ResultsStore": "ntkd.experiments.store",
    "SweepConfig": "ntkd.experiments.ji_zhu.sweep",
    "load_config": "ntkd.experiments.ji_zhu.sweep",
    "run_sweep": "ntkd.experiments.ji_zhu.sweep",
}
_SUBMODULES = {"finite", "experiments", "bench", "theories", "cli"} | {m.split(".")[1] for m in _deprecated.MOVED}


def __getattr__(name):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return _importlib.import_module(f"ntkd.{name}")
    raise AttributeError(f"module 'ntkd' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS", "Kernel", "mlp_kernel_fn", "kernel_matrix",
    "empirical_ntk", "empirical_kernel_fn", "linearize", "nnx_apply_fn", "flat_params", "structured_plan",
    "predict", "gradient_descent_mse", "gradient_flow_weights", "kernel_regression", "gp_inference", "GPPosterior",
    "__version__", "checked",
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
