"""Teachers, students, metrics and bounds of the sampler theory against float64 NumPy/SciPy/scikit-learn
references: exact k-NN, the arc-cosine NTK of brief App. A, kernel machines (ridge, interpolation,
gradient flow at t), ensembles, threshold ERM, softmax regression (implicit gradient vs central
differences), the sampler metrics and the ensemble-vote tail; jit = eager, vmap = loop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy import stats

from ntkd.theories import samplers as S

RNG = np.random.default_rng(0)
XTR = RNG.uniform(size=(60, 2))
YTR = (RNG.uniform(size=60) < 0.5).astype(np.int32) + (XTR[:, 0] > 0.5)  # 3 classes
XQ = RNG.uniform(size=(45, 2))


def test_nearest_neighbors_match_brute_force_in_blocks():
    d2 = ((XQ[:, None] - XTR[None]) ** 2).sum(-1)
    ref = np.argsort(d2, axis=1, kind="stable")[:, :5]
    idx, dist = S.nearest_neighbors(XTR, XQ, k=5, block=16)  # 45 rows -> 3 padded blocks
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(dist, np.take_along_axis(d2, ref, 1), atol=1e-12)
    votes = S.knn_votes(XTR, YTR, XQ, k=5, num_classes=3, block=16)
    np.testing.assert_allclose(votes, np.stack([(YTR[ref] == c).mean(1) for c in range(3)], 1))
    np.testing.assert_array_equal(S.hard_labels(S.knn_votes(XTR, YTR, XQ, num_classes=3)), YTR[ref[:, 0]])
    # a 1-NN teacher interpolates its training set
    np.testing.assert_array_equal(S.hard_labels(S.knn_votes(XTR, YTR, XTR, num_classes=3)), YTR)
    # vmap over label sets (R teachers on one sample of inputs) = loop; jit = eager
    ys = jnp.asarray(RNG.integers(0, 3, size=(4, 60)))
    batched = jax.vmap(lambda y: S.knn_votes(XTR, y, XQ, k=3, num_classes=3, block=16))(ys)
    np.testing.assert_allclose(batched, [S.knn_votes(XTR, y, XQ, k=3, num_classes=3, block=16) for y in ys])
    np.testing.assert_allclose(jax.jit(lambda a: S.knn_votes(a, YTR, XQ, k=3, num_classes=3))(XTR),
                               S.knn_votes(XTR, YTR, XQ, k=3, num_classes=3))
    with pytest.raises(ValueError, match="`k`"):
        S.nearest_neighbors(XTR, XQ, k=61)
    with pytest.raises(ValueError, match="`x`"):
        S.nearest_neighbors(XTR, XQ[:, :1])


def _arccos_ntk(z1, z2, depth):
    s = np.clip(z1 @ z2.T, -1, 1)
    ntk, sig = s.copy(), s.copy()
    for _ in range(depth):
        th = np.arccos(np.clip(sig, -1, 1))
        dot = (np.pi - th) / np.pi
        sig = (np.sin(th) + (np.pi - th) * np.cos(th)) / np.pi
        ntk = ntk * dot + sig
    return sig, ntk


def test_relu_kernel_is_the_brief_arccos_recursion():
    emb = lambda x: np.c_[x - 0.5, np.full(len(x), 0.5)] / np.linalg.norm(np.c_[x - 0.5, np.full(len(x), 0.5)], axis=1, keepdims=True)
    nngp, ntk = _arccos_ntk(emb(XQ), emb(XTR), 2)
    np.testing.assert_allclose(S.relu_kernel(2, center=0.5, offset=0.5)(XQ, XTR), ntk, rtol=1e-9)
    np.testing.assert_allclose(S.relu_kernel(2, get="nngp", center=0.5, offset=0.5)(XQ, XTR), nngp, rtol=1e-9)


def test_kernel_machine_ridge_interpolation_and_flow():
    kf = S.laplace_kernel(0.3)
    K = np.exp(-np.sqrt(((XTR[:, None] - XTR[None]) ** 2).sum(-1)) / 0.3)
    Kq = np.exp(-np.sqrt(((XQ[:, None] - XTR[None]) ** 2).sum(-1)) / 0.3)
    Y = np.eye(3)[YTR]
    ridge = S.fit_kernel_machine(kf, XTR, YTR, num_classes=3, ridge=0.1)
    np.testing.assert_allclose(S.kernel_machine_scores(kf, ridge, XQ), Kq @ np.linalg.solve(K + 0.1 * np.eye(60), Y),
                               rtol=1e-8)
    interp = S.fit_kernel_machine(kf, XTR, YTR, num_classes=3)
    np.testing.assert_allclose(S.kernel_machine_scores(kf, interp, XTR), Y, atol=1e-7)
    t = 7.0  # rate Θ/m: f_t = K(x,X) K⁻¹ (I - exp(-t K/m)) Y
    ref = Kq @ np.linalg.solve(K, (np.eye(60) - scipy.linalg.expm(-t * K / 60)) @ Y)
    flow = S.fit_kernel_machine(kf, XTR, Y, t=t)
    np.testing.assert_allclose(S.kernel_machine_scores(kf, flow, XQ, block=16), ref, rtol=1e-8, atol=1e-10)
    # jit = eager, vmap over t = loop, grad in t and in the bandwidth = central differences
    def score(t, sigma):
        k = S.laplace_kernel(sigma)
        return S.kernel_machine_scores(k, S.fit_kernel_machine(k, XTR, Y, t=t), XQ)[:, 1].sum()
    ts = jnp.array([1.0, 7.0, 50.0])
    loop = [float(score(v, 0.3)) for v in ts]
    np.testing.assert_allclose(jax.jit(jax.vmap(score, (0, None)))(ts, 0.3), loop, rtol=1e-10)
    for i, arg in enumerate((7.0, 0.3)):
        h = 1e-5
        up = [7.0, 0.3]
        dn = [7.0, 0.3]
        up[i] += h
        dn[i] -= h
        fd = (score(*up) - score(*dn)) / (2 * h)
        assert float(jax.grad(score, argnums=i)(7.0, 0.3)) == pytest.approx(float(fd), rel=1e-5)
    with pytest.raises(ValueError, match="`ridge`"):
        S.fit_kernel_machine(kf, XTR, Y, ridge=-1.0)
    with pytest.raises(ValueError, match="`sigma`"):
        S.gaussian_kernel(0.0)
    with pytest.raises(ValueError, match="num_classes"):
        S.fit_kernel_machine(kf, XTR, YTR)


def test_ensembles():
    labels = jnp.array([[0, 1, 2, 2], [0, 2, 2, 1], [1, 2, 0, 0]])
    np.testing.assert_array_equal(S.ensemble_vote(labels, 3), [0, 2, 2, 0])  # 3-way tie -> lowest class
    scores = jnp.asarray(RNG.normal(size=(4, 10, 3)))
    np.testing.assert_array_equal(S.ensemble_sum_logits(scores), np.asarray(scores).sum(0).argmax(1))
    many = jnp.asarray(RNG.integers(0, 3, size=(5, 1000)))
    ex = S.random_teacher_labels(jax.random.PRNGKey(1), jnp.tile(jnp.arange(5)[:, None], (1, 1000)))
    assert abs(np.mean(np.asarray(ex) == 0) - 0.2) < 4 * np.sqrt(0.16 / 1000)
    by = S.random_teacher_labels(jax.random.PRNGKey(2), many, per="batch", batch_size=100)
    src = np.stack([np.asarray(many)[:, i] == np.asarray(by)[i] for i in range(1000)], 1)
    for b in range(10):  # one teacher explains a whole batch
        assert src[:, b * 100:(b + 1) * 100].all(1).any()


def test_erm_threshold_is_the_brute_force_minimiser():
    x = RNG.uniform(size=200)
    q = np.where(x > 0.4, 0.85, 0.1) + RNG.uniform(-0.05, 0.05, 200)
    cands = np.r_[-np.inf, (np.sort(x)[1:] + np.sort(x)[:-1]) / 2, np.inf]
    losses = [np.mean(np.where(x > c, 1 - q, q)) for c in cands]
    fit = jax.jit(S.erm_threshold_1d)(jnp.asarray(x), jnp.asarray(q))
    assert float(fit.risk) == pytest.approx(min(losses), abs=1e-12)
    assert float(fit.tau) == pytest.approx(cands[int(np.argmin(losses))], abs=1e-12)
    hard = (q > 0.5).astype(float)
    assert float(S.erm_threshold_1d(x, hard).risk) == pytest.approx(np.min([np.mean(np.where(x > c, 1 - hard, hard)) for c in cands]))
    with pytest.raises(ValueError, match="`q`"):
        S.erm_threshold_1d(x, q + 1)


def test_softmax_regression_matches_sklearn_and_implicit_gradient():
    from sklearn.linear_model import LogisticRegression

    phi = S.affine_features(jnp.asarray(XTR))
    l2 = 0.01
    w = S.softmax_regression(phi, jnp.asarray(YTR), l2=l2, iters=300, num_classes=3)
    grad_norm = np.abs(np.asarray(jax.grad(S.softmax_objective)(w, phi, jax.nn.one_hot(YTR, 3), l2))).max()
    assert grad_norm < 1e-9
    # sklearn: C = 1/(n l2), its intercept unpenalised -> compare with the penalty on the weights only
    sk = LogisticRegression(C=1 / (60 * l2), fit_intercept=False, tol=1e-12, max_iter=10000).fit(np.asarray(phi), YTR)
    np.testing.assert_allclose(np.asarray(w).T, sk.coef_ - sk.coef_.mean(0), atol=1e-5)
    # implicit derivative in the soft targets and in l2 vs central differences of the converged solve
    q0 = jnp.asarray(np.eye(3)[YTR] * 0.8 + 0.2 / 3)
    probe = jnp.asarray(RNG.normal(size=(3, 3)))
    f = lambda q, lam: jnp.sum(probe * S.softmax_regression(phi, q, l2=lam, iters=300))
    gq, gl = jax.grad(f, argnums=(0, 1))(q0, l2)
    dq = jnp.asarray(RNG.normal(size=q0.shape))
    h = 1e-5
    assert float(jnp.sum(gq * dq)) == pytest.approx(float((f(q0 + h * dq, l2) - f(q0 - h * dq, l2)) / (2 * h)), rel=1e-5)
    assert float(gl) == pytest.approx(float((f(q0, l2 + h) - f(q0, l2 - h)) / (2 * h)), rel=1e-5)
    # vmap over l2 = loop
    lams = jnp.array([0.01, 0.1])
    np.testing.assert_allclose(jax.vmap(lambda lam: f(q0, lam))(lams), [float(f(q0, v)) for v in lams], rtol=1e-10)
    with pytest.raises(ValueError, match="`l2`"):
        S.softmax_regression(phi, jnp.asarray(YTR), l2=0.0, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        S.softmax_regression(phi, jnp.asarray(YTR))


def test_metrics_against_numpy():
    p = RNG.dirichlet(np.ones(3), size=500)
    pred = RNG.integers(0, 3, 500)
    assert float(S.risk(jnp.asarray(pred), jnp.asarray(p))) == pytest.approx(np.mean(1 - p[np.arange(500), pred]))
    # an exact sampler (label law = p) has risk E[1 - Σp²] and replication ratio 1; Bayes has ratio 0
    assert float(S.risk(jnp.asarray(p), jnp.asarray(p))) == pytest.approx(np.mean(1 - (p**2).sum(1)))
    assert float(S.noise_replication_ratio(jnp.asarray(p), jnp.asarray(p))) == pytest.approx(1.0)
    assert float(S.noise_replication_ratio(jnp.asarray(p.argmax(1)), jnp.asarray(p))) == 0.0
    fam = RNG.integers(0, 3, (7, 500))
    shift = np.array([np.mean(p[np.arange(500), h] - (pred == h)) for h in fam])
    np.testing.assert_allclose(S.loss_shift(jnp.asarray(pred), jnp.asarray(p), jnp.asarray(fam)), shift)
    assert float(S.sampler_gap(jnp.asarray(pred), jnp.asarray(p), jnp.asarray(fam))) == pytest.approx(np.abs(shift).max())
    freq = S.label_frequencies(jnp.asarray(RNG.integers(0, 3, (4, 500))), 3)
    assert float(S.pointwise_sampler_gap(freq, jnp.asarray(p))) == pytest.approx(
        np.mean(0.5 * np.abs(np.asarray(freq) - p).sum(1)))
    mp, fq, cnt = S.feature_calibration(jnp.asarray(p), jnp.asarray(p), bins=5)  # a sampler is calibrated
    np.testing.assert_allclose(mp, fq)
    assert float(cnt.sum()) == 1500
    # jit = eager, vmap over predictions = loop
    preds = jnp.asarray(RNG.integers(0, 3, (3, 500)))
    np.testing.assert_allclose(jax.jit(jax.vmap(S.risk, (0, None)))(preds, jnp.asarray(p)),
                               [float(S.risk(q, jnp.asarray(p))) for q in preds], rtol=1e-12)
    # risk is differentiable in a predicted distribution: d/dq mean(1 - Σ q p) = -p/n
    np.testing.assert_allclose(jax.grad(S.risk)(jnp.asarray(p), jnp.asarray(p)), -p / 500)


def test_ensemble_vote_tail_and_bounds():
    a = jnp.array([0.1, 0.2, 0.3, 0.45])
    for K in (1, 5, 15):
        exact = stats.binom.sf(K // 2, K, np.asarray(a))
        np.testing.assert_allclose(S.ensemble_vote_error(a, K), exact, rtol=1e-10)
        assert np.all(np.asarray(S.ensemble_vote_hoeffding(a, K)) >= exact)
    g = jax.grad(lambda v: S.ensemble_vote_error(v, 5))(0.2)
    assert float(g) == pytest.approx((stats.binom.sf(2, 5, 0.2 + 1e-6) - stats.binom.sf(2, 5, 0.2 - 1e-6)) / 2e-6, rel=1e-6)
    assert float(S.one_nn_sampler_bound(1.5, 2, 2000)) == pytest.approx(4 * 1.5 * np.sqrt(2) * 2000 ** (-1 / 3))
    assert float(S.student_bound(0.01, 3, 10_000, 0.05)) == pytest.approx(0.02 + 2 * np.sqrt((3 + np.log(20)) / 1e4))
    eta = jnp.array([0.2, 0.8, 0.5])
    np.testing.assert_allclose(S.ensemble_excess_bound(eta, 9), np.abs(1 - 2 * eta) * np.exp(-9 * (1 - 2 * eta) ** 2 / 2))
