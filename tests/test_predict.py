from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

import ntkd

DATA = Path(__file__).parent / "data" / "nt_reference.npz"


def _problem(n=6, m=3, k=2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 3))
    kern = np.asarray(ntkd.mlp_kernel_fn(2)(x, None, "ntk"))
    y = rng.normal(size=(n, k))
    f0 = rng.normal(size=(n + m, k)) * 0.3
    return (kern[:n, :n].astype(dtype), kern[n:, :n].astype(dtype), y.astype(dtype), f0[:n].astype(dtype),
            f0[n:].astype(dtype))


def _expm_reference(ktt, kte, y, f0tr, f0te, tau):
    """Float64 SciPy matrix exponential: f(τ) - y = expm(-τK/N)(f0 - y); test via K^{-1}(I - expm)."""
    n_norm = y.size
    e = scipy.linalg.expm(-tau * ktt / n_norm)
    ftr = y + e @ (f0tr - y)
    fte = f0te + kte @ np.linalg.solve(ktt, (np.eye(len(ktt)) - e) @ (y - f0tr))
    return ftr, fte


def test_gradient_flow_matches_expm(dtype):
    ktt, kte, y, f0tr, f0te = _problem(dtype=dtype)
    predict = ntkd.gradient_descent_mse(ktt, y, learning_rate=0.5)
    ts = np.array([0.0, 0.1, 3.0, 40.0, 1e3])
    tr, te = predict(ts, f0tr, f0te, kte)
    assert tr.shape == (5, 6, 2) and te.shape == (5, 3, 2) and tr.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for i, t in enumerate(ts):
        rtr, rte = _expm_reference(*(a.astype(np.float64) for a in (ktt, kte, y, f0tr, f0te)), 0.5 * t)
        np.testing.assert_allclose(tr[i], rtr, rtol=tol, atol=tol)
        np.testing.assert_allclose(te[i], rte, rtol=tol, atol=tol)


def test_gradient_flow_matches_explicit_integration():
    """RK4 on dF/dτ = -K_all,train (f_train - y)/N for train and test outputs together."""
    ktt, kte, y, f0tr, f0te = _problem(seed=1)
    k_all = np.vstack([ktt, kte])
    f = np.vstack([f0tr, f0te])
    n, n_norm, tau, steps = len(ktt), y.size, 7.0, 4000
    h = tau / steps

    def rhs(f):
        return -k_all @ (f[:n] - y) / n_norm

    for _ in range(steps):
        a = rhs(f)
        b = rhs(f + h / 2 * a)
        c = rhs(f + h / 2 * b)
        d = rhs(f + h * c)
        f = f + h / 6 * (a + 2 * b + 2 * c + d)
    tr, te = ntkd.gradient_descent_mse(ktt, y)(tau, f0tr, f0te, kte)
    np.testing.assert_allclose(tr, f[:n], rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(te, f[n:], rtol=1e-10, atol=1e-11)


def test_infinite_time_matches_direct_solve(dtype):
    ktt, kte, y, f0tr, f0te = _problem(seed=2, dtype=dtype)
    predict = ntkd.gradient_descent_mse(ktt, y)
    tr, te = predict(None, f0tr, f0te, kte)
    k64 = ktt.astype(np.float64)
    ref_te = f0te + kte.astype(np.float64) @ np.linalg.solve(k64, y - f0tr)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(te, ref_te, rtol=tol, atol=tol)
    np.testing.assert_allclose(tr, y, rtol=tol, atol=tol)
    tr2, te2 = predict(np.inf, f0tr, f0te, kte)
    np.testing.assert_allclose(te2, te, rtol=tol)
    # inf inside an array of times goes through the eigenbasis and agrees with the solve
    _, te3 = predict(np.array([1.0, np.inf]), f0tr, f0te, kte)
    np.testing.assert_allclose(te3[1], te, rtol=10 * tol, atol=10 * tol)


def test_kernel_regression_with_ridge():
    ktt, kte, y, _, _ = _problem(seed=3)
    reg = 0.1
    got = ntkd.kernel_regression(ktt, y, kte, diag_reg=reg)
    lam = reg * np.trace(ktt) / len(ktt)
    want = kte @ np.linalg.solve(ktt + lam * np.eye(len(ktt)), y)
    # entries near 0 get an absolute floor at 1e-12 of the largest (rounding is relative to the sum's terms)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    got_abs = ntkd.kernel_regression(ktt, y, kte, diag_reg=reg, diag_reg_absolute_scale=True)
    want = kte @ np.linalg.solve(ktt + reg * np.eye(len(ktt)), y)
    np.testing.assert_allclose(got_abs, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_singular_kernel_gives_finite_min_norm_output():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 3))
    x = np.vstack([x, x[:2]])  # duplicated inputs: a singular kernel
    kf = ntkd.mlp_kernel_fn(1)
    ktt = np.asarray(kf(x, None, "ntk"))
    assert np.linalg.matrix_rank(ktt) == 5
    xt = rng.normal(size=(3, 3))
    kte = np.asarray(kf(xt, x, "ntk"))
    y = rng.normal(size=(5,))
    y = np.concatenate([y, y[:2]])  # consistent targets
    predict = ntkd.gradient_descent_mse(ktt, y)
    tr, te = predict(None, 0.0, 0.0, kte)
    assert np.isfinite(te).all() and np.isfinite(tr).all()
    np.testing.assert_allclose(te, kte @ np.linalg.pinv(ktt, rcond=1e-12) @ y, rtol=1e-8)
    np.testing.assert_allclose(tr, y, atol=1e-8)
    tr_t, te_t = predict(np.array([0.0, 1.0, 1e6]), 0.0, 0.0, kte)
    assert np.isfinite(te_t).all()
    np.testing.assert_allclose(te_t[-1], te, rtol=1e-6)


def test_zero_eigenvalue_no_nan():
    """A rank-one kernel has exact zero eigenvalues: (1 - e^{-λt})/λ must be t/N there, not NaN."""
    v = np.array([1.0, 2.0, 0.0, -1.0])
    ktt = np.outer(v, v)
    y = np.array([1.0, 2.0, 0.0, -1.0])
    tr, te = ntkd.gradient_descent_mse(ktt, y)(np.array([0.5, 5.0]), 0.0, 0.0, ktt[:2])
    assert np.isfinite(tr).all() and np.isfinite(te).all()
    lam = v @ v
    np.testing.assert_allclose(tr[1], -np.expm1(-lam * 5.0 / 4) * y, rtol=1e-12)


def test_matches_neural_tangents_fixtures():
    """neural-tangents 0.6.5 predictions (float64). Their finite-t test outputs drift from the exact
    SciPy expm / NumPy solve answers by up to ~1e-8 (ntkd is within 4e-15 of them, see
    test_gradient_flow_matches_expm and test_infinite_time_matches_direct_solve), hence rtol 1e-7 for
    the predictions; the GP posterior agrees to 1e-9."""
    z = np.load(DATA)
    kf = ntkd.mlp_kernel_fn(3)
    xtr, xte, y = z["pred_xtr"], z["pred_xte"], z["pred_ytr"]
    ktt, kte = kf(xtr, None, "ntk"), kf(xte, xtr, "ntk")
    for lr, reg in ((1.0, 0.0), (0.7, 1e-2)):
        tag = f"lr{lr}_reg{reg}"
        predict = ntkd.gradient_descent_mse(ktt, y, learning_rate=lr, diag_reg=reg)
        _, te = predict(z["pred_t"], z["pred_f0tr"], z["pred_f0te"], kte)
        np.testing.assert_allclose(te, z[f"pred_{tag}_test"], rtol=1e-7, atol=1e-8)
        tri, tei = predict(None, z["pred_f0tr"], z["pred_f0te"], kte)
        np.testing.assert_allclose(tei, z[f"pred_{tag}_test_inf"], rtol=1e-7, atol=1e-8)
        if reg == 0.0:  # with a ridge, ntkd's train outputs are the model at X (documented difference)
            tr, _ = predict(z["pred_t"], z["pred_f0tr"], z["pred_f0te"], kte)
            np.testing.assert_allclose(tr, z[f"pred_{tag}_train"], rtol=1e-7, atol=1e-8)
            np.testing.assert_allclose(tri, z[f"pred_{tag}_train_inf"], rtol=1e-7, atol=1e-8)
    post = ntkd.gp_inference(kf(xtr, None, "nngp"), y, kf(xte, xtr, "nngp"), kf(xte, None, "nngp"),
                             diag_reg=1e-3)
    np.testing.assert_allclose(post.mean, z["gp_mean"], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(post.covariance, z["gp_cov"], rtol=1e-8, atol=1e-10)


def test_float32_ill_conditioned_kernel_is_refused():
    x = np.random.default_rng(5).normal(size=(20, 2)) * 5
    x = np.vstack([x, x + 1e-3])  # near-duplicate pairs
    k64 = np.asarray(ntkd.mlp_kernel_fn(3)(x, None, "ntk"))
    assert np.linalg.cond(k64) > 1e5
    ktt = k64.astype(np.float32)
    y = np.ones(40, np.float32)
    with pytest.raises(ValueError, match="`k_train_train` is ill-conditioned.*jax_enable_x64.*diag_reg"):
        ntkd.gradient_descent_mse(ktt, y)(None)
    with pytest.raises(ValueError, match="`k_train_train` is ill-conditioned"):
        ntkd.gp_inference(ktt, y, ktt[:3])
    # a well-conditioned float32 kernel passes the guard
    well = np.asarray(ntkd.mlp_kernel_fn(3)(x[:20].astype(np.float32), None, "ntk"))
    assert np.isfinite(ntkd.gradient_descent_mse(well, y[:20])(None)).all()
    out = ntkd.gradient_descent_mse(ktt, y, diag_reg=1e-2)(None)  # the suggested fix works
    assert np.isfinite(out).all()
    assert np.isfinite(ntkd.gradient_descent_mse(ktt, y)(10.0)).all()  # finite t needs no solve


def test_bad_inputs():
    ktt, kte, y, _, _ = _problem()
    with pytest.raises(ValueError, match="`y_train`"):
        ntkd.gradient_descent_mse(ktt, y[:3])
    with pytest.raises(ValueError, match="`k_train_train`"):
        ntkd.gradient_descent_mse(ktt[:3], y)
    bad = ktt.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="`k_train_train`.*NaN"):
        ntkd.gradient_descent_mse(bad, y)
    with pytest.raises(ValueError, match="`k_test_train`"):
        ntkd.gradient_descent_mse(ktt, y)(1.0, 0.0, 0.0, kte[:, :2])
    with pytest.raises(ValueError, match="`t`"):
        ntkd.gradient_descent_mse(ktt, y)(-1.0)
    with pytest.raises(ValueError, match="`learning_rate`"):
        ntkd.gradient_descent_mse(ktt, y, learning_rate=0.0)
    with pytest.raises(ValueError, match="`diag_reg`"):
        ntkd.gradient_descent_mse(ktt, y, diag_reg=-1.0)


def test_gradient_flow_weights_match_expm_pinv_and_differentiate_in_time():
    """α(t) of gradient flow from 0: K(x, X) α(t) is the SciPy expm solution; α(inf) the NumPy pseudo-inverse
    solution (a singular kernel included); jit over t, vmap over times and target columns, d/dt by central
    differences, and a shared eigendecomposition give the same weights."""
    import jax
    import jax.numpy as jnp

    ktt, kte, y, _, _ = _problem(seed=5)
    zeros = np.zeros_like(y)
    for t in (0.5, 7.0, 300.0):
        _, want = _expm_reference(ktt, kte, y, zeros, np.zeros((kte.shape[0], y.shape[1])), t)
        got = kte @ np.asarray(ntkd.gradient_flow_weights(ktt, y, t))
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ntkd.gradient_flow_weights(ktt, y), np.linalg.solve(ktt, y), rtol=1e-8)
    sing = np.block([[ktt, ktt[:, :1]], [ktt[:1], ktt[:1, :1]]])  # a duplicated point: rank n
    ys = np.concatenate([y[:, 0], y[:1, 0]])
    np.testing.assert_allclose(ntkd.gradient_flow_weights(sing, ys, np.inf), np.linalg.pinv(sing) @ ys,
                               rtol=1e-7, atol=1e-9)
    eig = jnp.linalg.eigh(ktt)
    ts = jnp.asarray([0.5, 7.0, 300.0])
    per_t = jax.vmap(lambda s: ntkd.gradient_flow_weights(None, y, s, eig=eig))(ts)
    per_col = jax.vmap(lambda c: ntkd.gradient_flow_weights(ktt, c, 7.0), in_axes=1, out_axes=1)(y)
    jitted = jax.jit(lambda s: ntkd.gradient_flow_weights(ktt, y, s))(7.0)
    np.testing.assert_allclose(per_t[1], jitted, rtol=1e-12)
    for j in range(y.shape[1]):  # a column alone is normalized by its own size n, not y.size
        np.testing.assert_allclose(per_col[:, j], ntkd.gradient_flow_weights(ktt, y[:, j], 7.0), rtol=1e-12)
    # dα/dt = V diag(exp(-λ t / N) / N) Vᵀ y
    g = jax.grad(lambda s: ntkd.gradient_flow_weights(ktt, y, s).sum())(7.0)
    h = 1e-4
    fd = (np.sum(ntkd.gradient_flow_weights(ktt, y, 7.0 + h)) - np.sum(ntkd.gradient_flow_weights(ktt, y, 7.0 - h))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-7)
    with pytest.raises(ValueError, match="y_train"):
        ntkd.gradient_flow_weights(None, y[:3], 1.0, eig=eig)
