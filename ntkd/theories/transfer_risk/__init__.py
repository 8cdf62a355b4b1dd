"""Ji & Zhu (2020), "Knowledge Distillation in Wide Neural Networks: Risk Bound, Data Efficiency and
Imperfect Teacher" (NeurIPS 2020): the theory of distillation in the NTK regime.

* :mod:`.distill`: effective student logits (Eq. 3), thresholds, correction logits, the converged student
  (Eq. 4), the weight change and the function-space KD flow;
* :mod:`.risk`: transfer risk, feature cosines and p(β), ᾱ_n, the risk bound (Theorem 1) and the
  Phuong–Lampert bound;
* :mod:`.inefficiency`: data inefficiency I(n) (Eq. 10), oracle cosines and the hard-label effect
  (Theorem 2);
* :mod:`.tasks`: the paper's input law, Gaussian-mixture tasks and teachers;
* :mod:`.grid`: every metric of one training set on a ρ × T × t grid from one factorization (the batched
  twin of the scalar functions).
"""
from .distill import (converged_student, correction_logits, effective_logits, kd_function_space_flow,
                      label_smoothing_logit, pointwise_correct, rho_for_threshold, threshold,
                      weight_change_norm)
from .grid import BETAS, METRICS, evaluate_grid
from .inefficiency import (cos_student_oracle, data_inefficiency, expected_weight_norm, hard_label_effect,
                           kernel_inner, weight_norm_curve)
from .risk import (alpha_n, alpha_n_exact, angle_distribution, feature_cosines, oracle_norm,
                   phuong_lampert_bound, risk_bound, transfer_risk)
from .tasks import (GaussianMixture, flip_signs, gaussian_mixture, kernel_teacher, random_logits,
                    sample_inputs, zero_function)

__all__ = [
    "effective_logits", "threshold", "rho_for_threshold", "label_smoothing_logit", "correction_logits",
    "pointwise_correct", "converged_student", "weight_change_norm", "kd_function_space_flow",
    "transfer_risk", "feature_cosines", "oracle_norm", "angle_distribution", "alpha_n", "alpha_n_exact",
    "risk_bound", "phuong_lampert_bound", "data_inefficiency", "expected_weight_norm", "weight_norm_curve",
    "kernel_inner", "cos_student_oracle", "hard_label_effect", "sample_inputs", "GaussianMixture",
    "gaussian_mixture", "flip_signs", "random_logits", "zero_function", "kernel_teacher", "evaluate_grid",
    "METRICS", "BETAS",
]
