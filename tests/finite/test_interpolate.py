"""ntkd.finite.interpolate.train_to_interpolation: trains until zero train error (or the cap, reported),
freezes runs that are done, equals one continuous train_classifier run for a stateless optimizer, and its
predict is a JAX function (jit, exact gradients)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkd.finite import mlp, softmax_cross_entropy
from ntkd.finite.interpolate import train_to_interpolation

M = 16
INIT, APPLY = mlp(2, 32, 2, out_dim=2, dtype=jnp.float64)
INIT_J, APPLY_J = jax.jit(INIT), jax.jit(APPLY)  # eager nnx construction and merging cost seconds each
X = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (M, 2)), np.float64)
Y = np.asarray(jax.random.randint(jax.random.PRNGKey(1), (M,), 0, 2))  # random labels: pure noise


def _acc(params, y):
    return float(np.mean(np.asarray(APPLY_J(params, X)).argmax(1) == y))


def test_runs_interpolate_and_a_done_run_is_frozen():
    p0 = jax.jit(jax.vmap(INIT))(jax.random.split(jax.random.PRNGKey(2), 2))
    y_init = np.asarray(APPLY_J(jax.tree_util.tree_map(lambda a: a[0], p0), X)).argmax(1)  # fitted at step 0
    ys = np.stack([y_init, Y])
    res = train_to_interpolation(APPLY, p0, X, ys, key=jax.random.PRNGKey(3), max_steps=2000, check_every=200,
                                 optimizer=optax.adam(3e-2), runs=2, labels_per_run=True)
    assert res.interpolated.tolist() == [True, True]
    assert res.steps[0] == 0 and res.steps[1] > 0 and res.steps[1] % 200 == 0
    for leaf, leaf0 in zip(jax.tree_util.tree_leaves(res.params), jax.tree_util.tree_leaves(p0)):
        np.testing.assert_array_equal(leaf[0], leaf0[0])  # run 0 never moved
    p1 = jax.tree_util.tree_map(lambda a: a[1], res.params)
    assert _acc(p1, Y) == 1.0 and res.train_accuracy.tolist() == [1.0, 1.0]
    # predict (under jit): the training labels, the runs' own networks; grad = central differences
    logits = jax.jit(res.predict)(X)
    assert logits.shape == (2, M, 2)
    np.testing.assert_array_equal(np.asarray(logits).argmax(-1), ys)
    np.testing.assert_allclose(logits[0], APPLY_J(jax.tree_util.tree_map(lambda a: a[0], p0), X), rtol=1e-12)
    vg = jax.jit(jax.value_and_grad(lambda x: jnp.sum(res.predict(x)[1, :, 1] - res.predict(x)[1, :, 0])))
    e, h = np.zeros((3, 2)), 1e-6
    e[1, 0] = h
    fd = (float(vg(X[:3] + e)[0]) - float(vg(X[:3] - e)[0])) / (2 * h)
    assert float(vg(X[:3])[1][1, 0]) == pytest.approx(fd, rel=1e-6)


def test_cap_is_reported_and_sgd_rounds_equal_one_continuous_run():
    p0 = INIT_J(jax.random.PRNGKey(4))
    res = train_to_interpolation(APPLY, p0, X, Y, key=jax.random.PRNGKey(5), max_steps=10, check_every=5,
                                 optimizer=optax.sgd(0.1))
    assert not res.interpolated and res.steps == 10  # random labels cannot be fitted in 10 small steps
    assert res.train_accuracy == pytest.approx(_acc(res.params, Y)) and res.train_accuracy < 1
    # reference: 10 plain full-batch gradient steps on the mean softmax cross-entropy
    loss = lambda p: jnp.mean(softmax_cross_entropy(APPLY(p, X), jnp.asarray(Y)))
    step = jax.jit(lambda p: jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, jax.grad(loss)(p)))
    ref = p0
    for _ in range(10):
        ref = step(ref)
    for a, b in zip(jax.tree_util.tree_leaves(res.params), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw, match", [
    ({"max_steps": 0}, "max_steps"),
    ({"check_every": 0}, "check_every"),
    ({"target_accuracy": 1.5}, "target_accuracy"),
    ({"y": Y.astype(float)}, "integer class labels"),
    ({"y": Y[:-1]}, "integer class labels"),
    ({"y": Y + 2}, "out_dim"),
    ({"y": Y - 1}, "negative"),
    ({"labels_per_run": True}, "needs `runs`"),
    ({"runs": 3}, "leading axis of 3"),
])
def test_bad_arguments_are_refused(kw, match):
    args = {"y": Y, "max_steps": 10} | kw
    y = args.pop("y")
    with pytest.raises(ValueError, match=match):
        train_to_interpolation(APPLY, INIT_J(jax.random.PRNGKey(0)), X, y, key=jax.random.PRNGKey(0), **args)


def test_a_single_logit_network_counts_class_one_where_the_logit_is_positive():
    init, apply = mlp(2, 32, 2, dtype=jnp.float64)  # one logit (n,)
    loss = lambda z, t: optax.sigmoid_binary_cross_entropy(z, t.astype(z.dtype))
    res = train_to_interpolation(apply, jax.jit(init)(jax.random.PRNGKey(7)), X, Y, key=jax.random.PRNGKey(8),
                                 max_steps=5, check_every=5, optimizer=optax.sgd(0.1), loss_fn=loss)
    z = np.asarray(jax.jit(apply)(res.params, X))
    assert res.train_accuracy == pytest.approx(np.mean((z > 0) == Y), abs=0) and res.steps in (0, 5)
