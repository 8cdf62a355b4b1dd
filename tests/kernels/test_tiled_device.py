"""``kernel_matrix(..., out="device")``: the result stays a ``jax.Array`` on the device, equal bitwise to the
host result, for ntkd's packed tile program (one kernel and the NNGP + NTK pair), a generic kernel_fn,
symmetric and cross kernels, n not a multiple of the tile edge, float64 and float32."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd

KF = ntkd.mlp_kernel_fn(2)


def _generic(x1, x2, get):  # not an ntkd kernel_fn: kernel_matrix's generic two-program path
    return KF(x1, x2, get)


@pytest.fixture(scope="module")
def xs():
    rng = np.random.default_rng(3)
    return rng.normal(size=(23, 3)), rng.normal(size=(17, 3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_device_result_equals_the_host_result(xs, dtype):
    x1, x2 = (a.astype(dtype) for a in xs)
    cases = [(KF, (x1,), ("nngp", "ntk")), (KF, (x1, x2), "ntk")]
    if dtype == np.float64:  # the generic path's programs and the single-kernel packed tiles: one dtype
        cases += [(KF, (x1,), "ntk"), (_generic, (x1,), ("nngp", "ntk")), (_generic, (x1, x2), "ntk")]
    for kfn, args, get in cases:
        host = ntkd.kernel_matrix(kfn, *args, get=get, block_size=8)
        dev = ntkd.kernel_matrix(kfn, *args, get=get, block_size=8, out="device")
        host, dev = (tuple(h) if isinstance(get, tuple) else (h,) for h in (host, dev))
        for h, d in zip(host, dev):
            assert isinstance(d, jax.Array) and d.dtype == dtype and d.shape == h.shape
            assert d.devices() == {jax.local_devices()[0]}
            np.testing.assert_array_equal(np.asarray(d), h)
    # and against the untiled kernel itself (the same numbers as the host path's tests)
    d = ntkd.kernel_matrix(KF, x1, x2, get="ntk", block_size=8, out="device")
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(np.asarray(d), np.asarray(KF(jnp.asarray(x1), jnp.asarray(x2), "ntk")),
                               rtol=tol, atol=tol)


def test_device_result_feeds_a_jitted_solve_without_the_host(xs):
    x1 = xs[0]
    k = ntkd.kernel_matrix(KF, x1, get="ntk", block_size=8, out="device")
    y = jnp.asarray(np.sin(x1[:, 0]))
    sol = jax.jit(lambda k, y: jax.scipy.linalg.solve(k, y, assume_a="pos"))(k, y)
    np.testing.assert_allclose(np.asarray(k) @ np.asarray(sol), np.asarray(y), rtol=1e-8, atol=1e-8)


def test_bad_out_string_is_refused(xs):
    with pytest.raises(ValueError, match="`out`"):
        ntkd.kernel_matrix(KF, xs[0], out="gpu")
