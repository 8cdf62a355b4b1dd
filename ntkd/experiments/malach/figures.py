"""Reproductions for Kaplun, Malach, Nakkiran & Shalev-Shwartz (2022), "Knowledge Distillation: Bad Models
Can Be Good Role Models" (filed as ``malach``): the synthetic claims of brief §5.3 as figures with
``summary.md`` verdicts computed from the stored rows.

Figures (``ntkd reproduce malach-<name> [--quick]``):

* ``c2``: halfspace with 20% flips (d = 2): 1-NN, Laplace (σ = 0.1) and ReLU-NTK (depth 2) interpolating
  teachers on m labelled points, logistic students on n = 20000 teacher-labelled points (C2, C4), the
  Theorem-A check L(student) ≤ L* + 2ε̂_H + 2ε̂_n (C10) and the direct-learning baseline (C11);
* ``c3``: 10 angle sectors with pair-flip noise c -> c+5 (the paper's CIFAR noise): 1-NN teacher, softmax
  student on 10-harmonic features, a finite MLP student (``ntkd.finite``), local students (1-NN, 101-NN;
  C6, C7), vote of K independent
  teachers (C9), direct baseline (C11);
* ``c5``: small-bandwidth Gaussian/Laplace interpolants agree with the 1-NN teacher; intermediate Gaussian
  bandwidths are worse than a sampler and labelled "not a sampler" (``samplers.replication_regime``);
* ``c6``: the student must not interpolate: NTK kernel-ridge students over λ and NTK gradient-flow
  students over t on 1-NN teacher labels;
* ``c7``: the effective sample size is m: logistic students on n = m..100m 1-NN teacher labels (m = 200,
  2000); no gain beyond n ≈ 10m, and at equal n the larger-m teacher gives the better student;
* ``c8``: dimension dependence (sphere_sign, Gaussian inputs, d = 2..100): 1-NN and Laplace teachers
  and their students;
* ``mlp``: finite ReLU MLPs trained to interpolation (``ntkd.finite.interpolate``) on R independent noisy
  label draws as teachers, beside 1-NN on the same labels: risk, replication ratio, regime, pointwise (S1)
  gap against an exact sampler's R-draw floor, and their students.

Every (figure, setting, seed) is one JSON row under ``<out>/<fig>/rows/``; a rerun skips rows already
there (resumable). Risks are computed against the exact D(y|x) of the test points. All runs are float64
(``jax.enable_x64`` scoped to the run). Local k-NN students on 10^5 points use SciPy's k-d tree (host
code; the JAX k-NN of :mod:`ntkd.theories.samplers` costs O(k·n·m)).
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

from ..._core.linalg import mm
from ..._core.spectral import flow_phi
from ...theories import samplers as S
from ..plotting import figure_names, pyplot, verdict, write_summary
from ..runner import run_figures

__all__ = ["FIGURES", "plot", "reproduce"]

FIGURES = ("c2", "c3", "c5", "c6", "c7", "c8", "mlp")


def _sizes(fig, quick):
    if fig == "c2":
        return {"m": [500, 2000], "n": 20000, "n_test": 20000 if quick else 40000, "seeds": 2 if quick else 5}
    if fig == "c3":
        return {"m": [2000, 5000], "n": 20000 if quick else 100000, "n_test": 10000 if quick else 20000,
                "seeds": 1 if quick else 3, "K": [1, 5, 15]}
    if fig == "c6":
        return {"m": 2000, "n": 2000 if quick else 5000, "n_test": 20000, "seeds": 2 if quick else 3,
                "ridge": [1e-6, 1e-2, 0.1, 1.0, 10.0], "t": [1.0, 10.0, 100.0, 1e3, 1e4]}
    if fig == "c8":
        return {"d": [2, 5, 20, 100], "m": 2000, "n": 20000, "n_test": 20000, "seeds": 1 if quick else 3}
    if fig == "c5":
        return {"m": 2000, "n_test": 10000 if quick else 20000, "seeds": 2 if quick else 5, "ridge": 1e-10,
                "gaussian": [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1],
                "laplace": [0.002, 0.005, 0.01, 0.03, 0.1]}
    if fig == "c7":
        return {"m": [200, 2000], "n_over_m": [1, 2, 5, 10, 30, 100], "n_test": 20000, "seeds": 4 if quick else 10}
    if fig == "mlp":
        return {"m": 200, "R": 4 if quick else 8, "n": 20000, "n_test": 20000, "seeds": 1 if quick else 3,
                "width": 256, "depth": 3, "lr": 3e-3, "max_steps": 8000, "check_every": 1000}
    raise KeyError(fig)


def _row(d: Path, key: str, compute) -> dict:
    """The stored row ``key``, computed (and stored) only if absent: resumable runs."""
    f = d / "rows" / f"{key}.json"
    if f.exists():
        return json.loads(f.read_text())
    f.parent.mkdir(parents=True, exist_ok=True)
    row = {"key": key, **{k: float(v) for k, v in compute().items()}}
    f.write_text(json.dumps(row))
    return row


def _rows(d: Path) -> list:
    return [json.loads(f.read_text()) for f in sorted((Path(d) / "rows").glob("*.json"))]


def _logistic_student(xu, labels, xte, num_classes=2, feats=S.affine_features):
    import jax

    w = S.softmax_regression(feats(xu), jax.nn.one_hot(labels, num_classes, dtype=xu.dtype), l2=1e-6, iters=500)
    return S.hard_labels(mm(feats(xte), w))


def _knn_host(xtr, ytr, xq, k, num_classes):
    """k-NN majority labels with SciPy's k-d tree (ties -> lowest class), for large local students."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(np.asarray(xtr)).query(np.asarray(xq), k=k)
    idx = idx.reshape(len(xq), -1)
    votes = np.stack([(np.asarray(ytr)[idx] == c).sum(1) for c in range(num_classes)], 1)
    return votes.argmax(1)


def _mlp_student(key, xu, labels, xte, quick):
    """A finite ReLU MLP (depth 2, width 256, 10 logits) trained by Adam (lr 1e-3, batch 256) with
    cross-entropy on the teacher's hard labels, not to interpolation (3000 steps; 1500 quick):
    ``ntkd.finite.train_classifier``. Returns the argmax labels on ``xte``."""
    import jax

    from ...finite import mlp, train_classifier

    init_fn, apply_fn = mlp(xu.shape[1], 256, 2, out_dim=10)
    k1, k2 = jax.random.split(key)
    _, log = train_classifier(apply_fn, init_fn(k1), np.asarray(xu, np.float32), np.asarray(labels),
                              steps=1500 if quick else 3000, key=k2, batch_size=256,
                              x_test=np.asarray(xte, np.float32))
    return log.test_logits.argmax(1)


def _halfspace_family(key, xte, n_random=200):
    """Test hypotheses for ε̂_H: thresholds on x_1 and random halfspaces through [0,1]^2 (H ≈ 300)."""
    import jax
    import jax.numpy as jnp

    taus = jnp.linspace(0.0, 1.0, 101)
    k1, k2 = jax.random.split(key)
    w = jax.random.normal(k1, (n_random, xte.shape[1]), dtype=xte.dtype)
    c = jax.random.uniform(k2, (n_random, xte.shape[1]), dtype=xte.dtype)
    rand = (jnp.einsum("hd,nd->hn", w, xte, precision="highest") > jnp.sum(w * c, 1)[:, None]).astype(jnp.int32)
    return jnp.concatenate([S.threshold_family(xte[:, 0], taus), rand])


def _c2(d: Path, quick: bool, progress) -> None:
    import jax
    import jax.numpy as jnp

    sz = _sizes("c2", quick)
    task = S.halfspace_flip(d=2, rho=0.2)
    kernels = {"laplace": (S.laplace_kernel(0.1), 1e-8), "ntk": (S.relu_kernel(2, center=0.5, offset=0.5), 1e-6)}
    for m in sz["m"]:
        for seed in range(sz["seeds"]):
            for teacher in ("1nn", "laplace", "ntk", "direct"):
                def compute(m=m, seed=seed, teacher=teacher):
                    k = jax.random.split(jax.random.PRNGKey(seed), 6)
                    xtr = task.sample_x(k[0], m)
                    ytr = task.sample_y(k[1], xtr)
                    xu, xte = task.sample_x(k[2], sz["n"]), task.sample_x(k[3], sz["n_test"])
                    p = task.cond_probs(xte)
                    if teacher == "direct":  # C11: the student class on the m noisy labels
                        st = _logistic_student(xtr, ytr, xte)
                        return {"student_risk": S.risk(st, p), "student_dis_bayes": S.disagreement(st, task.bayes(xte))}
                    if teacher == "1nn":
                        lab = lambda x: S.hard_labels(S.knn_votes(xtr, ytr, x, num_classes=2))
                    else:
                        kf, ridge = kernels[teacher]
                        mac = S.fit_kernel_machine(kf, xtr, ytr, num_classes=2, ridge=ridge)
                        lab = lambda x: S.hard_labels(S.kernel_machine_scores(kf, mac, x))
                    y_u, y_te = lab(xu), lab(xte)
                    st = _logistic_student(xu, y_u, xte)
                    # C10: ε̂_H over thresholds, random halfspaces, the student and Bayes; ε̂_n = sup_h
                    # |L̂_U(h) - L_{D_f}(h)| with L_{D_f} estimated on the test points
                    fam = jnp.concatenate([_halfspace_family(k[4], xte), st[None], task.bayes(xte)[None]])
                    fam_u = jnp.concatenate([_halfspace_family(k[4], xu), _logistic_student(xu, y_u, xu)[None],
                                             task.bayes(xu)[None]])
                    eps_h = S.sampler_gap(y_te, p, fam)
                    eps_n = jnp.max(jnp.abs(jnp.mean(fam_u != y_u, 1) - jnp.mean(fam != y_te, 1)))
                    up = xte[:, 0] > 0.5
                    return {"teacher_risk": S.risk(y_te, p), "teacher_p1_up": jnp.sum(jnp.where(up, y_te, 0)) / jnp.sum(up),
                            "replication": S.noise_replication_ratio(y_te, p), "student_risk": S.risk(st, p),
                            "student_dis_bayes": S.disagreement(st, task.bayes(xte)), "eps_h": eps_h, "eps_n": eps_n}
                r = _row(d, f"m{m}_s{seed}_{teacher}", compute)
                _say(progress, f"c2 m={m} seed={seed} {teacher}: student {r['student_risk']:.4f}")


def _c3(d: Path, quick: bool, progress) -> None:
    import jax

    sz = _sizes("c3", quick)
    task = S.sectors_pairflip(num_classes=10, rho=0.2)
    for m in sz["m"]:
        for seed in range(sz["seeds"]):
            def compute(m=m, seed=seed):
                k = jax.random.split(jax.random.PRNGKey(100 + seed), 4 + max(sz["K"]))
                xu, xte = task.sample_x(k[0], sz["n"]), task.sample_x(k[1], sz["n_test"])
                clean = task.clean(xte)
                p = task.cond_probs(xte)
                te, first = [], None
                for r in range(max(sz["K"])):
                    xtr = task.sample_x(k[4 + r], m)
                    ytr = task.sample_y(jax.random.fold_in(k[4 + r], 1), xtr)
                    te.append(S.hard_labels(S.knn_votes(xtr, ytr, xte, num_classes=10)))
                    if r == 0:
                        first = (xtr, ytr)
                xtr, ytr = first
                y_u = S.hard_labels(S.knn_votes(xtr, ytr, xu, num_classes=10))
                st = _logistic_student(xu, y_u, xte, 10, S.fourier_features)
                direct = _logistic_student(xtr, ytr, xte, 10, S.fourier_features)
                out = {"teacher_clean_acc": S.accuracy(te[0], clean), "teacher_noisy_acc": 1 - S.risk(te[0], p),
                       "teacher_pairflip": (te[0] == (clean + 5) % 10).mean(),
                       "student_clean_acc": S.accuracy(st, clean), "direct_clean_acc": S.accuracy(direct, clean),
                       "student_1nn_clean_acc": np.mean(_knn_host(xu, y_u, xte, 1, 10) == np.asarray(clean)),
                       "student_101nn_clean_acc": np.mean(_knn_host(xu, y_u, xte, 101, 10) == np.asarray(clean))}
                out["student_mlp_clean_acc"] = np.mean(_mlp_student(k[2], xu, y_u, xte, quick) == np.asarray(clean))
                votes = jax.numpy.stack(te)
                for K in sz["K"]:
                    out[f"vote{K}_clean_acc"] = S.accuracy(S.ensemble_vote(votes[:K], 10), clean)
                return out
            r = _row(d, f"m{m}_s{seed}", compute)
            _say(progress, f"c3 m={m} seed={seed}: teacher {r['teacher_clean_acc']:.3f} student {r['student_clean_acc']:.3f}")


def _c6(d: Path, quick: bool, progress) -> None:
    import jax
    import jax.numpy as jnp

    sz = _sizes("c6", quick)
    task = S.halfspace_flip(d=2, rho=0.2)
    kf = S.relu_kernel(2, center=0.5, offset=0.5)
    for seed in range(sz["seeds"]):
        def compute(seed=seed):
            k = jax.random.split(jax.random.PRNGKey(200 + seed), 4)
            xtr = task.sample_x(k[0], sz["m"])
            ytr = task.sample_y(k[1], xtr)
            xu, xte = task.sample_x(k[2], sz["n"]), task.sample_x(k[3], sz["n_test"])
            p = task.cond_probs(xte)
            y_u = S.hard_labels(S.knn_votes(xtr, ytr, xu, num_classes=2))
            out = {"teacher_risk": S.risk(S.hard_labels(S.knn_votes(xtr, ytr, xte, num_classes=2)), p)}
            kq = kf(xte, xu)
            for lam in sz["ridge"]:
                mac = S.fit_kernel_machine(kf, xu, y_u, num_classes=2, ridge=lam)
                out[f"ridge_{lam:g}"] = S.risk(S.hard_labels(mm(kq, mac.alpha)), p)
            # one eigendecomposition for every t (the flow is a batched right-hand side)
            evals, evecs = jnp.linalg.eigh(kf(xu, xu))
            yo = jax.nn.one_hot(y_u, 2, dtype=xu.dtype)
            for t in sz["t"]:
                alpha = mm(evecs, flow_phi(evals, jnp.asarray(t), sz["n"])[:, None] * mm(evecs.T, yo))
                out[f"flow_{t:g}"] = S.risk(S.hard_labels(mm(kq, alpha)), p)
            return out
        r = _row(d, f"s{seed}", compute)
        _say(progress, f"c6 seed={seed}: teacher {r['teacher_risk']:.4f}")


def _c8(d: Path, quick: bool, progress) -> None:
    import jax

    sz = _sizes("c8", quick)
    for dim in sz["d"]:
        task = S.sphere_sign(d=dim, rho=0.2, law="gaussian")
        for seed in range(sz["seeds"]):
            for teacher in ("1nn", "laplace"):
                def compute(dim=dim, seed=seed, teacher=teacher, task=task):
                    k = jax.random.split(jax.random.PRNGKey(300 + seed), 4)
                    xtr = task.sample_x(k[0], sz["m"])
                    ytr = task.sample_y(k[1], xtr)
                    xu, xte = task.sample_x(k[2], sz["n"]), task.sample_x(k[3], sz["n_test"])
                    if teacher == "1nn":
                        lab = lambda x: S.hard_labels(S.knn_votes(xtr, ytr, x, num_classes=2))
                    else:
                        kf = S.laplace_kernel(float(np.sqrt(dim)))
                        mac = S.fit_kernel_machine(kf, xtr, ytr, num_classes=2, ridge=1e-8)
                        lab = lambda x: S.hard_labels(S.kernel_machine_scores(kf, mac, x))
                    y_te = lab(xte)
                    st = _logistic_student(xu, lab(xu), xte)
                    clean = task.clean(xte)
                    return {"teacher_clean_acc": S.accuracy(y_te, clean), "student_clean_acc": S.accuracy(st, clean)}
                r = _row(d, f"d{dim}_s{seed}_{teacher}", compute)
                _say(progress, f"c8 d={dim} seed={seed} {teacher}: teacher {r['teacher_clean_acc']:.3f} "
                               f"student {r['student_clean_acc']:.3f}")


def _c5(d: Path, quick: bool, progress) -> None:
    import jax

    sz = _sizes("c5", quick)
    task = S.halfspace_flip(d=2, rho=0.2)
    for seed in range(sz["seeds"]):
        def compute(seed=seed):
            k = jax.random.split(jax.random.PRNGKey(500 + seed), 3)
            xtr = task.sample_x(k[0], sz["m"])
            ytr = task.sample_y(k[1], xtr)
            xte = task.sample_x(k[2], sz["n_test"])
            p = task.cond_probs(xte)
            nn = S.hard_labels(S.knn_votes(xtr, ytr, xte, num_classes=2))
            out = {"1nn_risk": S.risk(nn, p), "1nn_replication": S.noise_replication_ratio(nn, p),
                   "1nn_regime": S.replication_regime(nn, p)}
            for name, make in (("gaussian", S.gaussian_kernel), ("laplace", S.laplace_kernel)):
                for sigma in sz[name]:
                    kf = make(sigma)
                    mac = S.fit_kernel_machine(kf, xtr, ytr, num_classes=2, ridge=sz["ridge"])
                    lab = S.hard_labels(S.kernel_machine_scores(kf, mac, xte))
                    tag = f"{name}_{sigma:g}"
                    out |= {f"{tag}_agree": S.accuracy(lab, nn), f"{tag}_risk": S.risk(lab, p),
                            f"{tag}_replication": S.noise_replication_ratio(lab, p),
                            f"{tag}_regime": S.replication_regime(lab, p)}
            return out
        r = _row(d, f"s{seed}", compute)
        _say(progress, f"c5 seed={seed}: gaussian σ=0.005 agrees with 1-NN {r['gaussian_0.005_agree']:.3f}")


def _c7(d: Path, quick: bool, progress) -> None:
    import jax

    sz = _sizes("c7", quick)
    task = S.halfspace_flip(d=2, rho=0.2)
    for m in sz["m"]:
        for seed in range(sz["seeds"]):
            def compute(m=m, seed=seed):
                k = jax.random.split(jax.random.PRNGKey(700 + seed), 4)
                xtr = task.sample_x(k[0], m)
                ytr = task.sample_y(k[1], xtr)
                xte = task.sample_x(k[2], sz["n_test"])
                pool = task.sample_x(k[3], max(sz["n_over_m"]) * m)  # nested unlabelled sets: paired in n
                p = task.cond_probs(xte)
                y_pool = S.hard_labels(S.knn_votes(xtr, ytr, pool, num_classes=2))
                out = {"teacher_risk": S.risk(S.hard_labels(S.knn_votes(xtr, ytr, xte, num_classes=2)), p),
                       "direct_risk": S.risk(_logistic_student(xtr, ytr, xte), p)}
                for q in sz["n_over_m"]:
                    out[f"student_n{q}"] = S.risk(_logistic_student(pool[:q * m], y_pool[:q * m], xte), p)
                return out
            r = _row(d, f"m{m}_s{seed}", compute)
            top = max(sz["n_over_m"])
            _say(progress, f"c7 m={m} seed={seed}: student at n = {top}m {r[f'student_n{top}']:.4f}")


def _binomial_tv_floor(eta, R):
    """E|Bin(R, η)/R - η|: the (S1) gap that R label draws of an exact sampler show at a point with
    Pr[y = 1] = η (the R-sample bias of :func:`ntkd.theories.samplers.pointwise_sampler_gap`)."""
    from scipy.stats import binom

    j = np.arange(R + 1)
    return float(np.sum(binom.pmf(j, R, eta) * np.abs(j / R - eta)))


def _mlp_interpolating_teachers(key, xtr, ys, sz):
    """R finite ReLU MLPs (NTK parameterization, ``depth`` × ``width``, 2 logits) trained by full-batch Adam
    on the same inputs and R independent label draws until training accuracy 1 (``ntkd.finite.interpolate``).
    Inputs are embedded as 4(x - 0.5) ([G]: centred, unit-ish scale). Returns (labels_of(x) -> (R, n), result)."""
    import jax
    import optax

    from ...finite import mlp
    from ...finite.interpolate import train_to_interpolation

    R = ys.shape[0]
    init_fn, apply_fn = mlp(xtr.shape[1], sz["width"], sz["depth"], out_dim=2)

    def emb(x):
        return np.asarray(4.0 * (np.asarray(x) - 0.5), np.float32)

    k1, k2 = jax.random.split(key)
    res = train_to_interpolation(apply_fn, jax.vmap(init_fn)(jax.random.split(k1, R)), emb(xtr), np.asarray(ys),
                                 key=k2, max_steps=sz["max_steps"], check_every=sz["check_every"],
                                 optimizer=optax.adam(sz["lr"]), runs=R, labels_per_run=True)
    return (lambda x: S.hard_labels(res.predict(emb(x)))), res


def _mlp(d: Path, quick: bool, progress) -> None:
    import jax
    import jax.numpy as jnp

    sz = _sizes("mlp", quick)
    task = S.halfspace_flip(d=2, rho=0.2)
    for seed in range(sz["seeds"]):
        def compute(seed=seed):
            k = jax.random.split(jax.random.PRNGKey(400 + seed), 5)
            xtr = task.sample_x(k[0], sz["m"])
            ys = jnp.stack([task.sample_y(jax.random.fold_in(k[1], r), xtr) for r in range(sz["R"])])
            xte, xu = task.sample_x(k[2], sz["n_test"]), task.sample_x(k[3], sz["n"])
            p = task.cond_probs(xte)
            up = xte[:, 0] > 0.5
            labels_of, res = _mlp_interpolating_teachers(k[4], xtr, ys, sz)
            nn = lambda x: jnp.stack([S.hard_labels(S.knn_votes(xtr, y, x, num_classes=2)) for y in ys])
            fams = {"mlp": (labels_of(xte), labels_of(xu)), "1nn": (nn(xte), nn(xu))}
            out = {"mlp_steps_mean": float(np.mean(res.steps)), "mlp_steps_max": float(np.max(res.steps)),
                   "mlp_train_acc_min": float(np.min(res.train_accuracy)),
                   "mlp_all_interpolated": float(np.all(res.interpolated)),
                   "direct_risk": S.risk(_logistic_student(xtr, ys[0], xte), p)}
            for name, (lab_te, lab_u) in fams.items():
                freq = S.label_frequencies(lab_te, 2)
                out |= {f"{name}_p1_up": jnp.mean(jnp.sum(jnp.where(up, lab_te, 0), 1) / jnp.sum(up)),
                        f"{name}_replication": S.noise_replication_ratio(freq, p),
                        f"{name}_regime": S.replication_regime(freq, p),
                        f"{name}_gap": S.pointwise_sampler_gap(freq, p)}
                for r in range(sz["R"]):  # every teacher and its own student (n fresh unlabelled points)
                    out[f"{name}_risk_r{r}"] = S.risk(lab_te[r], p)
                    out[f"{name}_student_risk_r{r}"] = S.risk(_logistic_student(xu, lab_u[r], xte), p)
            return out
        r = _row(d, f"s{seed}", compute)
        _say(progress, f"mlp seed={seed}: MLP teacher {r['mlp_risk_r0']:.4f} (steps ≤ {r['mlp_steps_max']:.0f}), "
                       f"student {r['mlp_student_risk_r0']:.4f}")


RUNNERS = {"c2": _c2, "c3": _c3, "c5": _c5, "c6": _c6, "c7": _c7, "c8": _c8, "mlp": _mlp}


def _say(progress, msg):
    if progress is not None:
        print(msg, file=progress, flush=True)


def reproduce(name: str, out, *, quick: bool = False, progress=sys.stderr) -> dict:
    """Run one figure (``"malach-c2"`` or ``"c2"``) or all (``"malach"``) into ``out/<fig>``; returns the
    summaries. Resumable: rows already stored are not recomputed."""
    import jax

    def run_one(k, d):
        with jax.enable_x64(True):
            RUNNERS[k](d, quick, progress)
            return plot(d)

    return run_figures("malach", figure_names("malach", name, FIGURES), out, quick=quick, run_one=run_one,
                       meta=lambda k: {"sizes": _sizes(k, quick)},
                       title="Kaplun, Malach, Nakkiran & Shalev-Shwartz (2022) reproduction", progress=progress)


def _stats(rows, metric, where):
    v = np.array([r[metric] for r in rows if where(r) and metric in r], float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    sem = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return float(v.mean()), float(sem), len(v)


def _fmt(ms):
    return f"{ms[0]:.4f} ± {ms[1]:.4f}"


def plot(d) -> dict:
    """Redraw a figure directory from its stored rows; writes ``<fig>.png``, ``summary.md``."""
    d = Path(d)
    fig = json.loads((d / "figure.json").read_text())["figure"]
    rows = _rows(d)
    return {"c2": _plot_c2, "c3": _plot_c3, "c5": _plot_c5, "c6": _plot_c6, "c7": _plot_c7, "c8": _plot_c8,
            "mlp": _plot_mlp}[fig](d, rows)


def _plot_c2(d: Path, rows: list) -> dict:
    L, SR = 0.2, 0.32
    ms = sorted({int(r["key"].split("_")[0][1:]) for r in rows})
    kinds = ["1nn", "laplace", "ntk"]
    sel = lambda m, t: (lambda r: r["key"].startswith(f"m{m}_") and r["key"].endswith("_" + t))
    plt = pyplot()
    f, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    data, lines = {}, []
    for i, t in enumerate(kinds):
        tr = [_stats(rows, "teacher_risk", sel(m, t)) for m in ms]
        sr = [_stats(rows, "student_risk", sel(m, t)) for m in ms]
        ax[0].errorbar(ms, [a[0] for a in tr], [a[1] for a in tr], marker="o", color=f"C{i}", label=f"{t} teacher")
        ax[0].errorbar(ms, [a[0] for a in sr], [a[1] for a in sr], marker="s", ls="--", color=f"C{i}",
                       label=f"student of {t}")
        data[t] = {m: {"teacher": tr[j], "student": sr[j],
                       "p1_up": _stats(rows, "teacher_p1_up", sel(m, t)),
                       "replication": _stats(rows, "replication", sel(m, t)),
                       "dis_bayes": _stats(rows, "student_dis_bayes", sel(m, t))} for j, m in enumerate(ms)}
    dr = [_stats(rows, "student_risk", sel(m, "direct")) for m in ms]
    ax[0].errorbar(ms, [a[0] for a in dr], [a[1] for a in dr], marker="^", color="k", ls=":", label="direct (C11)")
    for y, lab in [(L, "L* = 0.20"), (SR, "sampler 0.32")]:
        ax[0].axhline(y, color="grey", lw=0.8, ls="-." if y == L else ":")
        ax[0].text(ms[0], y + 0.002, lab, fontsize=8)
    ax[0].set_xscale("log")
    ax[0].set_xlabel("labelled teacher sample m")
    ax[0].set_ylabel("0-1 risk against D (exact)")
    ax[0].set_title("C2/C4: bad teachers, near-Bayes students (n = 20000)", fontsize=10)
    ax[0].legend(fontsize=7)
    # C10: student risk vs the Theorem-A bound, every row
    tr_rows = [r for r in rows if not r["key"].endswith("_direct")]
    bound = np.array([L + 2 * r["eps_h"] + 2 * r["eps_n"] for r in tr_rows])
    srisk = np.array([r["student_risk"] for r in tr_rows])
    ax[1].scatter(bound, srisk, s=12)
    lim = [0.19, max(bound.max(), srisk.max()) + 0.01]
    ax[1].plot(lim, lim, "k--", lw=0.8, label="student = bound")
    ax[1].set_xlabel("L* + 2 ε̂_H + 2 ε̂_n")
    ax[1].set_ylabel("student risk")
    ax[1].set_title("C10: Theorem A check, one point per (m, seed, teacher)", fontsize=10)
    ax[1].legend(fontsize=8)
    f.tight_layout()
    f.savefig(d / "c2.png", dpi=120)
    plt.close(f)
    mmax = ms[-1]
    ok_bad = all(data[t][m]["teacher"][0] - 2 * data[t][m]["teacher"][1] >= L + 0.05 for t in kinds for m in ms)
    ok_gap = all(data[t][m]["student"][0] + 2 * data[t][m]["student"][1] < data[t][m]["teacher"][0]
                 - 2 * data[t][m]["teacher"][1] for t in kinds for m in ms)
    ok_near = all(data[t][mmax]["student"][0] <= L + 0.015 for t in kinds)
    ok_1nn = 0.77 <= data["1nn"][mmax]["p1_up"][0] <= 0.84
    ok_c10 = bool(np.all(srisk <= bound + 0.005))
    lines += [("Halfspace with 20% flips, d = 2; logistic students on n = 20000 teacher labels; mean ± SEM over "
              f"{_stats(rows, 'student_risk', sel(mmax, '1nn'))[2]} seeds. L* = 0.20, exact-sampler risk 0.32."), "",
              "| teacher | m | teacher risk | Pr[f=1 | η=.8] | replication r | student risk | student ≠ Bayes | brief [SIM] |",
              "|---|---|---|---|---|---|---|---|---|"]
    sim = {("1nn", 2000): "teacher 0.313, 0.808, student 0.203", ("1nn", 500): "teacher 0.307, student 0.221",
           ("laplace", 2000): "teacher 0.286–0.288, 0.85, student 0.204–0.206",
           ("ntk", 2000): "teacher 0.286–0.288, student 0.204–0.206"}
    for t in kinds:
        for m in ms:
            v = data[t][m]
            lines.append(f"| {t} | {m} | {_fmt(v['teacher'])} | {v['p1_up'][0]:.3f} | {v['replication'][0]:.2f} | "
                         f"{_fmt(v['student'])} | {v['dis_bayes'][0]:.4f} | {sim.get((t, m), '')} |")
    lines += ["", "Direct learning (C11, logistic on the m noisy labels): " + ", ".join(
        f"m = {m}: {_fmt(dr[j])}" for j, m in enumerate(ms)) + " (brief: 0.206 at m = 2000). Not a claim that "
        "distillation beats direct learning.", "",
        f"- every teacher is a bad classifier, risk ≥ L* + 0.05 beyond 2 SEM, every m: {verdict(ok_bad)}",
        f"- every student is better than its teacher beyond 2 SEM, every m and teacher: {verdict(ok_gap)}",
        f"- at m = {mmax} every student is within L* + 0.015: {verdict(ok_near)}",
        f"- 1-NN replicates the noise, Pr[f = 1 | η = 0.8] ∈ [0.77, 0.84] at m = {mmax}: {verdict(ok_1nn)}",
        (f"- C10, student ≤ L* + 2ε̂_H + 2ε̂_n (+0.005 MC) in all {len(srisk)} rows: {verdict(ok_c10)} "
        f"(largest student − bound: {float((srisk - bound).max()):+.4f})")]
    return write_summary(d, "malach-c2: distilling halfspace samplers (C2, C4, C10, C11)", lines,
                         {"data": data, "direct": dr, "ok": [ok_bad, ok_gap, ok_near, ok_1nn, ok_c10]})


def _plot_c3(d: Path, rows: list) -> dict:
    ms = sorted({int(r["key"].split("_")[0][1:]) for r in rows})
    sel = lambda m: (lambda r: r["key"].startswith(f"m{m}_"))
    metrics = ["teacher_clean_acc", "student_clean_acc", "direct_clean_acc", "student_1nn_clean_acc",
               "student_101nn_clean_acc", "student_mlp_clean_acc"]
    Ks = sorted(int(k[4:-10]) for k in rows[0] if k.startswith("vote"))
    data = {m: {k: _stats(rows, k, sel(m)) for k in metrics + ["teacher_noisy_acc", "teacher_pairflip"]
                + [f"vote{K}_clean_acc" for K in Ks]} for m in ms}
    plt = pyplot()
    f, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, k in enumerate(metrics):
        ax[0].errorbar(ms, [data[m][k][0] for m in ms], [data[m][k][1] for m in ms], marker="o", color=f"C{i}",
                       label=k.replace("_clean_acc", ""))
    ax[0].axhline(0.8, color="grey", ls=":", lw=0.8)
    ax[0].set_xscale("log")
    ax[0].set_xlabel("labelled teacher sample m")
    ax[0].set_ylabel("accuracy vs clean class")
    ax[0].set_title("C3/C6/C7/C11: 10 sectors, pair-flip 20%", fontsize=10)
    ax[0].legend(fontsize=7)
    for m in ms:
        ax[1].plot(Ks, [data[m][f"vote{K}_clean_acc"][0] for K in Ks], marker="o", label=f"m = {m}")
    ax[1].set_xlabel("K independent 1-NN teachers (majority vote)")
    ax[1].set_ylabel("accuracy vs clean class")
    ax[1].set_title("C9: ensembles of samplers approach Bayes", fontsize=10)
    ax[1].legend(fontsize=8)
    f.tight_layout()
    f.savefig(d / "c3.png", dpi=120)
    plt.close(f)
    top = ms[-1]
    v = data[top]
    ok_t = 0.75 <= v["teacher_clean_acc"][0] <= 0.82 and abs(v["teacher_pairflip"][0] - 0.2) <= 0.03
    ok_s = all(data[m]["student_clean_acc"][0] >= 0.97 for m in ms if m >= 5000) and all(
        data[m]["student_clean_acc"][0] > data[m]["teacher_clean_acc"][0] + 0.1 for m in ms)
    ok_local = all(data[m]["student_101nn_clean_acc"][0] < data[m]["student_clean_acc"][0] for m in ms) and (
        data[ms[-1]]["student_101nn_clean_acc"][0] > data[ms[0]]["student_101nn_clean_acc"][0])
    ok_mlp = all(data[m]["student_mlp_clean_acc"][0] > data[m]["teacher_clean_acc"][0] + 0.1 for m in ms)
    ok_1nn = all(abs(data[m]["student_1nn_clean_acc"][0] - data[m]["teacher_clean_acc"][0]) <= 0.03 for m in ms)
    ok_vote = all(all(data[m][f"vote{a}_clean_acc"][0] < data[m][f"vote{b}_clean_acc"][0] for a, b in itertools.pairwise(Ks))
                  for m in ms) and v[f"vote{Ks[-1]}_clean_acc"][0] >= 0.95
    lines = [("10 angle sectors on the unit circle, label c -> c+5 with probability 0.2; students trained on 1-NN "
             "teacher labels of n unlabelled points (softmax on 10 angle harmonics; local 1-NN and 101-NN)."), "",
             "| m | teacher clean | teacher vs noisy | predicted c+5 | student | direct (C11) | 1-NN student | "
             "101-NN student | MLP student | " + " | ".join(f"vote K={K}" for K in Ks) + " |",
             "|---" * (9 + len(Ks)) + "|"]
    for m in ms:
        x = data[m]
        lines.append(f"| {m} | {_fmt(x['teacher_clean_acc'])} | {x['teacher_noisy_acc'][0]:.3f} | "
                     f"{x['teacher_pairflip'][0]:.3f} | {_fmt(x['student_clean_acc'])} | {x['direct_clean_acc'][0]:.3f} | "
                     f"{x['student_1nn_clean_acc'][0]:.3f} | {x['student_101nn_clean_acc'][0]:.3f} | "
                     f"{x['student_mlp_clean_acc'][0]:.3f} | "
                     + " | ".join(f"{x[f'vote{K}_clean_acc'][0]:.3f}" for K in Ks) + " |")
    lines += ["", ("Brief [SIM] at m = 5000, n = 10^5: teacher 0.775–0.785 (c+5: 0.201, vs noisy 0.662), student "
              "0.990–0.995, 1-NN student 0.778, 101-NN student 0.858 (m = 2000) / 0.903 (m = 5000), direct "
              "0.995–0.997, votes 0.781 / 0.926 / 0.988."), "",
              f"- C3 teacher at m = {top}: clean acc ∈ [0.75, 0.82] and c+5 share 0.20 ± 0.03: {verdict(ok_t)}",
              f"- C3 student ≥ 0.97 (m ≥ 5000) and ≥ teacher + 0.10 at every m: {verdict(ok_s)}",
              f"- a finite MLP student (Adam, not interpolating) beats its teacher by > 0.10 at every m: {verdict(ok_mlp)}",
              f"- C6 a 1-NN student keeps its teacher's accuracy (± 0.03), every m: {verdict(ok_1nn)}",
              f"- C7 the 101-NN student improves with m but stays below the global student: {verdict(ok_local)}",
              f"- C9 votes increase with K at every m and reach ≥ 0.95 at K = {Ks[-1]}, m = {top}: {verdict(ok_vote)}"]
    return write_summary(d, "malach-c3: pair-flip sectors (C3, C6, C7, C9, C11)", lines,
                         {"data": data, "ok": [ok_t, ok_s, ok_mlp, ok_1nn, ok_local, ok_vote]})


def _plot_c6(d: Path, rows: list) -> dict:
    lams = sorted(float(k[6:]) for k in rows[0] if k.startswith("ridge_"))
    ts = sorted(float(k[5:]) for k in rows[0] if k.startswith("flow_"))
    al = lambda r: True
    rd = [_stats(rows, f"ridge_{v:g}", al) for v in lams]
    fl = [_stats(rows, f"flow_{v:g}", al) for v in ts]
    te = _stats(rows, "teacher_risk", al)
    plt = pyplot()
    f, ax = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    ax[0].errorbar(lams, [a[0] for a in rd], [a[1] for a in rd], marker="o")
    ax[1].errorbar(ts, [a[0] for a in fl], [a[1] for a in fl], marker="o")
    for a, lab in zip(ax, ["ridge λ (NTK kernel-ridge student)", "time t (NTK gradient-flow student, rate Θ/n)"]):
        a.axhline(0.2, color="grey", ls="-.", lw=0.8)
        a.axhline(te[0], color="C3", ls=":", lw=0.8, label=f"1-NN teacher {te[0]:.3f}")
        a.set_xscale("log")
        a.set_xlabel(lab)
        a.legend(fontsize=8)
    ax[0].set_ylabel("student risk against D")
    f.suptitle("C6: the student must not interpolate (halfspace, m = 2000 teacher)", fontsize=10)
    f.tight_layout()
    f.savefig(d / "c6.png", dpi=120)
    plt.close(f)
    ok_interp = rd[0][0] >= te[0] - 0.02
    ok_ridge = min(a[0] for v, a in zip(lams, rd) if v >= 1) <= 0.215
    ok_flow = min(a[0] for a in fl) <= 0.215 and fl[-1][0] > min(a[0] for a in fl) + 2 * fl[-1][1]
    lines = [("1-NN teacher (m = 2000) labels n unlabelled points; NTK (ReLU, depth 2) students; mean ± SEM over "
             f"{te[2]} seeds. Brief [SIM] (n = 5000): λ = 1e-6 0.306, 0.1 0.249, ≥ 1 0.207–0.210; flow t ∈ [1, 100] "
             "0.206–0.210, t = 1e4 0.223."), "",
             "| student | " + " | ".join(f"λ = {v:g}" for v in lams) + " |", "|---" * (len(lams) + 1) + "|",
             "| ridge | " + " | ".join(_fmt(a) for a in rd) + " |", "",
             "| student | " + " | ".join(f"t = {v:g}" for v in ts) + " |", "|---" * (len(ts) + 1) + "|",
             "| flow | " + " | ".join(_fmt(a) for a in fl) + " |", "",
             f"Teacher risk {_fmt(te)}.", "",
             f"- the interpolating student (λ = {lams[0]:g}) is as bad as the teacher (≥ teacher − 0.02): {verdict(ok_interp)}",
             f"- a ridge student with λ ≥ 1 is near Bayes (≤ 0.215): {verdict(ok_ridge)}",
             (f"- early-stopped flow is near Bayes and t = {ts[-1]:g} drifts back toward interpolation "
             f"(beyond 2 SEM): {verdict(ok_flow)}")]
    return write_summary(d, "malach-c6: interpolating vs regularised students", lines,
                         {"ridge": dict(zip(lams, rd)), "flow": dict(zip(ts, fl)), "teacher": te,
                          "ok": [ok_interp, ok_ridge, ok_flow]})


def _plot_c8(d: Path, rows: list) -> dict:
    dims = sorted({int(r["key"].split("_")[0][1:]) for r in rows})
    sel = lambda dim, t: (lambda r: r["key"].startswith(f"d{dim}_") and r["key"].endswith("_" + t))
    data = {t: {dim: {k: _stats(rows, k, sel(dim, t)) for k in ("teacher_clean_acc", "student_clean_acc")}
                for dim in dims} for t in ("1nn", "laplace")}
    plt = pyplot()
    f, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, t in enumerate(data):
        for k, ls in (("teacher_clean_acc", "-"), ("student_clean_acc", "--")):
            ax.errorbar(dims, [data[t][x][k][0] for x in dims], [data[t][x][k][1] for x in dims], marker="o",
                        ls=ls, color=f"C{i}", label=f"{t} {k.split('_')[0]}")
    ax.axhline(0.8, color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("input dimension d")
    ax.set_ylabel("accuracy vs clean label")
    ax.set_title("C8: 1-NN stops being a conditional sampler in high d (m = 2000)", fontsize=10)
    ax.legend(fontsize=8)
    f.tight_layout()
    f.savefig(d / "c8.png", dpi=120)
    plt.close(f)
    nn = data["1nn"]
    ok_hi = all(nn[x]["teacher_clean_acc"][0] < 0.70 for x in dims if x >= 20) and (
        100 not in nn or nn[100]["student_clean_acc"][0] < 0.80)
    ok_lo = nn[dims[0]]["student_clean_acc"][0] >= 0.97
    lines = [("sphere_sign with Gaussian inputs, ρ = 0.2, m = 2000, n = 20000; logistic students. Brief [SIM] 1-NN "
             "teacher / student: d = 2 0.797 / 0.990, 5 0.757 / 0.970, 20 0.646 / 0.915, 100 0.558 / 0.697; Laplace "
             "(σ = √d) teachers 0.81–0.89 with students 0.86–0.98."), "",
             "| d | 1-NN teacher | 1-NN student | Laplace teacher | Laplace student |", "|---|---|---|---|---|"]
    for x in dims:
        lines.append(f"| {x} | {_fmt(nn[x]['teacher_clean_acc'])} | {_fmt(nn[x]['student_clean_acc'])} | "
                     f"{_fmt(data['laplace'][x]['teacher_clean_acc'])} | {_fmt(data['laplace'][x]['student_clean_acc'])} |")
    lines += ["", f"- at d = {dims[0]} the 1-NN student is near Bayes (clean acc ≥ 0.97): {verdict(ok_lo)}",
              (f"- the sampler property is lost: 1-NN teacher < 0.70 at d ≥ 20 and its student < 0.80 at d = 100: "
              f"{verdict(ok_hi)}")]
    return write_summary(d, "malach-c8: dimension dependence of 1-NN sampling", lines,
                         {"data": data, "ok": [ok_lo, ok_hi]})


def _plot_c5(d: Path, rows: list) -> dict:
    L, SR = 0.2, 0.32
    sig = {n: sorted(float(k.split("_")[1]) for k in rows[0] if k.startswith(n + "_") and k.endswith("_agree"))
           for n in ("gaussian", "laplace")}
    al = lambda r: True
    data = {n: {s: {q: _stats(rows, f"{n}_{s:g}_{q}", al) for q in ("agree", "risk", "replication")}
                for s in sig[n]} for n in sig}
    regimes = {n: {s: [int(r[f"{n}_{s:g}_regime"]) if np.isfinite(r[f"{n}_{s:g}_regime"]) else -1 for r in rows]
                   for s in sig[n]} for n in sig}
    nn = _stats(rows, "1nn_risk", al)
    plt = pyplot()
    f, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, n in enumerate(sig):
        ss = sig[n]
        ax[0].errorbar(ss, [data[n][s]["agree"][0] for s in ss], [data[n][s]["agree"][1] for s in ss], marker="o",
                       color=f"C{i}", label=f"{n} interpolant")
        ax[1].errorbar(ss, [data[n][s]["risk"][0] for s in ss], [data[n][s]["risk"][1] for s in ss], marker="o",
                       color=f"C{i}", label=f"{n} interpolant")
        for s in ss:
            lab = S.REGIMES[max(set(regimes[n][s]), key=regimes[n][s].count)]
            ax[1].annotate(lab, (s, data[n][s]["risk"][0]), fontsize=6, rotation=30, color=f"C{i}",
                           xytext=(3, 3 if i == 0 else -10), textcoords="offset points")
    ax[0].axhline(0.98, color="grey", ls=":", lw=0.8)
    ax[0].set_ylabel("agreement with the 1-NN teacher")
    ax[0].set_title("C5: small-bandwidth kernel machines are 1-NN (m = 2000, d = 2)", fontsize=10)
    for y, lab, x in [(L, "L* = 0.20", 0), (SR, "sampler 0.32", 0), (nn[0], f"1-NN {nn[0]:.3f}", -1)]:
        ax[1].axhline(y, color="grey", lw=0.8, ls=":")
        ax[1].text(sig["gaussian"][x], y + 0.003, lab, fontsize=7, ha="left" if x == 0 else "right")
    ax[1].set_ylabel("interpolant risk against D")
    ax[1].set_title("labels: replication_regime (r = Pr[f≠f*]/Pr[y≠f*])", fontsize=10)
    for a in ax:
        a.set_xscale("log")
        a.set_xlabel("bandwidth σ")
        a.legend(fontsize=8)
    f.tight_layout()
    f.savefig(d / "c5.png", dpi=120)
    plt.close(f)
    g, lp = data["gaussian"], data["laplace"]
    mid = [s for s in sig["gaussian"] if 0.02 <= s <= 0.05]
    small = [s for s in sig["gaussian"] if s <= 0.005]
    ok_g = bool(small) and all(g[s]["agree"][0] >= 0.98 for s in small)
    ok_l = 0.002 in lp and lp[0.002]["agree"][0] >= 0.98
    ok_cat = bool(mid) and all(g[s]["risk"][0] - 2 * g[s]["risk"][1] > SR for s in mid)
    # the 1-NN teacher itself is only an approximate sampler (its r spreads ~±0.1 over seeds at m = 2000), so
    # small bandwidths are checked against the 1-NN teacher's own label on the same sample
    nn_reg = [int(r["1nn_regime"]) if np.isfinite(r["1nn_regime"]) else -1 for r in rows]
    ok_lab = bool(mid) and all(all(c == 3 for c in regimes["gaussian"][s]) for s in mid)
    # small bandwidths replicate the noise as the 1-NN teacher on the same sample does (per seed; the regime
    # label itself is a hard threshold on r and may flip between neighbours of r = 1.1)
    dr = max(abs(r[f"gaussian_{s:g}_replication"] - r["1nn_replication"]) for r in rows for s in small) if small else np.nan
    ok_r = bool(dr <= 0.05)
    sim = {("gaussian", 0.005): "agree 0.987", ("gaussian", 0.002): "agree 0.999", ("laplace", 0.002): "agree 0.990"}
    lines = [(f"halfspace_flip d = 2, ρ = 0.2, m = 2000; minimum-norm interpolants (ridge 1e-10) against the 1-NN "
              f"teacher on the same sample; mean ± SEM over {nn[2]} seeds. 1-NN risk {_fmt(nn)}, replication "
              f"{_stats(rows, '1nn_replication', al)[0]:.2f}, regime per seed: "
              f"{', '.join(S.REGIMES[c] if c >= 0 else 'NaN' for c in nn_reg)}; L* = 0.20, exact-sampler risk "
              "0.32. Regime = `samplers.replication_regime` (tol 0.1)."), "",
             "| kernel | σ | agreement with 1-NN | risk | replication r | regime (seeds) | brief [SIM] |",
             "|---|---|---|---|---|---|---|"]
    for n, ss in sig.items():
        for s in ss:
            v = data[n][s]
            labs = ", ".join(S.REGIMES[c] if c >= 0 else "NaN" for c in sorted(set(regimes[n][s])))
            extra = sim.get((n, s), "risk 0.42–0.44" if n == "gaussian" and s in mid else "")
            lines.append(f"| {n} | {s:g} | {_fmt(v['agree'])} | {_fmt(v['risk'])} | {v['replication'][0]:.2f} | "
                         f"{labs} | {extra} |")
    lines += ["",
              f"- Gaussian interpolants with σ ≤ 0.005 agree with 1-NN ≥ 0.98: {verdict(ok_g)}",
              f"- the Laplace interpolant at σ = 0.002 agrees with 1-NN ≥ 0.98: {verdict(ok_l)}",
              (f"- Gaussian interpolants at σ ∈ [0.02, 0.05] are worse than a sampler (risk − 2 SEM > 0.32): "
               f"{verdict(ok_cat)}"),
              f"- the toolkit labels σ ∈ [0.02, 0.05] \"not a sampler\" in every seed: {verdict(ok_lab)}",
              (f"- Gaussian σ ≤ 0.005 replicates the noise as the 1-NN teacher on the same sample does, |r − r_1NN| ≤ "
               f"0.05 in every seed (largest {dr:.3f}): {verdict(ok_r)}")]
    return write_summary(d, "malach-c5: small-bandwidth kernel machines are 1-NN; intermediate ones are not samplers",
                         lines, {"data": data, "regimes": regimes, "1nn": nn, "ok": [ok_g, ok_l, ok_cat, ok_lab, ok_r]})


def _paired(rows, a, b, where):
    v = np.array([r[a] - r[b] for r in rows if where(r)], float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0, len(v)


def _plot_c7(d: Path, rows: list) -> dict:
    L = 0.2
    ms = sorted({int(r["key"].split("_")[0][1:]) for r in rows})
    qs = sorted(int(k[9:]) for k in rows[0] if k.startswith("student_n"))
    sel = lambda m: (lambda r: r["key"].startswith(f"m{m}_"))
    data = {m: {q: _stats(rows, f"student_n{q}", sel(m)) for q in qs} for m in ms}
    plt = pyplot()
    f, ax = plt.subplots(figsize=(6.8, 4.4))
    for i, m in enumerate(ms):
        ax.errorbar([q * m for q in qs], [data[m][q][0] for q in qs], [data[m][q][1] for q in qs], marker="o",
                    color=f"C{i}", label=f"student, 1-NN teacher m = {m}")
        ax.axvline(10 * m, color=f"C{i}", ls=":", lw=0.8)
        te = _stats(rows, "direct_risk", sel(m))
        ax.axhline(te[0], color=f"C{i}", ls="--", lw=0.8, label=f"direct on the m = {m} labels (C11)")
    ax.axhline(L, color="grey", ls="-.", lw=0.8, label="L* = 0.20")
    ax.set_xscale("log")
    ax.set_xlabel("unlabelled points n (dotted: n = 10 m)")
    ax.set_ylabel("logistic student risk against D")
    ax.set_title("C7: the effective sample size is m (halfspace, 20% flips)", fontsize=10)
    ax.legend(fontsize=7)
    f.tight_layout()
    f.savefig(d / "c7.png", dpi=120)
    plt.close(f)
    early = {m: _paired(rows, f"student_n{qs[0]}", "student_n10", sel(m)) for m in ms}
    late = {m: _paired(rows, "student_n10", f"student_n{qs[-1]}", sel(m)) for m in ms}
    # "no further gain": the paired gain from 10m to the largest n is not both beyond 2 SEM and above 0.003
    ok_late = all(late[m][0] - 2 * late[m][1] < 0.003 for m in ms)
    # the same n for both teachers: n = qs[-1]·m_small = (qs[-1]·m_small/m_big)·m_big
    lo, hi = ms[0], ms[-1]
    n_eq = qs[-1] * lo
    q_hi = n_eq // hi
    ok_m = bool(f"student_n{q_hi}" in rows[0] and n_eq % hi == 0) and bool(
        data[lo][qs[-1]][0] - data[hi][q_hi][0] > 2 * np.hypot(data[lo][qs[-1]][1], data[hi][q_hi][1]))
    lines = [(f"halfspace_flip d = 2, ρ = 0.2; 1-NN teacher on m labelled points; logistic students on the first n "
              f"of one pool of teacher-labelled points (nested, so differences in n are paired); mean ± SEM over "
              f"{data[lo][qs[0]][2]} seeds. Brief: \"in C2, increasing n beyond ~10 m gives no further gain\"."), "",
             "| m | " + " | ".join(f"n = {q}m" for q in qs) + " | direct (m labels) |", "|---" * (len(qs) + 2) + "|"]
    for m in ms:
        lines.append(f"| {m} | " + " | ".join(_fmt(data[m][q]) for q in qs)
                     + f" | {_fmt(_stats(rows, 'direct_risk', sel(m)))} |")
    lines += ["", "Paired gains (risk at the smaller n minus risk at the larger n, same teacher and pool; the gain up to "
              "10m is reported, not checked: the brief claims only the saturation): "
              + "; ".join(f"m = {m}: n = {qs[0]}m → 10m {_fmt(early[m])}, 10m → {qs[-1]}m {_fmt(late[m])}" for m in ms),
              "",
              (f"- beyond n = 10m there is no further gain (paired gain from 10m to {qs[-1]}m minus 2 SEM below 0.003) "
               f"for every m: {verdict(ok_late)}"),
              (f"- at the same n = {n_eq}, the student of the m = {hi} teacher is better than that of the m = {lo} "
               f"teacher beyond 2 SEM (m, not n, is the bottleneck): {verdict(ok_m)}")]
    return write_summary(d, "malach-c7: beyond n ≈ 10 m, more unlabelled data does not help", lines,
                         {"data": data, "early": early, "late": late, "ok": [ok_late, ok_m]})


def _plot_mlp(d: Path, rows: list) -> dict:
    L, SR = 0.2, 0.32
    sz = json.loads((d / "figure.json").read_text())["sizes"]
    R = sz["R"]
    al = lambda r: True
    fams = ("mlp", "1nn")
    q = ("replication", "gap", "p1_up")
    data = {t: {k: _stats(rows, f"{t}_{k}", al) for k in q} for t in fams}
    for t in fams:  # pooled over every (S_X, label draw) teacher: mean ± SEM over seeds × R
        for k in ("risk", "student_risk"):
            v = np.array([r[f"{t}_{k}_r{i}"] for r in rows for i in range(R)], float)
            data[t][k] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))), len(v))
    direct = _stats(rows, "direct_risk", al)
    floor = _binomial_tv_floor(0.8, R)  # η ∈ {0.2, 0.8}: the same at every point
    regimes = {t: sorted({S.REGIMES[int(r[f"{t}_regime"])] if np.isfinite(r[f"{t}_regime"]) else "NaN"
                          for r in rows}) for t in fams}
    plt = pyplot()
    f, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = np.arange(len(fams))
    for j, (k, lab) in enumerate((("risk", "teacher"), ("student_risk", "student (n = 20000)"))):
        ax[0].errorbar(xs + 0.1 * j, [data[t][k][0] for t in fams], [data[t][k][1] for t in fams], marker="os"[j],
                       ls="none", label=lab)
    ax[0].axhline(direct[0], color="k", ls="--", lw=0.8, label=f"direct on the m labels {direct[0]:.3f}")
    for y, lab in [(L, "L* = 0.20"), (SR, "sampler 0.32")]:
        ax[0].axhline(y, color="grey", lw=0.8, ls=":")
        ax[0].text(-0.45, y + 0.002, lab, fontsize=7)
    ax[0].set_xticks(xs, ["MLP trained to\ninterpolation", "1-NN"])
    ax[0].set_xlim(-0.5, 1.5)
    ax[0].set_ylabel("0-1 risk against D")
    ax[0].set_title(f"teachers on m = {sz['m']} noisy labels (halfspace, 20% flips)", fontsize=10)
    ax[0].legend(fontsize=7)
    for j, (k, lab) in enumerate((("replication", "replication r (sampler 1, Bayes 0)"),
                                  ("gap", f"pointwise gap over R = {R} label draws"))):
        ax[1].errorbar(xs + 0.1 * j, [data[t][k][0] for t in fams], [data[t][k][1] for t in fams], marker="os"[j],
                       ls="none", label=lab)
    ax[1].axhline(floor, color="C1", ls=":", lw=0.8, label=f"exact sampler's gap at R = {R}: {floor:.3f}")
    ax[1].axhline(0.2, color="grey", ls="-.", lw=0.8, label="Bayes classifier's gap 0.20")
    ax[1].axhline(1.0, color="C0", ls=":", lw=0.8)
    ax[1].set_xticks(xs, ["MLP", "1-NN"])
    ax[1].set_xlim(-0.5, 1.5)
    ax[1].set_title("is the interpolating MLP a sampler?", fontsize=10)
    ax[1].legend(fontsize=7)
    f.tight_layout()
    f.savefig(d / "mlp.png", dpi=120)
    plt.close(f)
    mv = data["mlp"]
    ok_interp = all(r["mlp_all_interpolated"] == 1.0 for r in rows)
    ok_bad = mv["risk"][0] - 2 * mv["risk"][1] >= L + 0.05
    ok_student = mv["student_risk"][0] + 2 * mv["student_risk"][1] < mv["risk"][0] - 2 * mv["risk"][1]
    steps = [r["mlp_steps_max"] for r in rows]
    lines = [(f"halfspace_flip d = 2, ρ = 0.2. On each of {len(rows)} training inputs S_X (m = "
              f"{sz['m']}), R = {R} independent noisy label draws; on each, a ReLU MLP (NTK parameterization, depth "
              f"{sz['depth']}, width {sz['width']}, full-batch Adam {sz['lr']:g}, inputs 4(x − 0.5)) trained by "
              f"`ntkd.finite.interpolate.train_to_interpolation` (check every {sz['check_every']} steps, cap "
              f"{sz['max_steps']}) and a 1-NN teacher on the same labels. The pointwise (S1) gap is conditional on "
              "S_X (randomness over the labels only); with R draws an exact sampler shows "
              f"{floor:.3f} (binomial noise), the Bayes classifier 0.20. Students: logistic on n = {sz['n']} "
              "points labelled by each teacher; teacher and student risks are mean ± SEM over every (S_X, label "
              "draw) (draws on one S_X share it, so this SEM is a lower bound); r and the gap are per S_X (± 0 "
              "for one S_X)."), "",
             "| teacher | teacher risk | Pr[f=1 \\| η=.8] | replication r | (S1) gap | regime | student risk |",
             "|---|---|---|---|---|---|---|"]
    for t in fams:
        v = data[t]
        lines.append(f"| {t} | {_fmt(v['risk'])} | {v['p1_up'][0]:.3f} | {_fmt(v['replication'])} | "
                     f"{_fmt(v['gap'])} | {', '.join(regimes[t])} | {_fmt(v['student_risk'])} |")
    lines += ["", (f"Direct learning (logistic on the m noisy labels): {_fmt(direct)}. Steps to interpolation (max "
                   f"over R, per S_X): {', '.join(f'{s:.0f}' for s in steps)}; smallest training accuracy "
                   f"{min(r['mlp_train_acc_min'] for r in rows):.4f}."), "",
              f"- every MLP teacher reached training accuracy 1 within the cap: {verdict(ok_interp)}",
              f"- the interpolating MLP is a bad classifier (risk ≥ L* + 0.05 beyond 2 SEM): {verdict(ok_bad)}",
              f"- its student is better than it beyond 2 SEM: {verdict(ok_student)}",
              (f"- finding (not a claim of the brief): the MLP's replication ratio is {mv['replication'][0]:.2f} and "
               f"its (S1) gap {mv['gap'][0]:.3f} (exact sampler {floor:.3f}, 1-NN {data['1nn']['gap'][0]:.3f}, Bayes "
               f"0.20): `replication_regime` says **{', '.join(regimes['mlp'])}**.")]
    return write_summary(d, "malach-mlp: a finite MLP trained to interpolation as a teacher", lines,
                         {"data": data, "direct": direct, "floor": floor, "regimes": regimes,
                          "ok": [ok_interp, ok_bad, ok_student]})
