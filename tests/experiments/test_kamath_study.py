"""The Kamath study (Dao, Kamath et al. 2021): the tabular path with scikit-learn teachers and students,
a local CSV, the corrected losses inside ntkd.finite.train_classifier, and the synthetic runner's resume
and summary checks."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkd.experiments.kamath import figures
from ntkd.experiments.kamath import tabular as tab
from ntkd.experiments.kamath.synthetic import run_synthetic, synthetic_config
from ntkd.finite import mlp, train_classifier
from ntkd.theories.crossfit import kd_ortho_loss, trainer_loss


@pytest.fixture(scope="module")
def cancer():
    return tab.load_dataset("breast_cancer")


def test_load_dataset_split_and_standardisation(cancer, tmp_path):
    xtr, ytr, xte, yte = cancer
    assert xtr.shape == (398, 30) and xte.shape == (171, 30) and set(np.unique(ytr)) == {0, 1}
    np.testing.assert_allclose(xtr.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(xtr.std(0), 1, rtol=1e-12)
    p = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    lines = ["a,b,label"] + [f"{u:.5f},{v:.5f},{'yes' if u + v > 0 else 'no'}" for u, v in rng.normal(size=(50, 2))]
    p.write_text("\n".join(lines))
    a, b, c, d = tab.load_dataset(f"csv:{p}:label")
    assert a.shape == (35, 2) and c.shape == (15, 2) and set(np.unique(np.r_[b, d])) == {0, 1}
    with pytest.raises(ValueError, match="column"):
        tab.load_dataset(f"csv:{p}:nope")
    with pytest.raises(ValueError, match="unknown dataset"):
        tab.load_dataset("adult")


def test_rf_teacher_crossfit_and_targets(cancer):
    from sklearn.metrics import roc_auc_score

    xtr, ytr, xte, yte = cancer
    tp = tab.teacher_probs(xtr, ytr, xte, K=3, n_estimators=20, seed=0)
    assert tp["cf"].shape == (398,) and tp["test_cf"].shape == (3, 171)
    # the in-sample forest is overconfident on its own points; out-of-fold probabilities are not
    err_in = np.mean(np.abs(tp["in"] - ytr))
    err_cf = np.mean(np.abs(tp["cf"] - ytr))
    assert err_in < 0.5 * err_cf
    np.testing.assert_allclose(tab.score("auc", yte, tp["test_full"]), roc_auc_score(yte, tp["test_full"]),
                               rtol=1e-12)
    pc = np.maximum(tp["cf"], 1 / 500)
    t = tab.student_targets(tp["cf"], ytr, scale="logp", rule="ortho")
    np.testing.assert_allclose(t, np.log(pc) + (ytr - tp["cf"]) / pc, rtol=1e-12)
    c = tab.choose_c(xtr, ytr, tp["cf"], grid=[1e-3, 1.0], n_trees=2, scale="p", metric="auc", folds=2)
    assert c in (1e-3, 1.0)


def test_orthogonal_loss_at_T1_trains_exactly_like_labels_in_train_classifier():
    # C3 inside the shared trainer: at T = 1, alpha = 1 the orthogonal KL loss has the label-CE gradient
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3))
    y = rng.integers(0, 3, 16)
    z_t = rng.normal(size=(16, 3))
    init, apply = mlp(3, 1, 0, out_dim=3, dtype=jnp.float64)
    p0 = init(jax.random.PRNGKey(0))
    kw = {"steps": 15, "key": jax.random.PRNGKey(1), "optimizer": optax.sgd(0.3), "log_steps": [15]}
    pa, la = train_classifier(apply, p0, x, {"z_t": z_t, "y": y}, **kw,
                              loss_fn=trainer_loss(kd_ortho_loss, T=1.0, alpha=1.0, eps=1e-12))
    pb, lb = train_classifier(apply, p0, x, y, **kw)
    for u, v in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb)):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12)
    ent = -np.mean(np.sum(jax.nn.softmax(z_t) * jax.nn.log_softmax(z_t), -1))
    np.testing.assert_allclose(la.loss[-1], lb.loss[-1] - ent, rtol=1e-9)  # CE(y, q) - H(p̂)


def test_synthetic_runner_resumes_and_summary_checks_read_the_rows(tmp_path):
    cfg = dict(synthetic_config(True), ns=[40], seeds=2, steps=20, n_test=100, teachers=["underfit"],
               c_grid=[1.0])
    rows = run_synthetic(cfg, tmp_path)
    assert len(rows) == 2 * 5 and {r["variant"] for r in rows} == {"labels", "kd", "cf", "kd_bf", "cf_bf"}
    before = (tmp_path / "rows.jsonl").read_text()
    run_synthetic(cfg, tmp_path)  # nothing left to do: the file is unchanged
    assert (tmp_path / "rows.jsonl").read_text() == before
    kd = [r["sq_err"] for r in rows if r["variant"] == "kd"]
    assert kd == [r["sq_err"] for r in rows if r["variant"] == "cf"]  # a data-free teacher: cf = kd
    (tmp_path / "figure.json").write_text(json.dumps({"paper": "kamath", "figure": "synthetic"}))
    out = figures.plot(tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert "C8" in text and "Identity" in text and (tmp_path / "synthetic.png").exists()
    # the verdict follows the rows: make vanilla KD perfect and the C8 check must fail
    fake = [dict(r, sq_err=0.0) if r["variant"] == "kd" else r for r in rows]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fake))
    assert out["checks"]["C8_corrected_beats_vanilla_every_n"] in (True, False)
    assert figures.plot(tmp_path)["checks"]["C8_corrected_beats_vanilla_every_n"] is False


def test_reproduce_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="kamath-students"):
        figures.reproduce("kamath-fig9", tmp_path)


def test_network_fold_teachers_never_see_their_fold_and_route_out_of_fold():
    from ntkd.experiments.kamath.networks import train_crossfit_teachers
    from ntkd.theories.crossfit import crossfit_batch_teacher_logits, fold_ids

    rng = np.random.default_rng(1)
    n, K = 12, 3
    x = rng.normal(size=(n, 2))
    y = rng.integers(0, 2, n)
    fold = np.asarray(fold_ids(n, K, key=jax.random.PRNGKey(0)))
    init, apply = mlp(2, 8, 1, out_dim=2, dtype=jnp.float64)
    kw = {"K": K, "steps": 4, "key": jax.random.PRNGKey(2), "log_steps": [4]}
    pa, _ = train_crossfit_teachers(apply, init, x, y, fold, **kw)
    y2 = np.where(fold == 0, 1 - y, y)  # flip the labels of fold 0 only
    pb, _ = train_crossfit_teachers(apply, init, x, y2, fold, **kw)
    for u, v in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb)):
        np.testing.assert_array_equal(u[0], v[0])  # teacher 0 never trained on fold 0: bit-identical
        assert not np.allclose(u[1:], v[1:])  # the other teachers did see those labels
    idx = np.arange(n)
    z = crossfit_batch_teacher_logits(apply, pa, x, idx, fold)
    for i in idx:
        ref = apply(jax.tree_util.tree_map(lambda a: a[fold[i]], pa), x[i:i + 1])[0]
        np.testing.assert_allclose(z[i], ref, rtol=1e-12)
