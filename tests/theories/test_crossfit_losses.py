"""Corrected targets, γ rules and distillation losses (Dao, Kamath et al. 2021): checks C2–C6 of the
brief as exact tests, the γ rules against NumPy transcriptions of the authors' ``tabular.py``/``kd.py``,
and eager = jit, vmap = loop, grad = float64 central differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkd.theories.crossfit import (first_order_correction, gamma_boundfast, gamma_boundslow, gamma_minimax,
                                    gamma_mix, gamma_orth, kd_kl_loss, kd_mse_gamma_loss, kd_mse_loss,
                                    kd_mse_ortho_loss, kd_mse_varred_ortho_loss, kd_ortho_loss, kd_target,
                                    label_ce, ortho_correction, target_bias_variance, tempered_ce,
                                    trainer_loss, uncertainty_interval)

B, KC = 6, 4


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(0)
    return rng.normal(size=(B, KC)), 2 * rng.normal(size=(B, KC)), rng.integers(0, KC, B)


# ---------------------------------------------------------------- NumPy transcriptions of the authors' code
def np_gamma_exact(phat, lo, hi):  # tabular.py::find_optimal_gamma (p scale, alpha = 1)
    g = np.arange(-10, 10, 0.05)
    g = g[np.argsort(np.abs(g), kind="stable")][:, None]
    obj = lambda p: (1 - 2 * g) * p ** 2 - (2 * phat * (g - 1) ** 2 - g ** 2) * p + (g - 1) ** 2 * phat ** 2  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = np.clip((2 * phat * (g - 1) ** 2 - g ** 2) / (2 * (1 - 2 * g)), lo, hi)
    m = np.nanmax(np.stack([obj(lo), obj(hi), obj(ps)]), axis=0)
    return g[np.argmin(m, axis=0), 0]


def np_gamma_sampling(phat, lo, hi, alpha=1.0):  # tabular.py::find_optimal_gamma_sampling (log scale)
    g = np.arange(-10, 10, 0.05)[:, None, None]
    p = lo + np.linspace(0, 1, 10)[:, None] * (hi - lo)
    obj = (g * (p - phat) - (np.log(p) - np.log(phat))) ** 2 + (1 / alpha - 1 + g) ** 2 * p * (1 - p)
    return g[np.argmin(obj.max(axis=1), axis=0), 0, 0]


PH = np.array([0.003, 0.05, 0.2, 0.37, 0.5, 0.81, 0.97])


@pytest.mark.parametrize("kind,c", [("relerr", 1.0), ("abserr", 0.1), ("power", 2.0), ("power", 0.5)])
def test_minimax_gamma_p_scale_matches_the_authors_exact_rule(kind, c):
    lo, hi = uncertainty_interval(PH, kind=kind, c=c)
    ours = np.asarray(gamma_minimax(PH, kind=kind, c=c, scale="p"))
    ref = np_gamma_exact(PH, np.asarray(lo), np.asarray(hi))
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    # and the exact max really is the max over a fine p grid of the interval (brute force)
    p = np.asarray(lo)[:, None] + np.linspace(0, 1, 2001) * (np.asarray(hi) - np.asarray(lo))[:, None]
    g = np.arange(-10, 10, 0.05)
    obj = ((g[:, None, None] - 1) ** 2 * (p - PH[:, None]) ** 2 + g[:, None, None] ** 2 * p * (1 - p)).max(-1)
    best = obj.min(0)
    picked = ((ours[:, None] - 1) ** 2 * (p - PH[:, None]) ** 2 + ours[:, None] ** 2 * p * (1 - p)).max(-1)
    np.testing.assert_allclose(picked, best, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("kind,c,alpha", [("relerr", 2.0, 1.0), ("abserr", 0.05, 0.5), ("power", 2.0, 0.5)])
def test_minimax_gamma_log_scale_matches_the_authors_sampling_rule(kind, c, alpha):
    pc = np.maximum(PH, 1 / 500)
    lo, hi = uncertainty_interval(pc, kind=kind, c=c, scale="logp")
    ours = gamma_minimax(PH, kind=kind, c=c, alpha=alpha, scale="logp")
    np.testing.assert_allclose(ours, np_gamma_sampling(pc, np.asarray(lo), np.asarray(hi), alpha), atol=1e-9)


def test_boundfast_and_boundslow_match_the_authors_code_and_C6_shrinkage():
    y = np.array([1, 0, 1, 0, 1, 1, 0.0])
    for c in (1e-3, 1.0):
        np.testing.assert_allclose(gamma_boundfast(PH, y, c=c), c / (c + (y - PH) ** 2), rtol=1e-12)
        pc = np.maximum(PH, 1 / 500)
        np.testing.assert_allclose(gamma_boundfast(PH, y, c=c, scale="logp"), c / pc / (c + (y - PH) ** 2),
                                   rtol=1e-12)
        g = np.linspace(-100, 100, 1000)[:, None]
        for scale, gp, pp in (("p", 1.0, PH), ("logp", 1 / pc, pc)):
            ref = g[np.argmin(g ** 2 * (y - pp) ** 2 + c * (g - gp) ** 4, axis=0), 0]
            np.testing.assert_allclose(gamma_boundslow(PH, y, c=c, scale=scale), ref, rtol=1e-12)
    # C6: BoundFast gamma in [0, gamma_perp], -> 0 where (y - p)^2 >> c, -> gamma_perp as c grows
    gp = np.asarray(gamma_orth(PH, scale="logp"))
    g = np.asarray(gamma_boundfast(PH, y, c=1e-4, scale="logp"))
    assert (g >= 0).all() and (g <= gp).all()
    big = (y - PH) ** 2 >= 100 * 1e-4
    assert big.sum() >= 5 and (g[big] / gp[big] <= 1 / 101).all()
    np.testing.assert_allclose(gamma_boundfast(PH, y, c=1e8, scale="logp"), gp, rtol=1e-6)


def test_C5_orthogonal_log_target_has_second_order_bias():
    p0 = 0.3
    rows = []
    for eps in (0.1, 0.05, 0.025):
        ph = p0 * (1 + eps)
        van, _ = target_bias_variance(ph, p0, 0.0, scale="logp")
        ort, _ = target_bias_variance(ph, p0, gamma_orth(ph, scale="logp"), scale="logp")
        rows.append((float(van), float(ort)))
        # the expected target really is g(p̂) + γ(p0 − p̂): average kd_target over Y ~ Bernoulli(p0) exactly
        gam = gamma_orth(ph, scale="logp")
        mean_t = p0 * kd_target(ph, 1.0, scale="logp", gamma=gam) + (1 - p0) * kd_target(ph, 0.0, scale="logp",
                                                                                        gamma=gam)
        np.testing.assert_allclose(mean_t - np.log(p0), ort, rtol=1e-10)
    np.testing.assert_allclose(np.array(rows), [[0.0953, 0.0044], [0.0488, 0.0012], [0.0247, 0.0003]],
                               atol=6e-5)  # the brief's table (4 decimals)
    r = np.array(rows)
    np.testing.assert_allclose(r[:-1, 0] / r[1:, 0], 2.0, rtol=0.05)  # first order: halves
    np.testing.assert_allclose(r[:-1, 1] / r[1:, 1], 4.0, rtol=0.12)  # second order: quarters


def test_C6_orthogonal_target_variance_grows_like_one_over_p_hat_squared():
    p0 = np.array([0.2, 0.05, 0.01, 0.002])
    ph = p0
    gam = gamma_orth(ph, scale="logp", clip=1e-9)
    _, var = target_bias_variance(ph, p0, gam, scale="logp")
    np.testing.assert_allclose(var, p0 * (1 - p0) / ph ** 2, rtol=1e-12)
    # exact two-point variance of the target under Y ~ Bernoulli(p0)
    t1 = kd_target(ph, 1.0, scale="logp", gamma=gam, clip=1e-9)
    t0 = kd_target(ph, 0.0, scale="logp", gamma=gam, clip=1e-9)
    np.testing.assert_allclose(p0 * (1 - p0) * (t1 - t0) ** 2, var, rtol=1e-10)
    assert (np.diff(np.asarray(var)) > 0).all() and var[-1] > 400


def test_mixing_is_the_constant_gamma_one_minus_alpha():
    rng = np.random.default_rng(1)
    ph, y, a = rng.uniform(size=5), rng.integers(0, 2, 5).astype(float), 0.3
    t = kd_target(ph, y, gamma=gamma_mix(a))
    diffs = []
    for f in rng.normal(size=(4, 5)):
        lhs = (1 - a) * (f - y) ** 2 + a * (f - ph) ** 2
        diffs.append(lhs - (f - t) ** 2)
    np.testing.assert_allclose(np.array(diffs), np.array(diffs)[:1].repeat(4, 0), atol=1e-12)


def test_targets_reject_bad_input_eagerly_and_give_nan_traced():
    with pytest.raises(ValueError, match="p_hat"):
        kd_target(np.array([0.2, 1.3]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="y"):
        kd_target(np.array([0.2, 0.3]), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="scale"):
        gamma_orth(0.3, scale="log")
    with pytest.raises(ValueError, match="kind"):
        gamma_minimax(PH, kind="rel", c=1.0)
    out = jax.jit(lambda p: gamma_minimax(p, kind="relerr", c=1.0))(jnp.array([0.3, 1.5, -0.1]))
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()
    assert np.isnan(jax.jit(lambda p: kd_target(p, 1.0, scale="logp", gamma=1.0))(jnp.array(2.0)))


def test_targets_keep_float32():
    ph = jnp.asarray(PH, np.float32)
    y = jnp.asarray([1, 0, 1, 0, 1, 1, 0], np.float32)
    out = kd_target(ph, y, scale="logp", gamma=gamma_boundfast(ph, y, c=0.5, scale="logp"))
    assert out.dtype == np.float32 and gamma_minimax(ph, kind="relerr", c=1.0).dtype == np.float32
    ref = kd_target(PH, np.asarray(y, float), scale="logp", gamma=gamma_boundfast(PH, np.asarray(y, float), c=0.5,
                                                                                 scale="logp"))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_targets_jit_vmap_grad():
    ph = jnp.asarray(PH)
    y = jnp.asarray([1, 0, 1, 0, 1, 1, 0.0])
    f = lambda p: kd_target(p, y, scale="logp", gamma=gamma_boundfast(p, y, c=0.5, scale="logp"))  # noqa: E731
    out = f(ph)
    np.testing.assert_allclose(jax.jit(f)(ph), out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(lambda p, yy: kd_target(p, yy, gamma=0.4))(ph, y),
                               [kd_target(p, yy, gamma=0.4) for p, yy in zip(ph, y)], rtol=1e-12)
    g = jax.grad(lambda p: jnp.sum(f(p)))(ph)  # elementwise: the derivative of each entry
    h = 1e-6 * PH
    num = (f(ph + h) - f(ph - h)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6)


# ------------------------------------------------------------------------------------------- losses
def test_C2_closed_form_correction_equals_autodiff_jvp(logits):
    zs, zt, y = logits
    ph = jax.nn.softmax(zt)
    for T in (1.0, 4.0, 0.5):
        closed = ortho_correction(zs, zt, y, T=T, eps=1e-12)
        auto = first_order_correction(lambda z, p: tempered_ce(z, p, T=T), zs, ph, y)
        np.testing.assert_allclose(closed, auto, rtol=1e-6, atol=1e-12)
        assert np.abs(np.asarray(auto)).max() > 1e-3  # a real correction, not 0 = 0


def test_kd_losses_match_numpy_transcriptions_of_kd_py(logits):
    zs, zt, y = logits
    oh = np.eye(KC)[y]
    ls = lambda z: z - np.log(np.exp(z).sum(-1, keepdims=True))  # noqa: E731
    ce = -(oh * ls(zs)).sum(-1)
    T, a = 4.0, 0.5
    w = np.exp(ls(zt / T))
    kl = (w * (ls(zt / T) - ls(zs / T))).sum(-1)
    np.testing.assert_allclose(kd_kl_loss(zs, zt, y, T=T, alpha=a), (1 - a) * ce + a * T ** 2 * kl, rtol=1e-12)
    p = np.exp(ls(zt))
    r = oh / np.maximum(p, 1e-2) - 1
    lq = ls(zs / T)
    first = ((r * w).sum(-1) * (w * lq).sum(-1) - (r * w * lq).sum(-1)) / T
    np.testing.assert_allclose(kd_ortho_loss(zs, zt, y), (1 - a) * ce + a * T ** 2 * (kl + first), rtol=1e-12)
    np.testing.assert_allclose(kd_mse_loss(zs, zt, y), (1 - a) * ce + a * ((zs - zt) ** 2).mean(-1), rtol=1e-12)
    np.testing.assert_allclose(kd_mse_loss(zs, zt, y, scale="p"), (1 - a) * ce + a * ((zs - p) ** 2).mean(-1),
                               rtol=1e-12)
    np.testing.assert_allclose(kd_mse_ortho_loss(zs, zt, y),
                               (1 - a) * ce + a * ((zs - zt - r) ** 2).mean(-1), rtol=1e-12)
    vr = (p * (zs - zt - oh / p + 1) ** 2).mean(-1)
    np.testing.assert_allclose(kd_mse_varred_ortho_loss(zs, zt, y), (1 - a) * ce + a * vr, rtol=1e-10)
    gb = 1.0 / np.maximum(p, 1e-3) / (1.0 + (oh - p) ** 2)  # KDMSEBoundFast, c = 1, log scale
    bf = lambda pp, yy: gamma_boundfast(pp, yy, c=1.0, scale="logp", clip=1e-3)  # noqa: E731
    np.testing.assert_allclose(kd_mse_gamma_loss(zs, zt, y, gamma=bf),
                               (1 - a) * ce + a * ((zs - zt - gb * (oh - p)) ** 2).mean(-1), rtol=1e-12)
    np.testing.assert_allclose(kd_mse_gamma_loss(zs, zt, y, gamma="var"),
                               (1 - a) * ce + a * ((zs - zt - (1 - p) * (oh - p)) ** 2).mean(-1), rtol=1e-12)
    np.testing.assert_allclose(kd_mse_gamma_loss(zs, zt, y, gamma="one"),
                               (1 - a) * ce + a * ((zs - zt - (oh - p)) ** 2).mean(-1), rtol=1e-12)


def test_varred_gradient_equals_the_division_free_form(logits):
    zs, zt, y = logits
    oh = jax.nn.one_hot(y, KC)
    p = jax.nn.softmax(zt)
    g1 = jax.grad(lambda z: jnp.sum(kd_mse_varred_ortho_loss(z, zt, y, alpha=1.0)))(zs)
    g2 = jax.grad(lambda z: jnp.sum(jnp.mean(p * (z - zt) ** 2 - 2 * (oh - p) * (z - zt), -1)))(zs)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)


def test_C3_at_T1_the_orthogonal_KL_collapses_to_label_CE(logits):
    zs, zt, y = logits
    p = jax.nn.softmax(zt)
    kd = kd_ortho_loss(zs, zt, y, T=1.0, alpha=1.0, eps=1e-12)
    ent = -jnp.sum(p * jnp.log(p), -1)
    np.testing.assert_allclose(kd, label_ce(zs, y) - ent, rtol=1e-12, atol=1e-13)
    g = jax.grad(lambda z: jnp.sum(kd_ortho_loss(z, zt, y, T=1.0, alpha=1.0, eps=1e-12)))(zs)
    np.testing.assert_allclose(g, jax.grad(lambda z: jnp.sum(label_ce(z, y)))(zs), rtol=1e-10, atol=1e-13)


def test_C4_neyman_orthogonality_of_the_corrected_loss(logits):
    zs, zt, _ = logits
    p0 = jax.nn.softmax(zt)
    h = jnp.asarray(np.random.default_rng(5).normal(size=(B, KC)))
    h = h - h.mean(-1, keepdims=True)  # stays in the simplex's tangent space
    T = 4.0

    def expected(loss_at, t):  # E_{Y ~ p0} loss(z_s, p0 + t h, Y), summed over the batch
        p = p0 + t * h
        return sum(jnp.sum(p0[:, j] * loss_at(p, jnp.full(B, j))) for j in range(KC))

    vanilla = lambda p, yy: T ** 2 * tempered_ce(zs, p, T=T)  # noqa: E731
    ortho = lambda p, yy: vanilla(p, yy) + T ** 2 * first_order_correction(  # noqa: E731
        lambda z, q: tempered_ce(z, q, T=T), zs, p, yy)
    d_van, d_ort = jax.jit(lambda: [jax.jvp(lambda t: expected(f, t), (0.0,), (1.0,))[1]
                                    for f in (vanilla, ortho)])()
    assert abs(float(d_ort)) < 1e-10 < 1e-2 < abs(float(d_van))
    # the f-gradient of kd_ortho_loss (KL form, teacher logits log(p0 + t h)) is orthogonal too
    def score(t):
        zt_t = jnp.log(p0 + t * h)
        return sum(jax.grad(lambda z: jnp.sum(p0[:, j] * kd_ortho_loss(z, zt_t, jnp.full(B, j), T=T, alpha=1.0,
                                                                          eps=1e-12)))(zs) for j in range(KC))
    np.testing.assert_allclose(jax.jit(lambda: jax.jvp(score, (0.0,), (1.0,))[1])(), 0.0, atol=1e-9)
    score_v = lambda t: jax.grad(lambda z: jnp.sum(kd_kl_loss(z, jnp.log(p0 + t * h), 0 * jnp.ones(B, int),  # noqa: E731
                                                              T=T, alpha=1.0)))(zs)
    assert np.abs(np.asarray(jax.jit(lambda: jax.jvp(score_v, (0.0,), (1.0,))[1])())).max() > 1e-2


def test_losses_keep_float32(logits):
    zs, zt, y = (jnp.asarray(logits[0], np.float32), jnp.asarray(logits[1], np.float32), logits[2])
    out = kd_ortho_loss(zs, zt, y)
    assert out.shape == (B,) and out.dtype == np.float32
    np.testing.assert_allclose(out, kd_ortho_loss(logits[0], logits[1], y), rtol=1e-5)


def test_losses_jit_vmap_grad_and_trainer_adapter(logits):
    zs, zt, y = (jnp.asarray(logits[0]), jnp.asarray(logits[1]), logits[2])
    f = lambda z: kd_ortho_loss(z, zt, y)  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(zs), f(zs), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(lambda a, b, c: kd_ortho_loss(a, b, c))(zs, zt, y), f(zs), rtol=1e-12)
    fn = trainer_loss(kd_mse_gamma_loss, gamma="var", alpha=0.7)
    np.testing.assert_allclose(fn(zs, {"z_t": zt, "y": y}), kd_mse_gamma_loss(zs, zt, y, gamma="var", alpha=0.7))
    g = jax.grad(lambda z: jnp.sum(f(z)))(zs)
    f = jax.jit(f)
    e = 1e-6
    num = np.zeros((B, KC))
    for i in range(B):
        for j in range(KC):
            d = np.zeros((B, KC))
            d[i, j] = e
            num[i, j] = (jnp.sum(f(zs + d)) - jnp.sum(f(zs - d))) / (2 * e)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="z_s"):
        kd_kl_loss(zs, zt[:, :2], y)
