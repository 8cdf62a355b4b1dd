"""Saglietti & Zdeborová (2022), "Solvable Model for Inheriting the Regularization through Knowledge
Distillation" (MSML 2021, PMLR 145:809-846): replica learning curves of a sparse linear student distilled
from a ridge-logistic (or Bayes-optimal proxy) teacher on a binary Gaussian mixture.

Notation: the paper's χ (soft fraction) is ntkd's ``rho``, as in every theory; the paper's ρ (the "+"
cluster fraction) is ``p_plus``. Δ ``delta``, α ``alpha``, η ``eta``, λ ``lam``, λ̃ ``lam_t``, T ``T``.

* :mod:`.mixture`: the data law (Eq. 10), test error (Eq. 12), Bayes-optimal errors (Eqs. 13-14, 23-24);
* :mod:`.prox`: the KD loss with its derivatives, and its proximal operator (implicit derivative);
* :mod:`.state`: teacher, BO-proxy teacher and student fixed points (damped iteration, implicit grad);
* :mod:`.curves`: learning curves over α with warm starts.
"""
from .curves import learning_curve
from .mixture import bayes_error, bo_bias, gauss_tail, gen_error, gmm_sample
from .prox import kd_loss_derivatives, prox_kd
from .state import (
                    NotConvergedError,
                    StudentState,
                    TeacherState,
                    bo_teacher_state,
                    solve_student_state,
                    solve_teacher_state,
)

__all__ = [
                    "NotConvergedError",
                    "StudentState",
                    "TeacherState",
                    "bayes_error",
                    "bo_bias",
                    "bo_teacher_state",
                    "gauss_tail",
                    "gen_error",
                    "gmm_sample",
                    "kd_loss_derivatives",
                    "learning_curve",
                    "prox_kd",
                    "solve_student_state",
                    "solve_teacher_state",
]
