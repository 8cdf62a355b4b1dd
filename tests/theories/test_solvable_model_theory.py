"""Saglietti & Zdeborová (2022) solvable model: Eq. 12, Bayes errors, the KD loss and its proximal operator
against SciPy, and the replica fixed points against the brief's digitized/derived values (§4.3, 1e-3)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

from ntkd.theories.solvable_model import (
    NotConvergedError,
    bayes_error,
    bo_teacher_state,
    gen_error,
    kd_loss_derivatives,
    learning_curve,
    prox_kd,
    solve_student_state,
    solve_teacher_state,
)

P = {"p_plus": 0.2, "delta": 1.0}
GRID = (101, 81)  # student quadrature for the tests; 401 x 301 gives the same values to 1e-6 (brief §2.8)


def student(alpha, lam_t, **kw):
    t = bo_teacher_state(alpha, **P) if lam_t is None else solve_teacher_state(alpha, lam_t, **P)
    return solve_student_state(t, eta=kw.pop("eta", 0.5), n_grid=GRID, **kw)


# ---------------------------------------------------------------------------------- Eq. 12 and bounds
def test_gen_error_matches_scipy_and_rejects_bad_q():
    m, q, b = 0.7, 1.9, -0.4
    ref = 0.2 * norm.sf((m + b) / np.sqrt(1.5 * q)) + 0.8 * norm.sf((m - b) / np.sqrt(1.5 * q))
    assert float(gen_error(m, q, b, p_plus=0.2, delta=1.5)) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="`q`"):
        gen_error(m, 0.0, b, **P)
    with pytest.raises(ValueError, match="p_plus"):
        gen_error(m, q, b, p_plus=1.0, delta=1.0)
    assert np.isnan(jax.jit(lambda q: gen_error(m, q, b, **P))(-1.0))


@pytest.mark.parametrize("alpha,eta,pp,ref", [(2, 1, .2, .1409), (10, 1, .2, .1192), (2, .5, .2, .1768),
                                               (10, .5, .2, .1631), (10, 1, .5, .1702), (10, .5, .5, .2501)])
def test_bayes_error_T1(alpha, eta, pp, ref):
    assert float(bayes_error(float(alpha), p_plus=pp, delta=1.0, eta=eta)) == pytest.approx(ref, abs=1e-4)


def test_bayes_error_invalid_is_nan_traced_and_error_eager():
    with pytest.raises(ValueError, match="eta"):
        bayes_error(2.0, eta=1.5, **P)
    assert np.isnan(jax.jit(lambda a: bayes_error(a, **P))(-2.0))


# --------------------------------------------------------------------------------- loss and proximal map
def _np_loss(h, y, zt, rho, T):
    s = expit(zt / T)
    return (1 - rho) * (np.logaddexp(0, h) - y * h) + rho * (np.logaddexp(0, h / T) - s * h / T)


def test_loss_derivatives_against_numpy():
    h, y, zt, rho, T = np.linspace(-30, 30, 7), 0.9, -1.3, 0.4, 2.5
    l, d1, d2 = kd_loss_derivatives(h, y, zt, rho, T)
    np.testing.assert_allclose(l, _np_loss(h, y, zt, rho, T), rtol=1e-12)
    e = 1e-5
    np.testing.assert_allclose(d1, (_np_loss(h + e, y, zt, rho, T) - _np_loss(h - e, y, zt, rho, T)) / (2 * e),
                               rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(d2, (1 - rho) * expit(h) * expit(-h) + rho / T**2 * expit(h / T) * expit(-h / T),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="`y`"):
        kd_loss_derivatives(h, 1.5, zt, rho, T)


PROX_CASES = [(3.0, 0.8, 1.0, -2.0, 0.3, 2.0), (-40.0, 25.0, 0.0, 5.0, 1.0, 1.0), (0.2, 1e-3, 1.0, 0.0, 0.0, 1.0),
              (12.0, 300.0, 0.9, -7.0, 0.6, 10.0)]


@pytest.mark.parametrize("case", PROX_CASES)
def test_prox_matches_brentq(case):
    om, V, y, zt, rho, T = case
    g = lambda h: h - om + V * ((1 - rho) * (expit(h) - y) + rho / T * (expit(h / T) - expit(zt / T)))
    ref = brentq(g, om - V * 2, om + V * 2, xtol=1e-14, rtol=1e-15)
    h, f, _k = prox_kd(om, V, y, zt, rho, T)
    assert float(h) == pytest.approx(ref, abs=1e-10 * (1 + abs(ref)))
    assert float(f) == pytest.approx((float(h) - om) / V, rel=1e-8, abs=1e-12)
    assert float(jax.jit(lambda o: prox_kd(o, V, y, zt, rho, T)[0])(om)) == pytest.approx(float(h), abs=1e-12)


def test_prox_vmap_zero_variance_and_implicit_grad():
    om = jnp.linspace(-5, 5, 9)
    h_v = jax.vmap(lambda o: prox_kd(o, 0.7, 1.0, 0.5, 0.5, 2.0)[0])(om)
    h_l = np.array([float(prox_kd(o, 0.7, 1.0, 0.5, 0.5, 2.0)[0]) for o in om])
    np.testing.assert_allclose(h_v, h_l, rtol=1e-13)
    assert float(prox_kd(1.3, 0.0, 1.0, 0.5, 0.5, 2.0)[0]) == 1.3
    fn = jax.jit(lambda p: prox_kd(p[0], p[1], 0.8, p[2], p[3], p[4])[0])
    p0 = jnp.asarray([0.4, 2.0, -1.0, 0.6, 1.7])
    gr = jax.jit(jax.grad(fn))(p0)
    fd = [(fn(p0.at[i].add(1e-6)) - fn(p0.at[i].add(-1e-6))) / 2e-6 for i in range(5)]
    np.testing.assert_allclose(gr, fd, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="`V`"):
        prox_kd(0.0, -1.0, 1.0, 0.0, 0.5)


# ------------------------------------------------------------------------------------------- teacher
@pytest.mark.parametrize("lam_t,refs", [(0.1, (.1621, .1448, .1338)), (1.0, (.1928, .1584, .1385)),
                                        (1e-2, (.1840, .1668, .1413)), (1e-5, (.2020, .1910, .1432))])
def test_teacher_fig6_T2(lam_t, refs):
    for a, ref in zip((2.0, 5.0, 9.0), refs):
        st = solve_teacher_state(a, lam_t, **P)
        assert float(st.error) == pytest.approx(ref, abs=1e-3)
        assert float(st.residual) <= 1e-10


def test_teacher_optimum_fig1_T3():
    # a golden-section search over log λ̃ at α = 4.5: minimum .1416 at λ̃ ≈ 0.265
    f = lambda ll: float(solve_teacher_state(4.5, float(np.exp(ll)), **P).error)
    a, b = np.log(0.05), np.log(1.5)
    r = (np.sqrt(5) - 1) / 2
    for _ in range(14):
        c, d = b - r * (b - a), a + r * (b - a)
        a, b = (a, d) if f(c) < f(d) else (c, b)
    lam = float(np.exp((a + b) / 2))
    assert f(np.log(lam)) == pytest.approx(0.1416, abs=1e-3)
    assert 0.8 * 0.265 < lam < 1.2 * 0.265


def test_teacher_jit_vmap_grad_and_nonconvergence():
    lams = jnp.asarray([0.1, 1.0])
    batch = jax.vmap(lambda l: solve_teacher_state(5.0, l, **P).error)(lams)
    loop = [float(solve_teacher_state(5.0, float(l), **P).error) for l in lams]
    np.testing.assert_allclose(batch, loop, rtol=1e-9)
    err = lambda l, it=5000: solve_teacher_state(5.0, l, max_iter=it, **P).error
    jerr = jax.jit(err)
    assert float(jerr(0.1, 5000)) == pytest.approx(loop[0], rel=1e-12)
    g = jax.grad(err)(0.3)
    fd = (err(0.3 + 1e-5) - err(0.3 - 1e-5)) / 2e-5
    assert float(g) == pytest.approx(float(fd), rel=1e-5)
    with pytest.raises(NotConvergedError, match="max_iter"):
        err(0.1, 3)
    assert np.isnan(float(jerr(0.1, 3)))  # not converged under jit: NaN, not a plausible number
    with pytest.raises(ValueError, match="lam_t"):
        err(-0.1)
    assert np.isnan(float(jerr(-0.1, 5000)))


# ------------------------------------------------------------------------------------------- student
STUDENT_CASES = [  # (name, α, λ̃ (None: BO proxy), student keywords, expected ε_g)
    ("T4 pure KD", 3.0, 0.1, {"lam": 1e-5, "rho": 1.0}, .1885),
    ("T4 pure KD", 10.0, 0.1, {"lam": 1e-5, "rho": 1.0}, .1688),
    ("T4 λ̃=1e-2", 5.0, 1e-2, {"lam": 1e-5, "rho": 1.0}, .1835),
    ("T5 direct", 4.5, 0.1, {"lam": 0.1, "rho": 0.0}, .1783),
    ("T5 direct", 4.5, 0.1, {"lam": 0.5, "rho": 0.0}, .1785),
    ("T6", 4.5, 0.15, {"lam": 0.1, "rho": 1.0, "T": 2.0}, .1807),
    ("T6", 4.5, 0.15, {"lam": 0.5, "rho": 0.5, "T": 2.0}, .1870),
    ("T6", 4.5, 0.15, {"lam": 0.1, "rho": 0.6, "T": 2.0}, .1752),
    ("T7", 5.0, 0.15, {"lam": 0.1, "rho": 0.2, "T": 2.0}, .1758),
    ("T8", 1.0, 0.15, {"lam": 1e-5, "rho": 1.0, "T": 1.0}, .2264),
    ("T8", 1.0, 0.15, {"lam": 1e-5, "rho": 1.0, "T": 10.0}, .2091),
    ("T9", 1.5, 0.1, {"lam": 1e-5, "rho": 1.0}, .2145),
    ("Fig5 blue", 3.0, 1e-5, {"lam": 1e-5, "rho": 1.0}, .2080),  # λ̃ = 1e-5 teacher below α̃_S
    ("T12 BO proxy", 10.0, None, {"lam": 1e-5, "rho": 1.0}, .1636),
    ("T12 BO proxy", 2.0, None, {"lam": 1e-5, "rho": 1.0}, .1847),
]


@pytest.mark.parametrize("name,alpha,lam_t,kw,ref", STUDENT_CASES, ids=[f"{c[0]}-a{c[1]}" for c in STUDENT_CASES])
def test_student_against_brief(name, alpha, lam_t, kw, ref):
    st = student(alpha, lam_t, **kw)
    assert float(st.error) == pytest.approx(ref, abs=1e-3)


def test_student_fig11_diagnostics_T10():
    for lam_t, ce, q in [(0.1, .3554, 2.629), (1.0, .4612, .4158)]:
        st = student(3.0, lam_t, lam=1e-5, rho=1.0)
        assert float(st.train_loss) == pytest.approx(ce, abs=1e-3)
        assert float(st.q) == pytest.approx(q, rel=5e-3)
    # brief §2.9(7): the derived E[(σ(h) - σ(h̃))²] is twice the digitized ½MSE, 0.0118 at λ̃ = 0.1
    assert float(student(3.0, 0.1, lam=1e-5, rho=1.0).half_mse_sigma) == pytest.approx(0.0118, abs=3e-4)


def test_bo_proxy_order_parameters_S4():
    st = student(2.0, None, lam=1e-5, rho=1.0)
    np.testing.assert_allclose([st.m, st.q, st.S, st.b], [.592, 1.223, .819, -1.150], atol=2e-3)


def test_direct_student_reduces_to_ridge_logistic_and_dense_equivalence_T11():
    # χ = 0, η = 1: the student is ridge-logistic regression itself, whatever the teacher
    t = solve_teacher_state(3.0, 0.3, **P)
    s = solve_student_state(t, eta=1.0, lam=0.3, rho=0.0, n_grid=GRID)
    assert float(s.error) == pytest.approx(float(t.error), abs=2e-6)
    assert float(s.q) == pytest.approx(float(t.q), rel=1e-4)
    # sparse {η, α, Δ, λ} = dense {1, α/η, Δ/η, λ/η²}: ε = .1755 both
    sparse = student(4.5, 0.1, lam=0.2, rho=0.0)
    dense = solve_student_state(bo_teacher_state(9.0, p_plus=0.2, delta=2.0), eta=1.0, lam=0.8, rho=0.0,
                                n_grid=GRID)
    assert float(sparse.error) == pytest.approx(0.1755, abs=1e-3)
    assert float(dense.error) == pytest.approx(float(sparse.error), abs=1e-4)


def test_student_grad_vmap_and_learning_curve():
    t = solve_teacher_state(4.5, 0.15, **P)
    err = lambda lam: solve_student_state(t, eta=0.5, lam=lam, rho=0.6, T=2.0, n_grid=GRID).error
    g = jax.grad(err)(0.1)
    fd = (err(0.1 + 1e-5) - err(0.1 - 1e-5)) / 2e-5
    assert float(g) == pytest.approx(float(fd), rel=1e-4)
    batch = jax.vmap(err)(jnp.asarray([0.1, 0.2]))
    np.testing.assert_allclose(batch, [err(0.1), err(0.2)], rtol=1e-9)
    # warm-started curve: the same values as cold solves, in fewer sweeps
    lc = learning_curve([4.5, 5.0], p_plus=0.2, delta=1.0, eta=0.5, lam=0.1, rho=1.0, lam_t=0.15, T=2.0,
                        n_grid=GRID)
    cold = student(5.0, 0.15, lam=0.1, rho=1.0, T=2.0)
    assert float(lc["student_error"][1]) == pytest.approx(float(cold.error), abs=1e-9)
    assert int(lc["student"].iterations[1]) < int(cold.iterations)
    with pytest.raises(ValueError, match="rho"):
        student(3.0, 0.1, lam=1e-5, rho=1.5)


def test_pure_kd_from_quasi_separating_teacher_fig2():
    # λ̃ = 1e-2 below α̃_S: the teacher's V = Δ δq̃ ≈ 20, where a proximal Newton without the rtsafe step
    # test bounced between the flat ends of its bracket and the student settled on an unphysical root (q < 0)
    t = solve_teacher_state(3.0, 1e-2, **P)
    assert float(student(3.0, 1e-2, lam=1e-5, rho=1.0).error) == pytest.approx(.2017, abs=1e-3)
    h, f, _ = prox_kd(-8.367, float(t.dq), 1.0, 0.0, 0.0)
    assert float(h) - (-8.367) == pytest.approx(float(t.dq) * float(f), abs=1e-9)
