import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import ntkd
from ntkd.finite import NTKMLP


def _model(width=6, depth=2, out_dim=None, seed=0, dtype=jnp.float64, **kw):
    return NTKMLP(3, width, depth, out_dim=out_dim, rngs=nnx.Rngs(seed), dtype=dtype, **kw)


def _fd_ntk(apply_fn, params, x1, x2, h=1e-6):
    """Float64 central finite-difference Jacobians in NumPy, contracted: an independent reference."""
    flat, unravel = ravel_pytree(params)
    flat = np.asarray(flat, np.float64)

    def jac(x):
        cols = []
        for p in range(flat.size):
            e = np.zeros_like(flat)
            e[p] = h
            fp = np.asarray(apply_fn(unravel(jnp.asarray(flat + e)), x))
            fm = np.asarray(apply_fn(unravel(jnp.asarray(flat - e)), x))
            cols.append((fp - fm) / (2 * h))
        return np.stack(cols, -1)  # (n, [k,] P)

    j1, j2 = jac(x1), jac(x2)
    return np.einsum("i...p,j...p->ij...", j1, j2) if j1.ndim == 2 else np.einsum("iap,jbp->ijab", j1, j2)


@pytest.mark.parametrize("method", ["jacobian", "ntvp"])
def test_empirical_ntk_matches_finite_differences(method):
    model = _model()
    apply_fn, params = ntkd.nnx_apply_fn(model)
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    got = ntkd.empirical_ntk(apply_fn, params, x1, x2, method=method)
    ref = _fd_ntk(apply_fn, params, x1, x2)
    np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("method", ["jacobian", "ntvp"])
def test_batch_coupled_model_needs_per_example_false(method):
    """A model whose outputs share a batch statistic: per_example=False differentiates the whole batch
    and matches finite differences; the default per-example derivatives (neural-tangents' vmap_axes=0)
    describe each example alone, which also matches finite differences of one-example batches."""
    rng = np.random.default_rng(4)
    params = {"w": jnp.asarray(rng.normal(size=(3, 5))), "v": jnp.asarray(rng.normal(size=(5,)))}

    def apply_fn(p, x):
        h = jnp.tanh(x @ p["w"])
        return (h - 0.5 * jnp.mean(h, axis=0)) @ p["v"]

    x1, x2 = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    coupled = ntkd.empirical_ntk(apply_fn, params, x1, x2, method=method, per_example=False, batch_size=2)
    np.testing.assert_allclose(coupled, _fd_ntk(apply_fn, params, x1, x2), rtol=1e-7, atol=1e-8)
    alone = ntkd.empirical_ntk(apply_fn, params, x1, x2, method=method, batch_size=2)
    ref = np.array([[_fd_ntk(apply_fn, params, a[None], b[None])[0, 0] for b in x2] for a in x1])
    np.testing.assert_allclose(alone, ref, rtol=1e-7, atol=1e-8)
    assert np.max(np.abs(alone - coupled)) > 1e-2  # the two definitions really differ for this model


def test_multi_output_trace_and_full():
    model = _model(out_dim=3, seed=1)
    apply_fn, params = ntkd.nnx_apply_fn(model)
    x = np.random.default_rng(1).normal(size=(4, 3))
    full = ntkd.empirical_ntk(apply_fn, params, x, trace_axes=())
    ref = _fd_ntk(apply_fn, params, x, x)
    np.testing.assert_allclose(full, ref, rtol=1e-7, atol=1e-8)
    traced = ntkd.empirical_ntk(apply_fn, params, x)
    np.testing.assert_allclose(traced, np.trace(ref, axis1=2, axis2=3) / 3, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(ntkd.empirical_ntk(apply_fn, params, x, method="ntvp", batch_size=5,
                                                  trace_axes=()), full, rtol=1e-10, atol=1e-12)


def test_linen_apply_and_plain_pytree():
    """Any apply_fn(params, x): a plain function of a dict pytree (same as a linen model.apply)."""
    rng = np.random.default_rng(2)
    params = {"w": jnp.asarray(rng.normal(size=(3, 5))), "v": jnp.asarray(rng.normal(size=(5,)))}

    def apply_fn(p, x):
        return jnp.tanh(x @ p["w"]) @ p["v"]

    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(ntkd.empirical_ntk(apply_fn, params, x), _fd_ntk(apply_fn, params, x, x),
                               rtol=1e-7, atol=1e-8)


def test_empirical_kernel_fn_is_a_kernel_fn():
    model = _model(seed=3)
    apply_fn, params = ntkd.nnx_apply_fn(model)
    x = np.random.default_rng(3).normal(size=(7, 3))
    kf = ntkd.empirical_kernel_fn(apply_fn, params)
    k = kf(x, None)
    f = np.asarray(apply_fn(params, x))
    np.testing.assert_allclose(k.nngp, np.outer(f, f), rtol=1e-12)
    tiled = ntkd.kernel_matrix(kf, x, get="ntk", block_size=3)
    np.testing.assert_allclose(tiled, k.ntk, rtol=1e-10)


def test_linearize_is_first_order_taylor():
    model = _model(seed=4)
    apply_fn, params = ntkd.nnx_apply_fn(model)
    f_lin = ntkd.linearize(apply_fn, params)
    x = np.random.default_rng(4).normal(size=(5, 3))
    np.testing.assert_allclose(f_lin(params, x), apply_fn(params, x), rtol=1e-14)
    flat, unravel = ravel_pytree(params)
    direction = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)
    lin = [np.asarray(f_lin(unravel(flat + s * direction), x)) for s in (1e-3, 2e-3)]
    base = np.asarray(apply_fn(params, x))
    np.testing.assert_allclose(lin[1] - base, 2 * (lin[0] - base), rtol=1e-9)  # exactly linear
    # Taylor remainder is second order: halving the step quarters the error.
    errs = [np.abs(np.asarray(apply_fn(unravel(flat + s * direction), x)) - np.asarray(
        f_lin(unravel(flat + s * direction), x))).max() for s in (1e-2, 5e-3)]
    assert 3.0 < errs[0] / errs[1] < 5.0


def test_monte_carlo_empirical_ntk_converges_to_analytic():
    """Average empirical NTK of random NTK-parameterized MLPs -> analytic NTK; error falls with width."""
    depth, seeds = 2, 6
    x = np.random.default_rng(5).normal(size=(6, 3))
    analytic = np.asarray(ntkd.mlp_kernel_fn(depth)(x, None, "ntk"))
    errors = []
    for width in (32, 128, 512):
        mean = 0
        for s in range(seeds):
            apply_fn, params = ntkd.nnx_apply_fn(_model(width=width, depth=depth, seed=100 + s))
            mean = mean + np.asarray(ntkd.empirical_ntk(apply_fn, params, x)) / seeds
        errors.append(np.linalg.norm(mean - analytic) / np.linalg.norm(analytic))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.05, errors
    # the O(1/sqrt(width)) fluctuation law: 16x wider -> about 4x smaller (loose band for 6 seeds)
    assert 1.5 < errors[0] / errors[2] < 12, errors


def test_bad_inputs():
    apply_fn, params = ntkd.nnx_apply_fn(_model())
    x = np.ones((3, 3))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="`x1`"):
        ntkd.empirical_ntk(apply_fn, params, bad)
    with pytest.raises(ValueError, match="`x2`"):
        ntkd.empirical_ntk(apply_fn, params, x, np.ones((2, 4)))
    with pytest.raises(ValueError, match="`method`"):
        ntkd.empirical_ntk(apply_fn, params, x, method="magic")
