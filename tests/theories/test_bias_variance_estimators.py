"""Risk estimators of Menon et al. (2020) (ntkd.theories.bias_variance.estimators and teachers): NumPy float64
references, the K = 2 agreement with Ji & Zhu's single-logit loss, the memorizer identity (M7), the
empirical-Bernstein bound, validation and NaN under tracing, jit/vmap/grad."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax

from ntkd.losses import kd_loss
from ntkd.theories import bias_variance as bv

RNG = np.random.default_rng(7)
Z = RNG.normal(0, 2, (6, 4))
Y = RNG.integers(0, 4, 6)
P = softmax(RNG.normal(0, 1, (6, 4)), axis=1)


def tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-11


@pytest.mark.parametrize("kind", ["softmax_ce", "clipped_ce", "brier", "zero_one"])
def test_loss_vector_matches_numpy(kind, dtype):
    z = Z.astype(dtype)
    ell = bv.loss_vector(z, kind, bound=1.5)
    ce = -log_softmax(Z, axis=1)
    ref = {"softmax_ce": ce, "clipped_ce": np.minimum(ce, 1.5),
           "brier": np.stack([((softmax(Z, axis=1) - np.eye(4)[k]) ** 2).sum(1) for k in range(4)], 1),
           "zero_one": 1 - np.eye(4)[Z.argmax(1)]}[kind]
    assert ell.dtype == dtype
    np.testing.assert_allclose(ell, ref, rtol=tol(dtype), atol=tol(dtype))


def test_estimators_match_numpy(dtype):
    ell = bv.loss_vector(Z.astype(dtype))
    ce = -log_softmax(Z, axis=1)
    p = P.astype(dtype)
    assert bv.empirical_risk(ell, Y).dtype == dtype
    np.testing.assert_allclose(bv.empirical_risk(ell, Y), ce[np.arange(6), Y].mean(), rtol=tol(dtype))
    np.testing.assert_allclose(bv.distilled_risk(ell, p), (P * ce).sum(1).mean(), rtol=tol(dtype))
    np.testing.assert_allclose(bv.bayes_distilled_risk(ell, p), (P * ce).sum(1).mean(), rtol=tol(dtype))
    ref = 0.7 * ce[np.arange(6), Y].mean() + 0.3 * (P * ce).sum(1).mean()
    np.testing.assert_allclose(bv.mixed_risk(ell, Y, p, 0.3), ref, rtol=tol(dtype))
    np.testing.assert_allclose(bv.distilled_risk(ell, p, per_example=True), (P * ce).sum(1), rtol=tol(dtype))


@pytest.mark.parametrize("rho", [0.0, 0.35, 1.0])
def test_binary_is_k2_of_ji_zhu_single_logit(rho):
    # softmax CE of [0, z] with teacher probabilities [1 - σ(z_t), σ(z_t)] is Ji & Zhu's Eq. 2 at T = 1
    zs, zt = RNG.normal(0, 2, 9), RNG.normal(0, 2, 9)
    y = RNG.integers(0, 2, 9)
    ell = bv.loss_vector(bv.binary_logits(zs))
    np.testing.assert_allclose(ell[:, 1], np.logaddexp(0, -zs), rtol=1e-12)  # -log σ(z)
    pt = np.stack([1 - expit(zt), expit(zt)], 1)
    np.testing.assert_allclose(bv.mixed_risk(ell, y, pt, rho), kd_loss(zs, zt, y.astype(float), rho, 1.0),
                               rtol=1e-12)
    # the tempered teacher softmax(log p / τ) is σ(z_t / τ), Ji & Zhu's teacher at temperature τ
    np.testing.assert_allclose(bv.tempered(pt, 3.0)[:, 1], expit(zt / 3.0), rtol=1e-12)
    np.testing.assert_allclose(jax.nn.softmax(bv.binary_logits(zs))[:, 1], expit(zs), rtol=1e-12)


def test_teacher_transforms_match_numpy():
    np.testing.assert_allclose(bv.tempered(P, 2.5), softmax(np.log(P) / 2.5, axis=1), rtol=1e-12)
    np.testing.assert_allclose(bv.smoothed(P, 0.2), 0.8 * P + 0.05, rtol=1e-12)
    np.testing.assert_array_equal(bv.hard(P), np.eye(4)[P.argmax(1)])
    # logit noise: a fixed function of x (same x -> same teacher), per-x noise of variance ≈ 1 over keys
    x = RNG.normal(size=(6, 3))
    ln = jax.jit(bv.logit_noise)
    a = ln(P, x, 0.5, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a, ln(P, x, 0.5, jax.random.PRNGKey(1)))
    assert np.abs(a - P).max() > 0.01 and not np.array_equal(a, ln(P, x + 1, 0.5, jax.random.PRNGKey(1)))
    xi = jax.vmap(lambda k: bv.noise_function(k, 3, 4, dtype=jnp.float64)(x))(jax.random.split(jax.random.PRNGKey(2), 200))
    assert abs(float(xi.mean())) < 0.1  # loose: values are correlated within a key
    assert 0.8 < float(xi.var()) < 1.2
    np.testing.assert_allclose(ln(P, x, 0.0, jax.random.PRNGKey(1)), P, rtol=1e-12)


def test_memorizer_gives_the_one_hot_objective_identically():
    # M7: the memorizer teacher on its own training sample turns the distilled risk into the one-hot risk
    x = RNG.normal(size=(6, 2))
    teacher = bv.memorizer(x, Y, lambda u: jnp.broadcast_to(jnp.asarray(P[0]), (u.shape[0], 4)))
    ell = bv.loss_vector(Z)
    assert float(bv.distilled_risk(ell, teacher(x))) == float(bv.empirical_risk(ell, Y))
    np.testing.assert_allclose(teacher(x + 0.5), np.broadcast_to(P[0], (6, 4)), rtol=1e-12)  # elsewhere: p*


def eb_numpy(v, delta, log_cover=None, b=1.0):
    z, n = v / b, len(v)
    var = z.var(ddof=1)
    if log_cover is None:
        lg = np.log(2 / delta)
        return v.mean() + b * (np.sqrt(2 * var * lg / n) + 7 * lg / (3 * (n - 1)))
    lg = np.log(10) + log_cover - np.log(delta)
    return v.mean() + b * (np.sqrt(18 * var * lg / n) + 15 * lg / (n - 1))


def test_empirical_bernstein_bound_formula_and_coverage():
    v = RNG.uniform(0, 2, 30)
    np.testing.assert_allclose(bv.empirical_bernstein_bound(v, 0.05, value_range=2.0), eb_numpy(v, 0.05, b=2.0),
                               rtol=1e-12)
    np.testing.assert_allclose(bv.empirical_bernstein_bound(v, 0.1, log_cover=3.0, value_range=2.0),
                               eb_numpy(v, 0.1, 3.0, 2.0), rtol=1e-12)
    # coverage: Bernoulli(0.2) means, n = 40; the bound fails with probability <= δ = 0.1
    draws = jax.random.bernoulli(jax.random.PRNGKey(0), 0.2, (3000, 40)).astype(jnp.float64)
    bounds = jax.vmap(lambda d: bv.empirical_bernstein_bound(d, 0.1))(draws)
    fail = float((bounds < 0.2).mean())
    assert fail <= 0.1
    # smaller variance -> tighter bound (the point of Prop. 2)
    assert bv.empirical_bernstein_bound(np.full(40, 0.2) + RNG.normal(0, 0.01, 40), 0.1) < float(bounds.mean())


def test_bad_inputs_are_refused_eagerly():
    ell = bv.loss_vector(Z)
    with pytest.raises(ValueError, match="`y`"):
        bv.empirical_risk(ell, Y + 4)
    with pytest.raises(ValueError, match="`y`"):
        bv.empirical_risk(ell, Y.astype(float))
    with pytest.raises(ValueError, match="`p_t`"):
        bv.distilled_risk(ell, P * 2)
    with pytest.raises(ValueError, match="`p_t`"):
        bv.distilled_risk(ell, P[:3])
    with pytest.raises(ValueError, match="`rho`"):
        bv.mixed_risk(ell, Y, P, 1.5)
    with pytest.raises(ValueError, match="`ell`"):
        bv.distilled_risk(ell[0], P[0])
    with pytest.raises(ValueError, match="`bound`"):
        bv.loss_vector(Z, "clipped_ce")
    with pytest.raises(ValueError, match="`kind`"):
        bv.loss_vector(Z, "hinge")
    with pytest.raises(ValueError, match="`values`"):
        bv.empirical_bernstein_bound(np.array([0.5, 1.5]), 0.1)
    with pytest.raises(ValueError, match="`delta`"):
        bv.empirical_bernstein_bound(np.array([0.5, 0.2]), 1.0)
    with pytest.raises(ValueError, match="`tau`"):
        bv.tempered(P, 0.0)


def test_traced_invalid_values_give_nan():
    ell = bv.loss_vector(Z)
    assert np.isnan(jax.jit(bv.empirical_risk)(ell, Y + 4))
    assert np.isnan(jax.jit(bv.distilled_risk)(ell, P * 2))
    assert np.isnan(jax.jit(bv.mixed_risk)(ell, Y, P, 1.5))
    assert np.isnan(jax.jit(lambda v, d: bv.empirical_bernstein_bound(v, d))(np.array([0.5, 1.5]), 0.1))
    assert np.isnan(jax.jit(bv.tempered)(P, -1.0)).all()
    assert np.isnan(jax.jit(bv.smoothed)(P, 2.0)).all()
    assert np.isnan(jax.jit(bv.loss_vector, static_argnums=1)(Z * np.nan, "zero_one")).all()


def test_jit_vmap_grad():
    ell = bv.loss_vector(Z)

    def f(z, w, tau):  # mixed risk of logits z against a tempered teacher
        return bv.mixed_risk(bv.loss_vector(z), Y, bv.tempered(P, tau), w)

    jf = jax.jit(f)
    assert float(jf(Z, 0.4, 2.0)) == pytest.approx(float(f(Z, 0.4, 2.0)), rel=1e-13)
    ws = np.linspace(0, 1, 5)
    np.testing.assert_allclose(jax.vmap(jf, (None, 0, None))(Z, ws, 2.0), [jf(Z, w, 2.0) for w in ws], rtol=1e-13)
    zs = np.stack([Z, 2 * Z])
    np.testing.assert_allclose(jax.vmap(lambda z: bv.distilled_risk(bv.loss_vector(z), P))(zs),
                               [bv.distilled_risk(bv.loss_vector(z), P) for z in zs], rtol=1e-13)
    # grads in the logits, ω and τ vs float64 central differences; d/dω = R̃ - R̂
    gz, gw, gt = jax.jit(jax.grad(f, (0, 1, 2)))(Z, 0.4, 2.0)
    E = np.zeros_like(Z)
    E[2, 1] = 1e-6
    h = 1e-6
    np.testing.assert_allclose(gz[2, 1], (jf(Z + E, 0.4, 2.0) - jf(Z - E, 0.4, 2.0)) / (2 * h), rtol=1e-7)
    np.testing.assert_allclose(gw, bv.distilled_risk(ell, bv.tempered(P, 2.0)) - bv.empirical_risk(ell, Y),
                               rtol=1e-12)
    np.testing.assert_allclose(gt, (jf(Z, 0.4, 2 + h) - jf(Z, 0.4, 2 - h)) / (2 * h), rtol=1e-6)
    eb = jax.jit(lambda v: bv.empirical_bernstein_bound(v, 0.1))
    e = np.zeros(6)
    e[3] = h
    np.testing.assert_allclose(jax.jit(jax.grad(eb))(P[:, 0])[3], (eb(P[:, 0] + e) - eb(P[:, 0] - e)) / (2 * h),
                               rtol=1e-6)
