import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd
from reference import mlp_kernels, scaled_error

DATA = Path(__file__).parents[1] / "data" / "nt_reference.npz"
ACTS = ["relu", "erf", "identity", ("leaky_relu", 0.1), ("ab_relu", -0.5, 2.0), ("erf", 2.0, 0.5, 0.3)]


def _x(n, d, seed, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale


@pytest.mark.parametrize("activation", ACTS, ids=str)
@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("W_std,b_std", [(1.0, 1.0), (1.4, None), (0.9, 0.3)])
def test_matches_numpy_reference(activation, depth, W_std, b_std, dtype):
    """The cross path (x2 given) against the float64 NumPy reference, x2 holding exact copies of x1's rows
    (a copy, not x1 itself: no same-point mask) besides new points; one program per case. The symmetric
    path meets neural-tangents' kernels in test_matches_neural_tangents_fixtures."""
    x1 = _x(6, 4, 0, 2.0)
    x2 = np.concatenate([x1.copy(), _x(3, 4, 1)])
    kf = ntkd.mlp_kernel_fn(depth, activation=activation, W_std=W_std, b_std=b_std)
    ref_nngp, ref_ntk = mlp_kernels(x1, x2, depth, activation, W_std, b_std)
    k = kf(x1.astype(dtype), x2.astype(dtype))
    assert k.ntk.dtype == dtype and k.nngp.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(k.nngp, ref_nngp, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(k.ntk, ref_ntk, rtol=1e-12, atol=1e-14)
    else:
        n1, d1 = (np.diag(m) for m in mlp_kernels(x1, x1, depth, activation, W_std, b_std))
        n2, d2 = (np.diag(m) for m in mlp_kernels(x2, x2, depth, activation, W_std, b_std))
        assert scaled_error(k.ntk, ref_ntk, d1, d2) <= 1e-5
        assert scaled_error(k.nngp, ref_nngp, n1, n2) <= 1e-5


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_standard_parameterization_reference(depth, activation):
    x1, x2 = _x(5, 3, 2), _x(4, 3, 3)
    kf = ntkd.mlp_kernel_fn(depth, activation=activation, W_std=1.5, b_std=0.5, parameterization="standard",
                            width=32)
    ref_nngp, ref_ntk = mlp_kernels(x1, x2, depth, activation, 1.5, 0.5, "standard", 32)
    k = kf(x1, x2)
    np.testing.assert_allclose(k.ntk, ref_ntk, rtol=1e-12)
    np.testing.assert_allclose(k.nngp, ref_nngp, rtol=1e-12)


def _nt_configs():
    z = np.load(DATA)
    return [(i, json.loads(str(z[f"cfg{i}"]))) for i in range(int(z["n_configs"]))]


@pytest.mark.parametrize("i,cfg", _nt_configs(), ids=lambda v: str(v) if isinstance(v, int) else "")
def test_matches_neural_tangents_fixtures(i, cfg, dtype):
    """Reference kernels written by neural-tangents 0.6.5 (scripts/make_nt_fixtures.sh), float64.

    One symmetric call on [x1; x2] gives the fixtures' x1-x1 and x1-x2 blocks (and x2's diagonal for
    the float32 scaled error) from one compiled program; the cross path (x2 given) is checked against
    the NumPy reference in every configuration by test_matches_numpy_reference."""
    z = np.load(DATA)
    act = cfg["activation"]
    act = act[0] if len(act) == 1 else tuple(act)
    kf = ntkd.mlp_kernel_fn(cfg["depth"], activation=act, W_std=cfg["W_std"], b_std=cfg["b_std"],
                            parameterization=cfg["parameterization"], width=cfg.get("width"))
    n1 = z["x1"].shape[0]
    k = kf(np.concatenate([z["x1"], z["x2"]]).astype(dtype), get=("nngp", "ntk"))
    for g in ("nngp", "ntk"):
        full = np.asarray(getattr(k, g))
        assert full.dtype == dtype
        d1, d2 = np.diag(z[f"cfg{i}_{g}11"]), np.diag(full)[n1:]
        for tag, got in (("11", full[:n1, :n1]), ("12", full[:n1, n1:])):
            ref = z[f"cfg{i}_{g}{tag}"]
            if dtype == np.float64:
                np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-13 * np.abs(ref).max())
            else:
                # x1 row 3 is a near-duplicate of row 1 (1 - cos ≈ 5e-7): no exception is made for it.
                assert scaled_error(got, ref, d1, d1 if tag == "11" else d2) <= 1e-5


def test_float32_diagonal_is_exact_relu_deep():
    """The diagonal is where neural-tangents' float32 ReLU NTK loses ~1e-4; ntkd keeps it at float32 eps."""
    x = _x(50, 10, 4)
    for depth in (1, 5, 10):
        kf = ntkd.mlp_kernel_fn(depth)
        k64 = np.asarray(kf(x, None, "ntk"))
        k32 = np.asarray(kf(x.astype(np.float32), None, "ntk"))
        rel = np.abs(k32 - k64) / np.abs(k64)
        assert rel.max() <= 1e-5, (depth, rel.max())
        assert np.abs(np.diag(rel)).max() <= 2e-6


@pytest.mark.parametrize("activation", ["relu", ("ab_relu", -0.5, 2.0)], ids=str)
@pytest.mark.parametrize("gap", [1e-2, 1e-3, 1e-4, 1e-5])
def test_float32_near_duplicates_relu(activation, gap):
    """Distinct inputs at relative distance `gap`: float32 stays within 2e-6 of float64 at depth 10.

    Naively θ = arccos(c) turns the ~1e-7 rounding of c into an error ~1e-7/θ (1e-4 here); ntkd carries
    1 - cos θ through the recursion without cancellation.
    """
    rng = np.random.default_rng(16)
    x = rng.normal(size=(4, 3))
    x = np.concatenate([x, x * (1 + gap) + gap * rng.normal(size=x.shape)]).astype(np.float32)
    kf = ntkd.mlp_kernel_fn(10, activation=activation, W_std=1.2, b_std=0.3)
    for g in ("ntk", "nngp"):
        k64 = np.asarray(kf(x.astype(np.float64), None, g))
        k32 = np.asarray(kf(x, None, g))
        d = np.diag(k64)
        assert scaled_error(k32, k64, d, d) <= 2e-6


@pytest.mark.parametrize("copies", [2, 4])
@pytest.mark.parametrize("d", [65, 784])
@pytest.mark.parametrize("gap", [1e-1, 1e-3, 1e-5])
def test_float32_near_duplicates_relu_wide_inputs(d, gap, copies):
    """Inputs wider than EXACT_DISTANCE_MAX_DIM take 1 - cos from the Gram matrix, whose rounding
    (~eps·sqrt(d)) is a large relative error for near-duplicates (the float32 NTK was off by up to
    1.1e-4 at d = 784); their pairs take pairwise differences instead (NEAR_DELTA): gathered for points
    with at most NEAR_PER_ROW near-duplicates (``copies`` = 2), for the whole block otherwise (4).
    Symmetric and cross kernels against the float64 NumPy reference on the same float32 inputs."""
    rng = np.random.default_rng(int(d / gap) + copies)
    base = rng.normal(size=(5, d))
    x = np.concatenate([base] + [base * (1 + gap) ** k + gap * rng.normal(size=base.shape)
                                 for k in range(1, copies)]).astype(np.float32)
    x2 = np.concatenate([x[:3] * (1 - gap), rng.normal(size=(2, d))]).astype(np.float32)
    x64, x264 = x.astype(np.float64), x2.astype(np.float64)
    kf = ntkd.mlp_kernel_fn(5, W_std=1.3, b_std=0.2)
    d1 = [np.diag(r) for r in mlp_kernels(x64, x64, 5, "relu", 1.3, 0.2)]
    d2 = [np.diag(r) for r in mlp_kernels(x264, x264, 5, "relu", 1.3, 0.2)]
    for b, b64, dd in ((None, x64, d1), (x2, x264, d2)):
        ref = mlp_kernels(x64, b64, 5, "relu", 1.3, 0.2)
        got = kf(x, b, ("nngp", "ntk"))
        for k in range(2):
            assert scaled_error(np.asarray(got[k], np.float64), ref[k], d1[k], dd[k]) <= 1e-6, (k, b is None)


def test_float32_pairs_just_above_near_delta():
    """Pairs at 1 - cos just above NEAR_DELTA keep the Gram matrix's rounding (no differences): their
    float32 error must still be within the 1e-5 target, at d = 784 and depth 5."""
    from ntkd.kernels import NEAR_DELTA
    rng = np.random.default_rng(11)
    x = rng.normal(size=(10, 784))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    o = rng.normal(size=x.shape)
    o -= (o * u).sum(1, keepdims=True) * u
    o /= np.linalg.norm(o, axis=1, keepdims=True)
    c = 1 - 1.05 * NEAR_DELTA
    y = (c * u + np.sqrt(1 - c * c) * o) * np.linalg.norm(x, axis=1, keepdims=True) * rng.uniform(0.9, 1.1, (10, 1))
    z = np.concatenate([x, y]).astype(np.float32)
    z64 = z.astype(np.float64)
    cos = (z64[:10] * z64[10:]).sum(1) / np.linalg.norm(z64[:10], axis=1) / np.linalg.norm(z64[10:], axis=1)
    assert np.all(1 - cos > NEAR_DELTA) and np.all(1 - cos < 1.1 * NEAR_DELTA)
    ref = mlp_kernels(z64, z64, 5, "relu", 1.3, 0.2)
    got = ntkd.mlp_kernel_fn(5, W_std=1.3, b_std=0.2)(z, None, ("nngp", "ntk"))
    for k in range(2):
        assert scaled_error(np.asarray(got[k], np.float64), ref[k], np.diag(ref[k]), np.diag(ref[k])) <= 1e-5


def test_x2_same_object_is_symmetric():
    x = _x(6, 3, 5)
    kf = ntkd.mlp_kernel_fn(2)
    np.testing.assert_array_equal(kf(x, x, "ntk"), kf(x, None, "ntk"))


def test_get_conventions():
    x1, x2 = _x(4, 3, 6), _x(2, 3, 7)
    kf = ntkd.mlp_kernel_fn(1)
    k = kf(x1, x2)
    assert isinstance(k, ntkd.Kernel) and k.nngp.shape == (4, 2)
    # one output alone is a different compiled program than both packed together: equal to an ulp or two
    ulps = dict(rtol=4 * np.finfo(np.float32).eps, atol=0)
    np.testing.assert_allclose(kf(x1, x2, "ntk"), k.ntk, **ulps)
    np.testing.assert_allclose(kf(x1, x2, "nngp"), k.nngp, **ulps)
    swapped = kf(x1, x2, ("ntk", "nngp"))
    assert swapped._fields == ("ntk", "nngp")
    np.testing.assert_array_equal(swapped[0], k.ntk)
    np.testing.assert_array_equal(swapped[1], k.nngp)


def test_relu_ntk_diagonal_over_squared_norm_is_at_least_a_quarter_and_tends_to_it():
    """Ji & Zhu K1 / Fig. S7: L = 3, σ_W = σ_b = 1, d = 2: Θ(x,x)/xᵀx >= 1/4 and -> 0.25 at large |x|."""
    kf = ntkd.mlp_kernel_fn(3)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2000, 2)) * np.exp(rng.uniform(-2, 6, size=(2000, 1)))
    ratio = np.diag(np.asarray(kf(x, None, "ntk"))) / np.sum(x * x, axis=1)
    assert ratio.min() >= 0.25
    big = np.linalg.norm(x, axis=1) > 100
    assert big.sum() > 50
    np.testing.assert_allclose(ratio[big], 0.25, atol=2e-3)
    # closed form of the large-|x| limit: depth-3 ReLU NTK on the diagonal is (L+1) (1/2)^L q W^2...
    # here q = |x|^2/2 and each hidden layer halves it, contributing 4 terms of |x|^2/16: 4/16 = 1/4.


def test_jit_and_vmap():
    kf = ntkd.mlp_kernel_fn(2, activation="erf")
    x1, x2 = _x(5, 3, 9), _x(4, 3, 10)
    direct = kf(x1, x2, "ntk")
    np.testing.assert_allclose(jax.jit(kf, static_argnums=2)(x1, x2, "ntk"), direct, rtol=1e-13)
    per_row = jax.vmap(lambda a: kf(a[None], x2, "ntk")[0])(jnp.asarray(x1))
    np.testing.assert_allclose(per_row, direct, rtol=1e-13)


@pytest.mark.parametrize("activation,b_std,d,cross", [("relu", 0.5, 3, True), ("relu", None, 3, False),
                                                      ("relu", 0.5, 100, False), (("leaky_relu", 0.2), 0.5, 3, False),
                                                      ("erf", 0.5, 3, False)], ids=str)
def test_input_gradients_match_central_differences(activation, b_std, d, cross):
    """``jax.grad`` (under ``jax.jit``) of a kernel with respect to its inputs is finite and equals
    float64 central differences, with the diagonal (δ = 0 identically), exact duplicates (δ = 0 at its
    minimum: the NNGP is differentiable there; the NTK has a cone in θ, whose central difference tends
    to 0, ntkd's chosen subgradient, as the step shrinks) and antipodal points (δ = 2 without biases) in
    the data. It was NaN (√δ at δ = 0), and under jit it raised (the guard's predicate).
    d = 100 takes the Gram path with the near-duplicate check; ``cross`` adds a cross kernel whose
    second input repeats a point of the first."""
    rng = np.random.default_rng(d)
    base = rng.normal(size=(5, d))
    x = np.concatenate([base, base[:2], -1.5 * base[2:3]])
    y = np.concatenate([base[1:2], rng.normal(size=(2, d))])
    v = rng.normal(size=x.shape)  # a different direction for each copy, which probes the cone
    kf = ntkd.mlp_kernel_fn(2, activation=activation, W_std=1.2, b_std=b_std)
    w = rng.normal(size=(4, len(x), len(x)))

    def f(z):
        s = kf(z, None)
        out = jnp.sum(w[0] * s.nngp) + jnp.sum(w[1] * s.ntk)
        if cross:
            c = kf(z, y)
            out = out + jnp.sum(w[2, :, :3] * c.nngp) + jnp.sum(w[3, :, :3] * c.ntk)
        return out

    # one program: the gradient at x and, from its forward pass, the values f(x ± h v) (eager calls of f
    # would compile every row block)
    vg = jax.jit(jax.value_and_grad(f))
    g = np.asarray(vg(jnp.asarray(x))[1])
    assert np.all(np.isfinite(g))
    h = 1e-5  # the cones leave an O(h) central difference; much smaller steps meet rounding at θ ≈ π
    fd = (float(vg(jnp.asarray(x + h * v))[0]) - float(vg(jnp.asarray(x - h * v))[0])) / (2 * h)
    assert abs(np.sum(g * v) - fd) <= 1e-6 * np.linalg.norm(g) * np.linalg.norm(v)


@pytest.mark.parametrize("block_size", [1, 3, 4, 100])
def test_kernel_matrix_tiles_equal_direct(block_size):
    x1, x2 = _x(10, 3, 11), _x(7, 3, 12)
    kf = ntkd.mlp_kernel_fn(3)
    sym = ntkd.kernel_matrix(kf, x1, get=("nngp", "ntk"), block_size=block_size)
    ref = kf(x1, None)
    np.testing.assert_allclose(sym.ntk, ref.ntk, rtol=1e-13)
    np.testing.assert_allclose(sym.nngp, ref.nngp, rtol=1e-13)
    np.testing.assert_array_equal(sym.ntk, sym.ntk.T)
    cross = ntkd.kernel_matrix(kf, x1, x2, get="ntk", block_size=block_size)
    np.testing.assert_allclose(cross, kf(x1, x2, "ntk"), rtol=1e-13)
    # both kernels of ntkd's own kernel_fn come as packed (complex) tiles, split on the host: order kept
    both = ntkd.kernel_matrix(kf, x1, x2, get=("ntk", "nngp"), block_size=block_size)
    assert both._fields == ("ntk", "nngp")
    ref = kf(x1, x2)
    np.testing.assert_allclose(both.ntk, ref.ntk, rtol=1e-13)
    np.testing.assert_allclose(both.nngp, ref.nngp, rtol=1e-13)


@pytest.mark.parametrize("stripe,chunk", [(5, 3), (4, 16), (256, 1)])
def test_kernel_matrix_striped_host_copies(monkeypatch, stripe, chunk):
    """Tiles are copied in stripes of ``_STRIPE`` rows on a thread pool and mirrored ``_MIRROR_CHUNK`` rows
    at a time: with small settings every stripe and chunk boundary falls inside ragged 11-point tiles."""
    from ntkd.kernels import tiled as K

    monkeypatch.setattr(K, "_STRIPE", stripe)
    monkeypatch.setattr(K, "_MIRROR_CHUNK", chunk)
    x1, x2 = _x(30, 3, 21), _x(17, 3, 22)
    kf = ntkd.mlp_kernel_fn(2)
    sym = ntkd.kernel_matrix(kf, x1, get=("nngp", "ntk"), block_size=11)
    ref = kf(x1, None)
    np.testing.assert_allclose(sym.ntk, ref.ntk, rtol=1e-13)
    np.testing.assert_allclose(sym.nngp, ref.nngp, rtol=1e-13)
    np.testing.assert_array_equal(sym.nngp, sym.nngp.T)
    np.testing.assert_allclose(ntkd.kernel_matrix(kf, x1, x2, get="nngp", block_size=11), kf(x1, x2, "nngp"),
                               rtol=1e-13)


def test_kernel_matrix_accepts_any_nt_style_kernel_fn():
    """Duck typing: an RBF kernel written with the neural-tangents signature (no ntkd code)."""
    def rbf_kernel_fn(x1, x2=None, get=None):
        x2 = x1 if x2 is None else x2
        k = jnp.exp(-jnp.sum((x1[:, None] - x2[None]) ** 2, -1))
        return {"ntk": k, "nngp": 2 * k}[get] if isinstance(get, str) else (2 * k, k)

    x = _x(9, 2, 13)
    got = ntkd.kernel_matrix(rbf_kernel_fn, x, get="ntk", block_size=4)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(got, np.exp(-d2), rtol=1e-12)


def test_kernel_matrix_float32_exact_diagonal_and_duplicates_across_tiles():
    """ntkd's kernels run every tile of a symmetric kernel_matrix in one program, the pairs of the same
    point marked by the tile offsets. In float32 with d = 100 (Gram-based 1 - cos plus the near-duplicate
    check): exact copies and near-copies that fall in other tiles, in the same tile, and in the padded
    last tile (ragged n = 23, block 8) stay within 1e-6 of the float64 NumPy reference, the diagonal
    included; the result equals kf(x) itself up to float32 rounding and is exactly symmetric."""
    rng = np.random.default_rng(31)
    base = rng.normal(size=(15, 100))
    x = np.concatenate([base, base[[0, 3, 9, 14]], base[[1, 2, 5, 6]] * (1 + 1e-4)
                        + 1e-4 * rng.normal(size=(4, 100))]).astype(np.float32)
    x64 = x.astype(np.float64)
    kf = ntkd.mlp_kernel_fn(5, W_std=1.3, b_std=0.2)
    ref = mlp_kernels(x64, x64, 5, "relu", 1.3, 0.2)
    got = ntkd.kernel_matrix(kf, x, get=("nngp", "ntk"), block_size=8)
    direct = kf(x, None)
    for k in range(2):
        dk = np.diag(ref[k])
        assert scaled_error(got[k].astype(np.float64), ref[k], dk, dk) <= 1e-6, k
        np.testing.assert_array_equal(got[k], got[k].T)
        np.testing.assert_allclose(np.diag(got[k]), dk, rtol=1e-6)
        np.testing.assert_allclose(got[k], np.asarray(direct[k]), rtol=3e-6)
    cross = ntkd.kernel_matrix(kf, x[:11], x[7:], get="ntk", block_size=4)
    ref = mlp_kernels(x64[:11], x64[7:], 5, "relu", 1.3, 0.2)[1]
    assert scaled_error(cross.astype(np.float64), ref, np.diag(mlp_kernels(x64[:11], x64[:11], 5, "relu", 1.3, 0.2)[1]),
                        np.diag(mlp_kernels(x64[7:], x64[7:], 5, "relu", 1.3, 0.2)[1])) <= 1e-6


def test_kernel_matrix_keeps_programs_per_kernel():
    """The compiled tile programs are cached across calls; the key must tell kernels, outputs and tile
    shapes apart. Alternating two kernels and two gets gives each its own numbers, and a repeated call
    reuses its program."""
    from ntkd.kernels import tiled as K

    x = _x(9, 3, 41)
    k2, k3 = ntkd.mlp_kernel_fn(2), ntkd.mlp_kernel_fn(3, activation="erf")
    K._own_tile_program.cache_clear()
    for _ in range(2):
        for kf, depth, act in ((k2, 2, "relu"), (k3, 3, "erf")):
            ref = mlp_kernels(x, x, depth, act)
            np.testing.assert_allclose(ntkd.kernel_matrix(kf, x, get="ntk", block_size=4), ref[1], rtol=1e-12)
            np.testing.assert_allclose(ntkd.kernel_matrix(kf, x, get="nngp", block_size=4), ref[0], rtol=1e-12)
            both = ntkd.kernel_matrix(kf, x, get=("ntk", "nngp"), block_size=5)
            np.testing.assert_allclose(both.ntk, ref[1], rtol=1e-12)
            np.testing.assert_allclose(both.nngp, ref[0], rtol=1e-12)
    info = K._own_tile_program.cache_info()
    assert info.misses == 6 and info.hits == 6


def test_kernel_matrix_unhashable_kernel_fn():
    """A callable object that cannot be hashed (it defines __eq__ only) still works, uncached."""
    class Linear:
        def __eq__(self, other):
            return isinstance(other, Linear)

        def __call__(self, x1, x2=None, get=None):
            x2 = x1 if x2 is None else x2
            return x1 @ x2.T

    x = _x(7, 3, 42)
    np.testing.assert_allclose(ntkd.kernel_matrix(Linear(), x, get="ntk", block_size=3), x @ x.T, rtol=1e-12)


def test_kernel_matrix_progress_callback():
    calls = []
    ntkd.kernel_matrix(ntkd.mlp_kernel_fn(1), _x(9, 2, 14), block_size=4, progress=lambda a, b: calls.append((a, b)))
    assert calls[-1] == (6, 6)  # 3 x 3 tiles, upper triangle incl. diagonal


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(depth=-1), "`depth`"),
        (dict(depth=1.5), "`depth`"),
        (dict(depth=1, activation="tanh"), "`activation`"),
        (dict(depth=1, W_std=0.0), "`W_std`"),
        (dict(depth=1, W_std=-1.0), "`W_std`"),
        (dict(depth=1, b_std=-0.1), "`b_std`"),
        (dict(depth=1, parameterization="mup"), "`parameterization`"),
        (dict(depth=1, parameterization="standard"), "`width`"),
    ],
)
def test_bad_configuration_raises(kwargs, match):
    depth = kwargs.pop("depth")
    with pytest.raises(ValueError, match=match):
        ntkd.mlp_kernel_fn(depth, **kwargs)


def test_bad_inputs_raise():
    kf = ntkd.mlp_kernel_fn(1)
    x = _x(4, 3, 15)
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="`x1`.*NaN"):
        kf(bad)
    inf = x.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="`x2`"):
        kf(x, inf)
    with pytest.raises(ValueError, match="`x2` has 2 features"):
        kf(x, x[:, :2])
    with pytest.raises(ValueError, match="`x1` must have shape"):
        kf(x[0])
    with pytest.raises(ValueError, match="`get`"):
        kf(x, None, "cov")
    with pytest.raises(ValueError, match="`x2` has 2 features"):
        ntkd.kernel_matrix(kf, x, x[:, :2])


def test_float32_default_mode_without_x64():
    """With jax_enable_x64 off (JAX's default) everything runs in float32 and stays accurate."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import numpy as np, jax, ntkd
        assert not jax.config.jax_enable_x64
        x = np.random.default_rng(0).normal(size=(30, 4))
        k = ntkd.mlp_kernel_fn(5)(x, None, "ntk")
        assert k.dtype == np.float32, k.dtype
        y = np.sin(x[:, 0])
        f = ntkd.gradient_descent_mse(k, y)(np.array([1.0, 10.0]))
        assert f.dtype == np.float32 and np.isfinite(f).all()
        print(repr(np.asarray(k, np.float64).tolist()))
    """)
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    k32 = np.array(eval(out.stdout.strip().splitlines()[-1]))
    x = np.random.default_rng(0).normal(size=(30, 4))
    _, k64 = mlp_kernels(x, x, 5)
    assert scaled_error(k32, k64, np.diag(k64), np.diag(k64)) <= 1e-5


def test_kernel_matrix_writes_into_memmap_and_checks_out(tmp_path):
    x = _x(11, 3, 15)
    kf = ntkd.mlp_kernel_fn(2)
    mm = np.lib.format.open_memmap(tmp_path / "k.npy", mode="w+", dtype=np.float64, shape=(11, 11))
    got = ntkd.kernel_matrix(kf, x, get="ntk", block_size=4, out=mm)
    assert got is mm
    mm.flush()
    np.testing.assert_allclose(np.load(tmp_path / "k.npy"), mlp_kernels(x, x, 2)[1], rtol=1e-12)
    with pytest.raises(ValueError, match="`out`"):
        ntkd.kernel_matrix(kf, x, get="ntk", out=np.empty((11, 10)))
    with pytest.raises(ValueError, match="`out`"):
        ntkd.kernel_matrix(kf, x, get=("nngp", "ntk"), out=[np.empty((11, 11))])
    with pytest.raises(ValueError, match="`devices`"):
        ntkd.kernel_matrix(kf, x, devices=len(jax.local_devices()) + 1)


@pytest.mark.slow
def test_kernel_matrix_on_four_host_devices_equals_one_device(tmp_path):
    """Tiles spread over 4 forced host devices give bitwise the one-device matrices (a subprocess, since
    the device count is fixed when JAX starts), and both match the float64 NumPy reference; so do the
    row-sharded device results (out="device") over 2 and 4 devices."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        import ntkd
        assert len(jax.local_devices()) == 4
        rng = np.random.default_rng(0)
        x1, x2 = rng.normal(size=(45, 6)), rng.normal(size=(29, 6))
        out = {{}}
        for dt in ("float32", "float64"):
            kf = ntkd.mlp_kernel_fn(3)
            for nd in (1, 2, 4):
                s = ntkd.kernel_matrix(kf, x1.astype(dt), get=("nngp", "ntk"), block_size=8, devices=nd)
                c = ntkd.kernel_matrix(kf, x1.astype(dt), x2.astype(dt), get="ntk", block_size=8, devices=nd)
                out[f"{{dt}}_{{nd}}_nngp"], out[f"{{dt}}_{{nd}}_ntk"], out[f"{{dt}}_{{nd}}_cross"] = s.nngp, s.ntk, c
                if nd > 1:  # out="device": rows split over the largest k <= nd dividing n1 (45: k = 1 and 3)
                    d = ntkd.kernel_matrix(kf, x1.astype(dt), get=("nngp", "ntk"), block_size=8, devices=nd,
                                           out="device")
                    assert len(d.ntk.devices()) == {{2: 1, 4: 3}}[nd], d.ntk.sharding
                    out[f"{{dt}}_{{nd}}_devnngp"], out[f"{{dt}}_{{nd}}_devntk"] = np.asarray(d.nngp), np.asarray(d.ntk)
            d = ntkd.kernel_matrix(kf, x1[:44].astype(dt), x2.astype(dt), get="ntk", block_size=8, devices=4,
                                   out="device")
            assert [s.data.shape for s in d.addressable_shards] == [(11, 29)] * 4
            out[f"{{dt}}_4_devcross"] = np.asarray(d)
        np.savez({str(tmp_path / 'k.npz')!r}, x1=x1, x2=x2, **out)
    """)
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "k.npz")
    nngp, ntk = mlp_kernels(z["x1"], z["x1"], 3)
    cross = mlp_kernels(z["x1"], z["x2"], 3)[1]
    for dt, rtol in (("float32", 2e-6), ("float64", 1e-12)):
        for nd in (2, 4):
            for name in ("nngp", "ntk", "cross"):
                np.testing.assert_array_equal(z[f"{dt}_{nd}_{name}"], z[f"{dt}_1_{name}"])
            for name in ("nngp", "ntk"):
                np.testing.assert_array_equal(z[f"{dt}_{nd}_dev{name}"], z[f"{dt}_1_{name}"])
        np.testing.assert_array_equal(z[f"{dt}_4_devcross"], z[f"{dt}_1_cross"][:44])
        np.testing.assert_allclose(z[f"{dt}_1_nngp"], nngp, rtol=rtol)
        np.testing.assert_allclose(z[f"{dt}_1_ntk"], ntk, rtol=rtol)
        np.testing.assert_allclose(z[f"{dt}_1_cross"], cross, rtol=rtol)


@pytest.mark.parametrize("b_std", [0.5, None])
def test_zero_activation_leaves_the_bias(b_std, dtype):
    """φ = 0·min(u,0) + 0·max(u,0): after the first hidden layer every entry of both kernels is the
    bias variance b² (the activation's E[φφ] and E[φ'φ'] vanish), in closed form and against the
    float64 reference; no NaN from the zero activation variance."""
    x1, x2 = _x(5, 3, 21), _x(4, 3, 22)
    kf = ntkd.mlp_kernel_fn(3, activation=("ab_relu", 0.0, 0.0), W_std=1.3, b_std=b_std)
    ref_nngp, ref_ntk = mlp_kernels(x1, x2, 3, ("ab_relu", 0.0, 0.0), 1.3, b_std)
    b2 = 0.0 if b_std is None else b_std**2
    for a, b in ((x1, None), (x1, x2)):
        k = kf(a.astype(dtype), None if b is None else b.astype(dtype))
        np.testing.assert_allclose(k.nngp, b2, rtol=1e-6, atol=0)
        np.testing.assert_allclose(k.ntk, b2, rtol=1e-6, atol=0)
    np.testing.assert_allclose(ref_nngp, b2, rtol=1e-12, atol=0)
    np.testing.assert_allclose(ref_ntk, b2, rtol=1e-12, atol=0)
