"""Predicted vs measured statistics of the risk estimators (Menon et al. 2020, checks M1–M4, M8) on tasks with
exact p*, the brief's T1 reference numbers, the tasks' samplers against their laws, and jit/vmap/grad."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import multivariate_normal

from ntkd.theories import bias_variance as bv

RNG = np.random.default_rng(3)
M, K = 8, 3
SUPPORT = RNG.normal(size=(M, 2))
PSTAR = softmax(RNG.normal(0, 1.2, (M, K)), axis=1)
WEIGHTS = RNG.dirichlet(np.ones(M) * 3)
FTASK = bv.finite_task(SUPPORT, PSTAR, weights=WEIGHTS)
WF = RNG.normal(0, 0.8, (2, K))


def loss_fn(x):
    return bv.loss_vector(x @ WF)


TEACHER = bv.teacher_zoo(lambda x: bv.bayes_probs(FTASK, x), "tempered", 2.0)


ELL = SUPPORT @ WF - np.log(np.exp(SUPPORT @ WF).sum(1, keepdims=True))
ELL = -ELL  # NumPy softmax-CE loss matrix of the fixed predictor


def numpy_moments(n, rho):
    ell = ELL
    pt = softmax(np.log(PSTAR) / 2.0, axis=1)
    w = WEIGHTS
    c, t = (PSTAR * ell).sum(1), (pt * ell).sum(1)
    R = w @ c
    var_y = w @ (PSTAR * ell**2).sum(1) - R**2  # V_{x,y} ℓ(y, f(x))
    var_c, var_t = w @ (c - R) ** 2, w @ (t - w @ t) ** 2
    bias = w @ (t - c)
    # mixed estimator's per-example value given (x, y): (1-ω) ℓ_y + ω t; its variance by enumeration
    vals = (1 - rho) * ell + rho * t[:, None]
    mean_mix = (w[:, None] * PSTAR * vals).sum()
    var_mix = (w[:, None] * PSTAR * (vals - mean_mix) ** 2).sum()
    return {"risk": R, "var_onehot": var_y / n, "var_bayes": var_c / n, "var_teacher": var_t / n,
            "bias_teacher": bias, "mse_teacher": var_t / n + bias**2,
            "mse_mixed": var_mix / n + (mean_mix - R) ** 2}


@pytest.fixture(scope="module")
def stats():
    return jax.jit(lambda k: bv.risk_estimator_stats(k, FTASK, loss_fn, TEACHER, n=20, reps=6000, rho=0.3))(
        jax.random.PRNGKey(0))


def test_predicted_moments_match_enumeration():
    # the closed forms of Lemma 1 / Prop. 3 / §1.5 iv against brute-force enumeration over (x, y)
    ell = loss_fn(SUPPORT)
    pt = TEACHER(SUPPORT)
    for n, om in [(1, 0.0), (20, 0.3), (500, 0.9)]:
        m = bv.estimator_moments(ell, PSTAR, pt, n=n, weights=WEIGHTS, rho=om)
        ref = numpy_moments(n, om)
        for k, v in ref.items():
            np.testing.assert_allclose(m[k], v, rtol=1e-10, err_msg=k)
        np.testing.assert_allclose(m["gap"], m["var_onehot"] - m["var_bayes"], rtol=1e-12)
        # the grid minimum of the exact quadratic is at rho_star (the paper's ω*)
        grid = np.linspace(0, 1, 2001)
        mse = [numpy_moments(n, g)["mse_mixed"] for g in grid]
        assert abs(grid[int(np.argmin(mse))] - float(m["rho_star"])) <= 1e-3


def test_m1_m2_m3_monte_carlo_agrees_with_the_exact_moments(stats):
    pred = stats["predicted"]
    assert float(stats["risk_se"]) == 0.0  # finite task: exact truth
    for name in bv.ESTIMATORS:  # M1: one-hot and Bayes-distilled unbiased; teacher/mixed biased as predicted
        s = stats[name]
        expect = {"onehot": 0.0, "bayes": 0.0, "teacher": pred["bias_teacher"], "mixed": pred["bias_mixed"]}[name]
        assert abs(float(s["bias"] - expect)) < 4 * float(s["mean_se"]), name
    # M2: variances and their gap
    for name, key in [("onehot", "var_onehot"), ("bayes", "var_bayes"), ("teacher", "var_teacher"),
                      ("mixed", "var_mixed")]:
        assert abs(float(stats[name]["var"] - pred[key])) < 4 * float(stats[name]["var_se"]), name
    assert abs(float(stats["gap"]["var"] - pred["gap"])) < 4 * float(stats["gap"]["var_se"])
    assert float(pred["gap"]) > 0 and float(stats["onehot"]["var"]) > float(stats["bayes"]["var"])
    # M3: the teacher's MSE = variance + bias², below the Cauchy–Schwarz bound
    for name, key in [("teacher", "mse_teacher"), ("mixed", "mse_mixed")]:
        assert abs(float(stats[name]["mse"] - pred[key])) < 4 * float(stats[name]["mse_se"]), name
    assert float(pred["mse_teacher"]) <= float(pred["mse_bound"])
    assert abs(float(pred["bias_teacher"])) <= float(pred["bias_bound"])


def test_m2_gap_vanishes_for_deterministic_labels():
    hard_task = bv.finite_task(SUPPORT, np.eye(K)[PSTAR.argmax(1)], weights=WEIGHTS)
    ell = loss_fn(SUPPORT)
    m = bv.estimator_moments(ell, hard_task.p_star, hard_task.p_star, n=10, weights=WEIGHTS)
    assert float(m["gap"]) == 0.0
    assert float(m["var_onehot"]) == pytest.approx(float(m["var_bayes"]), rel=1e-13)


def test_m8_monte_carlo_best_omega_matches_optimal_mixing_weight():
    n = 60
    w_star = float(bv.optimal_mixing_weight(loss_fn(SUPPORT), PSTAR, TEACHER(SUPPORT), n=n, weights=WEIGHTS))
    assert 0.15 < w_star < 0.85  # interior: the test is informative
    grid = jnp.linspace(0, 1, 21)
    run = jax.jit(jax.vmap(lambda om: bv.risk_estimator_stats(jax.random.PRNGKey(5), FTASK, loss_fn, TEACHER, n=n,
                                                              reps=6000, rho=om)["mixed"]["mse"]))
    mse = np.asarray(run(grid))  # common random numbers: one smooth curve
    assert abs(float(grid[int(np.argmin(mse))]) - w_star) <= 0.1


def test_t1_reference_numbers_of_the_brief():
    # brief §4.3: L = 3, d = 2, μ = 0.8·[(2,0),(-1,1.7),(-1,-1.7)], Σ = I, f(x) = W x, W ~ N(0, 0.25) from
    # numpy.default_rng(0) as a (3, 2) draw, tempered teacher τ = 3; brief values from 2e6 draws
    task = bv.gaussian_task(0.8 * np.array([(2, 0), (-1, 1.7), (-1, -1.7)]))
    W = np.random.default_rng(0).normal(0, 0.5, (3, 2))
    x, w = bv.population(task, jax.random.PRNGKey(1), 2**18)
    pf = bv.bayes_probs(task, x)
    m = bv.estimator_moments(bv.loss_vector(x @ W.T), pf, bv.tempered(pf, 3.0), n=1, weights=w)
    ref = {"risk": 1.2119, "var_onehot": 0.1000, "var_bayes": 0.0642, "var_teacher": 0.0281, "gap": 0.0358}
    for k, v in ref.items():
        np.testing.assert_allclose(m[k], v, rtol=0.03, err_msg=k)
    assert float(m["bias_teacher"]) == pytest.approx(-0.0138, abs=0.002)
    # M4 (predicted): at N = 50 the tempered teacher beats even the Bayes teacher in MSE (0.000753 vs 0.00128),
    # at N = 2000 its bias dominates
    mo = lambda n: bv.estimator_moments(bv.loss_vector(x @ W.T), pf, bv.tempered(pf, 3.0), n=n, weights=w)
    m50, m2000 = mo(50), mo(2000)
    np.testing.assert_allclose(m50["mse_teacher"], 0.000753, rtol=0.05)
    assert float(m50["mse_teacher"]) < float(m50["var_bayes"])
    assert float(m2000["mse_teacher"]) > float(m2000["var_bayes"])


def test_gaussian_task_posterior_and_sampler():
    means = np.array([[1.0, 0.0, 0.5], [-0.5, 1.0, 0.0], [0.0, -1.0, -0.5], [0.3, 0.3, 0.3]])
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 0.8]])
    prior = np.array([0.1, 0.2, 0.3, 0.4])
    task = bv.gaussian_task(means, cov=cov, prior=prior)
    x = RNG.normal(size=(7, 3))
    dens = np.stack([prior[k] * multivariate_normal(means[k], cov).pdf(x) for k in range(4)], 1)
    np.testing.assert_allclose(bv.bayes_probs(task, x), dens / dens.sum(1, keepdims=True), rtol=1e-10)
    xs, ys = bv.sample(task, jax.random.PRNGKey(2), 40000)
    freq = np.bincount(np.asarray(ys), minlength=4) / 40000
    np.testing.assert_allclose(freq, prior, atol=4 * np.sqrt(0.25 / 40000))
    for k in range(4):
        sel = np.asarray(xs)[np.asarray(ys) == k]
        np.testing.assert_allclose(sel.mean(0), means[k], atol=5 * np.sqrt(1.5 / len(sel)))
        np.testing.assert_allclose(np.cov(sel.T), cov, atol=0.1)


def test_logistic_and_finite_task_labels_follow_p_star():
    task = bv.logistic_task(RNG.normal(size=(3, 2)), b=np.array([0.2, 0.0, -0.2]))
    x, y = bv.sample(task, jax.random.PRNGKey(4), 40000)
    diff = np.eye(3)[np.asarray(y)] - np.asarray(bv.bayes_probs(task, x))  # mean 0 given x
    assert (np.abs(diff.mean(0)) < 4 * diff.std(0) / 200).all()
    xf, yf = bv.sample(FTASK, jax.random.PRNGKey(5), 40000)
    idx = np.argmax((np.asarray(xf)[:, None] == SUPPORT[None]).all(-1), 1)
    np.testing.assert_allclose(np.bincount(idx, minlength=M) / 40000, WEIGHTS, atol=4 * np.sqrt(0.25 / 40000))
    diff = np.eye(K)[np.asarray(yf)] - PSTAR[idx]
    assert (np.abs(diff.mean(0)) < 4 * diff.std(0) / 200).all()
    assert np.isnan(bv.bayes_probs(FTASK, SUPPORT + 0.5)).all()  # off the support: NaN, not a guess


def test_population_risk_exact_and_monte_carlo():
    R, se = bv.population_risk(loss_fn, FTASK)
    assert float(se) == 0.0
    np.testing.assert_allclose(R, numpy_moments(1, 0.0)["risk"], rtol=1e-12)
    task = bv.gaussian_task(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    f = lambda x: bv.loss_vector(0 * x)
    R, se = bv.population_risk(f, task, key=jax.random.PRNGKey(0), draws=2**15)
    # CE of logits (0, 0) is log 2 for every label: the risk is exact and its s.e. 0 (to rounding)
    np.testing.assert_allclose(R, np.log(2), rtol=1e-12)
    assert float(se) < 1e-15
    f2 = lambda x: bv.loss_vector(jnp.stack([x[:, 0], -x[:, 0]], 1))
    R2, se2 = bv.population_risk(f2, task, key=jax.random.PRNGKey(1), draws=2**15)
    with pytest.raises(ValueError, match="`key`"):
        bv.population_risk(f2, task)
    # reference: the one-hot risk on an independent large sample
    xs, ys = bv.sample(task, jax.random.PRNGKey(9), 2**19)
    ref = np.asarray(bv.empirical_risk(f2(xs), ys))
    assert abs(float(R2) - ref) < 4 * np.sqrt(float(se2) ** 2 + 1.0 / 2**19)


def test_probability_metrics_match_numpy():
    p = softmax(RNG.normal(size=(M, K)), axis=1)
    m = bv.probability_metrics(p, PSTAR, weights=WEIGHTS)
    w = WEIGHTS
    np.testing.assert_allclose(m["accuracy"], w @ PSTAR[np.arange(M), p.argmax(1)], rtol=1e-12)
    np.testing.assert_allclose(m["log_loss"], w @ -(PSTAR * np.log(p)).sum(1), rtol=1e-12)
    np.testing.assert_allclose(m["excess_risk"], w @ (PSTAR * np.log(PSTAR / p)).sum(1), rtol=1e-10)
    np.testing.assert_allclose(m["sq_distance"], w @ ((p - PSTAR) ** 2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(m["distance"], w @ np.linalg.norm(p - PSTAR, axis=1), rtol=1e-12)
    assert float(bv.probability_metrics(PSTAR, PSTAR)["excess_risk"]) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(jax.jit(bv.probability_metrics)(p * 2, PSTAR)["log_loss"])


def test_moments_jit_vmap_grad_and_float32():
    ell, pt = loss_fn(SUPPORT), TEACHER(SUPPORT)
    eager = bv.estimator_moments(ell, PSTAR, pt, n=30, weights=WEIGHTS)
    jitted = jax.jit(lambda n: bv.estimator_moments(ell, PSTAR, pt, n=n, weights=WEIGHTS))(30.0)
    for k in eager:
        np.testing.assert_allclose(jitted[k], eager[k], rtol=1e-12, err_msg=k)
    ns = np.array([5.0, 50.0, 500.0])
    batched = jax.vmap(lambda n: bv.optimal_mixing_weight(ell, PSTAR, pt, n=n, weights=WEIGHTS))(ns)
    np.testing.assert_allclose(batched, [bv.optimal_mixing_weight(ell, PSTAR, pt, n=n, weights=WEIGHTS) for n in ns],
                               rtol=1e-12)
    # d ω*/d τ of the tempered teacher vs central differences (interior ω*)
    def om(tau):
        return bv.optimal_mixing_weight(ell, PSTAR, bv.tempered(PSTAR, tau), n=60, weights=WEIGHTS)
    h = 1e-6
    np.testing.assert_allclose(jax.grad(om)(2.0), (om(2 + h) - om(2 - h)) / (2 * h), rtol=1e-5)
    # d mse_teacher / d logits, exact teacher: finite (the norm's gradient at p_t = p* is 0, not NaN)
    g = jax.grad(lambda W: bv.estimator_moments(bv.loss_vector(SUPPORT @ W), PSTAR, PSTAR, n=5)["mse_bound"])(WF)
    assert np.isfinite(g).all()
    m32 = jax.jit(lambda e, p, q, w: bv.estimator_moments(e, p, q, n=30, weights=w))(
        *(np.asarray(a, np.float32) for a in (ell, PSTAR, pt, WEIGHTS)))
    assert all(v.dtype == np.float32 for v in m32.values())
    np.testing.assert_allclose(m32["mse_teacher"], eager["mse_teacher"], rtol=1e-4)
    with pytest.raises(ValueError, match="`n`"):
        bv.estimator_moments(ell, PSTAR, pt, n=0)
    with pytest.raises(ValueError, match="`p_t`"):
        bv.estimator_moments(ell, PSTAR, pt[:2], n=3)
    assert np.isnan(jax.jit(lambda n: bv.optimal_mixing_weight(ell, PSTAR, pt, n=n))(0.0))


def test_tasks_jit_vmap_grad():
    task = bv.gaussian_task(np.array([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]]))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    xs, ys = jax.vmap(lambda k: bv.sample(task, k, 5))(keys)
    for i in range(3):
        x1, y1 = bv.sample(task, keys[i], 5)
        np.testing.assert_allclose(xs[i], x1, rtol=1e-12)
        np.testing.assert_array_equal(ys[i], y1)
    np.testing.assert_allclose(jax.jit(bv.bayes_probs)(task, xs[0]), bv.bayes_probs(task, xs[0]), rtol=1e-12)

    # d/dμ of the exact population risk of a fixed f on a finite support: through bayes_probs of a Gaussian task
    def risk(means):
        t = bv.gaussian_task(means)
        return jnp.sum(bv.bayes_probs(t, SUPPORT) * loss_fn(SUPPORT)) / M

    mu = np.asarray(task.means)
    E = np.zeros_like(mu)
    E[1, 0] = 1e-6
    np.testing.assert_allclose(jax.jit(jax.grad(risk))(mu)[1, 0], (risk(mu + E) - risk(mu - E)) / 2e-6, rtol=1e-6)
