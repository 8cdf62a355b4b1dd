"""Dao, Kamath, Syrgkanis & Mackey (2021), "Knowledge Distillation as Semiparametric Inference" (ICLR 2021):
cross-fitted teachers and orthogonally corrected distillation losses.

* :mod:`.folds`: fold assignment (k-fold, permutation-mod), cross-fitted teachers for any fit/predict
  pair, exact leave-fold-out kernel ridge teachers, routing minibatch rows to their out-of-fold teacher;
* :mod:`.targets`: corrected targets ``g(p̂) + γ(y − p̂)`` on the p and log scales and every γ rule
  (orthogonal, BoundFast, BoundSlow, minimax relerr/abserr/power, mixing);
* :mod:`.objectives`: the KL/CE distillation loss with the orthogonal correction, the MSE variants, and
  ``first_order_correction`` by ``jax.jvp``;
* :mod:`.tasks`: synthetic tasks with exact Bayes probabilities, controlled teachers, metrics.
"""
from .folds import (CrossFit, KernelCrossFit, crossfit_batch_teacher_logits, crossfit_teacher, fold_ids,
                    fold_sizes, fold_train_mask, kernel_crossfit, select_out_of_fold)
from .objectives import (first_order_correction, kd_kl_loss, kd_mse_gamma_loss, kd_mse_loss, kd_mse_ortho_loss,
                         kd_mse_varred_ortho_loss, kd_ortho_loss, label_ce, ortho_correction, tempered_ce,
                         trainer_loss)
from .targets import (GAMMA_GRID, LOG_CLIP, gamma_boundfast, gamma_boundslow, gamma_minimax, gamma_mix,
                      gamma_orth, kd_target, minimax_objective, target_bias_variance, uncertainty_interval)
from .tasks import (Task, accuracy, auc, cross_entropy, multiclass_logistic, smoothed, sq_error, tempered,
                    two_gaussian, two_gaussian_p0)

__all__ = [
    "fold_ids", "fold_sizes", "fold_train_mask", "CrossFit", "crossfit_teacher", "KernelCrossFit",
    "kernel_crossfit", "select_out_of_fold", "crossfit_batch_teacher_logits",
    "kd_target", "gamma_orth", "gamma_boundfast", "gamma_boundslow", "gamma_minimax", "gamma_mix",
    "uncertainty_interval", "minimax_objective", "target_bias_variance", "GAMMA_GRID", "LOG_CLIP",
    "tempered_ce", "label_ce", "kd_kl_loss", "ortho_correction", "kd_ortho_loss", "first_order_correction",
    "kd_mse_loss", "kd_mse_ortho_loss", "kd_mse_varred_ortho_loss", "kd_mse_gamma_loss", "trainer_loss",
    "Task", "two_gaussian", "two_gaussian_p0", "multiclass_logistic", "tempered", "smoothed", "auc",
    "accuracy", "cross_entropy", "sq_error",
]
