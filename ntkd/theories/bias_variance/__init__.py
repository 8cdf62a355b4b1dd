"""Menon, Rawat, Reddi, Kim & Kumar (2020), "Why distillation helps: a statistical perspective" (ICML 2021:
"A statistical perspective on distillation"): distillation as a **risk estimator**. A teacher's
probabilities ``p^t`` replace one-hot labels in the empirical risk; the Bayes probabilities ``p*`` give an
unbiased estimator of lower variance (Lemma 1), and an imperfect teacher trades bias ``E(p^t - p*)ᵀℓ`` for
variance (Prop. 3): a good teacher has probabilities close to ``p*``, not just high accuracy.

* :mod:`.estimators`: loss vectors (``(n, K)`` loss matrices), the one-hot, distilled, Bayes-distilled and
  mixed risks, the empirical-Bernstein bound (Prop. 2);
* :mod:`.moments`: predicted bias/variance/MSE (exact forms of Lemma 1 and Prop. 3), the optimal mixing
  weight, population risk, Monte-Carlo statistics of the estimators, probability-quality metrics;
* :mod:`.tasks`: synthetic tasks with exact ``p*`` (Gaussian class-conditionals, multiclass logistic,
  finite input laws);
* :mod:`.retrieval`: extreme retrieval (§2.2, T3): sampled softmax with uniform, teacher-mined or
  teacher-sampled negatives and the logQ correction, teacher-weighted positives, double distillation
  (a documented reconstruction), precision/recall@k against labels and against p*'s top-k;
* :mod:`.teachers`: the teacher zoo (exact, tempered, smoothed, logit noise, hard, memorizer, kernel).

Conventions: K classes, softmax; binary is K = 2 with logits ``[0, z]`` (:func:`binary_logits`), which
agrees with Ji & Zhu's single-logit loss. The mixing weight, the paper's ω, is the keyword ``rho`` (ntkd's
soft fraction in every theory); ``rho_star`` is the paper's ω*.
"""
from .estimators import (
                         LOSSES,
                         bayes_distilled_risk,
                         binary_logits,
                         distilled_risk,
                         empirical_bernstein_bound,
                         empirical_risk,
                         loss_vector,
                         mixed_risk,
)
from .moments import (
                         ESTIMATORS,
                         estimator_moments,
                         optimal_mixing_weight,
                         population_risk,
                         probability_metrics,
                         risk_estimator_stats,
)
from .retrieval import (
                         double_distillation_loss,
                         negative_proposal,
                         oracle_precision_at_k,
                         precision_at_k,
                         recall_at_k,
                         retrieval_task,
                         sample_negatives,
                         sample_positives,
                         sampled_softmax_loss,
                         teacher_hard_negatives,
                         teacher_positives,
                         teacher_sampled_negatives,
                         uniform_negatives,
)
from .tasks import (
                         FiniteTask,
                         GaussianTask,
                         LogisticTask,
                         bayes_logits,
                         bayes_probs,
                         finite_task,
                         gaussian_task,
                         logistic_task,
                         population,
                         sample,
)
from .teachers import (
                         TEACHERS,
                         hard,
                         kernel_teacher,
                         logit_noise,
                         memorizer,
                         noise_function,
                         smoothed,
                         teacher_zoo,
                         tempered,
)

__all__ = [
                         "ESTIMATORS",
                         "LOSSES",
                         "TEACHERS",
                         "FiniteTask",
                         "GaussianTask",
                         "LogisticTask",
                         "bayes_distilled_risk",
                         "bayes_logits",
                         "bayes_probs",
                         "binary_logits",
                         "distilled_risk",
                         "double_distillation_loss",
                         "empirical_bernstein_bound",
                         "empirical_risk",
                         "estimator_moments",
                         "finite_task",
                         "gaussian_task",
                         "hard",
                         "kernel_teacher",
                         "logistic_task",
                         "logit_noise",
                         "loss_vector",
                         "memorizer",
                         "mixed_risk",
                         "negative_proposal",
                         "noise_function",
                         "optimal_mixing_weight",
                         "oracle_precision_at_k",
                         "population",
                         "population_risk",
                         "precision_at_k",
                         "probability_metrics",
                         "recall_at_k",
                         "retrieval_task",
                         "risk_estimator_stats",
                         "sample",
                         "sample_negatives",
                         "sample_positives",
                         "sampled_softmax_loss",
                         "smoothed",
                         "teacher_hard_negatives",
                         "teacher_positives",
                         "teacher_sampled_negatives",
                         "teacher_zoo",
                         "tempered",
                         "uniform_negatives",
]
