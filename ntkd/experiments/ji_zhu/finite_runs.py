"""Finite-width experiments from a TOML config (``ntkd finite-width CONFIG --out DIR``) and Fig. S6.

Config schema (every key optional except ``comparison``; unknown or ill-typed keys are refused, naming
the key, before any computation)::

    name = "width-gap"
    comparison = "width_gap"   # "ntk_convergence" | "student_vs_kernel" | "width_gap" | "weight_change"
    dtype = "float64"          # or "float32"
    [data]    # x ~ N(0, 5² I_d); teacher logits z_t = reduction · z_g for a Gaussian mixture z_g
    n = 8, n_test = 64, d = 2, modes = 20, reduction = 0.3, seed = 0
    [model]   # NTK-parameterized MLP, conventions of ntkd.mlp_kernel_fn
    depth = 1, widths = [64, 512, 4096], activation = "relu", W_std = 1.0, b_std = 1.0
    [train]
    rho = [1.0, 0.3], T = 2.0, seeds = [0, 1, 2, 3], steps = 300, optimizer = "sgd",
    learning_rate = 0.05, reference = "trajectory", batch_size = 256, zero_function = true

``weight_change`` (Fig. S6) trains linearized students with online batches (``batch_size`` fresh samples
per epoch) on :data:`FIGS6_TEACHER` (a converged kernel teacher of depth 5 on the hard labels of a
20-mode mixture, r = 0.3, the teacher of Fig. 2) fitted on ``fit_n`` points, one run per ρ plus the zero
function (ρ = 1, z_t ≡ 0, i.e. Δw_z), and logs ‖Δw‖ against the epoch; its width is ``widths[0]``.

Outputs in ``DIR``: ``results.json``, a PNG and ``summary.md``; training checkpoints in
``DIR/checkpoints`` make a rerun of the same command resume.

Empirical NTKs (``ntk_convergence``, the empirical-NTK prediction of ``student_vs_kernel`` and
``width_gap``) are computed by structured derivatives (``results.json`` records
``"empirical_ntk_method": "structured"``): matrix products over the layers, so widths of 2048 and
more run on a CPU. ``weight_change`` (Fig. S6) computes no kernel; its cost is training.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..._core.io import write_text_atomic
from ...theories.transfer_risk.tasks import gaussian_mixture, sample_inputs
from ..config import dtype_name, fail, read_toml, section, top_level
from ..plotting import pyplot, verdict
from .sweep import validated_task
from .teachers import task_teacher

__all__ = ["load_finite_config", "finite_config", "run_finite", "figS6_config", "FIGS6_RHOS", "FIGS6_TEACHER",
           "plot_finite"]

COMPARISONS = ("ntk_convergence", "student_vs_kernel", "width_gap", "weight_change")


_SECTIONS = {
    "data": {"n": (8, int, False), "n_test": (64, int, False), "d": (2, int, False), "modes": (20, int, False),
             "reduction": (0.3, float, False), "seed": (0, int, False)},
    "model": {"depth": (1, int, False), "widths": ([64, 512, 4096], int, "list"), "activation": ("relu", str, False),
              "W_std": (1.0, float, False), "b_std": (1.0, float, False)},
    "train": {"rho": ([1.0, 0.3], float, "list"), "T": (2.0, float, False), "seeds": ([0, 1, 2, 3], int, "list"),
              "steps": (300, int, False), "optimizer": ("sgd", {"sgd", "adam"}, False),
              "learning_rate": (0.05, float, False), "reference": ("trajectory", {"trajectory", "converged"}, False),
              "batch_size": (256, int, False), "zero_function": (True, bool, False), "fit_n": (2048, int, False)},
}
#: Fig. S6's teacher: a converged kernel teacher (L = 5) on the hard labels of a 20-mode mixture, r = 0.3
#: (the teacher of Fig. 2, as the paper's Fig. S6 uses Fig. 2's task); ``train.fit_n`` sets its fit set.
FIGS6_TEACHER = {"kind": "kernel_teacher", "modes": 20, "stop_time": float("inf"), "reduction": 0.3, "perfect": True}
FIGS6_RHOS = [1.0, 0.96, 0.80, 0.65, 0.50, 0.35, 0.15, 0.02, 0.0]  # Fig. S6 legend


def finite_config(raw: dict) -> dict:
    """Validate a finite-width config (a dict in the TOML schema above); returns it with defaults."""
    top_level(raw, {"name", "comparison", "dtype", "teacher", *_SECTIONS})
    comp = raw.get("comparison")
    if comp not in COMPARISONS:
        fail("comparison", f"must be one of {', '.join(COMPARISONS)}; got {comp!r}")
    cfg = {"name": raw.get("name", comp), "comparison": comp, "dtype": dtype_name(raw)}
    for sec, spec in _SECTIONS.items():
        cfg[sec] = section(raw, sec, spec)
    if "teacher" in raw:  # weight_change only: a sweep [task] table as the teacher (default FIGS6_TEACHER)
        if comp != "weight_change":
            fail("teacher", "applies only to comparison = 'weight_change'")
        if not isinstance(raw["teacher"], dict):
            fail("teacher", f"must be a table (a sweep [task]); got {raw['teacher']!r}")
        try:
            cfg["teacher"] = validated_task(raw["teacher"])
        except ValueError as e:
            fail("teacher", str(e))
    d, m, t = cfg["data"], cfg["model"], cfg["train"]
    for name, v, lo in (("data.n", d["n"], 1), ("data.n_test", d["n_test"], 1), ("data.d", d["d"], 1),
                        ("data.modes", d["modes"], 1), ("model.depth", m["depth"], 1),
                        ("train.steps", t["steps"], 1), ("train.batch_size", t["batch_size"], 1),
                        ("train.fit_n", t["fit_n"], 1)):
        if v < lo:
            fail(name, f"must be >= {lo}; got {v!r}")
    if any(w < 1 for w in m["widths"]):
        fail("model.widths", "every width must be >= 1")
    if any(not 0 <= r <= 1 for r in t["rho"]):
        fail("train.rho", f"every soft ratio must lie in [0, 1]; got {t['rho']!r}")
    for name, v in (("train.T", t["T"]), ("train.learning_rate", t["learning_rate"]),
                    ("data.reduction", d["reduction"]), ("model.W_std", m["W_std"])):
        if not v > 0:
            fail(name, f"must be > 0; got {v!r}")
    if t["reference"] == "trajectory" and t["optimizer"] != "sgd" and comp in ("student_vs_kernel", "width_gap"):
        fail("train.reference", "'trajectory' follows gradient descent; set optimizer = 'sgd' or "
              "reference = 'converged'")
    if comp != "weight_change" and 0.0 in t["rho"] and comp != "ntk_convergence":
        fail("train.rho", "ρ = 0 has no finite converged student (the logits diverge); use ρ > 0 here")
    return cfg


def load_finite_config(path) -> dict:
    return finite_config(read_toml(path))


def figS6_config(quick: bool, teacher: dict = None) -> dict:
    """Fig. S6: ‖Δw‖ of linearized d = 2, L = 3 students vs epoch, online batches (the paper's oracle
    weight changes). Full size is the paper's (m = 2048, 32,768 epochs, batch 512; accelerator-sized);
    quick is m = 128, 1024 epochs, batch 128. T = 10 as in Fig. 2 ([G]: unstated for S6).

    [G] Optimizer: plain SGD (step 4), not the paper's Adam. ‖Δw‖ in Fig. S6 stands for the Eq. 4 weight
    changes, which live in span J(X); Adam leaves that span, and with online batches its ‖Δw‖ is
    dominated by a ρ-independent random walk (measured at m = 128, 1024 epochs: Adam 1e-3 gives
    27.9-31.6 for every ρ, Adam 1e-2 86.8-118 with the order broken; SGD gives 3.5 (ρ = 1) to 25.6
    (ρ = 0), in order). Set ``train.optimizer = "adam"`` in a config to see the paper's optimizer.

    ``teacher``: a sweep ``[task]`` table (config key ``teacher``) instead of the kernel teacher
    :data:`FIGS6_TEACHER`; the paper protocol passes its Fig. 2 teacher, a finite network
    (:func:`.figures.figS6_protocol_config`); the rest is equal.
    """
    raw = {"name": "ji-zhu-figS6", "comparison": "weight_change",
           "model": {"depth": 3, "widths": [128 if quick else 2048]},
           "train": {"rho": FIGS6_RHOS, "T": 10.0, "seeds": [0], "steps": 1024 if quick else 32768,
                     "optimizer": "sgd", "learning_rate": 4.0, "batch_size": 128 if quick else 512,
                     "fit_n": 1024 if quick else 2048, "zero_function": True}}
    if teacher is not None:
        raw["teacher"] = teacher
    return finite_config(raw)


def _data(cfg, jnp, jax):
    d = cfg["data"]
    dtype = jnp.dtype(cfg["dtype"])
    base = jax.random.PRNGKey(d["seed"])
    mix = gaussian_mixture(jax.random.fold_in(base, 0), d["modes"], d=d["d"])
    x = sample_inputs(jax.random.fold_in(base, 1), d["n"], d=d["d"], dtype=dtype)
    xt = sample_inputs(jax.random.fold_in(base, 2), d["n_test"], d=d["d"], dtype=dtype)
    zt = d["reduction"] * mix.logits(x).astype(dtype)
    return x, zt, (zt > 0).astype(dtype), xt


def run_finite(cfg: dict, out, *, progress=sys.stderr) -> dict:
    """Run a validated finite-width config into ``out``; returns the summary data. A float64 config runs
    in a ``jax.enable_x64`` scope (the process's setting is left as it was)."""
    import jax

    if cfg["dtype"] == "float64":
        with jax.enable_x64(True):
            return _run_finite(cfg, out, progress=progress)
    return _run_finite(cfg, out, progress=progress)


def _run_finite(cfg: dict, out, *, progress=sys.stderr) -> dict:
    import jax
    import jax.numpy as jnp

    from ... import finite as F

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.json", json.dumps(cfg, indent=1))
    t0 = time.perf_counter()
    m, t = cfg["model"], cfg["train"]
    common = dict(depth=m["depth"], activation=m["activation"], W_std=m["W_std"], b_std=m["b_std"])
    dtype = jnp.dtype(cfg["dtype"])
    comp = cfg["comparison"]
    if comp == "weight_change":
        res = _weight_change(cfg, out, progress, jax, jnp, F, dtype)
    else:
        x, zt, yg, xt = _data(cfg, jnp, jax)
        if comp == "ntk_convergence":
            r = F.ntk_convergence(x, m["widths"], seeds=t["seeds"], dtype=dtype, **common)
            res = {"widths": m["widths"], "mean": r["mean"].tolist(), "std": r["std"].tolist(),
                   "slope": r["slope"], "rel_err": r["rel_err"].tolist()}
        else:
            kw = dict(rhos=t["rho"], T=t["T"], seeds=t["seeds"], steps=t["steps"],
                      learning_rate=t["learning_rate"], optimizer=t["optimizer"], reference=t["reference"],
                      dtype=dtype, checkpoint_dir=out / "checkpoints", progress=progress, **common)
            if comp == "student_vs_kernel":
                res = {}
                for w in m["widths"]:
                    r = F.student_vs_kernel(x, zt, yg, xt, width=w, **kw)
                    res[str(w)] = {k: np.asarray(v).tolist() for k, v in r.items() if k.startswith("gap")}
            else:
                r = F.width_gap(x, zt, yg, xt, widths=m["widths"], **kw)
                res = {"widths": m["widths"]}
                for kind in ("nonlinear", "linearized"):
                    res[kind] = {"mean": r[kind]["mean"].tolist(), "std": r[kind]["std"].tolist(),
                                 "slope": r[kind]["slope"], "gap": r[kind]["gap"].tolist()}
    if comp != "weight_change":
        res["empirical_ntk_method"] = "structured"  # ntkd.finite.compare's choice (ntkd.empirical_ntk)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    write_text_atomic(out / "results.json", json.dumps(res, indent=1))
    plot_finite(cfg, res, out)
    return res


def _weight_change(cfg, out, progress, jax, jnp, F, dtype):
    import optax

    m, t = cfg["model"], cfg["train"]
    task = cfg.get("teacher") or validated_task({**FIGS6_TEACHER, "fit_n": t["fit_n"]})
    teacher = task_teacher(task, dtype=dtype)
    width = m["widths"][0]
    init_fn, apply_fn = F.mlp(2, width, m["depth"], activation=m["activation"], W_std=m["W_std"],
                              b_std=m["b_std"], dtype=dtype)
    p0 = init_fn(jax.random.PRNGKey(t["seeds"][0]))
    opt = optax.adam(t["learning_rate"]) if t["optimizer"] == "adam" else optax.sgd(t["learning_rate"])
    log_at = F.geometric_steps(t["steps"], per_decade=12)
    key = jax.random.PRNGKey(0)
    # perfect teacher (Fig. 2): y_g = 1{z_t > 0}
    sampler = F.online_sampler(lambda x: teacher(x, key)[0], dtype=dtype)
    rhos = np.asarray(t["rho"], float)
    R = len(rhos)
    ck = out / "checkpoints"
    ck.mkdir(exist_ok=True)
    params0 = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (R,) + a.shape), p0)
    common = dict(optimizer=opt, steps=t["steps"], batch_size=t["batch_size"], log_steps=log_at,
                  linearized=True, seed=t["seeds"][0], optimizer_id=f"{t['optimizer']}:{t['learning_rate']}",
                  progress=progress)
    _, log = F.train_kd(apply_fn, params0, sampler, rho=rhos, T=t["T"], runs=R,
                        checkpoint=ck / f"students_w{width}", **common)
    res = {"epochs": log.steps.tolist(), "rho": rhos.tolist(), "dw_norm": log.dw_norm.tolist(),
           "loss": log.loss.tolist(), "width": width}
    if t["zero_function"]:
        zero = F.online_sampler(lambda x: jnp.zeros(x.shape[0], dtype), dtype=dtype)
        _, lz = F.train_kd(apply_fn, p0, zero, rho=1.0, T=t["T"], checkpoint=ck / f"zero_w{width}",
                           **common)
        res["zero_dw_norm"] = lz.dw_norm.tolist()
    return res


def plot_finite(cfg, res, out: Path) -> None:
    plt = pyplot()
    comp = cfg["comparison"]
    lines = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if comp == "weight_change":
        ep = np.asarray(res["epochs"], float)
        keep = ep >= 1
        dw = np.asarray(res["dw_norm"])
        for i, r in enumerate(res["rho"]):
            ax.loglog(ep[keep], dw[i][keep], color=plt.cm.viridis(i / max(1, len(res["rho"]) - 1)), label=f"ρ = {r}")
        if "zero_dw_norm" in res:
            ax.loglog(ep[keep], np.asarray(res["zero_dw_norm"])[keep], "k--", label="zero function")
        ax.set_xlabel("epoch (one fresh batch each)")
        ax.set_ylabel("‖Δw‖")
        ax.set_title(f"Ji & Zhu Fig. S6: linearized L = {cfg['model']['depth']}, m = {res['width']}", fontsize=10)
        final = dw[:, -1]
        order_ok = bool(np.all(np.diff(final) >= 0))  # ρ listed in decreasing order
        inversions = int(np.sum(np.diff(final) < 0))
        i0 = [i for i, r in enumerate(res["rho"]) if r == 0.0]
        half = int(np.searchsorted(ep, ep[-1] / 2))
        lines += ["| ρ | ‖Δw‖ final | ‖Δw‖ at half the epochs | growth over the last half |", "|---|---|---|---|"]
        lines += [f"| {r} | {dw[i, -1]:.4g} | {dw[i, half]:.4g} | {dw[i, -1] / dw[i, half]:.3f} |"
                  for i, r in enumerate(res["rho"])]
        lines += ["", f"- Q7 final ‖Δw‖ increases as ρ decreases: {inversions} inversion(s) among "
                  f"{len(final) - 1} neighbouring pairs — {verdict(order_ok)}"]
        if i0:
            g0 = dw[i0[0], -1] / dw[i0[0], half]
            lines.append(f"- Q7 ρ = 0 keeps growing: ×{g0:.3f} over the last half of training "
                         f"(ρ = 1: ×{dw[0, -1] / dw[0, half]:.3f}) — {verdict(g0 > dw[0, -1] / dw[0, half])}")
        if "zero_dw_norm" in res:
            z = np.asarray(res["zero_dw_norm"])
            ratio = dw[0, -1] / z[-1]
            lines.append(f"- Q7 zero function: final ‖Δw_z‖ = {z[-1]:.4g}, ρ = 1 task / zero function = "
                         f"{ratio:.2f} (claim: several times) — {verdict(ratio > 2)}; growth over the last "
                         f"half ×{z[-1] / z[half]:.3f} (converges early)")
    elif comp == "ntk_convergence":
        w = np.asarray(res["widths"])
        ax.errorbar(w, res["mean"], yerr=res["std"], marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width m")
        ax.set_ylabel("‖Θ̂ - Θ‖_F / ‖Θ‖_F")
        lines += [f"- relative error of the empirical NTK at init: {', '.join(f'{v:.4g}' for v in res['mean'])} "
                  f"at widths {res['widths']}; log-log slope {res['slope']:.3f} (expected -1/2)"]
    elif comp == "width_gap":
        w = np.asarray(res["widths"])
        for kind, mk in (("nonlinear", "o"), ("linearized", "s")):
            r = res[kind]
            ax.errorbar(w, r["mean"], yerr=r["std"], marker=mk, capsize=3,
                        label=f"{kind} (slope {r['slope']:.2f})")
            lines.append(f"- {kind}: relative gap {', '.join(f'{v:.4g}' for v in r['mean'])} "
                         f"(± {', '.join(f'{v:.2g}' for v in r['std'])}) at widths {res['widths']}; "
                         f"log-log slope {r['slope']:.3f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width m")
        ax.set_ylabel("‖f_finite - f_kernel‖ / ‖f_kernel - f0‖ (test)")
    else:
        for w, r in res.items():
            if not isinstance(r, dict):  # "seconds", "empirical_ntk_method"
                continue
            for k, v in r.items():
                lines.append(f"- width {w}, {k}: mean {np.mean(v):.4g}")
        ax.axis("off")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{comp}.png", dpi=120)
    plt.close(fig)
    head = [f"## {cfg['name']} ({comp})", "", f"Config: `{out / 'config.json'}`; {res['seconds']} s.", ""]
    write_text_atomic(out / "summary.md", "\n".join(head + lines + [""]))
