"""Retrieval pieces of Menon et al. (2020) §2.2 (ntkd.theories.bias_variance.retrieval): the sampled-softmax
loss against a float64 NumPy reference and the full softmax CE, the logQ correction's unbiasedness (Monte Carlo),
mined/sampled negatives, teacher positives, precision/recall@k, validation and NaN under tracing,
jit/vmap/grad."""
import jax
import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp, softmax

from ntkd.theories import bias_variance as bv

RNG = np.random.default_rng(3)
B, K, P, M = 4, 12, 3, 6
Z = RNG.normal(0, 2, (B, K))
POS = np.array([[0, 5, 5], [1, 2, 3], [11, 0, 7], [4, 4, 4]])  # repeated labels allowed
W = np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.4, 0.0], [0.2, 0.3, 0.5]])
NEG = np.array([[5, 5, 1, 2, 0, 9], [3, 4, 6, 6, 8, 10], [7, 11, 2, 2, 3, 1], [4, 0, 1, 4, 9, 10]])  # hits
LQ = RNG.normal(0, 1, (B, M))


def ref_loss(z, pos, w, neg, lq):
    """The documented objective, written as loops in float64."""
    out = np.zeros(z.shape[0])
    for b in range(z.shape[0]):
        for j in range(pos.shape[1]):
            y = pos[b, j]
            terms = [z[b, y]] + [z[b, neg[b, i]] - lq[b, i] for i in range(neg.shape[1]) if neg[b, i] != y]
            out[b] += w[b, j] * (-z[b, y] + logsumexp(terms))
    return out


def tol(dtype):
    return 3e-5 if dtype == np.float32 else 1e-12


def test_sampled_softmax_matches_numpy(dtype):
    got = bv.sampled_softmax_loss(Z.astype(dtype), POS, W.astype(dtype), NEG, log_q=LQ.astype(dtype))
    assert got.dtype == dtype and got.shape == (B,)
    np.testing.assert_allclose(got, ref_loss(Z, POS, W, NEG, LQ), rtol=tol(dtype), atol=tol(dtype))
    nocorr = bv.sampled_softmax_loss(Z.astype(dtype), POS, W.astype(dtype), NEG)
    np.testing.assert_allclose(nocorr, ref_loss(Z, POS, W, NEG, 0 * LQ), rtol=tol(dtype), atol=tol(dtype))


def test_all_classes_as_negatives_is_full_softmax_ce(dtype):
    allneg = np.broadcast_to(np.arange(K), (B, K))
    got = bv.sampled_softmax_loss(Z.astype(dtype), POS, W.astype(dtype), allneg)
    full = -(W * np.take_along_axis(log_softmax(Z, axis=1), POS, axis=1)).sum(1)
    np.testing.assert_allclose(got, full, rtol=tol(dtype), atol=tol(dtype))


def test_jit_vmap_grad():
    f = lambda z, lq: bv.sampled_softmax_loss(z, POS, W, NEG, log_q=lq)
    eager = f(Z, LQ)
    np.testing.assert_allclose(jax.jit(f)(Z, LQ), eager, rtol=1e-13)
    # vmap over an extra leading axis = a loop
    Z2, LQ2 = np.stack([Z, Z[::-1]]), np.stack([LQ, -LQ])
    vm = jax.vmap(lambda z, lq, p, n: bv.sampled_softmax_loss(z, p, W, n, log_q=lq))(
        Z2, LQ2, np.stack([POS, POS]), np.stack([NEG, NEG]))
    np.testing.assert_allclose(vm, np.stack([f(Z2[i], LQ2[i]) for i in range(2)]), rtol=1e-13)
    # grad against float64 central differences of the NumPy reference
    gz, glq = jax.grad(lambda z, lq: f(z, lq).sum(), argnums=(0, 1))(Z, LQ)
    h = 1e-6
    for arr, g, which in ((Z, gz, 0), (LQ, glq, 1)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            e = np.zeros_like(arr)
            e[idx] = h
            args_p = (Z + e, LQ) if which == 0 else (Z, LQ + e)
            args_m = (Z - e, LQ) if which == 0 else (Z, LQ - e)
            num[idx] = (ref_loss(args_p[0], POS, W, NEG, args_p[1]).sum()
                        - ref_loss(args_m[0], POS, W, NEG, args_m[1]).sum()) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_every_negative_a_hit_has_finite_gradient():
    z = np.array([[1.0, 2.0, 3.0]])
    g = jax.grad(lambda z: bv.sampled_softmax_loss(z, [[2]], [[1.0]], [[2, 2]]).sum())(z)
    assert float(bv.sampled_softmax_loss(z, [[2]], [[1.0]], [[2, 2]])[0]) == 0.0  # log(e^f / e^f)
    np.testing.assert_array_equal(g, 0.0)


def test_validation_and_nan_under_jit():
    with pytest.raises(ValueError, match="pos_idx"):
        bv.sampled_softmax_loss(Z, POS + 12, W, NEG)
    with pytest.raises(ValueError, match="neg_idx"):
        bv.sampled_softmax_loss(Z, POS, W, NEG.astype(float))
    with pytest.raises(ValueError, match="pos_weights"):
        bv.sampled_softmax_loss(Z, POS, 2 * W, NEG)
    with pytest.raises(ValueError, match="log_q"):
        bv.sampled_softmax_loss(Z, POS, W, NEG, log_q=LQ[:, :2])
    with pytest.raises(ValueError, match="m"):
        bv.teacher_hard_negatives(Z, K - P + 1, exclude=POS)
    bad = POS.copy()
    bad[1, 0] = K
    out = jax.jit(lambda p, w: bv.sampled_softmax_loss(Z, p, w, NEG))(bad, W)
    assert np.isnan(out[1]) and np.isfinite(np.delete(np.asarray(out), 1)).all()
    badw = W.copy()
    badw[2] *= 3
    out = jax.jit(lambda p, w: bv.sampled_softmax_loss(Z, p, w, NEG))(POS, badw)
    assert np.isnan(out[2]) and np.isfinite(out[0])
    assert np.isnan(jax.jit(lambda r: bv.precision_at_k(Z, r, 3))(bad)[1])


def test_hard_negatives_and_teacher_positives():
    pt = softmax(Z, axis=1)
    neg = np.asarray(bv.teacher_hard_negatives(pt, 4, exclude=POS))
    for b in range(B):
        order = [k for k in np.argsort(-pt[b], kind="stable") if k not in POS[b]]
        assert neg[b].tolist() == order[:4]
    pi, pw = bv.teacher_positives(pt, P)
    top = np.argsort(-pt, axis=1)[:, :P]
    np.testing.assert_array_equal(pi, top)
    ref_w = np.take_along_axis(pt, top, 1) / np.take_along_axis(pt, top, 1).sum(1, keepdims=True)
    np.testing.assert_allclose(pw, ref_w, rtol=1e-12)
    # double distillation = the sampled softmax with the teacher's top-P positives and its next 4 labels
    dd = bv.double_distillation_loss(Z, pt, num_pos=P, num_neg=4)
    nxt = np.argsort(-pt, axis=1)[:, P:P + 4]
    np.testing.assert_allclose(dd, ref_loss(Z, top, ref_w, nxt, np.zeros((B, 4))), rtol=1e-12)


@pytest.mark.parametrize("mix", [0.0, 0.5])
def test_logq_correction_is_unbiased(mix):
    # E[Σ_i exp(f_{n_i} - log(m q_{n_i}))] = Σ_{y not excluded} exp(f_y), for uniform and teacher proposals
    pt = softmax(RNG.normal(0, 1.5, (B, K)), axis=1)
    target = np.array([np.exp(Z[b][[k for k in range(K) if k not in POS[b]]]).sum() for b in range(B)])
    reps = 4000
    keys = jax.random.split(jax.random.PRNGKey(0), reps)
    for draw, tgt in ((lambda k: bv.teacher_sampled_negatives(k, pt, M, exclude=POS, uniform_mix=mix), target),
                      (lambda k: bv.uniform_negatives(k, K, M, (B,)), np.exp(Z).sum(1))):
        idx, lq = jax.vmap(draw)(keys)
        est = np.exp(np.take_along_axis(np.broadcast_to(Z, (reps, B, K)), np.asarray(idx), 2) - np.asarray(lq)).sum(2)
        if tgt is target:  # the positives are never drawn
            assert not (np.asarray(idx)[:, :, :, None] == POS[None, :, None, :]).any()
        se = est.std(0, ddof=1) / np.sqrt(reps)
        assert np.all(np.abs(est.mean(0) - tgt) < 4 * se + 1e-12), (est.mean(0), tgt, se)


def test_precision_recall_oracle_match_numpy():
    k = 3
    prec, rec = bv.precision_at_k(Z, POS, k), bv.recall_at_k(Z, POS, k)
    top = np.argsort(-Z, axis=1, kind="stable")[:, :k]
    for b in range(B):
        rel = set(POS[b].tolist())
        assert float(prec[b]) == pytest.approx(len(rel & set(top[b])) / k)
        assert float(rec[b]) == pytest.approx(len(rel & set(top[b])) / len(rel))
    ps = softmax(RNG.normal(0, 1, (B, K)), axis=1)
    orc = bv.oracle_precision_at_k(Z, ps, k)
    best = np.argsort(-ps, axis=1, kind="stable")[:, :k]
    np.testing.assert_allclose(orc, [len(set(top[b]) & set(best[b])) / k for b in range(B)])
    np.testing.assert_array_equal(bv.oracle_precision_at_k(ps, ps, k), 1.0)


def test_retrieval_task_positives_follow_p_star():
    task = bv.retrieval_task(jax.random.PRNGKey(0), 200, 8, tau0=2.0, dtype=np.float32)
    assert task.W.dtype == np.float32
    x, pos = bv.sample_positives(task, jax.random.PRNGKey(1), 4000, 2)
    assert pos.shape == (4000, 2) and x.shape == (4000, 8)
    p = np.asarray(bv.bayes_probs(task, x), np.float64)
    # frequency of a positive being p*'s argmax = E max p* (Monte Carlo, 4 s.e.)
    hit = (np.asarray(pos) == p.argmax(1)[:, None]).astype(float)
    pmax = p.max(1)
    diff = hit.mean(1) - pmax
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(diff))


def test_float32_probabilities_with_a_float64_loss_matrix():
    # float32 rows sum to 1 only to ~1e-7: cast to the loss matrix's float64 they must stay valid (not NaN)
    p32 = softmax(Z[:, :4], axis=1).astype(np.float32)
    ell = -log_softmax(Z[:, 4:8], axis=1)
    ref = (p32.astype(np.float64) * ell).sum(1).mean()
    np.testing.assert_allclose(bv.distilled_risk(ell, p32), ref, rtol=1e-12)
    np.testing.assert_allclose(bv.distilled_risk(ell, p32.astype(np.float64)), ref, rtol=1e-12)
