"""Synthetic tasks and metrics of the crossfit theory: the two-Gaussian Bayes probabilities against the
densities, label frequencies by Monte Carlo, AUC against scikit-learn."""
import jax
import numpy as np
from scipy.stats import multivariate_normal

from ntkd.theories.crossfit import (accuracy, auc, cross_entropy, multiclass_logistic, smoothed, sq_error, tempered,
                                    two_gaussian, two_gaussian_p0)


def test_two_gaussian_p0_is_the_posterior_of_the_mixture():
    x = np.random.default_rng(0).normal(size=(5, 3))
    r = 0.4
    f0 = multivariate_normal(mean=np.full(3, r)).pdf(x)
    f1 = multivariate_normal(mean=np.full(3, -r)).pdf(x)
    np.testing.assert_allclose(two_gaussian_p0(x, r=r)[:, 1], f1 / (f0 + f1), rtol=1e-12)


def test_two_gaussian_labels_follow_p0_and_dtype():
    t = two_gaussian(jax.random.PRNGKey(0), 8000, d=2, r=0.5)
    assert t.x.dtype == np.float32 and t.p0.shape == (8000, 2)
    # E[Y - p0(X)] = 0: Monte Carlo within 4 standard errors
    resid = np.asarray(t.y, float) - np.asarray(t.p0[:, 1], float)
    assert abs(resid.mean()) < 4 * resid.std() / np.sqrt(len(resid))


def test_multiclass_logistic_and_controlled_teachers():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    t = multiclass_logistic(jax.random.PRNGKey(1), 8000, W=W)
    freq = np.bincount(np.asarray(t.y), minlength=3) / 8000
    p = np.asarray(t.p0).mean(0)
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / 8000))
    q = np.array([[0.7, 0.2, 0.1]])
    np.testing.assert_allclose(tempered(q, 2.0), np.sqrt(q) / np.sqrt(q).sum(), rtol=1e-12)
    np.testing.assert_allclose(smoothed(q, 0.3), 0.7 * q + 0.1, rtol=1e-12)
    np.testing.assert_allclose(sq_error(q, tempered(q, 1.0)), 0.0, atol=1e-15)


def test_metrics_against_references():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # ties
    np.testing.assert_allclose(auc(s, y), roc_auc_score(y, s), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(auc)(s, y), roc_auc_score(y, s), rtol=1e-12)
    p = rng.dirichlet(np.ones(3), size=50)
    yy = rng.integers(0, 3, 50)
    np.testing.assert_allclose(accuracy(p, yy), np.mean(p.argmax(1) == yy))
    np.testing.assert_allclose(cross_entropy(p, yy), -np.mean(np.log(p[np.arange(50), yy])), rtol=1e-12)
    assert np.isnan(auc(s, np.zeros(200, int)))
