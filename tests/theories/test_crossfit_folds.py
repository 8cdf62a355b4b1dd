"""Cross-fitting (Dao, Kamath et al. 2021): fold schemes, the leakage invariant (check C1), exact
leave-fold-out kernel ridge teachers against refitting, and routing of minibatch rows to their
out-of-fold teacher."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkd.theories.crossfit import (crossfit_batch_teacher_logits, crossfit_teacher, fold_ids, fold_sizes,
                                    fold_train_mask, kernel_crossfit, select_out_of_fold)

N, K = 23, 5
NK = 20


@pytest.mark.parametrize("scheme", ["kfold", "perm_mod"])
def test_folds_are_balanced_and_each_index_is_in_K_minus_1_teacher_sets(scheme):
    f = np.asarray(fold_ids(N, K, key=jax.random.PRNGKey(3), scheme=scheme))
    assert f.shape == (N,) and f.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(f, minlength=K), fold_sizes(N, K))
    np.testing.assert_array_equal(fold_sizes(N, K), [5, 5, 5, 4, 4])
    mask = np.asarray(fold_train_mask(f, K))
    np.testing.assert_array_equal(mask.sum(0), np.full(N, K - 1))  # C1, the authors' test_crossfit.py
    assert not mask[f, np.arange(N)].any()  # teacher fold(i) never trains on i


def test_perm_mod_is_the_permutation_mod_K_and_kfold_cuts_the_shuffle():
    key = jax.random.PRNGKey(7)
    perm = np.asarray(jax.random.permutation(key, N))
    np.testing.assert_array_equal(fold_ids(N, K, key=key, scheme="perm_mod"), perm % K)
    block = np.repeat(np.arange(K), fold_sizes(N, K))
    ref = np.empty(N, int)
    ref[perm] = block
    np.testing.assert_array_equal(fold_ids(N, K, key=key), ref)


def test_fold_ids_jit_and_vmap_over_keys_equal_eager():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    batched = jax.jit(jax.vmap(lambda k: fold_ids(N, K, key=k)))(keys)
    for k, row in zip(keys, batched):
        np.testing.assert_array_equal(row, fold_ids(N, K, key=k))


def test_fold_ids_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scheme"):
        fold_ids(N, K, key=jax.random.PRNGKey(0), scheme="random")
    with pytest.raises(ValueError, match="K"):
        fold_ids(3, 5, key=jax.random.PRNGKey(0))


def test_crossfit_teacher_never_predicts_an_example_with_a_teacher_that_saw_it():
    # a "teacher" that remembers the ids it was trained on and predicts 1 for ids it saw
    x = np.arange(N)[:, None].astype(float)
    y = np.zeros(N)
    fit = lambda xs, ys: set(xs[:, 0].astype(int).tolist())  # noqa: E731
    pred = lambda seen, xs: np.array([float(int(v) in seen) for v in xs[:, 0]])  # noqa: E731
    cf = crossfit_teacher(fit, pred, x, y, K=K, key=jax.random.PRNGKey(1), x_test=x)
    np.testing.assert_array_equal(cf.oof, np.zeros(N))  # C1: no leakage
    assert cf.test.shape == (K, N)
    np.testing.assert_array_equal(cf.test.sum(0), np.full(N, K - 1))  # each i in exactly K-1 teachers
    for t, seen in enumerate(cf.teachers):
        assert seen == set(np.flatnonzero(np.asarray(cf.fold) != t).tolist())


def test_crossfit_teacher_with_a_scikit_learn_1nn_matches_refitting_by_hand():
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 2)), rng.integers(0, 2, 40)
    fit = lambda a, b: KNeighborsClassifier(1).fit(a, b)  # noqa: E731
    cf = crossfit_teacher(fit, lambda m, a: m.predict_proba(a), x, y, K=4, key=jax.random.PRNGKey(2))
    ins = fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(ins.argmax(1), y)  # in-sample 1-NN memorises the labels
    for i in range(40):
        out = np.asarray(cf.fold) != cf.fold[i]
        nn = np.flatnonzero(out)[np.argmin(((x[out] - x[i]) ** 2).sum(1))]
        assert cf.oof[i].argmax() == y[nn]


def test_crossfit_teacher_rejects_bad_folds():
    x = np.zeros((6, 1))
    with pytest.raises(ValueError, match="fold"):
        crossfit_teacher(lambda a, b: 0, lambda m, a: a, x, x, K=2, fold=np.array([0, 1, 2, 0, 1, 0]))
    with pytest.raises(ValueError, match="key"):
        crossfit_teacher(lambda a, b: 0, lambda m, a: a, x, x, K=2)


@pytest.fixture(scope="module")
def kernel_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(NK, 3))  # NK = 20: equal folds, so every refit has one shape (one compilation)
    xt = rng.normal(size=(7, 3))
    kfn = lambda a, b=None, get=None: np.exp(-0.5 * ((a[:, None] - (a if b is None else b)[None]) ** 2).sum(-1))  # noqa: E731
    y = np.eye(3)[rng.integers(0, 3, NK)]
    return (np.asarray(kfn(x, get="ntk")), np.asarray(kfn(xt, x, get="ntk")), y,
            np.asarray(fold_ids(NK, K, key=jax.random.PRNGKey(5))))


@pytest.mark.parametrize("ridge", [1e-3, 0.5])
def test_kernel_crossfit_equals_refitting_each_fold(kernel_data, ridge):
    k, kt, y, fold = kernel_data
    cf = kernel_crossfit(k, y, fold, K=K, ridge=ridge, k_test_train=kt)
    for t in range(K):
        tr, te = fold != t, fold == t
        # refit on the other folds (float64 NumPy solve, the same absolute ridge)
        a = np.linalg.solve(k[np.ix_(tr, tr)] + ridge * np.eye(tr.sum()), y[tr])
        ref = np.einsum("mn,nc->mc", np.concatenate([k[np.ix_(te, tr)], kt[:, tr]]), a)
        np.testing.assert_allclose(cf.oof[te], ref[:te.sum()], rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(cf.test[t], ref[te.sum():], rtol=1e-8, atol=1e-9)
        np.testing.assert_array_equal(cf.weights[t][te], 0.0)
    full = np.einsum("mn,nc->mc", k, np.linalg.solve(k + ridge * np.eye(NK), y))
    np.testing.assert_allclose(cf.full, full, rtol=1e-8, atol=1e-9)


def test_kernel_crossfit_jit_vmap_grad(kernel_data):
    k, _, y, _ = kernel_data
    fold = np.asarray(fold_ids(NK, 2, key=jax.random.PRNGKey(6)))  # K = 2: a small program to compile
    f = lambda yy: kernel_crossfit(k, yy, fold, K=2, ridge=0.1).oof  # noqa: E731
    eager = f(y[:, 0])
    np.testing.assert_allclose(jax.jit(lambda yy: kernel_crossfit(k, yy, jnp.asarray(fold), K=2, ridge=0.1).oof)(
        y[:, 0]), eager, rtol=1e-10)
    np.testing.assert_allclose(jax.vmap(f, in_axes=1, out_axes=1)(y), f(y), rtol=1e-10)
    # d/dk of the out-of-fold sum (the kernel is the differentiable input), against central differences
    dk = np.random.default_rng(2).normal(size=k.shape)
    dk = dk + dk.T
    g = lambda kk: jnp.sum(kernel_crossfit(kk, y[:, 0], fold, K=2, ridge=0.1).oof ** 2)  # noqa: E731
    num = (g(k + 1e-6 * dk) - g(k - 1e-6 * dk)) / 2e-6
    np.testing.assert_allclose(jnp.vdot(jax.grad(g)(jnp.asarray(k)), dk), num, rtol=1e-6)


def test_kernel_crossfit_keeps_float32_and_rejects_unbalanced_folds(kernel_data):
    k, _, y, _ = kernel_data
    fold = np.asarray(fold_ids(NK, 2, key=jax.random.PRNGKey(6)))
    out = kernel_crossfit(k.astype(np.float32), y[:, 0].astype(np.float32), fold, K=2, ridge=0.1)
    assert out.oof.dtype == jnp.float32
    np.testing.assert_allclose(out.oof, kernel_crossfit(k, y[:, 0], fold, K=2, ridge=0.1).oof, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="balanced"):
        kernel_crossfit(k, y, np.zeros(NK, int), K=K, ridge=0.1)


def test_batch_rows_are_routed_to_their_out_of_fold_teacher():
    rng = np.random.default_rng(3)
    Ws = rng.normal(size=(K, 2, 3))  # K linear teachers, d = 2, k = 3
    apply = lambda W, xb: jnp.einsum("bd,dk->bk", xb, W, precision="highest")  # noqa: E731
    fold = np.asarray(fold_ids(N, K, key=jax.random.PRNGKey(4), scheme="perm_mod"))
    x = rng.normal(size=(N, 2))
    idx = np.array([3, 17, 0, 9, 22, 5])
    z = jax.jit(crossfit_batch_teacher_logits, static_argnums=0)(apply, Ws, x[idx], idx, fold)
    ref = np.stack([x[i] @ Ws[fold[i]] for i in idx])
    np.testing.assert_allclose(z, ref, rtol=1e-12)
    table = np.einsum("nd,tdk->tnk", x, Ws)
    np.testing.assert_allclose(select_out_of_fold(table[:, idx], fold[idx]), ref, rtol=1e-12)
