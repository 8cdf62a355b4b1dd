"""The contract of every public numerical function: it is a JAX function.

Table 1 (``ROWS``): each function gives the same numbers eagerly and under ``jit``; ``vmap`` over its
natural batch axis equals a loop; and where it is differentiable its reverse-mode gradient, contracted
with a random direction, equals its forward-mode derivative and a float64 central difference.

Table 2 (``BAD``): each invalid value is refused eagerly with a ValueError naming the argument, and the
same value passed as a traced argument under ``jit`` gives NaN, never a plausible number.

Functions that are drivers rather than JAX functions are listed in ``NOT_TRACEABLE`` with the reason.

Every test here runs with ``jax_numpy_rank_promotion = "raise"``: ntkd broadcasts explicitly, so code that
forbids implicit rank promotion can call it.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd
from ntkd.theories.transfer_risk import tasks

N, M = 5, 3
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, 2)) * 2
X_TEST = RNG.normal(size=(M, 2)) * 2
KF = ntkd.mlp_kernel_fn(1, W_std=1.0, b_std=1.0)
K = np.asarray(KF(X, None, "ntk"))
K_ST = np.asarray(KF(X_TEST, X, "ntk"))
DIAG = np.diag(np.asarray(KF(X_TEST, None, "ntk")))
Y = np.sin(X[:, 0])
Z_T = 2 * np.cos(X[:, 1]) + 0.3
Y_G = (Y > 0).astype(np.float64)
DZ = Y - 0.2
COS = np.array([0.1, 0.5, 0.9, 0.99, 0.3])
NG = np.array([2, 3, 5])
KEY = jax.random.PRNGKey(0)


@pytest.fixture(autouse=True)
def _strict_rank_promotion():
    with jax.numpy_rank_promotion("raise"):
        yield


def _mlp_params():
    r = np.random.default_rng(1)
    return {"w1": r.normal(size=(2, 8)), "b1": r.normal(size=8), "w2": r.normal(size=(8, 2))}


def _mlp_apply(p, x):
    h = jnp.tanh(jnp.matmul(x, p["w1"], precision="highest") + p["b1"][None, :])
    return jnp.matmul(h, p["w2"], precision="highest") / jnp.sqrt(8.0)


TEACHER = tasks.kernel_teacher(KF, X, Y, r=0.3)

# name, function of positional args, args, vmap argnum, grad argnum (None: not differentiable)
ROWS = [
    ("kernel_fn ntk", lambda x1: KF(x1, X, "ntk"), (X_TEST,), 0, 0),
    ("kernel_fn nngp diag", lambda x1: KF(x1, None, "nngp"), (X_TEST,), 0, 0),
    ("gradient_descent_mse", lambda k, y, t: ntkd.gradient_descent_mse(k, y)(t, 0.0, 0.0, K_ST)[1],
     (K, Y, 3.0), 1, 2),
    ("gradient_descent_mse t=inf", lambda k, y: ntkd.gradient_descent_mse(k, y)(None, 0.0, 0.0, K_ST)[1],
     (K, Y), 1, 1),
    ("gradient_flow_weights", ntkd.gradient_flow_weights, (K, Y, 2.0), 1, 2),
    ("kernel_regression", ntkd.kernel_regression, (K, Y, K_ST), 1, 0),
    ("gp_inference", lambda k, y, ks: ntkd.gp_inference(k, y, ks, K_ST @ np.linalg.solve(K, K_ST.T) + np.eye(M)),
     (K, Y, K_ST), 1, 2),
    ("kd_loss", ntkd.kd_loss, (Y, Z_T, Y_G, 0.7, 2.0), 3, 0),
    ("kd_grad_z", ntkd.kd_grad_z, (Y, Z_T, Y_G, 0.7, 2.0), 3, 4),
    ("effective_logits d/dρ", ntkd.effective_logits, (Z_T, Y_G, 0.7, 2.0), 2, 2),
    ("effective_logits d/dT", ntkd.effective_logits, (Z_T, Y_G, 0.7, 2.0), 3, 3),
    ("effective_logits d/dz_t", ntkd.effective_logits, (Z_T, Y_G, 0.7, 2.0), 0, 0),
    ("effective_logits soft_scale", lambda z, s: ntkd.effective_logits(z, Y_G, 0.7, 2.0, soft_scale=s),
     (Z_T, 1.5), 1, 1),
    ("threshold", ntkd.threshold, (0.4, 3.0), 0, 1),
    ("rho_for_threshold", ntkd.rho_for_threshold, (1.5, 3.0), 0, 0),
    ("label_smoothing_logit", ntkd.label_smoothing_logit, (np.array([0.1, 0.5]),), 0, 0),
    ("correction_logits", ntkd.correction_logits, (Z_T, Y_G, 2.0), 2, 2),
    ("converged_student", ntkd.converged_student, (K_ST, K, DZ), 2, 2),
    ("weight_change_norm", ntkd.weight_change_norm, (K, DZ), 1, 1),
    ("kd_function_space_flow", lambda r: ntkd.kd_function_space_flow(K, Z_T, Y_G, r, 2.0, np.array([0.0, 2.0, 5.0])),
     (0.6,), 0, 0),
    ("transfer_risk", ntkd.transfer_risk, (Z_T, DZ), 1, None),
    ("feature_cosines", ntkd.feature_cosines, (Z_T[:M], DIAG, 9.0), 2, 2),
    ("oracle_norm", ntkd.oracle_norm, (K, Z_T), 1, 1),
    ("angle_distribution", ntkd.angle_distribution, (COS, np.array([0.2, 1.0, 1.5])), 1, None),
    ("alpha_n", ntkd.alpha_n, (K, DZ, 9.0), 2, 2),
    ("alpha_n_exact", ntkd.alpha_n_exact, (K, Z_T, 0.1 * DZ, np.array([0, 2, 3])), 2, 1),
    ("risk_bound", ntkd.risk_bound, (np.array([0.01, 0.3]), COS), 0, None),
    ("phuong_lampert_bound", lambda c: ntkd.phuong_lampert_bound(c, 20), (COS,), 0, None),
    ("data_inefficiency", lambda e: ntkd.data_inefficiency(np.array([8.0, 16, 32]), e)[1],
     (np.array([1.0, 1.3, 1.5]),), 0, 0),
    ("weight_norm_curve", ntkd.weight_norm_curve, (K, DZ, NG), 1, 1),
    ("kernel_inner", ntkd.kernel_inner, (K, DZ, Z_T), 1, 1),
    ("cos_student_oracle", lambda n: ntkd.cos_student_oracle(K, Z_T, DZ, norm_w_g=n), (2.0,), 0, 0),
    ("hard_label_effect", lambda n: ntkd.hard_label_effect(K, Z_T, DZ, Y, norm_w_g=n), (2.0,), 0, 0),
    ("flip_signs", lambda p: tasks.flip_signs(KEY, jnp.asarray(Z_T), p), (0.3,), 0, None),
    ("sample_inputs", lambda k: tasks.sample_inputs(k, 4), (KEY,), 0, None),
    ("random_logits", lambda k: tasks.random_logits(k, 4), (KEY,), 0, None),
    ("gaussian_mixture", lambda k: tasks.gaussian_mixture(k, 3).logits(jnp.asarray(X)), (KEY,), 0, None),
    ("kernel_teacher", TEACHER, (X_TEST,), 0, 0),
    ("empirical_ntk", lambda x1: ntkd.empirical_ntk(_mlp_apply, _mlp_params(), x1, X), (X_TEST,), 0, 0),
    ("linearize", lambda x1: ntkd.linearize(_mlp_apply, _mlp_params())(
        jax.tree_util.tree_map(lambda a: 1.01 * a, _mlp_params()), x1), (X_TEST,), 0, 0),
]

NOT_TRACEABLE = {
    "kernel_matrix": "a host-side driver: tiles over devices into a host array or memory map",
    "expected_weight_norm": "a driver over runs (draws inputs and calls kernel_fn per run); its parts are rows",
    "evaluate_grid": "tested as the batched twin of the scalar functions in tests/theories/test_transfer_risk_grid.py",
}


def _perturb(a, scale):
    """A second member of a vmap batch: the same structure, shifted (symmetric for square kernels)."""
    a = np.asarray(a)
    if a.dtype.kind in "iu" or a.dtype == np.uint32:
        return a
    d = scale * np.cos(np.arange(a.size).reshape(a.shape) + 1.0)
    if a.ndim == 2 and a.shape[0] == a.shape[1]:
        d = (d + d.T) / 2
    return a + d


def _close(a, b, rtol):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name, f, args, vaxis, gaxis", ROWS, ids=[r[0] for r in ROWS])
def test_eager_jit_vmap_and_grad_agree(name, f, args, vaxis, gaxis):
    jf = jax.jit(f)
    _close(jf(*args), f(*args), 1e-10)
    # vmap over the natural batch axis (a stack of the argument and a perturbed copy) equals a loop
    if name in ("sample_inputs", "random_logits", "gaussian_mixture"):
        other = list(jax.random.split(args[vaxis], 2))
        batch = jnp.stack(other)
    else:
        other = [np.asarray(args[vaxis]), _perturb(args[vaxis], 0.05)]
        batch = np.stack(other)
    mapped = jax.jit(jax.vmap(lambda v: f(*args[:vaxis], v, *args[vaxis + 1:])))(batch)
    for i, v in enumerate(other):
        _close(jax.tree_util.tree_map(lambda a, i=i: a[i], mapped), jf(*args[:vaxis], v, *args[vaxis + 1:]), 1e-10)
    if gaxis is None:
        return
    # reverse mode · direction == forward mode == central difference (float64), in one compiled program
    a0 = np.asarray(args[gaxis], np.float64)
    direction = _perturb(np.zeros_like(a0), 1.0)
    out0 = jax.tree_util.tree_leaves(jf(*args))[0]
    w = np.cos(np.arange(np.size(out0)) * 0.7 + 0.3).reshape(np.shape(out0))
    h = 1e-5

    def scalar(a):
        return jnp.sum(jax.tree_util.tree_leaves(f(*args[:gaxis], a, *args[gaxis + 1:]))[0] * w)

    @jax.jit
    def derivatives(a, d):
        return (jnp.sum(jax.grad(scalar)(a) * d), jax.jvp(scalar, (a,), (d,))[1],
                (scalar(a + h * d) - scalar(a - h * d)) / (2 * h))

    rev, fwd, fd = (float(v) for v in derivatives(a0, direction))
    scale = max(1.0, abs(fd))
    assert abs(rev - fwd) <= 1e-9 * scale, (rev, fwd)
    assert abs(fwd - fd) <= 1e-6 * scale, (fwd, fd)


# name, function of one value, a valid value, invalid values, argument named in the eager error
BAD = [
    ("effective_logits rho", lambda r: ntkd.effective_logits(Z_T, Y_G, r, 2.0), 0.5, [np.nan, 1.5, -0.1], "rho"),
    ("effective_logits T", lambda t: ntkd.effective_logits(Z_T, Y_G, 0.5, t), 2.0, [-5.0, 0.0, np.nan, np.inf], "T"),
    # elementwise functions: NaN exactly at the invalid entries (a (value, mask) pair)
    ("effective_logits labels", lambda y: ntkd.effective_logits(Z_T, y, 0.5, 2.0), Y_G,
     [(2 * Y_G - 1, Y_G == 0)], "y_g"),
    ("effective_logits soft_scale", lambda s: ntkd.effective_logits(Z_T, Y_G, 0.5, 2.0, soft_scale=s), 1.0,
     [-1.0, np.nan], "soft_scale"),
    ("threshold", lambda r: ntkd.threshold(r, 2.0), 0.5, [1.5, np.nan], "rho"),
    ("rho_for_threshold", lambda t: ntkd.rho_for_threshold(t, 2.0), 1.0, [-1.0, 0.0, np.nan], "t"),
    ("label_smoothing_logit", ntkd.label_smoothing_logit, 0.1, [1.5, 0.0, np.nan], "eps"),
    ("correction_logits", lambda t: ntkd.correction_logits(Z_T, Y_G, t), 2.0, [-1.0, np.nan], "T"),
    ("kd_loss rho", lambda r: ntkd.kd_loss(Y, Z_T, Y_G, r, 2.0), 0.5, [1.5, np.nan], "rho"),
    ("kd_loss labels", lambda y: ntkd.kd_loss(Y, Z_T, y, 0.5, 2.0), Y_G, [2 * Y_G - 1], "y_g"),
    ("kd_grad_z T", lambda t: ntkd.kd_grad_z(Y, Z_T, Y_G, 0.5, t), 2.0, [0.0, -1.0], "T"),
    ("transfer_risk", lambda z: ntkd.transfer_risk(Z_T, z), DZ, [np.full(N, np.nan)], "z_s"),
    ("feature_cosines", lambda n: ntkd.feature_cosines(Z_T[:M], DIAG, n), 9.0, [0.0, -1.0, np.nan, np.inf], "norm"),
    ("alpha_n", lambda n: ntkd.alpha_n(K, DZ, n), 9.0, [0.0, -1.0, np.nan], "norm"),
    ("angle_distribution", lambda c: ntkd.angle_distribution(c, np.array([0.5])), COS,
     [np.where(COS > 0.5, 1.5, COS), np.where(COS > 0.5, np.nan, COS), -COS], "cosines"),
    ("risk_bound", lambda a: ntkd.risk_bound(a, COS), 0.3, [np.nan, 2.0, -0.1], "alpha_n"),
    ("alpha_n_exact", lambda i: ntkd.alpha_n_exact(K, Z_T, 0.1 * DZ, i), np.array([0, 2]),
     [np.array([0, N]), np.array([-1, 2])], "train_idx"),
    ("cos_student_oracle", lambda n: ntkd.cos_student_oracle(K, Z_T, DZ, norm_w_g=n), 2.0, [0.0, -1.0], "norm_w_g"),
    ("hard_label_effect", lambda n: ntkd.hard_label_effect(K, Z_T, DZ, Y, norm_w_g=n), 2.0, [0.0, np.nan],
     "norm_w_g"),
    ("flip_signs", lambda p: tasks.flip_signs(KEY, jnp.asarray(Z_T), p), 0.3, [1.5, -0.1, np.nan], "p_flip"),
    ("gradient_descent_mse t", lambda t: ntkd.gradient_descent_mse(K, Y)(t), 1.0, [-1.0, np.nan], "t"),
    ("gradient_flow_weights t", lambda t: ntkd.gradient_flow_weights(K, Y, t), 1.0, [-1.0, np.nan], "t"),
    ("data_inefficiency norms", lambda e: ntkd.data_inefficiency(np.array([8.0, 16, 32]), e)[1],
     np.array([1.0, 1.2, 1.3]), [np.array([1.0, 0.0, 1.3]), np.array([1.0, np.nan, 1.3])], "expected_norms"),
    ("data_inefficiency sizes", lambda n: ntkd.data_inefficiency(n, np.array([1.0, 1.2, 1.3]))[1],
     np.array([8.0, 16, 32]), [np.array([8.0, 4, 32]), np.array([-8.0, 16, 32])], "n_grid"),
    ("weight_norm_curve", lambda g: ntkd.weight_norm_curve(K, DZ, g), NG,
     [(np.array([2, N + 1]), np.array([False, True])), (np.array([0, 3]), np.array([True, False]))], "n_grid"),
]


@pytest.mark.parametrize("name, f, good, bads, arg", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_eagerly_and_nan_under_jit(name, f, good, bads, arg):
    jf = jax.jit(f)
    assert np.isfinite(np.asarray(jax.tree_util.tree_leaves(jf(good))[0], np.float64)).all()
    for bad in bads:
        bad, where = bad if isinstance(bad, tuple) else (bad, True)
        with pytest.raises(ValueError, match=f"`{arg}`"):
            f(bad)
        out = np.asarray(jax.tree_util.tree_leaves(jf(bad))[0], np.float64)
        np.testing.assert_array_equal(np.isnan(out), np.broadcast_to(where, out.shape), err_msg=f"{name} {bad}")


@pytest.mark.parametrize("bad, match", [
    (np.zeros((0, 2)), "empty"),
    (X.astype(np.float16), "float16"),
    (X.astype(np.complex64), "complex"),
])
def test_empty_half_precision_and_complex_inputs_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        ntkd.transfer_risk(bad[:, 0], bad[:, 0])
    if match != "empty":
        with pytest.raises(ValueError, match=f"`x1`.*{match}"):
            KF(bad, X, "ntk")
        with pytest.raises(ValueError, match=match):
            ntkd.effective_logits(bad[:, 0], Y_G, 0.5, 2.0)


def test_static_hyperparameters_say_so_under_jit():
    with pytest.raises(ValueError, match="`n` must be a static"):
        jax.jit(lambda n: ntkd.phuong_lampert_bound(COS, n))(3)
    with pytest.raises(ValueError, match="`times` must be concrete"):
        jax.jit(lambda t: ntkd.kd_function_space_flow(K, Z_T, Y_G, 0.5, 2.0, t))(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="`n_grid` must hold whole numbers"):
        ntkd.weight_norm_curve(K, DZ, [2.5, 4])
    with pytest.raises(ValueError, match="`steps_per_unit`"):
        ntkd.kd_function_space_flow(K, Z_T, Y_G, 0.5, 2.0, [0.0, 1.0], steps_per_unit=0)


def test_checked_turns_traced_argument_checks_into_checkify_errors_naming_the_argument():
    from jax.experimental import checkify

    f = jax.jit(ntkd.checked(lambda r, t: ntkd.effective_logits(Z_T, Y_G, r, t)))
    err, out = f(0.5, 2.0)
    err.throw()  # valid: no error, the eager numbers
    np.testing.assert_allclose(out, ntkd.effective_logits(Z_T, Y_G, 0.5, 2.0), rtol=1e-12)
    for args, name in (((1.5, 2.0), "rho"), ((0.5, -1.0), "T")):
        err, out = f(*args)
        assert np.isnan(out).all()
        with pytest.raises(checkify.JaxRuntimeError, match=f"invalid `{name}`"):
            err.throw()
    g = jax.jit(jax.vmap(ntkd.checked(lambda a: ntkd.risk_bound(a, COS))))
    with pytest.raises(checkify.JaxRuntimeError, match="`alpha_n`"):
        g(np.array([0.1, 2.0]))[0].throw()
