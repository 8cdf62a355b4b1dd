"""The pieces that make the analytic kernels fast (issue 6), each against an independent reference:

* the polynomial arcsin (``_asin``) against NumPy's float64 arcsin, to a few ulps of each dtype;
* θ and π - θ from δ = 1 - cos θ (``_angle_from_delta``) against 2·arcsin(√(δ/2)) and 2·arcsin(√((2-δ)/2))
  in float64 NumPy, both with relative accuracy (no cancellation at θ -> 0 or θ -> π);
* the row-blocked evaluation equals the one-block evaluation (symmetric with the exact diagonal, and
  cross kernels), whatever the block size;
* the tiled evaluation of symmetric kernels on CPU equals the untiled one, whatever the tile edge
  (ragged, overlapping last tiles included), eager, jitted and vmapped, with mirrored entries exact;
* squared distances from differences (``_sq_distances``, feature groups beyond 64) against float64 NumPy,
  and the near-duplicate check of wide inputs under ``jax.vmap`` (one check for the whole batch).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd
from ntkd.kernels import _numerics as N
from ntkd.kernels import _programs as P
from reference import mlp_kernels, scaled_error

ULPS = {np.float32: 4, np.float64: 4}


def _grid():
    x = np.concatenate([np.linspace(-1, 1, 20001), [0.5, -0.5, 0.5 - 1e-9, 0.5 + 1e-9, 1 - 1e-12, 1e-30, 0.0],
                        np.random.default_rng(0).uniform(-1, 1, 20000)])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_polynomial_arcsin_matches_numpy(dt):
    x = _grid().astype(dt)
    got = np.asarray(jax.jit(N.asin)(jnp.asarray(x)), np.float64)
    ref = np.arcsin(x.astype(np.float64))
    err = np.abs(got - ref) / np.maximum(np.abs(ref), np.finfo(dt).tiny)
    ulp = np.finfo(dt).eps
    assert np.max(err) <= ULPS[dt] * ulp, (np.max(err) / ulp, x[np.argmax(err)])
    # odd, and exact at the ends
    np.testing.assert_array_equal(got[x == 0], 0)
    assert got[x == 1][0] == pytest.approx(np.pi / 2, rel=float(ulp))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_angle_from_delta_has_relative_accuracy_at_both_ends(dt):
    d = np.concatenate([np.logspace(-30 if dt == np.float64 else -20, np.log10(2), 4000), [0.5, 1.5, 1.0, 2.0, 0.0],
                        2 - np.logspace(-15, -1, 200)]).astype(dt)
    d = d[(d >= 0) & (d <= 2)]
    theta, pim = (np.asarray(a, np.float64) for a in jax.jit(N.angle_from_delta)(jnp.asarray(d)))
    d64 = d.astype(np.float64)
    # each reference formula only where it has no cancellation: 2 asin(√(δ/2)) for θ <= π/2 (δ <= 1),
    # 2 asin(√((2-δ)/2)) for π - θ <= π/2 (δ >= 1); the other angle is π minus it there
    small = d64 <= 1
    t_direct = 2 * np.arcsin(np.sqrt(d64 / 2))
    p_direct = 2 * np.arcsin(np.sqrt((2 - d64) / 2))
    ref_t = np.where(small, t_direct, np.pi - p_direct)
    ref_p = np.where(small, np.pi - t_direct, p_direct)
    ulp = np.finfo(dt).eps
    tiny = np.finfo(dt).tiny
    et = np.abs(theta - ref_t) / np.maximum(ref_t, tiny)
    ep = np.abs(pim - ref_p) / np.maximum(ref_p, tiny)
    assert np.max(et) <= 4 * ulp, (np.max(et) / ulp, d[np.argmax(et)])
    assert np.max(ep) <= 4 * ulp, (np.max(ep) / ulp, d[np.argmax(ep)])
    assert theta[d == 0][0] == 0 and pim[d == 2][0] == 0
    # the two-branch form for a correlation known to be >= 0 (exact up to δ = 3/2, which covers rounding)
    part = d <= 1.5
    theta2, pim2 = (np.asarray(a, np.float64) for a in
                    jax.jit(lambda v: N.angle_from_delta(v, at_most_one=True))(jnp.asarray(d[part])))
    assert np.max(np.abs(theta2 - ref_t[part]) / np.maximum(ref_t[part], tiny)) <= 4 * ulp
    assert np.max(np.abs(pim2 - ref_p[part]) / np.maximum(ref_p[part], tiny)) <= 4 * ulp


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_row_blocks_equal_one_block(activation, dt, monkeypatch):
    """Eager kernels go through row blocks (``BLOCK_ENTRIES``) and one concatenating program; the result
    must not depend on the block size, keep the exact diagonal in every block, and agree with the
    traced path (inside ``jax.jit``/``jax.vmap`` the matrix is one block)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 5)).astype(dt)
    x[7] = x[3] * (1 + 1e-6)  # a near-duplicate pair
    x2 = rng.normal(size=(23, 5)).astype(dt)
    kf = ntkd.mlp_kernel_fn(3, activation=activation, W_std=1.3, b_std=0.4)

    def run(*args):
        return [np.asarray(k) for k in kf(*args)]

    monkeypatch.setitem(P.BLOCK_ENTRIES, "cpu", 10**9)
    monkeypatch.setitem(P.BLOCK_ENTRIES, "other", 10**9)
    whole_sym, whole_cross = run(x), run(x, x2)
    traced_sym = [np.asarray(k) for k in jax.jit(lambda u: kf(u))(x)]
    alone = [np.asarray(k)[:, 0, 0] for k in jax.jit(jax.vmap(lambda u: kf(u[None])))(x)]
    rtol = 1e-6 if dt == np.float32 else 1e-13
    for got, ref in zip(traced_sym, whole_sym):
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.max(np.abs(ref)))
    for per in (37 * 5, 37 * 8, 37 * 36, 23 * 4):  # 5, 8, 36 rows of 37; 4 rows of 23 (ragged last block)
        monkeypatch.setitem(P.BLOCK_ENTRIES, "cpu", per)
        monkeypatch.setitem(P.BLOCK_ENTRIES, "other", per)
        for k, (got, ref) in enumerate(zip(run(x), whole_sym)):
            assert got.shape == ref.shape == (37, 37)
            scale = rtol * np.max(np.abs(ref))  # erf kernels without bias pass through 0
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=scale)
            # the exact diagonal survives blocking: each entry is the kernel of that point alone
            np.testing.assert_allclose(np.diag(got), alone[k], rtol=4 * np.finfo(dt).eps)
            np.testing.assert_allclose(got, got.T, rtol=rtol, atol=scale)
        for got, ref in zip(run(x, x2), whole_cross):
            assert got.shape == ref.shape == (37, 23)
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.max(np.abs(ref)))
        for g in ("nngp", "ntk"):  # one output alone: no packing, same blocks
            np.testing.assert_allclose(np.asarray(kf(x, None, g)), whole_sym[g == "ntk"], rtol=rtol,
                                       atol=rtol * np.max(np.abs(whole_sym[g == "ntk"])))


def _covered_together(n, edge):
    """(n, n) mask of the pairs (a, b) that some tile of ``_symmetric_tiles`` holds in one row range,
    i.e. that a diagonal tile writes; every other pair is only ever written with its mirror."""
    starts = np.minimum(np.arange(-(-n // edge)) * edge, n - edge)
    tile_of = np.zeros((len(starts), n), bool)
    for k, s in enumerate(starts):
        tile_of[k, s:s + edge] = True
    return (tile_of[:, :, None] & tile_of[:, None, :]).any(axis=0)


@pytest.mark.parametrize("activation, d", [("relu", 5), ("erf", 5), ("relu", 100)])  # d > 64: Gram + check
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_symmetric_tiles_equal_one_pass(activation, dt, d, monkeypatch):
    """Symmetric kernels on CPU with more than ``TILE_EDGE`` points go through ``_symmetric_tiles``: the
    result must equal one untiled pass for every tile edge (even tiles, a ragged last tile that overlaps
    its neighbour, two tiles), keep the exact diagonal (each entry is the kernel of that point alone,
    also where a diagonal pair falls into an off-diagonal tile), be the same eager, under jit and under
    vmap, hold mirrored entries as exact copies, and match the float64 NumPy reference entry by entry.
    At d = 100 the ReLU tiles holding the near-duplicate pairs take their 1 - cos from differences
    (``NEAR_DELTA``) and the others from the Gram block."""
    assert jax.default_backend() == "cpu"
    rng = np.random.default_rng(2)
    n = 37
    x = rng.normal(size=(n, d)).astype(dt)
    x[30] = x[3] * (1 + 1e-6)  # a near-duplicate pair in different tiles
    x[20] = x[2]  # an exact duplicate: a different point, so no exact-diagonal treatment
    kf = ntkd.mlp_kernel_fn(3, activation=activation, W_std=1.3, b_std=0.4)
    calls = []
    real = P.symmetric_tiles

    def spy(x, cfg, edge):
        calls.append(edge)
        return real(x, cfg, edge)

    monkeypatch.setattr(P, "symmetric_tiles", spy)
    monkeypatch.setattr(P, "TILE_EDGE", 10**9)
    one_pass = [np.asarray(k) for k in kf(x)]
    alone = [np.asarray(k)[:, 0, 0] for k in jax.jit(jax.vmap(lambda u: kf(u[None])))(x)]
    assert not calls
    rtol = 1e-6 if dt == np.float32 else 1e-13
    ref64 = mlp_kernels(x, x, 3, activation, 1.3, 0.4)  # (nngp, ntk), independent of ntkd
    for edge, tile in ((4, 4), (10, 10), (12, 10), (36, 19)):  # (TILE_EDGE, the tile edge it gives)
        monkeypatch.setattr(P, "TILE_EDGE", edge)
        calls.clear()
        runs = {"eager": [np.asarray(k) for k in kf(x)]}
        if edge == 12:  # the transformations on one tiling (the ragged overlapping last tile); programs cost
            runs.update({
                "jit": [np.asarray(k) for k in jax.jit(lambda u: kf(u))(x)],
                "vmap": [np.asarray(k)[1] for k in jax.jit(jax.vmap(lambda u: kf(u)))(np.stack([x[::-1], x]))],
                "ntk, nngp": [np.asarray(k) for k in kf(x, None, ("ntk", "nngp"))][::-1],
                "alone": [np.asarray(kf(x, None, g)) for g in ("nngp", "ntk")],
            })
        assert calls and set(calls) == {tile}, calls  # the tiled path ran, with the expected tile edge
        mirrored = ~_covered_together(n, tile)
        assert mirrored.any()
        for how, got in runs.items():
            for k, (g, ref) in enumerate(zip(got, one_pass)):
                scale = rtol * np.max(np.abs(ref))  # erf kernels without bias pass through 0
                assert g.shape == ref.shape == (n, n)
                np.testing.assert_allclose(g, ref, rtol=rtol, atol=scale, err_msg=f"{how}, edge {edge}")
                np.testing.assert_allclose(np.diag(g), alone[k], rtol=4 * np.finfo(dt).eps, err_msg=how)
                np.testing.assert_array_equal(g[mirrored], g.T[mirrored], err_msg=how)
        if "jit" in runs:
            np.testing.assert_allclose(runs["jit"][1], runs["eager"][1], rtol=4 * np.finfo(dt).eps)
        # tolerances of test_kernels' reference test. The reference takes θ = arccos(cos θ), which
        # loses 1.7e-10 of the float64 ReLU NTK at the near-duplicate pair (3, 30): the same recursion
        # in x87 long double gives 2.37316048473078, ntkd 2.37316048473071, the reference
        # 2.37316048432730. That pair is left out of the float64 check.
        away = np.ones((n, n), bool)
        away[3, 30] = away[30, 3] = False
        for g, r in zip(runs["eager"], ref64):
            if dt == np.float64:
                np.testing.assert_allclose(g[away], r[away], rtol=1e-12, atol=1e-14)
            else:
                assert scaled_error(g, r, np.diag(r), np.diag(r)) <= 1e-5


def test_tile_edge(monkeypatch):
    """Tiles as even as possible, and none for small kernels or off CPU."""
    assert P.tile_edge(P.TILE_EDGE) is None
    monkeypatch.setattr(P, "TILE_EDGE", 512)
    assert P.tile_edge(4000) == 500 and P.tile_edge(513) == 257 and P.tile_edge(1024) == 512
    assert P.tile_edge(8001) == 501  # 16 tiles
    monkeypatch.setattr(P, "TILE_EDGE", 400)
    assert P.tile_edge(4000) == 400 and P.tile_edge(401) == 201 and P.tile_edge(8001) == 381  # 21 tiles
    monkeypatch.setattr(P.jax, "default_backend", lambda: "gpu")
    assert P.tile_edge(4000) is None


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("d", [3, 64, 150])
def test_sq_distances_match_numpy(d, dt):
    """|x_i - y_j|² from differences, unrolled up to 64 features and in a loop over unrolled groups
    (zero padded) beyond that: within d ulps of the NumPy sum of the same inputs (float64 NumPy; for
    float64 inputs, NumPy's long double), and exact zeros for equal points."""
    rng = np.random.default_rng(d)
    x, y = rng.normal(size=(7, d)).astype(dt), rng.normal(size=(5, d)).astype(dt)
    y[2] = x[4]
    y[3] = x[1] * (1 + 1e-6)
    got = np.asarray(jax.jit(N.sq_distances)(x, y), np.longdouble)
    ref = ((x[:, None, :].astype(np.longdouble) - y[None, :, :]) ** 2).sum(-1)
    assert got[4, 2] == 0
    np.testing.assert_allclose(got, ref, rtol=d * np.finfo(dt).eps)


def test_near_duplicate_check_under_vmap():
    """Wide ReLU inputs under vmap: the batch member with near-duplicates is accurate (its 1 - cos from
    differences) and the one without gives what it gives alone. One unbatched check covers the batch,
    so the conditional stays a conditional."""
    rng = np.random.default_rng(5)
    clean = rng.normal(size=(12, 100))
    dup = clean.copy()
    dup[7] = dup[2] * (1 + 1e-4) + 1e-4 * rng.normal(size=100)  # 1 - cos ≈ 5e-9: a near-duplicate
    xs = np.stack([clean, dup]).astype(np.float32)
    kf = ntkd.mlp_kernel_fn(5, W_std=1.4, b_std=0.2)
    batched = jax.jit(jax.vmap(lambda u: kf(u, None, ("nngp", "ntk"))))(xs)
    ref = mlp_kernels(xs[1].astype(np.float64), xs[1].astype(np.float64), 5, "relu", 1.4, 0.2)
    for k, g in enumerate(("nngp", "ntk")):
        alone = np.asarray(kf(xs[0], None, g))
        np.testing.assert_allclose(np.asarray(batched[k][0]), alone, rtol=4 * np.finfo(np.float32).eps)
        got = np.asarray(batched[k][1])
        assert scaled_error(got, ref[k], np.diag(ref[k]), np.diag(ref[k])) <= 1e-6
    # the check stays a conditional under vmap: as many as in the unbatched program (a batched
    # predicate would turn it into a select of both branches)
    conds = [str(jax.make_jaxpr(f)(u)).count("cond[")
             for f, u in ((lambda u: kf(u, None, "ntk"), xs[0]), (jax.vmap(lambda u: kf(u, None, "ntk")), xs))]
    assert conds[0] >= 1 and conds[1] == conds[0], conds
