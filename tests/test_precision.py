"""Every matrix product in ntkd asks for full float32 precision (``Precision.HIGHEST``).

On GPUs since Ampere, JAX's default precision for a float32 product is TensorFloat-32: measured on an H100,
``x @ x.T`` was off by 1.8e-4 relative at the default precision against 4e-7 at HIGHEST, and three tests of
ntkd's float32 paths failed there by 4e-4 to 5e-4 until every product went through ``ntkd._core.linalg``. A CPU
computes float32 products in full whatever is asked, so these tests check what is asked:

* the source: no ``@`` between arrays and no ``matmul``/``einsum``/``dot``-like call without ``precision=``;
* the traced programs: every ``dot_general`` bound while the public functions run (sweep grid, predictors,
  KD flow, risk and inefficiency quantities, empirical NTKs by both methods, the analytic kernels) carries
  ``Precision.HIGHEST``, derivatives included.
"""
import ast
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd
from ntkd import finite

SRC = Path(ntkd.__file__).parent
PRODUCTS = {"matmul", "einsum", "dot", "tensordot", "inner", "vdot", "dot_general", "matvec", "vecdot"}
HIGHEST = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def _source_offences(text):
    bad = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            bad.append((node.lineno, "@"))
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None)  # jnp.matmul, lax.dot_general, ... (not ntkd._core.linalg's mm)
            if name in PRODUCTS and not any(k.arg == "precision" for k in node.keywords):
                bad.append((node.lineno, name))
    return bad


def test_the_source_check_catches_bare_products():
    assert _source_offences("c = a @ b\nd = jnp.einsum('ij,jk', a, b)\ne = jnp.matmul(a, b)") == [
        (1, "@"), (2, "einsum"), (3, "matmul")]
    assert _source_offences("e = jnp.matmul(a, b, precision=P)\nf = mm(a, b)\ng = einsum('ij,jk', a, b)") == []


def test_no_product_in_the_source_without_precision():
    bad = {str(p.relative_to(SRC)): off for p in sorted(SRC.rglob("*.py")) if (off := _source_offences(p.read_text()))}
    assert not bad, f"products without precision= (use ntkd._core.linalg.mm / einsum): {bad}"


@pytest.fixture
def dot_precisions():
    """Precisions of every dot_general bound while the test runs (jit caches cleared so all is traced)."""
    prim = jax.lax.dot_general_p
    seen = []
    bind = prim.bind

    def spy(*args, **params):
        seen.append(params.get("precision"))
        return bind(*args, **params)

    jax.clear_caches()
    prim.bind = spy
    try:
        yield seen
    finally:
        del prim.bind
        jax.clear_caches()


def test_every_traced_product_asks_for_highest(dot_precisions):
    """The jittable public functions are traced once inside ``jax.make_jaxpr`` (nothing compiled: their
    products are bound while tracing, exactly as in an eager call, which binds the same set of products:
    checked once against an eager run, which repeats some of the empirical NTK's); ``evaluate_grid`` is an
    eager driver (NumPy results) and runs as such, compiling its grid program."""
    rng = np.random.default_rng(0)
    f32 = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)  # noqa: E731
    x, xt, xr = f32(12, 3), f32(7, 3), f32(15, 3)
    kf = ntkd.mlp_kernel_fn(2)
    init_fn, apply_fn = finite.mlp(3, 16, 2)
    params = init_fn(jax.random.PRNGKey(0))
    vec = {n: f32(n) for n in (7, 12, 15)}

    def traced(x, xt, xr, vec, params):
        k, kt, ktt = kf(x, None, "ntk"), kf(xt, x, "ntk"), kf(xt, None, "ntk")
        k = k + 1e-3 * jnp.eye(12, dtype=k.dtype)
        z, v7, v15 = vec[12], vec[7], vec[15]
        y = (z > 0).astype(jnp.float32)
        # predictors (times are concrete NumPy values, as a caller under jit closes over them)
        ntkd.gradient_descent_mse(k, z)(np.asarray([0.5, 2.0, np.inf], np.float32), -z, v7, kt)
        ntkd.kernel_regression(k, z, kt)
        ntkd.gp_inference(k, z, kt, ktt)
        # Ji & Zhu: KD flow, risk, inefficiency
        ntkd.kd_function_space_flow(k, z, y, 0.7, 2.0, np.asarray([0.5, 1.0], np.float32), theta_test_train=kt)
        ntkd.alpha_n_exact(kf(xr, None, "ntk") + 1e-3 * jnp.eye(15), v15, -v15, np.arange(6))
        ntkd.weight_norm_curve(k, z, np.array([4, 8, 12]))
        ntkd.hard_label_effect(k, z, -z, 2 * z, norm_w_g=1.0)
        # empirical NTKs of a finite network, both methods (their VJPs/JVPs transpose the forward products)
        for method in ("jacobian", "ntvp"):
            ntkd.empirical_ntk(apply_fn, params, x, xt, method=method)
        return k

    jax.make_jaxpr(traced)(x, xt, xr, vec, params)
    n_traced = len(dot_precisions)
    # the sweep grid, converged (Cholesky) and at finite times (eigh), with a reference set
    ntkd.evaluate_grid(kf, x, vec[12], (vec[12] > 0) * 1.0, xt, f32(7), (f32(7) > 0) * 1.0, rho=[1.0, 0.5],
                       T=[2.0], t=(1.0, np.inf), reference=(xr, f32(15), (f32(15) > 0) * 1.0))
    assert n_traced > 40 and len(dot_precisions) > n_traced  # the spy saw the programs
    assert set(dot_precisions) == {HIGHEST}, sorted(set(map(str, dot_precisions)))


def test_the_spy_sees_a_default_precision_product(dot_precisions):
    """The fixture's spy is not blind: a plain ``a @ b`` records precision None."""
    a = jnp.ones((3, 3), jnp.float32)
    jax.jit(lambda v: v @ v)(a)
    assert None in dot_precisions
