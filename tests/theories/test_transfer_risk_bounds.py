"""B1-B3, Theorem 1 and 2 on a random-feature model with an explicit finite feature map, where Δw_*, Δŵ and
all angles are computed in weight space (NumPy float64) and compared with the kernel-only formulas."""
import jax
import numpy as np
import pytest

import ntkd
from ntkd.theories.transfer_risk import tasks as T_

P, N_REF = 600, 400


def _features(x, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(x.shape[1], P)) / 5
    b = rng.normal(size=P)
    return np.maximum(x @ w + b, 0) / np.sqrt(P)  # φ(x) ∈ R^P, Θ = φ φᵀ


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N_REF, 2)) * 5
    phi = _features(x)
    teacher_w = rng.normal(size=P)
    z_t = phi @ teacher_w
    return x, phi, z_t


def _min_norm_w(phi, z):
    return np.linalg.lstsq(phi, z, rcond=None)[0]


def test_alpha_eq9_equals_the_angle_between_student_and_oracle_weights(toy):
    _, phi, z_t = toy
    w_star = _min_norm_w(phi, z_t)
    for n in (10, 50, 200):
        px = phi[:n]
        w_hat = px.T @ np.linalg.solve(px @ px.T, px @ w_star)  # P_Φ Δw_*
        cos_w = w_star @ w_hat / (np.linalg.norm(w_star) * np.linalg.norm(w_hat))
        theta_n = px @ px.T
        kernel_only = float(ntkd.weight_change_norm(theta_n, z_t[:n])) / np.linalg.norm(w_star)
        np.testing.assert_allclose(cos_w, kernel_only, rtol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(w_hat) / np.linalg.norm(w_star), kernel_only, rtol=1e-9)
        norm = float(ntkd.oracle_norm(phi @ phi.T + 0 * np.eye(N_REF), z_t, jitter=0.0))
        np.testing.assert_allclose(norm, np.linalg.norm(w_star), rtol=1e-6)
        np.testing.assert_allclose(ntkd.alpha_n(theta_n, z_t[:n], norm), np.arccos(cos_w), atol=1e-6)


@pytest.mark.parametrize("rho", [1.0, 0.9, 0.5])
def test_theorem1_holds(toy, rho):
    _, phi, z_t = toy
    y = (z_t > 0).astype(float)
    z_eff = np.asarray(ntkd.effective_logits(z_t, y, rho, 5.0))
    w_star = _min_norm_w(phi, z_eff)  # expresses z_eff exactly on the reference set (N_REF < P)
    theta_r = phi @ phi.T
    norm = np.linalg.norm(w_star)
    # Eq. 8 from kernels equals the weight-space cosine
    cos_kernel = np.asarray(ntkd.feature_cosines(z_eff, np.diag(theta_r), norm))
    cos_weights = np.abs(phi @ w_star) / (np.linalg.norm(phi, axis=1) * norm)
    np.testing.assert_allclose(cos_kernel, cos_weights, rtol=1e-8, atol=1e-12)
    for n in (5, 20, 80, 300):
        px = phi[:n]
        w_hat = px.T @ np.linalg.solve(px @ px.T, px @ w_star)
        risk = float(ntkd.transfer_risk(z_t, phi @ w_hat))
        alpha = float(ntkd.alpha_n(px @ px.T, z_eff[:n], norm))
        bound = float(ntkd.risk_bound(alpha, cos_kernel))
        assert risk <= bound + 1e-12, (n, risk, bound)
        # the bound from a callable p(β) gives the same number
        assert bound == pytest.approx(float(ntkd.risk_bound(alpha, lambda b: ntkd.angle_distribution(cos_kernel, b))))


def test_alpha_n_exact_with_initial_function(toy):
    _, phi, z_t = toy
    rng = np.random.default_rng(2)
    z0 = phi @ (rng.normal(size=P) * 0.2)  # f(x; w0)
    z_eff = z_t
    w_star = _min_norm_w(phi, z_eff - z0)
    w_z = _min_norm_w(phi, -z0)
    n = 60
    px = phi[:n]
    w_hat = px.T @ np.linalg.solve(px @ px.T, (z_eff - z0)[:n])
    u, v = w_star - w_z, w_hat - w_z
    ref = np.arccos(abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    got = ntkd.alpha_n_exact(phi @ phi.T, z_eff, z0, np.arange(n))
    np.testing.assert_allclose(got, ref, rtol=1e-7)


def test_phuong_lampert_bound_is_vacuous_for_the_relu_ntk():
    """K1/S6: |cos ᾱ| <= C for ReLU features ⇒ p ≡ 1 on [0, β_t], β_t ≈ π/2 ⇒ the [18] bound is >= 1."""
    rng = np.random.default_rng(3)
    kf = ntkd.mlp_kernel_fn(3)
    x_ref = rng.normal(size=(300, 2)) * 5
    teacher = T_.kernel_teacher(kf, x_ref[:50], rng.normal(size=50), r=0.3)
    z_ref = np.asarray(teacher(x_ref))
    norm = float(ntkd.oracle_norm(kf(x_ref, None, "ntk"), z_ref, jitter=1e-8))
    x_test = rng.normal(size=(2000, 2)) * 5
    cos = ntkd.feature_cosines(teacher(x_test), np.diag(np.asarray(kf(x_test, None, "ntk"))), norm)
    beta_t = float(np.arccos(np.max(cos)))
    assert float(ntkd.angle_distribution(cos, beta_t * 0.999)) == 1.0
    for n in (10, 100, 1000):
        assert float(ntkd.phuong_lampert_bound(cos, n)) >= 1.0
    # a synthetic distribution with p ≡ 1 on [0, 1.5]: vacuous as well
    assert float(ntkd.phuong_lampert_bound(np.full(100, np.cos(1.5)), 50)) >= 1.0


def test_weight_norm_curve_and_data_inefficiency():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 2)) * 5
    theta = np.asarray(ntkd.mlp_kernel_fn(3)(x, None, "ntk"))
    dz = rng.normal(size=120)
    grid = np.array([5, 17, 60, 120])
    got = ntkd.weight_norm_curve(theta, dz, grid)
    for g, n in zip(got, grid):
        np.testing.assert_allclose(g, np.sqrt(dz[:n] @ np.linalg.solve(theta[:n, :n], dz[:n])), rtol=1e-8)
    n = np.geomspace(10, 1e4, 9)
    n_mid, slope = ntkd.data_inefficiency(n, 3.0 * n**0.37)
    np.testing.assert_allclose(slope, 0.37, rtol=1e-12)
    np.testing.assert_allclose(n_mid, np.sqrt(n[1:] * n[:-1]))
    n_c = np.arange(10, 15)
    e = np.array([1.0, 1.1, 1.3, 1.4, 1.8])
    _, i10 = ntkd.data_inefficiency(n_c, e, mode="eq10")
    np.testing.assert_allclose(i10, n_c[:-1] * np.diff(np.log(e)), rtol=1e-12)  # literal Eq. 10
    with pytest.raises(ValueError, match="`n_grid`"):
        ntkd.data_inefficiency([3, 2], [1.0, 2.0])


def test_zero_function_has_lower_data_inefficiency_than_random_logits():
    """Fig. 3 ordering on a small grid: I(n) of random logits ≈ 0.7-0.9 > zero function (z0 from the NNGP)."""
    kf = ntkd.mlp_kernel_fn(5)
    sample = lambda k, n: T_.sample_inputs(k, n)  # noqa: E731
    grid = np.array([16, 32, 64, 128, 256])
    theta = lambda x: kf(x, None, "ntk") + 1e-9 * np.eye(len(x))  # noqa: E731
    nngp = lambda x: kf(x, None, "nngp")  # noqa: E731
    e_rand, _ = ntkd.expected_weight_norm(jax.random.key(0), theta, sample,
                                         lambda k, x: T_.random_logits(k, x.shape[0]), grid, runs=4)
    e_zero, _ = ntkd.expected_weight_norm(jax.random.key(1), theta, sample,
                                         lambda k, x: T_.zero_function(x), grid, runs=4, z0="nngp",
                                         nngp_fn=nngp)
    _, i_rand = ntkd.data_inefficiency(grid, e_rand)
    _, i_zero = ntkd.data_inefficiency(grid, e_zero)
    assert np.all(np.asarray(i_rand) > 0.55) and np.all(np.asarray(i_rand) < 1.0)
    assert np.all(np.asarray(i_zero) < np.asarray(i_rand) - 0.2)


def test_theorem2_matches_finite_difference_of_eq11():
    """Eq. 12 equals d cos α(Δŵ, Δw_g)/d(1-ρ) at ρ = 1, computed by finite differences of Eq. 11 with z_eff(ρ)."""
    rng = np.random.default_rng(5)
    kf = ntkd.mlp_kernel_fn(3)
    x = rng.normal(size=(40, 2)) * 5
    theta = np.asarray(kf(x, None, "ntk"))
    z_g = rng.normal(size=40) * 2
    y = (z_g > 0).astype(float)
    z_t = 0.8 * z_g + rng.normal(size=40) * 0.7  # an imperfect teacher
    T = 4.0
    dz_h = np.asarray(ntkd.correction_logits(z_t, y, T))
    analytic = float(ntkd.hard_label_effect(theta, z_g, z_t, dz_h, norm_w_g=2.0))

    def cos(eps):
        z_s = np.asarray(ntkd.effective_logits(z_t, y, 1 - eps, T))
        return float(ntkd.cos_student_oracle(theta, z_g, z_s, norm_w_g=2.0))

    eps = 1e-6
    fd = (4 * (cos(eps / 2) - cos(0.0)) / eps - (cos(eps) - cos(0.0)) / eps)
    np.testing.assert_allclose(analytic, fd, rtol=1e-3)


def test_risk_bound_is_a_jax_function_and_never_optimistic_on_nan():
    """risk_bound eagerly, under jit and under vmap over ᾱ_n equals the NumPy p(π/2 - ᾱ_n) = share of
    feature angles above π/2 - ᾱ_n; a NaN or out-of-range ᾱ_n is refused eagerly and gives NaN when traced
    (a NaN β would otherwise count no angle above it: a risk bound of 0)."""
    import jax
    import jax.numpy as jnp

    cos = np.random.default_rng(4).uniform(0.0, 0.6, 300)
    alphas = np.array([0.0, 0.05, 0.3, 1.2, np.pi / 2])
    want = [np.mean(np.arccos(cos) > np.pi / 2 - a) for a in alphas]
    np.testing.assert_allclose([float(ntkd.risk_bound(a, cos)) for a in alphas], want)
    np.testing.assert_allclose(jax.vmap(ntkd.risk_bound, (0, None))(jnp.asarray(alphas), cos), want)
    np.testing.assert_allclose(jax.jit(ntkd.risk_bound)(alphas[2], cos), want[2])
    for bad in (np.nan, -0.1, 2.0):
        with pytest.raises(ValueError, match="alpha_n"):
            ntkd.risk_bound(bad, cos)
        assert np.isnan(jax.jit(ntkd.risk_bound)(bad, cos))


def test_sample_reductions_keep_the_dtype_and_never_turn_nan_into_a_number():
    """transfer_risk, angle_distribution, feature_cosines and alpha_n: float32 in, float32 out (float64
    likewise, under x64); a NaN input, a norm <= 0 or a cosine outside [0, 1] is refused eagerly with the
    argument's name, and gives NaN under jit (a NaN logit used to count as agreement: risk 0.0)."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(6)
    zt, zs = rng.normal(size=50), rng.normal(size=50)
    k = np.eye(4) * 2.0
    for dt in (np.float32, np.float64):
        r = ntkd.transfer_risk(zt.astype(dt), zs.astype(dt))
        assert r.dtype == dt and float(r) == pytest.approx(np.mean(zt * zs < 0))
        c = ntkd.feature_cosines(zt.astype(dt), np.full(50, 4.0, dt), 9.0)
        assert c.dtype == dt
        np.testing.assert_allclose(c, np.clip(np.abs(zt) / 18.0, 0, 1), rtol=1e-6)
        p = ntkd.angle_distribution(c, np.array([0.5, 1.5], dt))
        assert p.dtype == dt
        np.testing.assert_allclose(p, [np.mean(np.arccos(np.asarray(c, float)) > b) for b in (0.5, 1.5)])
        assert ntkd.alpha_n(k.astype(dt), np.ones(4, dt), 3.0).dtype == dt
    nan_zs = np.full(50, np.nan)
    cases = [
        (lambda a: ntkd.transfer_risk(zt, a), nan_zs, "z_s"),
        (lambda a: ntkd.angle_distribution(a, [0.5]), np.r_[0.2, np.nan], "cosines"),
        (lambda a: ntkd.angle_distribution(a, [0.5]), np.r_[0.2, 1.5], "cosines"),
        (lambda a: ntkd.feature_cosines(zt[:2], np.ones(2), a), 0.0, "norm"),
        (lambda a: ntkd.alpha_n(k, np.ones(4), a), -1.0, "norm"),
        (lambda a: ntkd.alpha_n(k, np.ones(4), a), np.nan, "norm"),
    ]
    for f, bad, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`"):
            f(bad)
        assert np.isnan(np.asarray(jax.jit(f)(jnp.asarray(bad)))).all(), name


@pytest.mark.parametrize("x64", [True, False])
def test_task_draws_are_the_documented_formulas_bitwise(x64):
    """sample_inputs and gaussian_mixture are one compiled program each; their draws are exactly the
    eager formulas of their docstrings (x = scale·N(0, I); signs, centres ~ N(0, σ_p² I), widths
    σ·U(0.75, 1.25) from split keys), in float64 and float32."""
    import jax.numpy as jnp

    with jax.enable_x64(x64):
        dt = jnp.float64 if x64 else jnp.float32
        key = jax.random.PRNGKey(5)
        x = T_.sample_inputs(key, 33, d=3, scale=2.5, dtype=dt)
        assert x.dtype == dt
        np.testing.assert_array_equal(np.asarray(x), np.asarray(2.5 * jax.random.normal(key, (33, 3), dt)))
        mix = T_.gaussian_mixture(key, 6, amplitude=0.7, center_std=4.0)
        k1, k2, k3 = jax.random.split(key, 3)
        signs = np.where(np.asarray(jax.random.bernoulli(k1, 0.5, (6,))), 1.0, -1.0)
        np.testing.assert_array_equal(np.asarray(mix.amplitudes), (0.7 * signs).astype(dt))
        np.testing.assert_array_equal(np.asarray(mix.centers), np.asarray(4.0 * jax.random.normal(k2, (6, 2), dt)))
        np.testing.assert_array_equal(np.asarray(mix.widths),
                                      np.asarray(15.0 / 6**0.5 * jax.random.uniform(k3, (6,), dt, 0.75, 1.25)))
    with pytest.raises(ValueError, match="d"):
        T_.gaussian_mixture(key, 3, d=0)
