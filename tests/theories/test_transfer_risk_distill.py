import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import brentq
from scipy.special import expit, log_expit

import ntkd


def _brentq_zeff(zt, y, rho, T):
    """Independent float64 reference: SciPy brentq on Eq. 3 in log space (y = 1 form, mirrored)."""
    s = 1 if y == 1 else -1
    zt = s * zt
    rhs = np.log(rho / T) + log_expit(-zt / T)
    f = lambda z: np.logaddexp(np.log(rho / T) + log_expit(-z / T), np.log1p(-rho) + log_expit(-z)) - rhs  # noqa
    hi = zt + 1.0
    while f(hi) > 0:
        hi += 2 * (hi - zt)
    return s * brentq(f, zt, hi, xtol=1e-14, rtol=1e-15, maxiter=500)


def test_thresholds_and_wrong_teacher_logits_of_fig1_left(dtype):
    rhos = np.array([0.89524, 0.46564, 0.09780, 0.014851], dtype)
    np.testing.assert_allclose(ntkd.threshold(rhos, dtype(5.0)), [1.750, 3.500, 5.250, 7.000], atol=1e-3)
    z = ntkd.effective_logits(dtype(-15.0), dtype(1.0), rhos, dtype(5.0))
    assert z.dtype == dtype
    np.testing.assert_allclose(z[:3], [-0.851, 2.221, 4.243], atol=1e-3)
    np.testing.assert_allclose(z[3], 6.12, atol=5e-3)


def test_thresholds_and_wrong_teacher_logits_of_fig1_right(dtype):
    Ts = np.array([0.2, 0.5, 1.0, 2.0, 5.0], dtype)
    np.testing.assert_allclose(ntkd.threshold(dtype(0.05), Ts), [1.887, 2.897, 3.664, 4.529, 5.882], atol=1e-3)
    np.testing.assert_allclose(ntkd.effective_logits(dtype(-15.0), dtype(1.0), dtype(0.05), Ts),
                               [1.037, 2.155, 2.944, 3.757, 4.931], atol=1e-3)


def test_paper_gd_solver_plateaus_below_the_exact_root_at_low_temperature():
    exact = ntkd.effective_logits(5.0, 1.0, 0.05, 0.2)
    np.testing.assert_allclose(exact, 26.335, atol=1e-3)
    f32 = np.float32
    gd = ntkd.effective_logits(f32(5.0), f32(1.0), f32(0.05), f32(0.2), method="paper_gd")
    assert gd.dtype == np.float32
    np.testing.assert_allclose(gd, 11.46, atol=0.02)
    # the plateau: for T < 1 the truncated solver is nearly T-independent, the exact root is not
    gds = ntkd.effective_logits(f32(5.0), f32(1.0), f32(0.05), np.array([0.2, 0.3], f32), method="paper_gd")
    exacts = ntkd.effective_logits(5.0, 1.0, 0.05, np.array([0.2, 0.3]))
    assert abs(gds[0] - gds[1]) < 0.5 < abs(exacts[0] - exacts[1])


@settings(max_examples=60, deadline=None)
@given(zt=st.floats(-30, 30), y=st.sampled_from([0.0, 1.0]), rho=st.floats(0.001, 0.999),
       T=st.floats(0.1, 20))
def test_exact_root_matches_scipy_brentq(zt, y, rho, T):
    got = float(ntkd.effective_logits(zt, y, rho, T))
    ref = _brentq_zeff(zt, y, rho, T)
    assert abs(got - ref) <= 1e-10 * max(1.0, abs(ref))


@settings(max_examples=60, deadline=None)
@given(zt=st.floats(-20, 20, allow_subnormal=False), rho=st.floats(0.0, 1.0, allow_subnormal=False),
       T=st.floats(0.1, 20))
def test_identities(zt, rho, T):
    # subnormals are excluded: XLA flushes them to zero (documented in effective_logits)
    y = float(zt > 0)  # correct teacher
    z = float(ntkd.effective_logits(zt, y, rho, T))
    assert float(ntkd.effective_logits(zt, y, 1.0, T)) == zt  # ρ = 1 returns z_t for every T
    if rho < np.finfo(np.float64).tiny:  # 0, or subnormal: XLA flushes subnormals to zero (documented)
        assert z == (np.inf if y == 1 else -np.inf)
        return
    assert abs(z) >= abs(zt) - 1e-12  # |z_eff| >= |z_t| for a correct teacher
    if rho < 1:  # split at z_t = 0
        t = float(ntkd.threshold(rho, T))
        assert t > 0 and abs(z) >= t - 1e-9


@settings(max_examples=40, deadline=None)
@given(zt=st.floats(-20, 20), y=st.sampled_from([0.0, 1.0]), rho=st.floats(0.01, 0.99))
def test_temperature_one_closed_form_and_the_correction_bound(zt, y, rho):
    z = float(ntkd.effective_logits(zt, y, rho, 1.0))
    np.testing.assert_allclose(expit(z), rho * expit(zt) + (1 - rho) * y, rtol=1e-12, atol=1e-300)
    if y == 1:
        assert expit(z) >= 1 - rho - 1e-15  # hard labels bound the student's wrongness (§5.1)


def test_monotone_in_zt_with_jump():
    zt = np.linspace(-15, 15, 3001)
    for rho, T in ((0.9, 5.0), (0.47, 5.0), (0.05, 0.2)):
        z = np.asarray(ntkd.effective_logits(zt, (zt > 0).astype(float), rho, T))
        assert np.all(np.diff(z) > 0)
        t = float(ntkd.threshold(rho, T))
        np.testing.assert_allclose([z[zt < 0].max(), z[zt > 0].min()], [-t, t], atol=0.02 * t)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0, 10.0])
def test_pointwise_correction_threshold(T):
    """Correct sign for every (even infinitely wrong) teacher iff ρ < T/(1+T)."""
    crit = T / (1 + T)
    for rho in (crit - 0.02, crit + 0.02):
        z = float(ntkd.effective_logits(-1e3, 1.0, rho, T))
        assert (z > 0) == bool(ntkd.pointwise_correct(rho, T)) == (rho < crit)


def test_saturated_logits_are_exact():
    zt = np.array([1e3, -1e3, 800.0, -800.0, 1e4])
    z = np.asarray(ntkd.effective_logits(zt, np.ones(5), 0.3, 2.0))
    assert np.isfinite(z).all()
    for a, b in zip(zt, z):
        np.testing.assert_allclose(b, _brentq_zeff(a, 1.0, 0.3, 2.0), rtol=1e-12)


def test_rho_for_threshold_inverts_threshold():
    rho = np.array([0.01, 0.2, 0.6, 0.95])
    for T in (0.5, 1.0, 5.0):
        np.testing.assert_allclose(ntkd.rho_for_threshold(ntkd.threshold(rho, T), T), rho, rtol=1e-10)
    np.testing.assert_allclose(ntkd.label_smoothing_logit(0.1), np.log(19.0))


@pytest.mark.parametrize("T", [0.5, 2.0, 10.0])
def test_correction_logits_match_finite_differences(T):
    zt = np.array([-6.0, -2.0, -0.3, 0.4, 3.0, 7.0])
    for y in (0.0, 1.0):
        def fd(eps):
            return (np.asarray(ntkd.effective_logits(zt, y, 1 - eps, T)) - zt) / eps

        fd = 2 * fd(5e-9) - fd(1e-8)  # Richardson: removes the O(ε) curvature term (δz_h reaches 3e5)
        np.testing.assert_allclose(ntkd.correction_logits(zt, y, T), fd, rtol=1e-3)
    # T² convention: the soft term is T² times stronger, the correction T² times smaller
    np.testing.assert_allclose(ntkd.correction_logits(zt, 1.0, T, soft_scale="T2"),
                               np.asarray(ntkd.correction_logits(zt, 1.0, T)) / T**2, rtol=1e-12)


def test_kd_loss_and_gradient(dtype):
    rng = np.random.default_rng(0)
    zs, zt = rng.normal(size=(2, 8)).astype(dtype) * 3
    y = (rng.random(8) > 0.5).astype(dtype)
    rho, T = dtype(0.7), dtype(3.0)
    ps, pt = expit(zs.astype(float) / 3), expit(zt.astype(float) / 3)
    hard = -(y * np.log(expit(zs.astype(float))) + (1 - y) * np.log(1 - expit(zs.astype(float))))
    soft = -(pt * np.log(ps) + (1 - pt) * np.log(1 - ps))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ntkd.kd_loss(zs, zt, y, rho, T), np.mean(0.7 * soft + 0.3 * hard), rtol=tol)
    np.testing.assert_allclose(ntkd.kd_loss(zs, zt, y, rho, T, soft_scale="T2"),
                               np.mean(0.7 * 9 * soft + 0.3 * hard), rtol=tol)
    g = jax.grad(lambda z: ntkd.kd_loss(z, zt, y, rho, T))(jnp.asarray(zs))
    np.testing.assert_allclose(g, np.asarray(ntkd.kd_grad_z(zs, zt, y, rho, T)) / 8, rtol=10 * tol, atol=tol)
    z_eff = ntkd.effective_logits(zt, y, rho, T)
    np.testing.assert_allclose(ntkd.kd_grad_z(z_eff, zt, y, rho, T), 0, atol=10 * tol)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(rho=1.5), "`rho`"), (dict(rho=-0.1), "`rho`"), (dict(T=0.0), "`T`"), (dict(T=-2.0), "`T`"),
     (dict(y_g=np.array([0.0, 2.0, 1.0])), "`y_g`"), (dict(y_g=np.array([1.0, 0.0])), "shapes"),
     (dict(z_t=np.array([np.nan, 0.0, 1.0])), "`z_t`")],
)
def test_bad_inputs(kwargs, match):
    args = dict(z_t=np.array([1.0, -2.0, 3.0]), y_g=np.array([1.0, 0.0, 1.0]), rho=0.5, T=2.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ntkd.effective_logits(**args)
    with pytest.raises(ValueError, match=match):
        ntkd.kd_loss(np.zeros(3), **args)


def test_converged_student_and_flow():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 2)) * 5
    kf = ntkd.mlp_kernel_fn(3)
    xtr, xte = x[:12], x[12:]
    ktt, kte = np.asarray(kf(xtr, None, "ntk")), np.asarray(kf(xte, xtr, "ntk"))
    zt = rng.normal(size=12) * 2
    y = (zt > 0).astype(float)
    # ρ = 1 interpolates the teacher logits on the training set (K2)
    np.testing.assert_allclose(ntkd.converged_student(ktt, ktt, zt), zt, atol=1e-9)
    z_eff = np.asarray(ntkd.effective_logits(zt, y, 0.9, 4.0))
    z0tr, z0te = rng.normal(size=12) * 0.1, rng.normal(size=8) * 0.1
    f = ntkd.converged_student(kte, ktt, z_eff, z0_train=z0tr, z0_test=z0te)
    np.testing.assert_allclose(f, z0te + kte @ np.linalg.solve(ktt, z_eff - z0tr), rtol=1e-10)
    # function-space KD dynamics converge to z_eff on the training set and to Eq. 4 off it
    ztr_t, fte_t = ntkd.kd_function_space_flow(ktt, zt, y, 0.9, 4.0, np.array([0.0, 1e2, 3e5]),
                                               theta_test_train=kte, z0_train=z0tr, z0_test=z0te,
                                               learning_rate=1.0, steps_per_unit=0.05)
    np.testing.assert_allclose(ztr_t[0], z0tr)
    np.testing.assert_allclose(ztr_t[-1], z_eff, atol=2e-3)
    np.testing.assert_allclose(fte_t[-1], f, atol=5e-3 * np.abs(f).max())
    # float32 inputs (x64 on in the tests) flow in float32, close to the float64 flow: the RK4 carry used
    # to be promoted to float64 by the float64 ρ, T and labels and fori_loop refused it
    times = np.array([0.0, 3.0, 30.0])
    z64, f64 = ntkd.kd_function_space_flow(ktt, zt, y, 0.9, 4.0, times, theta_test_train=kte)
    z32, f32 = ntkd.kd_function_space_flow(ktt.astype(np.float32), zt.astype(np.float32), y.astype(np.float32),
                                           0.9, 4.0, times.astype(np.float32), theta_test_train=kte.astype(np.float32))
    assert z32.dtype == f32.dtype == np.float32
    np.testing.assert_allclose(z32, z64, rtol=1e-4, atol=1e-4 * np.abs(z64).max())
    np.testing.assert_allclose(f32, f64, rtol=1e-4, atol=1e-4 * np.abs(f64).max())
    # Δw norm
    np.testing.assert_allclose(ntkd.weight_change_norm(ktt, z_eff), np.sqrt(z_eff @ np.linalg.solve(ktt, z_eff)),
                               rtol=1e-10)


@pytest.mark.parametrize("T", [0.1, 1.0, 20.0])
def test_split_resolved_for_rho_within_an_ulp_of_one(T):
    """ρ = 1 - 2⁻⁵³ puts the root within ~1e-18 of z_t; the residual keeps it (t ≈ 2T²(1-ρ)/ρ)."""
    rho = float(np.nextafter(1.0, 0.0))
    t = float(ntkd.threshold(rho, T))
    np.testing.assert_allclose(t, 2 * T**2 * (1 - rho) / rho, rtol=1e-6)
    assert float(ntkd.effective_logits(0.0, 1.0, rho, T)) == t > 0


def test_effective_logits_have_implicit_derivatives_in_both_modes():
    """d z_eff / d(z_t, ρ, T) by the implicit function theorem, not through the bisection: forward
    (jvp) and reverse (grad) mode agree with float64 central differences to 1e-6 relative, eagerly,
    under jit and under vmap; at T = 1 (closed form) and ρ = 1 (z_eff = z_t, whose ρ-derivative is minus
    the correction logits of §5.3) too; ρ = 0 (an infinite root) gives NaN, never a finite slope."""
    import jax
    import jax.numpy as jnp

    E = ntkd.effective_logits
    zt = jnp.asarray([1.0, -2.0, 3.0, 0.3, -6.0, 9.0])
    yg = jnp.asarray([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    h = 1e-6
    # one compiled program each for all (ρ, T) points: ρ and T are arguments, not constants
    jvps = jax.jit(lambda z, y, r, t: [jax.jvp(lambda a: E(a, y, r, t), (z,), (jnp.ones_like(z),))[1],
                                       jax.jvp(lambda a: E(z, y, a, t), (r,), (jnp.ones_like(r),))[1],
                                       jax.jvp(lambda a: E(z, y, r, a), (t,), (jnp.ones_like(t),))[1]])
    grads = jax.jit(jax.vmap(jax.grad(lambda z, r, t, y: E(z, y, r, t), argnums=(0, 1, 2)), (0, None, None, 0)))
    for rho, T in ((0.9, 5.0), (0.3, 0.5), (0.05, 2.0), (0.7, 1.0), (0.999, 20.0), (1.0, 3.0)):
        r, t = jnp.asarray(rho), jnp.asarray(T)
        fd = [(E(zt + h, yg, r, t) - E(zt - h, yg, r, t)) / (2 * h),
              (E(zt, yg, r + h, t) - E(zt, yg, r - h, t)) / (2 * h) if rho < 1 else
              -np.asarray(ntkd.correction_logits(zt, yg, T)),  # one-sided at ρ = 1: z_eff = z_t - (1-ρ)δz_h
              (E(zt, yg, r, t + h) - E(zt, yg, r, t - h)) / (2 * h)]
        for name, want, a, b in zip(("z_t", "rho", "T"), fd, jvps(zt, yg, r, t), grads(zt, r, t, yg)):
            scale = np.max(np.abs(want))
            np.testing.assert_allclose(a, want, rtol=1e-6, atol=1e-6 * scale, err_msg=f"jvp d/d{name} ρ={rho} T={T}")
            np.testing.assert_allclose(b, want, rtol=1e-6, atol=1e-6 * scale, err_msg=f"grad d/d{name} ρ={rho} T={T}")
    # eagerly, one point (z_t = 1, y_g = 1, ρ = 0.9, T = 5; differentiating the bisection gave 1.585)
    g = jax.grad(lambda z: E(z, 1.0, 0.9, 5.0))(1.0)
    np.testing.assert_allclose(g, (E(1.0 + h, 1.0, 0.9, 5.0) - E(1.0 - h, 1.0, 0.9, 5.0)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(g, 0.5008321658553, rtol=1e-10)
    assert np.isnan(jax.grad(lambda r: E(2.0, 1.0, r, 3.0))(0.0))
    # the threshold t(ρ, T) = z_eff(0⁺, 1) inherits the derivative
    dt = jax.grad(lambda r: ntkd.threshold(r, 5.0))(0.5)
    np.testing.assert_allclose(dt, (ntkd.threshold(0.5 + h, 5.0) - ntkd.threshold(0.5 - h, 5.0)) / (2 * h), rtol=1e-6)
