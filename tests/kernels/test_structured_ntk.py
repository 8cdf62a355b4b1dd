"""Structured-derivative empirical NTK (ntkd/kernels/structured.py) against the Jacobian method, which
tests/kernels/test_empirical_ntk.py checks against float64 finite differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd
from ntkd.finite import mlp
from ntkd.kernels.structured import structured_plan

RNG = np.random.default_rng(28)
X1, X2 = RNG.normal(size=(5, 3)), RNG.normal(size=(4, 3))


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))) / np.max(np.abs(b)))


def _pairs(apply_fn, params, x1, x2):
    """[(structured, jacobian)] for trace_axes (-1,) and (), from one jitted program (compiles once)."""
    def run(p, a, b):
        return [tuple(ntkd.empirical_ntk(apply_fn, p, a, b, trace_axes=t, method=m)
                      for m in ("structured", "jacobian")) for t in ((-1,), ())]
    return jax.jit(run)(params, x1, x2)


# (depth, activation, b_std, out_dim): every depth 1-5, each activation, bias and none, scalar and k = 3
CASES = [(1, "relu", 1.0, None), (2, "erf", None, 3), (3, "identity", 0.5, None), (4, "relu", None, None),
         (5, "erf", 1.0, 3), (2, "relu", 0.0, 3)]


@pytest.mark.parametrize("depth,activation,b_std,out_dim", CASES)
def test_structured_equals_jacobian_float64_ntk_parameterization(depth, activation, b_std, out_dim):
    init_fn, apply_fn = mlp(3, 6, depth, activation=activation, b_std=b_std, out_dim=out_dim, dtype=jnp.float64)
    params = init_fn(jax.random.PRNGKey(depth))
    for s, j in _pairs(apply_fn, params, X1, X2):
        assert s.shape == j.shape and s.dtype == jnp.float64
        assert _rel(s, j) <= 1e-12, _rel(s, j)
    plan = structured_plan(apply_fn, params, X1)
    assert plan.method == "structured" and len(plan.structured) == depth + 1  # every weight matrix
    assert len(plan.fallback) == (0 if b_std is None else depth + 1)  # biases keep Jacobian rows


def _standard_mlp(key, dims, dtype):
    """Standard parameterization, W ~ N(0, 2/fan_in), one layer called through an inner jax.jit."""
    ks = jax.random.split(key, len(dims))
    return [{"W": jax.random.normal(k, (a, b), dtype) * np.sqrt(2 / a), "b": 0.1 * jnp.ones(b, dtype)}
            for k, a, b in zip(ks, dims[:-1], dims[1:])]


@jax.jit
def _layer(h, p):
    return jnp.matmul(h, p["W"], precision="highest") + p["b"]


def _standard_apply(params, x):
    h = x
    for p in params[:-1]:
        h = jnp.tanh(_layer(h, p))
    return _layer(h, params[-1])  # (n, k)


def test_standard_parameterization_and_calls_into_jit():
    params = _standard_mlp(jax.random.PRNGKey(0), [3, 7, 5, 2], jnp.float64)
    for s, j in _pairs(_standard_apply, params, X1, X2):
        assert s.shape == j.shape and _rel(s, j) <= 1e-12
    plan = structured_plan(_standard_apply, params, X1)
    assert sorted(plan.structured) == [f"[{i}]['W']" for i in range(3)]


def test_float32_within_1e_5_of_float64():
    init_fn, apply_fn = mlp(3, 16, 3, out_dim=2, dtype=jnp.float32)
    p32 = init_fn(jax.random.PRNGKey(1))
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p32)
    s32 = jax.jit(lambda p, a, b: ntkd.empirical_ntk(apply_fn, p, a, b, method="structured"))(
        p32, X1.astype(np.float32), X2.astype(np.float32))
    ref = jax.jit(lambda p, a, b: ntkd.empirical_ntk(apply_fn, p, a, b, method="jacobian"))(p64, X1, X2)
    assert s32.dtype == jnp.float32
    assert _rel(s32, ref) <= 1e-5


def test_dense_over_positions_sums_position_pairs():
    """A dense layer applied to every position of (s, d) inputs: Σ_{s,t} (a_s·a'_t)(g_s·g'_t)."""
    params = {"W": jnp.asarray(RNG.normal(size=(3, 4))), "V": jnp.asarray(RNG.normal(size=(4, 2)))}

    def apply_fn(p, x):  # x (n, 3 positions, 3)
        return jnp.matmul(jnp.tanh(jnp.matmul(x, p["W"], precision="highest")).mean(1), p["V"],
                          precision="highest")

    x1, x2 = RNG.normal(size=(4, 3, 3)), RNG.normal(size=(3, 3, 3))
    for s, j in _pairs(apply_fn, params, x1, x2):
        assert s.shape == j.shape and _rel(s, j) <= 1e-12


def _tied(p, x):
    h = jnp.tanh(jnp.matmul(x, p["W"], precision="highest"))
    return jnp.sum(jnp.matmul(h, p["V"], precision="highest") * p["V"][0], -1)  # V used twice


def test_unsupported_leaves_fall_back_to_jacobian_rows_with_reasons():
    params = {"W": jnp.asarray(RNG.normal(size=(3, 4))), "V": jnp.asarray(RNG.normal(size=(4, 4)))}
    plan = structured_plan(_tied, params, X1)
    assert plan.method == "structured" and plan.structured == ("['W']",)
    assert "used in 2 places" in plan.fallback["['V']"]
    for s, j in _pairs(_tied, params, X1, X2):
        assert _rel(s, j) <= 1e-12


def test_model_without_dense_weights_falls_back_to_jacobian():
    params = {"w": jnp.asarray(RNG.normal(size=(3,)))}

    def apply_fn(p, x):
        return jnp.sin(x * p["w"]).sum(-1)  # an elementwise weight, no dense product

    plan = structured_plan(apply_fn, params, X1)
    assert plan.method == "jacobian" and "no parameter is the weight of a dense product" in plan.reason
    assert "used by `" in plan.fallback["['w']"]
    auto, jac = jax.jit(lambda p: [ntkd.empirical_ntk(apply_fn, p, X1, X2, method=m) for m in ("auto", "jacobian")])(
        params)
    np.testing.assert_allclose(auto, jac, rtol=1e-14)
    with pytest.raises(ValueError, match="method='jacobian' or 'auto'"):
        ntkd.empirical_ntk(apply_fn, params, X1, method="structured")
    coupled = structured_plan(_tied, {"W": jnp.ones((3, 4)), "V": jnp.ones((4, 4))}, X1, per_example=False)
    assert coupled.method == "jacobian" and "per_example=False" in coupled.reason
    with pytest.raises(ValueError, match="per_example"):
        ntkd.empirical_ntk(_tied, {"W": jnp.ones((3, 4)), "V": jnp.ones((4, 4))}, X1, method="structured",
                           per_example=False)


@pytest.fixture(scope="module")
def erf_net():
    init_fn, apply_fn = mlp(3, 6, 2, activation="erf", out_dim=2, dtype=jnp.float64)
    seeds = [init_fn(k) for k in jax.random.split(jax.random.PRNGKey(5), 3)]
    return apply_fn, seeds, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *seeds)


def test_jit_vmap_and_kernel_matrix(erf_net):
    apply_fn, seeds, params = erf_net
    f = lambda p, a, b: ntkd.empirical_ntk(apply_fn, p, a, b, method="structured")
    p0 = seeds[0]
    loop = [f(p, X1, X2) for p in seeds]  # eager
    np.testing.assert_allclose(jax.jit(f)(p0, X1, X2), loop[0], rtol=1e-13, atol=1e-13)
    batched = jax.jit(jax.vmap(f, (0, None, None)))(params, X1, X2)
    np.testing.assert_allclose(batched, np.stack(loop), rtol=1e-13, atol=1e-13)
    kfn = ntkd.empirical_kernel_fn(apply_fn, p0, method="structured")
    x = np.concatenate([X1, X2])
    np.testing.assert_allclose(ntkd.kernel_matrix(kfn, x, get="ntk", block_size=4),
                               ntkd.empirical_ntk(apply_fn, p0, x, method="jacobian"), rtol=1e-12, atol=1e-13)


def test_grad_wrt_inputs_matches_central_differences(erf_net):
    apply_fn, seeds, _ = erf_net
    p0 = seeds[0]
    weights = jnp.asarray(RNG.normal(size=(5, 4)))
    loss = jax.jit(lambda a: jnp.sum(weights * ntkd.empirical_ntk(apply_fn, p0, a, X2, method="structured")))
    g = np.asarray(jax.grad(loss)(jnp.asarray(X1)))
    h, fd = 1e-5, np.zeros_like(X1)
    for i in range(X1.shape[0]):
        for c in range(X1.shape[1]):
            e = np.zeros_like(X1)
            e[i, c] = h
            fd[i, c] = (float(loss(X1 + e)) - float(loss(X1 - e))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
