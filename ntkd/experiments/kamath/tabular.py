"""Tabular study (Dao, Kamath et al. 2021, §3.2–3.3 of the brief; checks C7–C9, C12) with scikit-learn
random forests, on datasets available offline.

The authors' datasets (Adult, FICO, Higgs, MAGIC, StumbleUpon) need downloads; this study runs the same
protocol on scikit-learn's bundled ``breast_cancer`` (569 × 30, AUC) and ``digits_odd`` (the 1,797 8×8
digits, label = odd digit, accuracy), or on any local CSV (``csv:<path>:<target column>``, binary target).
Protocol (from ``tabular.py``): 70/30 split, features standardised; teacher ``RandomForestClassifier``
(500 trees, ``max_depth`` for the depth sweep); students ``RandomForestRegressor(n_trees)`` fitted to the
corrected targets of :mod:`ntkd.theories.crossfit.targets`; cross-fitting with 10-fold
:func:`ntkd.theories.crossfit.crossfit_teacher`; the BoundFast c chosen by k-fold cross-validation of
the task metric on the true labels (the authors' ``GridSearchCV(refit=False)``).

scikit-learn is the optional extra ``ntkd[tabular]``; it is imported inside the functions.
"""
from __future__ import annotations

import jax
import numpy as np

from ...theories.crossfit import auc, crossfit_teacher, gamma_boundfast, gamma_orth, kd_target

__all__ = ["require_sklearn", "load_dataset", "DATASETS", "score", "teacher_probs", "student_targets",
           "fit_student", "choose_c", "METRIC", "metric_of"]

DATASETS = ("breast_cancer", "digits_odd")
#: task metric of each dataset (as in the paper: AUC for balanced-score tasks, accuracy at 0.5 otherwise)
METRIC = {"breast_cancer": "auc", "digits_odd": "accuracy"}


def metric_of(name: str) -> str:
    """The task metric of a dataset name (AUC for a local CSV)."""
    return METRIC.get(name, "auc")


def require_sklearn():
    """Import scikit-learn or raise an error naming the optional extra."""
    try:
        import sklearn  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("the tabular study needs scikit-learn: pip install 'ntkd[tabular]'") from e
    return sklearn


def load_dataset(name: str, *, seed: int = 2357):
    """``(x_train, y_train, x_test, y_test)`` float64 / int arrays: a 70/30 split (``seed``) with features
    standardised on the training part. ``name``: one of :data:`DATASETS`, or ``csv:<path>:<column>``
    (a local CSV with a header and a binary target column; other columns numeric)."""
    require_sklearn()
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
    elif name == "digits_odd":
        x, y = load_digits(return_X_y=True)
        y = y % 2
    elif name.startswith("csv:"):
        path, _, col = name[4:].rpartition(":")
        if not path or not col:
            raise ValueError(f"a CSV dataset is 'csv:<path>:<target column>'; got {name!r}.")
        import csv

        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or col not in rows[0]:
            raise ValueError(f"column {col!r} not found in {path}; columns: {list(rows[0]) if rows else []}.")
        labels = sorted({r[col] for r in rows})
        if len(labels) != 2:
            raise ValueError(f"target column {col!r} must be binary; found {len(labels)} values.")
        y = np.array([labels.index(r[col]) for r in rows])
        x = np.array([[float(r[k]) for k in rows[0] if k != col] for r in rows])
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS} or 'csv:<path>:<column>'.")
    xtr, xte, ytr, yte = train_test_split(x, y.astype(int), test_size=0.3, random_state=seed)
    sc = StandardScaler().fit(xtr)
    return sc.transform(xtr), ytr, sc.transform(xte), yte


def score(metric: str, y, p1) -> float:
    """Task metric of positive-class scores ``p1``: ``"auc"`` or ``"accuracy"`` (at 0.5)."""
    p1 = np.asarray(p1, float)
    if metric == "auc":
        return float(auc(p1, np.asarray(y)))
    return float(np.mean((p1 > 0.5) == np.asarray(y)))


def teacher_probs(x, y, x_test, *, K: int = 10, n_estimators: int = 500, max_depth=None, seed: int = 0):
    """Random-forest teachers: ``{"in": (n,), "cf": (n,), "test_full": (m,), "test_cf": (K, m)}``, the
    positive-class probability of the teacher fitted on all n (in-sample, vanilla KD's targets), the
    cross-fitted out-of-fold probabilities, and the test predictions of the full and fold teachers."""
    require_sklearn()
    from sklearn.ensemble import RandomForestClassifier

    seeds = iter(range(1000 * seed + 1, 1000 * seed + K + 2))  # one forest seed per fit

    def fit(a, b):
        return RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=next(seeds),
                                      n_jobs=1).fit(a, b)

    def pred(m, a):
        return m.predict_proba(a)[:, 1]

    cf = crossfit_teacher(fit, pred, x, y, K=K, key=jax.random.PRNGKey(seed), x_test=x_test)
    full = fit(x, y)
    return {"in": pred(full, x), "cf": cf.oof, "test_full": pred(full, x_test), "test_cf": cf.test}


def student_targets(p, y, *, scale: str, rule: str = "kd", c: float = 1.0):
    """Regression targets of a student (NumPy float64): ``rule`` ``"kd"`` (γ = 0), ``"boundfast"``
    (γ from :func:`gamma_boundfast` with ``c``), ``"ortho"`` (γ = g'(p̂)), on ``scale`` ``"p"``/``"logp"``."""
    p, yf = np.asarray(p, float), np.asarray(y, float)
    if rule == "kd":
        g = 0.0
    elif rule == "boundfast":
        g = gamma_boundfast(p, yf, c=c, scale=scale)
    elif rule == "ortho":
        g = gamma_orth(p, scale=scale)
    else:
        raise ValueError(f"`rule` must be 'kd', 'boundfast' or 'ortho'; got {rule!r}.")
    return np.asarray(kd_target(p, yf, scale=scale, gamma=g))


def fit_student(x, t, x_test, *, n_trees: int, scale: str, seed: int):
    """``RandomForestRegressor(n_trees)`` on targets t; returns its test predictions on the p scale
    (``exp`` of the prediction for ``scale="logp"``, as in the authors' code)."""
    require_sklearn()
    from sklearn.ensemble import RandomForestRegressor

    m = RandomForestRegressor(n_estimators=n_trees, random_state=seed, n_jobs=1).fit(x, t)
    out = m.predict(x_test)
    return np.exp(out) if scale == "logp" else out


def choose_c(x, y, p, *, grid, n_trees: int, scale: str, metric: str, folds: int = 5, seed: int = 0) -> float:
    """The BoundFast c of ``grid`` with the best mean ``metric`` over ``folds``-fold cross-validation on
    the training set (targets built from p and y on the training folds, scored on the true labels of the
    held-out fold)."""
    require_sklearn()
    from sklearn.model_selection import KFold

    best, best_c = -np.inf, grid[0]
    for c in grid:
        t = student_targets(p, y, scale=scale, rule="boundfast", c=c)
        s = np.mean([score(metric, y[te], fit_student(x[tr], t[tr], x[te], n_trees=n_trees, scale=scale,
                                                      seed=seed))
                     for tr, te in KFold(folds, shuffle=True, random_state=seed).split(x)])
        if s > best:
            best, best_c = s, c
    return float(best_c)
