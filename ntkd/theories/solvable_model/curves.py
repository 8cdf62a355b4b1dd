"""Learning curves of the solvable model (Saglietti & Zdeborová 2022): teacher and student test errors
over a sequence of α, each solve warm-started from the previous converged one."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .state import (
    NotConvergedError,
    bo_teacher_state,
    solve_student_state,
    solve_teacher_state,
)

__all__ = ["learning_curve"]


def learning_curve(alphas, *, p_plus, delta, eta, lam, rho, T=1.0, lam_t=None, teacher="erm",
                   label_smoothing_teacher=0.0, label_smoothing=0.0, teacher_grid: int = 2001,
                   n_grid=(401, 301), tol=None, max_iter: int = 5000, continuation: int = 0):
    """Teacher and student test errors over ``alphas`` (in the given order; sort them so that neighbours
    are close), each fixed point started from the previous α's.

    Args: ``alphas`` a 1-D sequence of α; task ``p_plus`` (paper's ρ), ``delta`` (Δ); student ``eta``,
    ``lam`` (λ), ``rho`` (the paper's χ), ``T``, ``label_smoothing`` (of the student's hard term);
    ``teacher``: ``"erm"`` (ridge-logistic with ``lam_t`` = λ̃ and ``label_smoothing_teacher``) or
    ``"bo"`` (the Bayes-optimal proxy of Eq. 24); grids, ``tol``, ``max_iter`` and ``continuation`` (stages
    in λ and λ̃ from 0.1, used at the first α only) as in :func:`solve_student_state`.

    Returns a dict of NumPy-able arrays of length ``len(alphas)``: ``alpha``, ``teacher_error``,
    ``student_error``, ``teacher`` (a :class:`TeacherState` of arrays), ``student`` (a :class:`StudentState`
    of arrays). An α whose solve does not converge gets NaN fields (and the next α starts from the last
    converged state) instead of an exception.
    """
    if teacher not in ("erm", "bo"):
        raise ValueError(f"`teacher` must be 'erm' (ridge-logistic) or 'bo' (Bayes-optimal proxy); got {teacher!r}.")
    if teacher == "erm" and lam_t is None:
        raise ValueError("`lam_t` (the teacher's λ̃) is required for teacher='erm'.")
    alphas = list(jnp.atleast_1d(jnp.asarray(alphas)))  # 0-d arrays: a float32 α keeps the solve float32
    if not alphas:
        raise ValueError("`alphas` is empty; pass at least one sample ratio α.")
    t_prev = s_prev = None
    teachers, students = [], []
    for i, a in enumerate(alphas):
        cont = continuation if i == 0 else 0
        if teacher == "bo":
            t = bo_teacher_state(a, p_plus=p_plus, delta=delta)
        else:
            t = _try(solve_teacher_state, a, lam_t, p_plus=p_plus, delta=delta,
                     label_smoothing=label_smoothing_teacher, n_grid=teacher_grid, tol=tol, max_iter=max_iter,
                     init=t_prev, continuation=cont)
        s = None
        if t is not None:
            s = _try(solve_student_state, t, eta=eta, lam=lam, rho=rho, T=T, label_smoothing=label_smoothing,
                     n_grid=n_grid, tol=tol, max_iter=max_iter, init=s_prev, continuation=cont)
        teachers.append(t)
        students.append(s)
        t_prev = t if t is not None else t_prev
        s_prev = s if s is not None else s_prev
    t_tpl = next((t for t in teachers if t is not None), None)
    s_tpl = next((s for s in students if s is not None), None)
    if t_tpl is None or s_tpl is None:
        raise NotConvergedError("no α of the learning curve converged; see solve_student_state for remedies.")
    fill = lambda tpl, xs: [x if x is not None else jax.tree_util.tree_map(
        lambda a: jnp.full_like(a, jnp.nan, dtype=jnp.result_type(float)), tpl) for x in xs]
    teachers, students = fill(t_tpl, teachers), fill(s_tpl, students)
    stack = lambda xs: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *xs)
    T_, S_ = stack(teachers), stack(students)
    return {"alpha": jnp.stack(alphas), "teacher_error": T_.error, "student_error": S_.error, "teacher": T_,
            "student": S_}


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except NotConvergedError:
        return None
