"""train_classifier: the multi-class trainer against plain NumPy gradient descent on softmax regression."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkd.finite.classifier import softmax_cross_entropy, train_classifier

N, D, K = 24, 3, 4


def linear(p, x):
    return jnp.matmul(x, p["W"], precision="highest") + p["b"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    q = rng.dirichlet(np.ones(K), size=N)
    p0 = {"W": 0.1 * rng.normal(size=(D, K)), "b": np.zeros(K)}
    return x, q, p0


def numpy_gd(x, q, p0, lr, steps):
    W, b = p0["W"].copy(), p0["b"].copy()
    for _ in range(steps):
        z = np.einsum("nd,dk->nk", x, W) + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - q) / len(x)  # d mean CE / dz
        W -= lr * np.einsum("nd,nk->dk", x, g)
        b -= lr * g.sum(0)
    z = np.einsum("nd,dk->nk", x, W) + b
    loss = np.mean(-(q * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1))
    return W, b, loss


def test_full_batch_sgd_matches_numpy_gradient_descent(data):
    x, q, p0 = data
    params, log = train_classifier(linear, p0, x, q, steps=30, key=jax.random.PRNGKey(0),
                                   optimizer=optax.sgd(0.5), log_steps=[0, 10])
    W, b, loss = numpy_gd(x, q, p0, 0.5, 30)
    np.testing.assert_allclose(params["W"], W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params["b"], b, rtol=1e-10, atol=1e-12)
    assert list(log.steps) == [0, 10, 30]
    np.testing.assert_allclose(log.loss[-1], loss, rtol=1e-12)
    np.testing.assert_allclose(log.loss[0], numpy_gd(x, q, p0, 0.5, 0)[2], rtol=1e-12)


def test_integer_labels_are_one_hot_rows_and_runs_match_single_runs(data):
    x, q, p0 = data
    y = np.argmax(q, 1)
    z = np.random.default_rng(1).normal(size=(5, K))
    np.testing.assert_allclose(softmax_cross_entropy(z, y[:5]), softmax_cross_entropy(z, np.eye(K)[y[:5]]),
                               rtol=1e-14)
    key = jax.random.PRNGKey(3)
    two = jax.tree_util.tree_map(lambda a: np.stack([a, 2 * a]), p0)
    targets = np.stack([np.eye(K)[y], q])
    pb, lb = train_classifier(linear, two, x, targets, steps=12, key=key, batch_size=8, runs=2,
                              targets_per_run=True, optimizer=optax.sgd(0.3), x_test=x[:5])
    for r, t in enumerate([y, q]):
        p1, l1 = train_classifier(linear, jax.tree_util.tree_map(lambda a, r=r: a[r], two), x, t, steps=12, key=key,
                                  batch_size=8, optimizer=optax.sgd(0.3), x_test=x[:5])
        np.testing.assert_allclose(pb["W"][r], p1["W"], rtol=1e-12)
        np.testing.assert_allclose(lb.loss[r], l1.loss, rtol=1e-12)
        np.testing.assert_allclose(lb.test_logits[r], l1.test_logits, rtol=1e-12)
        np.testing.assert_allclose(l1.test_logits, linear(p1, x[:5]), rtol=1e-12)


def test_a_custom_loss_receives_the_minibatch_rows_of_a_target_pytree(data):
    x, q, p0 = data
    w = np.linspace(0.0, 2.0, N)

    def weighted(logits, t):
        return t["w"] * softmax_cross_entropy(logits, t["q"])

    p_w, _ = train_classifier(linear, p0, x, {"q": q, "w": w}, loss_fn=weighted, steps=20,
                              key=jax.random.PRNGKey(0), optimizer=optax.sgd(0.5))
    # the weighted objective's gradient step by hand: d/dz of mean(w_i CE_i)
    W, b = p0["W"].copy(), p0["b"].copy()
    for _ in range(20):
        z = np.einsum("nd,dk->nk", x, W) + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = w[:, None] * (p - q) / N
        W -= 0.5 * np.einsum("nd,nk->dk", x, g)
        b -= 0.5 * g.sum(0)
    np.testing.assert_allclose(p_w["W"], W, rtol=1e-10, atol=1e-12)


def test_float32_parameters_train_in_float32_and_bad_input_is_refused(data):
    x, q, p0 = data
    p32 = jax.tree_util.tree_map(lambda a: a.astype(np.float32), p0)
    p, _ = train_classifier(linear, p32, x, q, steps=3, key=jax.random.PRNGKey(0), optimizer=optax.sgd(0.1))
    assert p["W"].dtype == np.float32
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="leading axes"):
        train_classifier(linear, p0, x, q[:-1], steps=1, key=key)
    with pytest.raises(ValueError, match="batch_size"):
        train_classifier(linear, p0, x, q, steps=1, key=key, batch_size=N + 1)
    with pytest.raises(ValueError, match="targets"):
        train_classifier(linear, p0, x, np.full_like(q, np.nan), steps=1, key=key)
    with pytest.raises(FloatingPointError, match="learning rate"):
        train_classifier(linear, p0, x, q, steps=200, key=key, optimizer=optax.sgd(1e3),
                         loss_fn=lambda z, t: jnp.sum(z ** 2, -1))
