"""Saglietti & Zdeborová (2022) solvable model in float32 (the session runs with x64 on): every public
function keeps float32 inputs in float32 (Python scalars are weak and do not promote) and agrees with its
float64 result. Tolerances: closed forms 1e-6 relative; proximal points 1e-5; fixed points 1e-4 absolute in
ε (float32's default solver tolerance is 2e-5 relative on the hats, brief values are quoted to 1e-4)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkd.theories.solvable_model import (
    bayes_error,
    bo_teacher_state,
    gen_error,
    gmm_sample,
    kd_loss_derivatives,
    learning_curve,
    prox_kd,
    solve_student_state,
    solve_teacher_state,
)

f32 = jnp.float32
P = {"p_plus": 0.2, "delta": 1.0}
GRID = (101, 81)


def _floats(tree):
    return [a for a in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)]


def test_closed_forms_keep_float32():
    m, q, b = f32(0.7), f32(1.9), f32(-0.4)
    e32, e64 = gen_error(m, q, b, **P), gen_error(0.7, 1.9, -0.4, **P)
    assert e32.dtype == jnp.float32 and e64.dtype == jnp.float64
    assert float(e32) == pytest.approx(float(e64), rel=1e-6)
    # array arguments broadcast and stay float32 under jit too
    a32 = jnp.asarray([2.0, 10.0], f32)
    be = jax.jit(lambda a: bayes_error(a, eta=0.5, **P))(a32)
    assert be.dtype == jnp.float32
    np.testing.assert_allclose(be, [0.1768, 0.1631], atol=1e-4)
    np.testing.assert_allclose(be, bayes_error(np.array([2.0, 10.0]), eta=0.5, **P), rtol=1e-6)
    v, x, y = gmm_sample(jax.random.PRNGKey(0), 8, 5, p_plus=0.2, delta=1.0, dtype=jnp.float32)
    assert v.dtype == x.dtype == y.dtype == jnp.float32


def test_loss_and_prox_keep_float32():
    h = jnp.linspace(-20, 20, 9, dtype=f32)
    d32 = kd_loss_derivatives(h, f32(0.9), f32(-1.3), 0.4, 2.5)
    d64 = kd_loss_derivatives(np.asarray(h, np.float64), 0.9, -1.3, 0.4, 2.5)
    for a, b in zip(d32, d64):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    om = jnp.asarray([3.0, -40.0, 12.0], f32)
    V = jnp.asarray([0.8, 25.0, 300.0], f32)
    p32 = prox_kd(om, V, f32(0.9), f32(-2.0), 0.6, 2.0)
    p64 = prox_kd(np.asarray(om, np.float64), np.asarray(V, np.float64), 0.9, -2.0, 0.6, 2.0)
    assert all(a.dtype == jnp.float32 for a in p32)
    np.testing.assert_allclose(p32[0], p64[0], rtol=1e-5, atol=1e-5)
    # the implicit derivative in float32 agrees with float64's
    g32 = jax.jit(jax.grad(lambda o: prox_kd(o, f32(2.0), f32(0.8), f32(-1.0), 0.6, 1.7)[0]))(f32(0.4))
    g64 = jax.grad(lambda o: prox_kd(o, 2.0, 0.8, -1.0, 0.6, 1.7)[0])(0.4)
    assert g32.dtype == jnp.float32 and float(g32) == pytest.approx(float(g64), rel=1e-5)


@pytest.fixture(scope="module")
def teachers():
    t32 = solve_teacher_state(f32(5.0), f32(0.1), **P)  # Python-scalar task: stays float32
    t64 = solve_teacher_state(5.0, 0.1, **P)
    return t32, t64


def test_fixed_points_keep_float32_and_agree_with_float64(teachers):
    t32, t64 = teachers
    assert all(a.dtype == jnp.float32 for a in _floats(t32))
    assert float(t32.error) == pytest.approx(float(t64.error), abs=1e-4)
    assert float(t32.error) == pytest.approx(0.1448, abs=1e-3)  # brief T2
    s32 = solve_student_state(t32, eta=0.5, lam=1e-5, rho=1.0, n_grid=GRID)
    s64 = solve_student_state(t64, eta=0.5, lam=1e-5, rho=1.0, n_grid=GRID)
    assert all(a.dtype == jnp.float32 for a in _floats(s32))
    for f in ("error", "train_loss", "half_mse_sigma"):
        assert float(getattr(s32, f)) == pytest.approx(float(getattr(s64, f)), abs=1e-4), f
    assert float(s32.q) == pytest.approx(float(s64.q), rel=1e-3)
    bo = bo_teacher_state(f32(2.0), **P)
    assert all(a.dtype == jnp.float32 for a in _floats(bo))
    assert float(bo.q) == pytest.approx(1.5, rel=1e-7)


def test_learning_curve_keeps_float32():
    lc = learning_curve(jnp.asarray([4.5, 5.0], f32), lam_t=0.15, eta=0.5, lam=0.1, rho=1.0, T=2.0, n_grid=GRID,
                        **P)
    assert lc["alpha"].dtype == lc["student_error"].dtype == lc["teacher_error"].dtype == jnp.float32
    # brief §3.1: Fig. 8 χ = 1 at α = 5 is .1788 (λ̃ = 0.15, λ = 0.1, T = 2); T6 at α = 4.5 is .1807
    np.testing.assert_allclose(lc["student_error"], [0.1807, 0.1788], atol=1e-3)
