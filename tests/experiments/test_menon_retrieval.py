"""The Menon study's retrieval part (M9): sampled-softmax students trained in one vmap learn the task (well above
chance, on label and on teacher positives), and the m9 summary's
verdicts follow the stored rows both ways."""
import jax
import jax.numpy as jnp
import numpy as np

from ntkd.experiments.menon import figures
from ntkd.experiments.menon.study import (
    lowrank_student,
    noisy_teacher_probs,
    train_retrieval,
)
from ntkd.theories import bias_variance as bv


def test_retrieval_students_learn_and_teacher_is_noisy_p_star():
    K, d, P, n = 30, 4, 3, 100
    task = bv.retrieval_task(jax.random.PRNGKey(0), K, d, tau0=1.0, dtype=np.float32)
    teacher = noisy_teacher_probs(task, jax.random.PRNGKey(1), 0.0)  # σ = 0: the teacher is p* exactly
    x, pos = bv.sample_positives(task, jax.random.PRNGKey(2), n, P)
    np.testing.assert_allclose(teacher(x), bv.bayes_probs(task, x), rtol=1e-5, atol=1e-7)
    init_fn, apply_fn = lowrank_student(d, K, 4)
    w = jnp.full(pos.shape, 1.0 / P, jnp.float32)
    tpi, tpw = bv.teacher_positives(teacher(x), P)
    uni = jnp.full((n, K), -np.log(K), jnp.float32)
    lp_t = bv.negative_proposal(teacher(x), exclude=tpi, uniform_mix=0.5)
    params, last = train_retrieval(jax.random.split(jax.random.PRNGKey(3), 2), jnp.stack([x, x]), jnp.stack([pos, tpi]),
                                   jnp.stack([w, tpw]), jnp.stack([uni, lp_t]), init_fn=init_fn, apply_fn=apply_fn,
                                   m=8, steps=80, lr=0.05)
    assert np.isfinite(last).all()
    x_te, _ = bv.sample_positives(task, jax.random.PRNGKey(4), n, P)  # the training shapes: no new compiles
    ps = bv.bayes_probs(task, x_te)
    bayes = float(bv.oracle_precision_at_k(ps, ps, 1).mean())
    for b in range(2):
        s = apply_fn(jax.tree_util.tree_map(lambda a, b=b: a[b], params), x_te)
        orc = float(bv.oracle_precision_at_k(s, ps, 1).mean())
        assert orc > 0.5 and bayes == 1.0  # chance is 1/30


def _rows(dd_gain):
    rows = []
    for m in (2, 8):
        for s in range(4):
            for arm in figures._ARMS:
                g = dd_gain if arm == figures._DD else 0.0
                noise = 0.001 * ((s * 7 + m) % 3)
                rows.append({"m": m, "seed": s, "arm": arm, **{f"P@{k}": 0.2 + g + noise for k in (1, 3, 5)},
                             **{f"oracle P@{k}": 0.4 + g + noise for k in (1, 3, 5)}})
    ref = {"P@1": 0.5, "P@3": 0.3, "P@5": 0.2, "oracle P@1": 1.0, "oracle P@3": 1.0, "oracle P@5": 1.0}
    cfg = {**figures._m9_config(True), "m": [2, 8], "seeds": 4}
    return {"config": cfg, "rows": rows, "reference": {"Bayes p*": ref, "teacher": {**ref, "distance": 0.1}}}


def test_m9_summary_can_fail(tmp_path):
    _, good = figures._summary_m9(tmp_path, _rows(0.05))
    assert good["M9 double distillation vs uniform + one-hot: better on oracle P@1"]
    _, bad = figures._summary_m9(tmp_path, _rows(-0.05))
    assert not bad["M9 double distillation vs uniform + one-hot: better on oracle P@1"]
    assert not any(bad.values())


def test_kernel_students_match_kernel_teacher_and_are_linear_in_targets():
    from ntkd.experiments.menon.study import kernel_students
    from ntkd.kernels import mlp_kernel_fn
    task, _ = figures.t1_instance()
    x, y = bv.sample(task, jax.random.PRNGKey(3), 40)
    x_eval, _ = bv.sample(task, jax.random.PRNGKey(4), 40)  # the training shape: no new compiles
    kfn = mlp_kernel_fn(1)
    onehot = np.eye(3)[np.asarray(y)]
    ps = np.asarray(bv.bayes_probs(task, x))
    out = kernel_students(kfn, x, {"one-hot": onehot, "p*": ps, "mix": 0.5 * onehot + 0.5 * ps}, x_eval=x_eval,
                          diag_reg=1e-4)
    np.testing.assert_allclose(out["one-hot"], bv.kernel_teacher(kfn, x, y, 3, diag_reg=1e-4)(x_eval), rtol=1e-9)
    c = {k: np.log(v) - np.log(v).mean(1, keepdims=True) for k, v in out.items()}  # = K f, centred per row
    np.testing.assert_allclose(c["mix"], 0.5 * c["one-hot"] + 0.5 * c["p*"], rtol=1e-8, atol=1e-10)


def _kind_rows(hard_gap):
    rows = []
    for n in (50, 200):
        for s in range(3):
            for kind in figures._KINDS:
                for obj, ex in [("one-hot", 0.1), ("Bayes p*", 0.01), ("tempered τ=1.5", 0.02),
                                ("hard (argmax p*)", 0.02 + hard_gap)]:
                    e = ex * (1 + 0.05 * s)
                    rows.append({"N": n, "seed": s, "student": kind, "objective": obj, "excess_risk": e,
                                 "accuracy": 0.8, "log_loss": 0.5 + e, "sq_distance": e / 2})
    return {"N": [50, 200], "seeds": 3, "rows": rows}


def test_kinds_summary_can_fail(tmp_path):
    _, c = figures._summary_kinds(tmp_path, _kind_rows(0.1))
    assert c["M5 MLP: Bayes-distilled beats one-hot"] and c["M6 NTK kernel: hard teacher worse than tempered τ=1.5"]
    _, c = figures._summary_kinds(tmp_path, _kind_rows(-0.015))
    assert not c["M6 linear: hard teacher worse than tempered τ=1.5"]
