"""Small statistics of stored results: least-squares log-log slopes and means with standard errors."""
from __future__ import annotations

import numpy as np

__all__ = ["loglog_slope", "mean_sem"]


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the points where both are > 0 (NaN with fewer
    than two such points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def mean_sem(values, axis=0):
    """Mean and standard error of the mean (sample standard deviation / sqrt(count); 0 for one value)."""
    v = np.asarray(values, float)
    k = v.shape[axis]
    sem = np.std(v, axis=axis, ddof=1) / np.sqrt(k) if k > 1 else np.zeros_like(np.mean(v, axis=axis))
    return np.mean(v, axis=axis), sem
