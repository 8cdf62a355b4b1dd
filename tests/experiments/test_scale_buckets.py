"""Bucketed training-set sizes: the exact padding of the grid program and the sweep that uses it.

* ``grid_core`` on a training set padded from n = 24 to N = 32 rows (``n_valid = 24``) gives every metric
  of the unpadded program on the same 24 points, to rounding: converged (Cholesky) and finite-t (eigh)
  students, float64 and float32, with the oracle reference;
* ``size_buckets`` maps sizes onto its ladder;
* (a bucketed sweep compiles one grid program per bucket: tests/experiments/test_scale_shards.py; its rows
  equal the unpadded ``evaluate_grid``: tests/experiments/test_ji_zhu_sweep.py.)
"""
import jax.numpy as jnp
import numpy as np
import pytest

from ntkd.experiments.engine import batch_size, size_buckets
from ntkd.kernels import shared_mlp_kernel_fn
from ntkd.theories.transfer_risk.grid import (
    METRICS,
    compiled_grid,
    grid_points,
    grid_targets,
    oracle_reference,
)

INF = float("inf")
N_REAL, N_PAD, M, R = 24, 32, 30, 20


def _data(dtype):
    rng = np.random.default_rng(7)
    x, xt, xr = (rng.normal(size=(k, 2)) * 5 for k in (N_REAL, M, R))
    f = lambda a: 3 * np.sin(a[:, 0] / 3) + a[:, 1] / 4
    g = lambda a: f(a) - 0.3
    arr = lambda a: jnp.asarray(a, dtype)
    tr = {"x": x, "zt": f(x), "yg": (g(x) > 0) * 1.0, "zg": g(x), "z0": rng.normal(size=N_REAL) * 0.3}
    te = {"x": arr(xt), "zt": arr(f(xt)), "yg": arr((g(xt) > 0) * 1.0), "z0": arr(rng.normal(size=M) * 0.3)}
    ref = (arr(xr), arr(f(xr)), arr((f(xr) > 0) * 1.0))
    return tr, te, ref


def _args(kfn, dtype, times, jitter, size):
    """grid_core's arguments with the training set padded to ``size`` rows (copies of row 0)."""
    tr, te, ref = _data(dtype)
    pad = lambda a: jnp.asarray(np.concatenate([a, np.repeat(a[:1], size - len(a), axis=0)]), dtype)
    r, tt, T_unique, T_index = grid_points([1.0, 0.7, 0.3], [2.0, 8.0])
    a_star, onorm, cos_te, x_ref = oracle_reference(kfn, ref, te["x"], te["zt"], te["yg"], r, tt, jitter)
    a = lambda v: jnp.asarray(v, dtype)
    zeff, zh = grid_targets(pad(tr["zt"]), pad(tr["yg"]), a(r), a(tt), a(T_unique))
    return (pad(tr["x"]), pad(tr["zt"]), zeff, zh, pad(tr["zg"]), pad(tr["z0"]), te["x"], te["zt"],
            te["yg"], te["z0"], x_ref, a_star, onorm, cos_te, jnp.asarray(T_index), a(times))


CASES = [(jnp.float64, (INF,), 0.0, "chol"), (jnp.float64, (3.0, 40.0, INF), 0.0, "eigh"),
         (jnp.float32, (INF,), 1e-3, "chol"), (jnp.float32, (3.0, 40.0, INF), 1e-3, "eigh")]


@pytest.mark.parametrize("dtype,times,jitter,method", CASES,
                         ids=["float64-converged", "float64-finite-t", "float32-converged", "float32-finite-t"])
def test_padded_grid_program_equals_the_unpadded_one(dtype, times, jitter, method):
    kfn = shared_mlp_kernel_fn(2)
    plain = compiled_grid(kfn, method, jitter, True)(*_args(kfn, dtype, times, jitter, N_REAL))
    padded_fn = compiled_grid(kfn, method, jitter, True, padded=True)
    padded = padded_fn(*_args(kfn, dtype, times, jitter, N_PAD), jnp.asarray(N_REAL, jnp.int32))
    assert bool(plain["ok"]) and bool(padded["ok"])
    f64 = dtype == jnp.float64
    for k in METRICS:
        a, b = (np.asarray(o[k], np.float64) for o in (plain, padded))
        assert a.dtype == b.dtype and a.shape == b.shape == (len(times), 6), k
        assert np.isfinite(a).all(), k
        if k in ("risk", "error", "bound"):  # fractions of the test set: counts of signs, equal exactly
            np.testing.assert_array_equal(b, a, err_msg=k)
        else:  # rounding: other summation orders over the padded length
            tol = {"rtol": 1e-12, "atol": 1e-13} if f64 else {"rtol": 2e-4, "atol": 2e-5}
            np.testing.assert_allclose(b, a, err_msg=k, **tol)
        if k not in ("risk", "error", "bound", "teacher_error"):  # means of booleans are float32 (as before)
            assert np.asarray(padded[k]).dtype == dtype, k


def test_padding_decouples_even_a_kernel_whose_padded_rows_are_garbage():
    """The padded rows' inputs do not matter: far-away or duplicated inputs give the same metrics."""
    kfn = shared_mlp_kernel_fn(2)
    f = compiled_grid(kfn, "chol", 0.0, True, padded=True)
    args = list(_args(kfn, jnp.float64, (INF,), 0.0, N_PAD))
    base = f(*args, jnp.asarray(N_REAL, jnp.int32))
    args[0] = args[0].at[N_REAL:].set(1e3)  # other padded inputs, other targets
    args[1] = args[1].at[N_REAL:].set(-7.0)
    args[2] = args[2].at[N_REAL:].set(3.0)
    args[4] = args[4].at[N_REAL:].set(5.0)
    other = f(*args, jnp.asarray(N_REAL, jnp.int32))
    for k in METRICS:
        np.testing.assert_allclose(np.asarray(other[k]), np.asarray(base[k]), rtol=1e-12, atol=1e-13, err_msg=k)


def test_size_buckets_ladder():
    got = size_buckets([10, 17, 28, 46, 77, 129, 215, 359, 599, 1000])
    assert got == {10: 128, 17: 128, 28: 128, 46: 128, 77: 128, 129: 256, 215: 256, 359: 512, 599: 1000,
                   1000: 1000}
    full = size_buckets([2**k for k in range(4, 13)])
    assert sorted(set(full.values())) == [512, 1024, 2048, 4096]
    assert all(v >= k for k, v in full.items())
    assert size_buckets([5]) == {5: 5} and size_buckets([]) == {}
    # one batch size per unit: at most its blocks (to a device multiple), at most what memory allows
    assert batch_size(3, 1.0, 4.0, 0, 1) == 3 and batch_size(3, 1.0, 4.0, 0, 2) == 4
    assert batch_size(8, 2**30, 2.0, 0, 1) == 2 and batch_size(8, 1.0, 4.0, 1, 1) == 1
