"""Kaplun, Malach, Nakkiran & Shalev-Shwartz (2022), "Knowledge Distillation: Bad Models Can Be Good Role
Models" (NeurIPS 2022; the brief files it as ``malach_2022``): teachers that replicate label noise
("conditional samplers") are bad classifiers but good teachers for a student trained on their labels of
unlabelled data.

* :mod:`.tasks`: synthetic tasks with the exact D(y|x), Bayes classifier, Bayes and sampler risks;
* :mod:`.teachers`: exact k-NN, kernel machines (Laplace, Gaussian, ReLU NTK/NNGP; interpolating, ridge,
  gradient flow at time t), ensembles (vote, summed scores, random teacher per example or batch);
* :mod:`.students`: exact 1-D threshold ERM, softmax/logistic regression with implicit derivatives;
* :mod:`.metrics`: risk against D, accuracy vs clean, disagreement with Bayes, sampler gaps, noise
  replication, feature calibration;
* :mod:`.bounds`: the 1-NN sampler bound, Theorem A's student bound, the ensemble-vote tail.

The theory is a reconstruction (the paper's body was not available); each docstring says which parts
are [RECON]/[G] decisions.
"""
from .bounds import (
                     ensemble_excess_bound,
                     ensemble_vote_error,
                     ensemble_vote_hoeffding,
                     one_nn_sampler_bound,
                     student_bound,
)
from .metrics import (
                     REGIMES,
                     accuracy,
                     as_distribution,
                     bayes_risk,
                     disagreement,
                     feature_calibration,
                     label_frequencies,
                     loss_shift,
                     noise_replication_ratio,
                     pointwise_sampler_gap,
                     replication_regime,
                     risk,
                     sampler_gap,
                     sampler_risk,
                     threshold_family,
)
from .students import (
                     ThresholdFit,
                     affine_features,
                     erm_threshold_1d,
                     fourier_features,
                     softmax_objective,
                     softmax_regression,
)
from .tasks import (
                     GaussianLDA,
                     HalfspaceFlip,
                     HalfspaceLipschitz,
                     SphereSign,
                     TransitionSectors,
                     gaussian_lda,
                     halfspace_flip,
                     halfspace_lipschitz,
                     pairflip_matrix,
                     sector_of,
                     sectors_pairflip,
                     sphere_sign,
                     transition_sectors,
)
from .teachers import (
                     KernelMachine,
                     ensemble_sum_logits,
                     ensemble_vote,
                     fit_kernel_machine,
                     gaussian_kernel,
                     hard_labels,
                     kernel_machine_scores,
                     knn_votes,
                     laplace_kernel,
                     nearest_neighbors,
                     one_hot,
                     random_teacher_labels,
                     relu_kernel,
)

__all__ = [
                     "REGIMES",
                     "GaussianLDA",
                     "HalfspaceFlip",
                     "HalfspaceLipschitz",
                     "KernelMachine",
                     "SphereSign",
                     "ThresholdFit",
                     "TransitionSectors",
                     "accuracy",
                     "affine_features",
                     "as_distribution",
                     "bayes_risk",
                     "disagreement",
                     "ensemble_excess_bound",
                     "ensemble_sum_logits",
                     "ensemble_vote",
                     "ensemble_vote_error",
                     "ensemble_vote_hoeffding",
                     "erm_threshold_1d",
                     "feature_calibration",
                     "fit_kernel_machine",
                     "fourier_features",
                     "gaussian_kernel",
                     "gaussian_lda",
                     "halfspace_flip",
                     "halfspace_lipschitz",
                     "hard_labels",
                     "kernel_machine_scores",
                     "knn_votes",
                     "label_frequencies",
                     "laplace_kernel",
                     "loss_shift",
                     "nearest_neighbors",
                     "noise_replication_ratio",
                     "one_hot",
                     "one_nn_sampler_bound",
                     "pairflip_matrix",
                     "pointwise_sampler_gap",
                     "random_teacher_labels",
                     "relu_kernel",
                     "replication_regime",
                     "risk",
                     "sampler_gap",
                     "sampler_risk",
                     "sector_of",
                     "sectors_pairflip",
                     "softmax_objective",
                     "softmax_regression",
                     "sphere_sign",
                     "student_bound",
                     "threshold_family",
                     "transition_sectors",
]
