"""Synthetic study with exact Bayes probabilities (Dao, Kamath et al. 2021, checks C7, C8, C10).

Task: the authors' two-Gaussian mixture (:func:`ntkd.theories.crossfit.two_gaussian`), binary, so the
Bayes probabilities ``p0(x) = σ(−2r 1ᵀx)`` are known and a linear softmax student is well specified
(its population minimiser on any unbiased p-scale target is p0). The student is trained by
:func:`ntkd.finite.train_classifier` on soft targets (cross-entropy, linear in the target, so E[target]
is what it fits); every target variant of one sample trains in one vmap (``targets_per_run``).

Teachers:

* ``overfit``: kernel ridge regression on the 0/1 labels with a "spiky-smooth" kernel, ntkd's NTK
  (``mlp_kernel_fn(depth)``, scaled to unit mean diagonal) plus ``spike·δ(x, x')``, and a tiny ridge: its
  in-sample predictions reproduce the labels (the data-reuse failure) while at any new point it is the
  NTK ridge regression with ridge ``spike`` (a good teacher), [G];
  out-of-fold predictions from :func:`ntkd.theories.crossfit.kernel_crossfit` (exact leave-fold-out
  algebra, no refits). Scores are clipped to ``[clip, 1 − clip]`` to make probabilities [G].
* ``underfit``: the tempered Bayes probabilities ``softmax(log p0 / τ)`` (a biased, under-confident
  teacher that needs no data, so cross-fitting changes nothing for it).

Targets (p scale): ``labels`` (no KD), ``kd`` (in-sample teacher), ``cf`` (cross-fit teacher),
``kd_bf`` (BoundFast γ without cross-fitting), ``cf_bf`` ("Enhanced": cross-fit + BoundFast γ); the
BoundFast c is chosen per sample from ``c_grid`` by the validation cross-entropy on held-out labels
(the authors' cross-validation on the true labels, [G] a held-out split instead of 5 folds).
Metric: ``sq_err`` = ``mean_x ‖q(x) − p0(x)‖²`` on a fresh test sample, plus test CE and accuracy.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from ...finite import mlp, train_classifier
from ...kernels import mlp_kernel_fn
from ...theories.crossfit import (accuracy, cross_entropy, fold_ids, gamma_boundfast, kd_target, kernel_crossfit,
                                  sq_error, tempered, two_gaussian)

__all__ = ["synthetic_config", "run_synthetic", "VARIANTS"]

VARIANTS = ("labels", "kd", "cf", "kd_bf", "cf_bf")


def synthetic_config(quick: bool) -> dict:
    """Sizes of the synthetic study ([G]: the paper's synthetic settings were not recovered)."""
    return {"d": 5, "r": 0.25, "ns": [100, 200, 400, 800] if quick else [100, 200, 400, 800, 1600, 3200],
            "seeds": 4 if quick else 10, "n_test": 2000, "n_val_frac": 0.25, "K": 10, "ridge": 1e-6, "spike": 0.3,
            "kernel_depth": 1, "clip": 0.01, "tau": 3.0, "c_grid": [1e-3, 1e-2, 1e-1, 1.0],
            "steps": 400, "lr": 0.1, "teachers": ["overfit", "underfit"]}


def _student(d):
    init, apply = mlp(d, 1, 0, out_dim=2, dtype=jnp.float64)  # depth 0: a linear softmax model
    return init, apply


def _one(cfg, n, seed, teacher):
    key = jax.random.PRNGKey(1000 * seed + n)
    k_tr, k_te, k_fold, k_init, k_train = jax.random.split(key, 5)
    n_val = int(round(cfg["n_val_frac"] * n))
    data = two_gaussian(k_tr, n + n_val, d=cfg["d"], r=cfg["r"], dtype=jnp.float64)
    x, y = data.x[:n], data.y[:n]
    xv, yv = data.x[n:], data.y[n:]
    test = two_gaussian(k_te, cfg["n_test"], d=cfg["d"], r=cfg["r"], dtype=jnp.float64)
    y1 = y.astype(jnp.float64)
    if teacher == "overfit":
        kfn = mlp_kernel_fn(cfg["kernel_depth"])
        kk = kfn(x, get="ntk")
        kk = kk / jnp.mean(jnp.diag(kk)) + cfg["spike"] * jnp.eye(n)  # spiky-smooth: memorises in-sample
        fold = fold_ids(n, cfg["K"], key=k_fold)
        cf = kernel_crossfit(kk, y1, fold, K=cfg["K"], ridge=cfg["ridge"])
        p_in = jnp.clip(cf.full, cfg["clip"], 1 - cfg["clip"])
        p_cf = jnp.clip(cf.oof, cfg["clip"], 1 - cfg["clip"])
    else:
        p_in = p_cf = tempered(data.p0[:n], cfg["tau"])[:, 1]
    targets, names = [], []

    def add(name, p1):
        targets.append(jnp.stack([1 - p1, p1], -1))
        names.append(name)

    add("labels", y1)
    add("kd", p_in)
    add("cf", p_cf)
    for c in cfg["c_grid"]:
        add(f"kd_bf:{c}", kd_target(p_in, y1, gamma=gamma_boundfast(p_in, y1, c=c)))
        add(f"cf_bf:{c}", kd_target(p_cf, y1, gamma=gamma_boundfast(p_cf, y1, c=c)))
    T = jnp.stack(targets)
    init, apply = _student(cfg["d"])
    B = len(names)
    params0 = jax.vmap(init)(jnp.stack([k_init] * B))  # one init for every variant: paired comparisons
    xall = jnp.concatenate([xv, test.x])
    params, log = train_classifier(apply, params0, x, T, steps=cfg["steps"], key=k_train, runs=B,
                                   targets_per_run=True, optimizer=optax.adam(cfg["lr"]), x_test=xall,
                                   log_steps=[cfg["steps"]])
    logits = jnp.asarray(log.test_logits)
    qv, qt = jax.nn.softmax(logits[:, :n_val]), jax.nn.softmax(logits[:, n_val:])
    res = {nm: {"val_ce": float(cross_entropy(qv[i], yv)), "sq_err": float(sq_error(qt[i], test.p0)),
                "test_ce": float(cross_entropy(qt[i], test.y)), "acc": float(accuracy(qt[i], test.y))}
           for i, nm in enumerate(names)}
    out = {v: res[v] for v in ("labels", "kd", "cf")}
    for v in ("kd_bf", "cf_bf"):  # c chosen by validation CE on held-out labels
        best = min(cfg["c_grid"], key=lambda c: res[f"{v}:{c}"]["val_ce"])
        out[v] = dict(res[f"{v}:{best}"], c=best)
    out["teacher_sq_err_in"] = float(jnp.mean(2 * (p_in - data.p0[:n, 1]) ** 2))
    out["teacher_sq_err_cf"] = float(jnp.mean(2 * (p_cf - data.p0[:n, 1]) ** 2))
    return out


def run_synthetic(cfg: dict, d: Path, *, progress=None) -> list:
    """Run every (teacher, n, seed) block not yet in ``d/rows.jsonl`` (resumable: a rerun skips finished
    blocks) and return all rows: ``{"teacher", "n", "seed", "variant", metrics...}``."""
    d.mkdir(parents=True, exist_ok=True)
    path = d / "rows.jsonl"
    done = set()
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["teacher"], r["n"], r["seed"]))
    todo = [(t, n, s) for t in cfg["teachers"] for n in cfg["ns"] for s in range(cfg["seeds"])
            if (t, n, s) not in done]
    for i, (t, n, s) in enumerate(todo):
        out = _one(cfg, n, s, t)
        with path.open("a") as f:
            for v in VARIANTS:
                f.write(json.dumps({"teacher": t, "n": n, "seed": s, "variant": v, **out[v],
                                    "teacher_sq_err_in": out["teacher_sq_err_in"],
                                    "teacher_sq_err_cf": out["teacher_sq_err_cf"]}) + "\n")
        if progress is not None:
            print(f"kamath synthetic: {i + 1}/{len(todo)} blocks (teacher {t}, n {n}, seed {s})", file=progress,
                  flush=True)
    return [json.loads(line) for line in path.read_text().splitlines()]
