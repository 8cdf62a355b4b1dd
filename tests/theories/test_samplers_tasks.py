"""Synthetic tasks of the sampler theory (Kaplun et al. 2022, brief §5.1): closed-form Bayes and sampler
risks against the brief's values, SciPy quadrature and Monte Carlo from the exact D(y|x); sampled labels
against D(y|x); jit/vmap/grad of the closed forms; bad parameters."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from ntkd.theories import samplers as S

KEY = jax.random.PRNGKey(0)
N_MC = 100_000

TASKS = {
    "halfspace_flip": lambda: S.halfspace_flip(d=3, rho=0.2),
    "halfspace_lipschitz": lambda: S.halfspace_lipschitz(d=2, a=1.5),
    "lda": lambda: S.gaussian_lda(jnp.array([0.0, 0.0]), jnp.array([1.5, 0.5]),
                                   jnp.array([[1.0, 0.3], [0.3, 0.8]])),
    "sphere_sign": lambda: S.sphere_sign(d=5, rho=0.3, law="sphere"),
    "pairflip": lambda: S.sectors_pairflip(num_classes=10, rho=0.2),
    "transition": lambda: S.transition_sectors(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.45, 0.1, 0.45]])),
}


def test_closed_forms_match_the_brief():
    assert float(S.halfspace_flip(rho=0.2).bayes_risk()) == pytest.approx(0.20, abs=1e-12)
    assert float(S.halfspace_flip(rho=0.2).sampler_risk()) == pytest.approx(0.32, abs=1e-12)
    assert float(S.halfspace_lipschitz(a=1.5).bayes_risk()) == pytest.approx(0.1850, abs=1e-12)
    assert float(S.halfspace_lipschitz(a=1.5).sampler_risk()) == pytest.approx(0.2570, abs=1e-12)
    t = S.sectors_pairflip(num_classes=10, rho=0.2)
    assert float(t.bayes_risk()) == pytest.approx(0.2)
    assert float(t.sampler_risk()) == pytest.approx(1 - 0.8**2 - 0.2**2)
    assert float(t.sampler_clean_accuracy()) == pytest.approx(0.8)
    assert float(t.bayes_clean_accuracy()) == 1.0
    lda = S.gaussian_lda(jnp.zeros(3), jnp.array([2.0, 0, 0]))
    assert float(lda.bayes_risk()) == pytest.approx(stats.norm.cdf(-1.0), rel=1e-12)


def test_lda_sampler_risk_against_quadrature():
    lda = TASKS["lda"]()
    dl = float(lda.delta())
    mu0, mu1, cov = (np.asarray(a) for a in (lda.mu0, lda.mu1, lda.cov))
    assert dl == pytest.approx(np.sqrt((mu1 - mu0) @ np.linalg.solve(cov, mu1 - mu0)), rel=1e-12)
    f = lambda z: 2 * stats.logistic.cdf(z) * stats.logistic.cdf(-z) * stats.norm.pdf(z, dl**2 / 2, dl)
    ref = integrate.quad(f, -40, 40, epsabs=1e-13)[0]
    assert float(lda.sampler_risk()) == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("name", list(TASKS))
def test_risks_against_monte_carlo_and_labels_against_cond_probs(name):
    task = TASKS[name]()

    @jax.jit
    def draw(key):
        k1, k2 = jax.random.split(key)
        x = task.sample_x(k1, N_MC)
        return x, task.cond_probs(x), task.sample_y(k2, x), task.bayes(x)
    x, p, y, bayes = (np.asarray(a) for a in draw(jax.random.fold_in(KEY, len(name))))
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-12)
    for mc, exact in [(1 - p.max(1), task.bayes_risk()), (1 - (p**2).sum(1), task.sampler_risk())]:
        se = mc.std() / np.sqrt(N_MC)
        assert abs(mc.mean() - float(exact)) < 4 * se + 1e-12, (name, mc.mean(), float(exact))
    hit = (y == bayes).astype(float)  # a label drawn from D agrees with Bayes w.p. max p
    assert abs(hit.mean() - p.max(1).mean()) < 4 * np.sqrt(0.25 / N_MC)
    if name != "lda":
        c = np.asarray(task.clean(jnp.asarray(x)))
        assert set(np.unique(c)) == set(range(task.num_classes))


def test_gaussian_lda_eta_is_the_posterior_and_sample_is_the_mixture():
    lda = TASKS["lda"]()
    x = np.asarray(lda.sample_x(KEY, 4000))
    cov = np.asarray(lda.cov)
    l0 = stats.multivariate_normal(np.asarray(lda.mu0), cov).pdf(x)
    l1 = stats.multivariate_normal(np.asarray(lda.mu1), cov).pdf(x)
    np.testing.assert_allclose(np.asarray(lda.cond_probs(jnp.asarray(x)))[:, 1], l1 / (l0 + l1), rtol=1e-10)
    np.testing.assert_allclose(x.mean(0), (np.asarray(lda.mu0) + np.asarray(lda.mu1)) / 2, atol=0.06)
    with pytest.raises(ValueError, match="no noise-free class"):
        lda.clean(jnp.asarray(x))


def test_jit_vmap_grad_of_closed_forms():
    rhos = jnp.linspace(0.05, 0.45, 5)
    f = jax.jit(lambda r: S.halfspace_flip(rho=r).sampler_risk())
    np.testing.assert_allclose(jax.vmap(f)(rhos), [float(f(r)) for r in rhos], rtol=1e-14)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(rhos), 2 - 4 * rhos, rtol=1e-12)

    def lip(a):
        t = S.halfspace_lipschitz(a=a)
        return jnp.stack([t.bayes_risk(), t.sampler_risk()])
    a = jnp.array([0.5, 1.5, 3.0])
    fd = (jax.vmap(lip)(a + 1e-6) - jax.vmap(lip)(a - 1e-6)) / 2e-6
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.jacfwd(lip)))(a), fd, rtol=1e-6)

    def lda_risk(s):
        return S.gaussian_lda(jnp.zeros(2), jnp.array([s, 0.5])).sampler_risk()
    fd = (lda_risk(1.5 + 1e-6) - lda_risk(1.5 - 1e-6)) / 2e-6
    assert float(jax.grad(lda_risk)(1.5)) == pytest.approx(float(fd), rel=1e-6)
    # a task passed through jit as a pytree, with its parameters traced
    task = S.sectors_pairflip(num_classes=4, rho=0.1)
    x = task.sample_x(KEY, 64)
    np.testing.assert_array_equal(jax.jit(lambda t, v: t.bayes(v))(task, x), task.bayes(x))


def test_float32_inputs_stay_float32():
    task = S.halfspace_flip(rho=jnp.float32(0.2))
    x = task.sample_x(KEY, 8)
    assert x.dtype == jnp.float32 and task.cond_probs(x).dtype == jnp.float32
    assert task.sampler_risk().dtype == jnp.float32


def test_bad_parameters_are_refused_or_nan():
    with pytest.raises(ValueError, match="`rho`"):
        S.halfspace_flip(rho=1.2)
    with pytest.raises(ValueError, match="`a`"):
        S.halfspace_lipschitz(a=0.0)
    with pytest.raises(ValueError, match="`margin`"):
        S.halfspace_lipschitz(margin=0.7)
    with pytest.raises(ValueError, match="`d`"):
        S.sphere_sign(d=0)
    with pytest.raises(ValueError, match="`law`"):
        S.sphere_sign(law="cube")
    with pytest.raises(ValueError, match="row-stochastic"):
        S.transition_sectors(jnp.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="`cov`"):
        S.gaussian_lda(jnp.zeros(2), jnp.ones(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]))
    traced = jax.jit(lambda r: S.halfspace_flip(rho=r).sampler_risk())(1.5)
    assert np.isnan(float(traced))
    traced_t = jax.jit(lambda T: S.transition_sectors(T).bayes_risk())(jnp.array([[0.5, 0.6], [0.5, 0.5]]))
    assert np.isnan(float(traced_t))
