"""Cross-fitting (Dao, Kamath, Syrgkanis & Mackey 2021, §2.1 of the brief): every training example i gets
its teacher prediction from a teacher ``p̂^{(-t(i))}`` fitted without i's fold, so the student's targets
never reuse the teacher's own training points.

* :func:`fold_ids`: fold of each example, ``"kfold"`` (shuffled K-fold, the tabular code) or
  ``"perm_mod"`` (``π(i) mod K`` for a random permutation π, the CIFAR code). Both give balanced folds:
  the first ``n mod K`` folds hold ``⌈n/K⌉`` examples, the others ``⌊n/K⌋``.
* :func:`crossfit_teacher`: any ``fit_fn``/``predict_fn`` pair (scikit-learn estimators, Flax networks,
  kernel machines), K fits on the host; returns the out-of-fold predictions and each fold teacher's
  predictions on a test set.
* :func:`kernel_crossfit`: kernel ridge teachers by exact leave-fold-out algebra from one inverse of
  ``K + λI`` (no refits), jit/vmap/grad-able.
* :func:`select_out_of_fold` / :func:`crossfit_batch_teacher_logits`: route minibatch examples to their
  out-of-fold teacher (the ``DistillCrossfitLightningModel`` logic), inside jitted training steps.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..._core.checks import all_true, as_float_array, check_finite, check_int, check_positive
from ..._core.linalg import mm

__all__ = ["fold_ids", "fold_sizes", "fold_train_mask", "CrossFit", "crossfit_teacher", "kernel_crossfit",
           "KernelCrossFit", "select_out_of_fold", "crossfit_batch_teacher_logits"]


def fold_sizes(n: int, K: int) -> np.ndarray:
    """Sizes of the K balanced folds of n examples: ``⌈n/K⌉`` for the first ``n mod K``, else ``⌊n/K⌋``."""
    return np.array([n // K + (t < n % K) for t in range(K)], dtype=int)


def fold_ids(n: int, K: int, *, key, scheme: str = "kfold"):
    """Fold index in ``[0, K)`` of each of n examples: ``int32 (n,)``.

    ``"kfold"``: shuffle the indices with ``key`` and cut them into K consecutive blocks of
    :func:`fold_sizes` (scikit-learn's ``KFold(shuffle=True)`` up to its random generator);
    ``"perm_mod"``: ``fold(i) = π(i) mod K`` with ``π = permutation(key, n)`` (the CIFAR code's
    ``randperm(n)[i] % K``). n and K are static; ``key`` may be traced (vmap over keys).
    """
    n = check_int(n, "n", minimum=1)
    K = check_int(K, "K", minimum=2)
    if K > n:
        raise ValueError(f"`K`={K} folds exceed the n={n} examples; use K <= n.")
    perm = jax.random.permutation(key, n)
    if scheme == "perm_mod":
        return (perm % K).astype(jnp.int32)
    if scheme != "kfold":
        raise ValueError(f"`scheme` must be 'kfold' or 'perm_mod'; got {scheme!r}.")
    block = jnp.asarray(np.repeat(np.arange(K), fold_sizes(n, K)), jnp.int32)
    return jnp.zeros(n, jnp.int32).at[perm].set(block)


def fold_train_mask(fold, K: int):
    """``bool (K, n)``: row t marks the training set of teacher t (examples outside fold t)."""
    return jnp.asarray(fold)[None, :] != jnp.arange(K)[:, None]


def _check_fold(fold, n, K):
    fold = jnp.asarray(fold)
    if fold.shape != (n,) or not jnp.issubdtype(fold.dtype, jnp.integer):
        raise ValueError(f"`fold` must be integer fold ids of shape ({n},); got {fold.shape} {fold.dtype}. "
                         "Make one with fold_ids(n, K, key=...).")
    if not all_true(fold, lambda f: ((f >= 0) & (f < K)).all()):
        raise ValueError(f"`fold` ids must lie in [0, K) = [0, {K}).")
    return fold


class CrossFit(NamedTuple):
    """Result of :func:`crossfit_teacher`: ``oof`` ``(n, ...)`` out-of-fold predictions (row i from the
    teacher that did not see i); ``fold`` ``(n,)``; ``teachers`` the K fitted models (list);
    ``test`` ``(K, m, ...)`` each fold teacher's predictions on ``x_test`` (None without it)."""

    oof: Any
    fold: Any
    teachers: list
    test: Optional[Any]


def crossfit_teacher(fit_fn: Callable, predict_fn: Callable, x, y, *, K: int = 10, key=None, fold=None,
                     scheme: str = "kfold", x_test=None) -> CrossFit:
    """Cross-fit a teacher: for each fold t, ``model_t = fit_fn(x[fold != t], y[fold != t])`` and
    ``oof[fold == t] = predict_fn(model_t, x[fold == t])``.

    ``fit_fn(x, y) -> model`` and ``predict_fn(model, x) -> (m, ...)`` are arbitrary host callables
    (a scikit-learn ``RandomForestClassifier`` with ``predict_proba``, a network trained by
    :func:`ntkd.finite.train_classifier`, a kernel machine…); the K fits run in a Python loop. Give
    either ``fold`` ``(n,)`` or a ``key`` (folds from :func:`fold_ids` with ``scheme``). ``x``, ``y`` are
    arrays with leading axis n (NumPy or JAX; subsets are taken with boolean masks).
    Invariant (tested): ``oof[i]`` comes from a model whose training set excludes i.
    """
    if not callable(fit_fn) or not callable(predict_fn):
        raise ValueError("`fit_fn(x, y) -> model` and `predict_fn(model, x) -> predictions` must be callable.")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"`x` has {n} rows but `y` has {len(y)}.")
    K = check_int(K, "K", minimum=2)
    if fold is None:
        if key is None:
            raise ValueError("pass `fold` (n,) fold ids or a `key` to draw them with fold_ids.")
        fold = fold_ids(n, K, key=key, scheme=scheme)
    fold = np.asarray(_check_fold(fold, n, K))
    oof, teachers, test = None, [], []
    for t in range(K):
        held = fold == t
        if not held.any():
            raise ValueError(f"fold {t} is empty; use K <= n and balanced folds (fold_ids).")
        model = fit_fn(x[~held], y[~held])
        pred = np.asarray(predict_fn(model, x[held]))
        if oof is None:
            oof = np.full((n,) + pred.shape[1:], np.nan, dtype=pred.dtype if pred.dtype.kind == "f" else float)
        oof[held] = pred
        teachers.append(model)
        if x_test is not None:
            test.append(np.asarray(predict_fn(model, x_test)))
    return CrossFit(oof, fold, teachers, np.stack(test) if x_test is not None else None)


class KernelCrossFit(NamedTuple):
    """Result of :func:`kernel_crossfit`: ``oof`` ``(n, c)`` out-of-fold ridge predictions; ``weights``
    ``(K, n, c)`` the dual coefficients of fold teacher t (zero on fold t), so teacher t predicts
    ``K(x, X) @ weights[t]``; ``test`` ``(K, m, c)`` or None; ``full`` ``(n, c)`` the in-sample predictions
    of the teacher fitted on all n (vanilla KD's targets)."""

    oof: jax.Array
    weights: jax.Array
    test: Optional[jax.Array]
    full: jax.Array


def kernel_crossfit(k_train_train, y, fold, *, K: int, ridge: float, k_test_train=None) -> KernelCrossFit:
    """Kernel ridge teachers ``f_{-t}(x) = K(x, X_{-t}) (K_{-t,-t} + λI)^{-1} y_{-t}`` for every fold t from
    one inverse ``P = (K + λI)^{-1}``, with no refits (exact algebra, [DERIVED]):

    with ``α = P y`` and the fold's block ``P_tt``, the fold teacher's dual weights on all n points are
    ``β_t = α − P_{:,t} P_tt^{-1} α_t`` (zero on fold t), and on fold t its predictions are
    ``y_t − P_tt^{-1} α_t`` (the grouped leave-out residual). Cost: one n×n inverse plus K solves of
    size n/K, against K factorizations of size (K−1)n/K for refitting.

    Args:
      k_train_train: ``(n, n)`` kernel (e.g. ``mlp_kernel_fn(...)(x, get="ntk")``).
      y: ``(n,)`` or ``(n, c)`` targets (one-hot rows give class-score teachers).
      fold: ``(n,)`` balanced fold ids as from :func:`fold_ids` (sizes :func:`fold_sizes`; checked eagerly,
        assumed under jit). K: number of folds (static).
      ridge: absolute ridge λ ≥ 0 (the same λ for every fold, i.e. ``diag_reg_absolute_scale=True`` in
        :func:`ntkd.kernel_regression`, which the refits of the tests use). λ = 0 needs an invertible K.
      k_test_train: optional ``(m, n)`` kernel to test points.
    """
    k = as_float_array(k_train_train, "k_train_train")
    n = k.shape[0]
    if k.ndim != 2 or k.shape != (n, n):
        raise ValueError(f"`k_train_train` must be a square (n, n) kernel; got shape {k.shape}.")
    check_finite(k, "k_train_train")
    y = as_float_array(y, "y").astype(k.dtype)
    vec = y.ndim == 1
    y2 = y[:, None] if vec else y
    if y2.ndim != 2 or y2.shape[0] != n:
        raise ValueError(f"`y` must have shape ({n},) or ({n}, c); got {y.shape}.")
    K = check_int(K, "K", minimum=2)
    ridge = check_positive(ridge, "ridge", allow_zero=True)
    fold = _check_fold(fold, n, K)
    sizes = fold_sizes(n, K)
    if not all_true(fold, lambda f: (jnp.bincount(f, length=K) == jnp.asarray(sizes)).all()):
        raise ValueError(f"`fold` must be balanced with sizes {sizes.tolist()} (as from fold_ids).")
    kt = None
    if k_test_train is not None:
        kt = as_float_array(k_test_train, "k_test_train").astype(k.dtype)
        if kt.ndim != 2 or kt.shape[1] != n:
            raise ValueError(f"`k_test_train` must have shape (m, {n}); got {kt.shape}.")
    oof, W, test, full = _kernel_crossfit(k, y2, fold, jnp.asarray(ridge, k.dtype), kt, K=K)
    if vec:
        oof, W, full = oof[:, 0], W[..., 0], full[:, 0]
        test = None if test is None else test[..., 0]
    return KernelCrossFit(oof, W, test, full)


@partial(jax.jit, static_argnames=("K",))
def _kernel_crossfit(k, y2, fold, ridge, kt, *, K):
    n = k.shape[0]
    sizes = fold_sizes(n, K)
    P = jnp.linalg.inv(k + ridge * jnp.eye(n, dtype=k.dtype))
    P = 0.5 * (P + P.T)
    alpha = mm(P, y2)
    order = jnp.argsort(fold, stable=True)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    oof = jnp.zeros_like(y2)
    weights = []
    for t in range(K):
        idx = order[starts[t]:starts[t + 1]]
        corr = jnp.linalg.solve(P[jnp.ix_(idx, idx)], alpha[idx])  # P_tt^{-1} α_t
        oof = oof.at[idx].set(y2[idx] - corr)
        weights.append(alpha - mm(P[:, idx], corr))
    W = jnp.where(fold_train_mask(fold, K)[..., None], jnp.stack(weights), 0.0)  # exact zeros on fold t
    test = None if kt is None else jnp.stack([mm(kt, W[t]) for t in range(K)])
    return oof, W, test, y2 - ridge * alpha


def select_out_of_fold(outputs, fold_of_rows):
    """Pick, for each row b, the output of its out-of-fold teacher: ``outputs`` ``(K, B, ...)`` (every
    teacher on the batch), ``fold_of_rows`` ``(B,)`` → ``(B, ...)`` = ``outputs[fold[b], b]``."""
    outputs = jnp.asarray(outputs)
    f = jnp.asarray(fold_of_rows)
    return jnp.take_along_axis(outputs, f.reshape((1, -1) + (1,) * (outputs.ndim - 2)), axis=0)[0]


def crossfit_batch_teacher_logits(apply_fn: Callable, teacher_params, batch_x, batch_idx, fold):
    """Teacher logits of a minibatch, each example scored by its out-of-fold teacher.

    ``teacher_params``: the K fold teachers' parameters stacked on a leading axis (``jax.vmap`` of an
    ``init_fn``, or stacked trained states); ``apply_fn(params, x (B, d)) -> (B, k)``; ``batch_idx`` ``(B,)``
    the examples' indices into the training set, ``fold`` ``(n,)`` their folds. Evaluates all K teachers
    on the batch (one vmap, no data-dependent shapes, so it jits) and selects ``z[fold[idx_b], b]``.
    """
    z = jax.vmap(apply_fn, (0, None))(teacher_params, batch_x)
    return select_out_of_fold(z, jnp.asarray(fold)[jnp.asarray(batch_idx)])
