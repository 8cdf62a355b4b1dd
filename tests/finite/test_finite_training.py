"""Finite-width networks trained on the KD loss against the kernel limit (ntkd.finite).

References are independent of the trainer: the empirical NTK (itself checked against finite differences
in test_empirical), Eq. 4 in closed form, a float64 NumPy loop of function-space gradient descent, and
the analytic NTK.
"""
import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

import ntkd
from ntkd import finite as F


def _data(n=6, m=16, seed=0):
    x = 5 * np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (n, 2)))
    xt = 5 * np.asarray(jax.random.normal(jax.random.PRNGKey(seed + 1), (m, 2)))
    zt = 1.5 * np.sin(x[:, 0] / 3 + x[:, 1] / 4)
    return x, zt, (zt > 0).astype(float), xt


def test_mlp_pure_pair_is_the_nnx_module_and_vmaps_over_seeds():
    init_fn, apply_fn = F.mlp(2, 8, 2, dtype=jnp.float64)
    x = _data()[0]
    model = F.NTKMLP(2, 8, 2, rngs=nnx.Rngs(params=jax.random.PRNGKey(5)), dtype=jnp.float64)
    np.testing.assert_array_equal(apply_fn(init_fn(jax.random.PRNGKey(5)), x), model(x))
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    batched = jax.vmap(init_fn)(keys)
    for i in range(3):
        np.testing.assert_array_equal(apply_fn(jax.tree_util.tree_map(lambda a: a[i], batched), x),
                                      apply_fn(init_fn(keys[i]), x))


def test_linearized_sgd_converges_to_eq4_with_weights_in_the_span():
    """Gradient descent on the linearized network: test logits -> converged_student with its empirical NTK,
    ‖Δw‖ -> sqrt(Δzᵀ Θ̂⁻¹ Δz) (Eq. 4), and Δw stays in span{∂f(x_i)/∂w} (the rows of J(X))."""
    x, zt, yg, xt = _data()
    init_fn, apply_fn = F.mlp(2, 256, 1, dtype=jnp.float64)
    p0 = init_fn(jax.random.PRNGKey(3))
    th, thx = ntkd.empirical_ntk(apply_fn, p0, x), ntkd.empirical_ntk(apply_fn, p0, xt, x)
    lr = 4 * len(x) / float(np.linalg.eigvalsh(th).max())  # < 8n/λmax: stable for σ' ≤ 1/4
    rho, T = 0.5, 1.0
    zeff = ntkd.effective_logits(zt, yg, rho, T)
    z0, z0t = apply_fn(p0, x), apply_fn(p0, xt)
    pred = np.asarray(ntkd.converged_student(thx, th, zeff, z0_train=z0, z0_test=z0t))
    p, log = F.train_kd(apply_fn, p0, (x, zt, yg), rho=rho, T=T, optimizer=optax.sgd(lr), steps=20000,
                        linearized=True, x_test=xt, log_steps=[0, 10000])
    scale = np.abs(pred - z0t).max()
    np.testing.assert_allclose(log.test_logits[-1], pred, atol=1e-8 * scale)
    np.testing.assert_allclose(log.train_logits[-1], zeff, atol=1e-8 * np.abs(zeff).max())
    np.testing.assert_allclose(log.dw_norm[-1], ntkd.weight_change_norm(th, zeff - z0), rtol=1e-8)
    # span: Δw = J(X)ᵀ c with c = Θ̂⁻¹ J(X) Δw
    dw = ravel_pytree(p)[0] - ravel_pytree(p0)[0]
    flat0, unravel = ravel_pytree(p0)
    J = jax.jacrev(lambda v: apply_fn(unravel(v), x))(flat0)  # (n, P)
    c = np.linalg.solve(np.asarray(th), np.asarray(J @ dw))
    assert np.linalg.norm(dw - J.T @ c) < 1e-9 * np.linalg.norm(dw)
    # the logged loss is ntkd.kd_loss of the logged logits
    np.testing.assert_allclose(log.loss[-1], ntkd.kd_loss(log.train_logits[-1], zt, yg, rho, T), rtol=1e-12)


def test_adam_leaves_the_span_of_eq4():
    """The documented decision: Adam's per-coordinate scaling takes Δw out of span J(X), so the converged
    Adam student interpolates z_eff on the training set with a larger-norm weight change than Eq. 4."""
    x, zt, yg, xt = _data()
    init_fn, apply_fn = F.mlp(2, 256, 1, dtype=jnp.float64)
    p0 = init_fn(jax.random.PRNGKey(3))
    th = ntkd.empirical_ntk(apply_fn, p0, x)
    zeff = ntkd.effective_logits(zt, yg, 1.0, 2.0)
    _, log = F.train_kd(apply_fn, p0, (x, zt, yg), rho=1.0, T=2.0, optimizer=optax.adam(1e-2), steps=6000,
                        linearized=True, log_steps=[0])
    np.testing.assert_allclose(log.train_logits[-1], zeff, atol=0.02)
    assert log.dw_norm[-1] > 1.2 * float(ntkd.weight_change_norm(th, zeff - apply_fn(p0, x)))


def _numpy_kernel_gd(K, Kx, z0, f0, zt, yg, rho, T, lr, steps):
    n = len(zt)
    z, f = np.array(z0, float), np.array(f0, float)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for _ in range(steps):
        g = (rho / T * (sig(z / T) - sig(zt / T)) + (1 - rho) * (sig(z) - yg)) / n
        z, f = z - lr * K @ g, f - lr * Kx @ g
    return f


@pytest.mark.parametrize("rho,T", [(1.0, 2.0), (0.3, 5.0)])
def test_linearized_training_is_function_space_gd_with_its_empirical_ntk(rho, T):
    x, zt, yg, xt = _data(n=10)
    init_fn, apply_fn = F.mlp(2, 64, 2, dtype=jnp.float64)
    p0 = init_fn(jax.random.PRNGKey(0))
    th, thx = np.asarray(ntkd.empirical_ntk(apply_fn, p0, x)), np.asarray(ntkd.empirical_ntk(apply_fn, p0, xt, x))
    _, log = F.train_kd(apply_fn, p0, (x, zt, yg), rho=rho, T=T, optimizer=optax.sgd(0.3), steps=150,
                        linearized=True, x_test=xt, log_steps=[0])
    ref = _numpy_kernel_gd(th, thx, apply_fn(p0, x), apply_fn(p0, xt), zt, yg, rho, T, 0.3, 150)
    np.testing.assert_allclose(log.test_logits[-1], ref, rtol=1e-9, atol=1e-9)


def test_runs_vmap_equals_separate_runs_and_full_minibatch_equals_full_batch():
    x, zt, yg, xt = _data(n=8)
    init_fn, apply_fn = F.mlp(2, 32, 2, dtype=jnp.float64)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    p0 = jax.vmap(init_fn)(keys)
    kw = dict(optimizer=optax.adam(3e-3), steps=40, x_test=xt, log_steps=[0, 20])
    pb, lb = F.train_kd(apply_fn, p0, (x, zt, yg), rho=np.array([1.0, 0.2]), T=np.array([2.0, 1.0]),
                        runs=2, seed=[0, 1], **kw)
    for i, (r, t) in enumerate([(1.0, 2.0), (0.2, 1.0)]):
        _, l1 = F.train_kd(apply_fn, init_fn(keys[i]), (x, zt, yg), rho=r, T=t, seed=i, **kw)
        np.testing.assert_allclose(lb.test_logits[i], l1.test_logits, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lb.dw_norm[i], l1.dw_norm, rtol=1e-12, atol=1e-14)
    # batches of all n samples drawn without replacement are permutations: same gradients as full batch
    _, lf = F.train_kd(apply_fn, init_fn(keys[0]), (x, zt, yg), rho=0.5, T=2.0, **kw)
    _, lm = F.train_kd(apply_fn, init_fn(keys[0]), (x, zt, yg), rho=0.5, T=2.0, batch_size=8, **kw)
    np.testing.assert_allclose(lm.test_logits, lf.test_logits, rtol=1e-10, atol=1e-12)
    _, lh = F.train_kd(apply_fn, init_fn(keys[0]), (x, zt, yg), rho=0.5, T=2.0, batch_size=4, **kw)
    assert np.abs(lh.test_logits[-1] - lf.test_logits[-1]).max() > 1e-6  # minibatches do differ


def test_checkpointed_training_resumes_to_the_uninterrupted_result(tmp_path):
    x, zt, yg, xt = _data(n=8)
    init_fn, apply_fn = F.mlp(2, 16, 2, dtype=jnp.float64)
    p0 = init_fn(jax.random.PRNGKey(0))
    kw = dict(rho=0.5, T=2.0, optimizer=optax.adam(1e-2), steps=60, batch_size=4, x_test=xt,
              log_steps=[0, 10, 20, 30, 40, 50], optimizer_id="adam:1e-2")
    _, ref = F.train_kd(apply_fn, p0, (x, zt, yg), **kw)

    class Killer(io.StringIO):
        lines = 0

        def write(self, s):
            if s.startswith("  ["):  # one progress line per logging interval
                Killer.lines += 1
                if Killer.lines == 3:
                    raise KeyboardInterrupt
            return super().write(s)

    ck = tmp_path / "run.npz"  # an orbax directory whatever its name
    with pytest.raises(KeyboardInterrupt):
        F.train_kd(apply_fn, p0, (x, zt, yg), checkpoint=ck, progress=Killer(), **kw)
    assert [p.name for p in ck.iterdir()] == ["3"]  # one step kept: 3 finished log points
    (ck / "4.orbax-checkpoint-tmp").mkdir()  # a save cut short (SIGKILL) leaves its temporary directory
    (ck / "4.orbax-checkpoint-tmp" / "junk").write_text("partial")
    out = io.StringIO()
    _, got = F.train_kd(apply_fn, p0, (x, zt, yg), checkpoint=ck, progress=out, **kw)
    assert "resuming from" in out.getvalue() and "at log point 3/" in out.getvalue()
    for a, b in zip(got[:5], ref[:5]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="`checkpoint`.*different run"):
        F.train_kd(apply_fn, p0, (x, zt, yg), checkpoint=ck, **{**kw, "rho": 0.4})
    old = tmp_path / "old.npz"
    old.write_bytes(b"PK")  # a checkpoint file of the former .npz format is refused, not overwritten
    with pytest.raises(ValueError, match="`checkpoint`.*is a file"):
        F.train_kd(apply_fn, p0, (x, zt, yg), checkpoint=old, **kw)


def test_online_teacher_learns_and_checkpoints_are_its_params():
    truth = lambda x: x[:, 0] + 0.5 * x[:, 1] - 1.0  # noqa: E731
    init_fn, apply_fn = F.mlp(2, 32, 2, dtype=jnp.float64)
    run = F.train_teacher(apply_fn, init_fn(jax.random.PRNGKey(0)), truth, epochs=300, batch_size=64,
                          stop_epochs=[0, 30, 300], optimizer=optax.adam(1e-2), n_test=2048)
    assert run.test_error[-1] < 0.05 < run.test_error[0]
    xq = np.asarray(_data()[3])
    teacher = F.network_teacher(apply_fn, run.at(300), reduction=0.3)
    final = F.network_teacher(apply_fn, run.at(300))
    np.testing.assert_allclose(teacher(xq), 0.3 * final(xq), rtol=1e-14)
    with pytest.raises(ValueError, match="`epoch`"):
        run.at(7)


def test_online_sampler_labels_and_fresh_batches():
    s = F.online_sampler(lambda x: (0.3 * x[:, 0], x[:, 1]), dtype=jnp.float64)
    x, z_t, y_g = s(jax.random.PRNGKey(0), 4000)
    np.testing.assert_allclose(z_t, 0.3 * x[:, 0])
    np.testing.assert_array_equal(y_g, (x[:, 1] > 0).astype(float))
    assert abs(float(x.std()) - 5.0) < 0.2
    assert not np.allclose(s(jax.random.PRNGKey(1), 4)[0], x[:4])


def test_ntk_convergence_rate():
    x = _data(n=8)[0]
    res = F.ntk_convergence(x, [64, 256, 1024, 4096], depth=1, seeds=(0, 1, 2))
    assert (np.diff(res["mean"]) < 0).all()
    assert -0.75 < res["slope"] < -0.3, res  # O(1/√width)


@pytest.mark.slow
def test_gap_to_kernel_prediction_falls_with_width():
    """Comparison 4 on CPU: the relative gap between trained students and their infinite-width limit
    (same gradient-descent steps with the analytic NTK) falls between each pair of widths by more than
    twice the combined standard error over seeds and ρ; the fitted slope is near -1/2."""
    x, zt, yg, xt = _data(n=8, m=32)
    zt = 1.5 * np.sin(x[:, 0] / 3 + x[:, 1] / 4)
    res = F.width_gap(x, zt, (zt > 0).astype(float), xt, widths=[64, 512, 4096], depth=1, rhos=[1.0, 0.3],
                      T=2.0, seeds=[0, 1, 2, 3], steps=300, learning_rate=0.05, reference="trajectory")
    for kind in ("nonlinear", "linearized"):
        r = res[kind]
        se = r["std"] / np.sqrt(r["gap"][0].size)
        assert (r["mean"][:-1] - r["mean"][1:] > 2 * np.hypot(se[:-1], se[1:])).all(), (kind, r["mean"], se)
        assert -0.8 < r["slope"] < -0.3, (kind, r["slope"])


def test_student_vs_kernel_converged_reference_and_empirical_prediction():
    x, zt, yg, xt = _data(n=6)
    th = ntkd.mlp_kernel_fn(1)(x, None, "ntk")
    lr = 4 * 6 / float(np.linalg.eigvalsh(th).max())
    out = F.student_vs_kernel(x, zt, yg, xt, rhos=[1.0, 0.5], T=1.0, width=256, depth=1, seeds=[0],
                              steps=20000, learning_rate=lr, nonlinear=False)
    assert out["gap_linearized_empirical"].max() < 1e-6  # converged to its own Eq. 4
    assert 0.005 < out["gap_linearized"].max() < 0.5  # the finite-width kernel differs from Θ


def test_bad_arguments_are_refused():
    x, zt, yg, xt = _data()
    init_fn, apply_fn = F.mlp(2, 8, 1, dtype=jnp.float64)
    p0 = init_fn(jax.random.PRNGKey(0))
    d = (x, zt, yg)
    with pytest.raises(ValueError, match="`rho`"):
        F.train_kd(apply_fn, p0, d, rho=1.5, steps=1)
    with pytest.raises(ValueError, match="`T`"):
        F.train_kd(apply_fn, p0, d, T=0.0, steps=1)
    with pytest.raises(ValueError, match="`data`"):
        F.train_kd(apply_fn, p0, (x, zt[:3], yg), steps=1)
    with pytest.raises(ValueError, match="NaN"):
        F.train_kd(apply_fn, p0, (np.where(x > 0, np.nan, x), zt, yg), steps=1)
    with pytest.raises(ValueError, match="batch_size"):
        F.train_kd(apply_fn, p0, F.online_sampler(lambda v: v[:, 0]), steps=1)
    with pytest.raises(ValueError, match="`runs`"):
        F.train_kd(apply_fn, p0, d, steps=1, runs=3)
    with pytest.raises(ValueError, match="`log_steps`"):
        F.train_kd(apply_fn, p0, d, steps=5, log_steps=[0, 9])
    with pytest.raises(ValueError, match="`optimizer`"):
        F.train_kd(apply_fn, p0, d, steps=1, optimizer="adam")
    with pytest.raises(ValueError, match="`reference`"):
        F.student_vs_kernel(x, zt, yg, xt, rhos=[1.0], T=1.0, width=8, depth=1, optimizer="adam",
                            reference="trajectory")
    with pytest.raises(FloatingPointError, match="learning rate"):
        F.train_kd(apply_fn, p0, d, steps=50, optimizer=optax.sgd(1e6))


@pytest.mark.parametrize("raw,key", [
    ({"comparison": "nope"}, "comparison"),
    ({"comparison": "width_gap", "train": {"learning_rat": 1.0}}, "train.learning_rat"),
    ({"comparison": "width_gap", "train": {"rho": [1.0, 1.5]}}, "train.rho"),
    ({"comparison": "width_gap", "train": {"rho": [0.0]}}, "train.rho"),
    ({"comparison": "width_gap", "train": {"optimizer": "adam"}}, "train.reference"),
    ({"comparison": "width_gap", "model": {"widths": 64}}, "model.widths"),
    ({"comparison": "width_gap", "data": {"n": 0}}, "data.n"),
    ({"comparison": "weight_change", "train": {"T": -1.0}}, "train.T"),
])
def test_finite_width_configs_are_refused_naming_the_key(raw, key):
    from ntkd.experiments.ji_zhu.finite_runs import finite_config

    with pytest.raises(ValueError, match=f"'{key}'"):
        finite_config(raw)


def test_finite_width_cli_runs_a_small_config(tmp_path):
    from ntkd.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('comparison = "ntk_convergence"\n[data]\nn = 6\n[model]\nwidths = [32, 512]\n'
                   '[train]\nseeds = [0, 1]\n')
    assert main(["finite-width", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    import json
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["mean"][1] < res["mean"][0]
    assert (tmp_path / "o" / "ntk_convergence.png").exists() and (tmp_path / "o" / "summary.md").exists()
