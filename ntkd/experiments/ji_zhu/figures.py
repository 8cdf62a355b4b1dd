"""Reproductions of Ji & Zhu (2020): the figures as data, PNGs and a ``summary.md`` of headline numbers.

``reproduce(name, out, quick=...)`` runs one figure (``ji-zhu-fig1``, ``-fig2``, ``-fig3``, ``-fig4``,
``-fig5``, ``-figS6``, ``-figS7``) or all of them (``ji-zhu``). Sweep figures run through :func:`ntkd.experiments.ji_zhu.sweep.run_sweep`
(resumable: rerunning the command continues where it stopped) into ``out/<figure>/<part>/``; plotting
(:func:`plot`) reads only the stores, so ``ntkd plot DIR`` redraws from data.

Sizes: ``quick`` fits all figures in a few minutes on 2 CPU cores; the full sizes are the ones recorded
in ``docs/reproductions.md`` (CPU, float64), and scale up on accelerators via the same configs.
Choices the paper leaves open ([G]) are in each config and in :mod:`.teachers`.

Protocols (``reproduce(..., protocol=...)``, ``ntkd reproduce --protocol``): ``"paper"`` (the default; finite
network teachers and students with the z0 of an initialized network, :func:`paper_configs`) and ``"kernel"``
(the kernel-limit settings of earlier commits, configs and rows unchanged). ``docs/reproductions.md`` (Ji & Zhu)
compares them and says which modelling choice moves which number.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..._core.linalg import with_float64
from ..._core.stats import loglog_slope, mean_sem
from ...kernels import mlp_kernel_fn
from ...theories.transfer_risk.distill import effective_logits, threshold
from ...theories.transfer_risk.inefficiency import data_inefficiency
from ..plotting import (beyond_2sem, figure_names, mean_by, paired, per_seed_slopes, pyplot, store_rows, verdict,
                        write_summary)
from ..runner import run_figures
from ..store import ResultsStore
from .finite_runs import figS6_config, finite_config, plot_finite, run_finite
from .sweep import SweepConfig, run_sweep

__all__ = ["FIGURES", "reproduce", "plot", "figure_configs", "paper_configs", "figS6_protocol_config", "endpoint_slope", "PROTOCOLS",
           "DEFAULT_PROTOCOL"]

INF = float("inf")


FIG2_RHOS = [1.0, 0.96, 0.646, 0.5, 0.35, 0.145, 0.017, 0.002]  # Fig. 2 M legends (both panels)


# Fig. 4 R legend shows 1 - ρ; 0.1 and 0.5 are added to show the pure-hard-label plateau (drawn, not tested)
FIG4_HARD = [0.0, 1.0e-4, 2.08e-3, 4.06e-3, 6.04e-3, 1.0e-2, 1.688e-2, 0.1, 0.5]
FIG4_PAPER_MAX_HARD = 1.688e-2


FIG5_RHOS = [0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0]  # Fig. 5 M's bars


def _ngrid(lo, hi, k):
    return sorted({int(round(v)) for v in np.geomspace(lo, hi, k)})


PROTOCOLS = ("paper", "kernel")
#: the protocol of ``ntkd reproduce ji-zhu*`` when none is named
DEFAULT_PROTOCOL = "paper"


def figure_configs(fig: str, quick: bool, protocol: str = "kernel") -> dict:
    """The sweep configurations (dicts in the TOML schema of :class:`.sweep.SweepConfig`) of one
    figure, by part name.

    ``protocol = "kernel"``: the kernel-limit settings (kernel teachers, z0 = 0 for Figs. 2 and 5); these
    configs, their hashes and rows are those of every earlier commit. ``"paper"``: the paper's protocol
    (:func:`paper_configs`)."""
    if protocol == "paper":
        return paper_configs(fig, quick)
    if protocol != "kernel":
        raise ValueError(f"`protocol` must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    q = quick
    if fig == "fig2":
        return {"students": {
            "name": "ji-zhu-fig2", "figure": "fig2",
            # perfect teacher: a converged kernel teacher (L = 5) on hard labels of a 20-mode mixture,
            # reduction r = 0.3; linearized students L = 3, T = 10 (§6)
            "task": {"kind": "kernel_teacher", "modes": 20, "fit_n": 1024 if q else 2048, "stop_time": INF,
                     "reduction": 0.3, "perfect": True},
            "student": {"depth": 3},
            "grid": {"rho": FIG2_RHOS, "T": [10.0], "t": [INF],
                     "n": [2**k for k in range(4, 11 if q else 13)], "seeds": 3 if q else 8},
            "eval": {"n_test": 2048 if q else 8192, "n_ref": 1024 if q else 4096}}}
    if fig == "fig3":
        base = {"figure": "fig3", "student": {"depth": 5, "init": "network", "init_width": 1024},
                "eval": {"n_test": 256, "n_ref": 0}}
        grid = {"rho": [1.0], "T": [1.0], "t": [INF], "n": _ngrid(10, 1000 if q else 4000, 10 if q else 16),
                "seeds": 4 if q else 10}
        return {
            "modes": {**base, "name": "ji-zhu-fig3-modes", "grid": grid,
                      "task": {"kind": "mixture", "modes": [22, 48, 103, 469, 1000]}},
            "references": {**base, "name": "ji-zhu-fig3-references", "grid": grid,
                           "task": {"kind": ["zero", "random"]}},
            "flips": {**base, "name": "ji-zhu-fig3-flips", "grid": grid,
                      "task": {"kind": "mixture", "modes": 103,
                               "p_flip": [0.0, 2.58e-4, 1.71e-3, 1.13e-2, 7.53e-2, 0.5]}}}
    if fig == "fig4":
        return {"teachers": {
            "name": "ji-zhu-fig4", "figure": "fig4",
            # the teacher stopping time plays the stopping epoch (M); one sweep also gives R (ρ columns)
            "task": {"kind": "kernel_teacher", "modes": 20, "fit_n": 1024 if q else 2048, "reduction": 1.0,
                     "stop_time": [10.0, 30.0, 100.0, 300.0, 1000.0, INF], "perfect": True},
            "student": {"depth": 5, "init": "network", "init_width": 1024},
            "grid": {"rho": [1.0 - h for h in FIG4_HARD], "T": [10.0], "t": [INF],
                     "n": _ngrid(16, 1000 if q else 4000, 10 if q else 16), "seeds": 4 if q else 8},
            "eval": {"n_test": 256, "n_ref": 0}}}
    if fig == "fig5":
        # the teacher sees more data than the student (fit_n > n), as the paper's online-batch teacher does
        task = {"kind": "kernel_teacher", "modes": 20, "fit_n": 2048 if q else 4096, "reduction": 0.3,
                "perfect": False}
        return {
            "error_vs_rho": {"name": "ji-zhu-fig5-middle", "figure": "fig5",
                             "task": {**task, "stop_time": 1000.0}, "student": {"depth": 3},
                             "grid": {"rho": FIG5_RHOS, "T": [10.0], "t": [INF], "n": [512 if q else 2**14],
                                      "seeds": 4 if q else 8},
                             "eval": {"n_test": 8192 if q else 16384, "n_ref": 0}},
            "hard_label_effect": {"name": "ji-zhu-fig5-right", "figure": "fig5",
                                  "task": {**task, "stop_time": [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0,
                                                                 1e4, 1e5]},
                                  "student": {"depth": 3},
                                  "grid": {"rho": [1.0], "T": [10.0], "t": [INF],
                                           "n": [32, 128, 512] if q else [32, 128, 512, 2048],
                                           "seeds": 3 if q else 5},
                                  "eval": {"n_test": 8192, "n_ref": 0}}}
    raise KeyError(fig)


#: The paper's teachers (§6): finite ReLU networks d = 2, L = 5 of width 1024 trained with Adam on the hard
#: labels of a Gaussian-mixture function with online batches, by figure. [G] choices: the stopping epoch of
#: the Fig. 2 teacher (the paper calls it perfect; 16,384 epochs), the batch of the Figs. 4/5 teachers (4096,
#: as Fig. 2's), the Fig. 5 R checkpoints (the paper's axis 251–10,000 of a 10,240-epoch run, sampled
#: around its sign change at 2.5k–3.5k), and the 20-mode mixture behind every teacher (the Fig. 4 teacher
#: learns the hard labels of the Fig. 2 teacher in the paper; here of the mixture the Fig. 2 teacher learns).
PAPER_TEACHERS = {
    "fig2": {"teacher_width": 1024, "teacher_lr": 5e-4, "teacher_batch": 4096, "stop_epoch": 16384},
    "fig4": {"teacher_width": 1024, "teacher_lr": 1e-2, "teacher_batch": 4096,
             "stop_epoch": [255, 511, 767, 1919, 4351, 9855, 22015]},
    "fig5m": {"teacher_width": 1024, "teacher_lr": 1e-4, "teacher_batch": 4096, "stop_epoch": 5113},
    "fig5r": {"teacher_width": 1024, "teacher_lr": 1e-4, "teacher_batch": 4096,
              "stop_epoch": [251, 501, 1001, 2001, 2501, 3001, 3501, 4001, 6001, 10000]},
}
#: Quick mode (CPU minutes): one teacher run (width 64, Adam 1e-2, batch 256) serves every figure, each
#: figure's stopping epochs about 1/32 of the paper's (trained once: :func:`.teachers.prefetch_network_teachers`).
QUICK_TEACHER = {"teacher_width": 64, "teacher_lr": 1e-2, "teacher_batch": 256}
QUICK_STOPS = {"fig2": 688, "fig4": [8, 16, 24, 60, 136, 308, 688], "fig5m": 160,
               "fig5r": [8, 16, 32, 64, 128, 256, 512]}
#: Fig. 4 R's teacher (the paper: stopped at epoch 511), and the stopping epochs of Fig. 4 M, by quick
FIG4R_STOP = {False: 511, True: 16}
#: the width m of the linearized students of Figs. 2 and 5 (z0 from an initialized width-m network), by quick
PAPER_STUDENT_WIDTH = {False: 2048, True: 512}


def _paper_teacher(fig, quick, **extra):
    t = ({**QUICK_TEACHER, "stop_epoch": QUICK_STOPS[fig]} if quick else dict(PAPER_TEACHERS[fig]))
    return {"kind": "network_teacher", "teacher_depth": 5, "modes": 20, **t, **extra}


def figS6_protocol_config(quick: bool, protocol: str = "kernel") -> dict:
    """Fig. S6's finite-width config (:func:`.finite_runs.figS6_config`) under ``protocol``: the kernel
    teacher, or (``"paper"``) the Fig. 2 network teacher of :func:`paper_configs`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    teacher = paper_configs("fig2", quick)["students"]["task"] if protocol == "paper" else None
    return figS6_config(quick, teacher)


def paper_configs(fig: str, quick: bool) -> dict:
    """The paper's protocol (§6, as far as a CPU allows at quick sizes), by part name.

    Teachers are finite networks (:data:`PAPER_TEACHERS`; quick: :data:`QUICK_TEACHER`), trained on hard
    labels with online batches and early-stopped where the figure says; students are linearized width-m
    networks *with their initial function z0* (``student.init = "network"``, Eq. 4: the predictor is
    z0(x) + Θ(x, X) Θ_n⁻¹ (z_eff − z0(X))), m = 2048 for Figs. 2/5 (quick 512) and 1024 for Figs. 3/4
    (the paper's z0 network). Θ is, at full size for Figs. 2/5, the empirical NTK of that very width-m
    network (``student.kernel = "empirical"``: the linearized finite student itself, an accelerator run);
    at quick sizes and for Figs. 3/4 the analytic NTK, the m → ∞ limit of the student's kernel at fixed z0
    (on CPU; docs/reproductions.md measures what the swap moves: 2.0× the Fig. 2 risk at m = 2048);
    T = 10; r = 0.3 for Figs. 2 and 5 ([G] r = 1 for Fig. 4, unstated); n grids 32·2^k (Figs. 2, 5 R);
    the paper's ρ legends; Fig. 3: 20 runs; Fig. 5 M at n = 2^14. Number of runs where unstated ([G]):
    8 (Fig. 2), 8 (Fig. 4), 8 (Fig. 5 M), 5 (Fig. 5 R); quick: 3–4.
    """
    q = quick
    w = PAPER_STUDENT_WIDTH[q]
    linearized = {} if q else {"kernel": "empirical"}  # full size: the width-m student's own NTK
    if fig == "fig2":
        return {"students": {
            "name": "ji-zhu-fig2-paper", "figure": "fig2",
            "task": _paper_teacher("fig2", q, reduction=0.3, perfect=True),
            "student": {"depth": 3, "init": "network", "init_width": w, **linearized},
            "grid": {"rho": FIG2_RHOS, "T": [10.0], "t": [INF],
                     "n": [32 * 2**k for k in range(6 if q else 9)], "seeds": 3 if q else 8},
            "eval": {"n_test": 2048 if q else 8192, "n_ref": 1024 if q else 4096}}}
    if fig == "fig3":  # tasks are functions, not teachers: the kernel configs with the paper's 20 runs
        cfgs = figure_configs("fig3", q, "kernel")
        if not q:
            for c in cfgs.values():
                c["grid"] = {**c["grid"], "seeds": 20}
        return cfgs
    if fig == "fig4":
        return {"teachers": {
            "name": "ji-zhu-fig4-paper", "figure": "fig4",
            "task": _paper_teacher("fig4", q, reduction=1.0, perfect=True),
            "student": {"depth": 5, "init": "network", "init_width": 1024},
            "grid": {"rho": [1.0 - h for h in FIG4_HARD], "T": [10.0], "t": [INF],
                     "n": _ngrid(16, 1000 if q else 4000, 10 if q else 16), "seeds": 4 if q else 8},
            "eval": {"n_test": 256, "n_ref": 0}}}
    if fig == "fig5":
        return {
            "error_vs_rho": {"name": "ji-zhu-fig5-middle-paper", "figure": "fig5",
                             "task": _paper_teacher("fig5m", q, reduction=0.3, perfect=False),
                             "student": {"depth": 3, "init": "network", "init_width": w, **linearized},
                             "grid": {"rho": FIG5_RHOS, "T": [10.0], "t": [INF], "n": [512 if q else 2**14],
                                      "seeds": 4 if q else 8},
                             "eval": {"n_test": 8192 if q else 16384, "n_ref": 0}},
            "hard_label_effect": {"name": "ji-zhu-fig5-right-paper", "figure": "fig5",
                                  "task": _paper_teacher("fig5r", q, reduction=0.3, perfect=False),
                                  "student": {"depth": 3, "init": "network", "init_width": w, **linearized},
                                  "grid": {"rho": [1.0], "T": [10.0], "t": [INF],
                                           "n": [32, 128, 512] if q else [2**k for k in (5, 7, 9, 11, 13)],
                                           "seeds": 3 if q else 5},
                                  "eval": {"n_test": 8192, "n_ref": 0}}}
    raise KeyError(fig)


def _prefetch(tasks, dtype: str):
    """Train every network teacher of ``tasks`` (validated task dicts) once, all stopping epochs of a run
    together, in ``dtype`` ("float64" or "float32")."""
    from .teachers import prefetch_network_teachers

    tasks = [t for t in tasks if t["kind"] == "network_teacher"]
    if not tasks:
        return
    import jax

    with jax.enable_x64(dtype == "float64"):
        prefetch_network_teachers(tasks, dtype=jax.numpy.dtype(dtype))


FIGURES = ("fig1", "fig2", "fig3", "fig4", "fig5", "figS6", "figS7")


def _pending(names, out, quick, protocol) -> list:
    """The sweep configs of ``names`` whose stores are not complete (for the teacher prefetch)."""
    cfgs = []
    for k in names:
        if k in ("fig1", "figS7", "figS6"):
            continue
        for part, raw in figure_configs(k, quick, protocol).items():
            cfg = SweepConfig.from_dict(raw)
            path = out / k / part / "results.sqlite"
            if path.exists():
                with ResultsStore(path, read_only=True) as st:
                    if st.count() >= cfg.n_rows():
                        continue
            cfgs.append(cfg)
    return cfgs


def reproduce(name: str, out, *, quick: bool = False, protocol: str = DEFAULT_PROTOCOL,
              progress=sys.stderr) -> dict:
    """Run one figure (``"ji-zhu-fig2"``, or ``"fig2"``) or all (``"ji-zhu"``); returns the summaries.

    ``protocol``: ``"paper"`` (finite network teachers, students with the z0 of an initialized network,
    the paper's grids: :func:`paper_configs`) or ``"kernel"`` (the kernel-limit settings). A folder holds
    one protocol: rerunning into it with the other is refused by the stores, naming the keys that differ.
    Network teachers that several figures share are trained once (all their stopping epochs together)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    names = figure_names("ji-zhu", name, FIGURES)
    out = Path(out)
    if protocol == "paper":  # one run per teacher recipe for every figure still to compute
        pending = _pending(names, out, quick, protocol)
        tasks = [t for c in pending for _, t in c.variants()]
        if "figS6" in names and not (out / "figS6" / "results.json").exists():
            tasks.append(figS6_protocol_config(quick, protocol)["teacher"])
        if tasks:
            _prefetch(tasks, pending[0].dtype if pending else "float64")

    def run_one(k, d):
        if k == "figS6":  # finite-width training (.finite_runs), resumable through its checkpoints
            run_finite(figS6_protocol_config(quick, protocol), d, progress=progress)
        elif k not in ("fig1", "figS7"):
            for part, raw in figure_configs(k, quick, protocol).items():
                cfg = SweepConfig.from_dict(raw)
                run_sweep(cfg, d / part, progress=progress)
                with ResultsStore(d / part / "results.sqlite", read_only=True) as st:
                    st.to_csv(d / part / "results.csv")
        # fig1 and figS7 are computed directly, figS6 by run_finite, the others drawn from the stores
        s = plot(d) if k != "figS6" else json.loads((d / "results.json").read_text())
        s["protocol"] = protocol
        return s

    return run_figures("ji-zhu", names, out, quick=quick, run_one=run_one, meta=lambda k: {"protocol": protocol},
                       title="Ji & Zhu (2020) reproduction", note=f", {protocol} protocol", progress=progress)


def endpoint_slope(x, y) -> float:
    """Slope of log y vs log x between the first and the last point (NaN unless both are > 0): the
    slope a reader takes off a log-log figure's end points, beside the least-squares ``loglog_slope``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or not (x[0] > 0 and x[-1] > 0 and y[0] > 0 and y[-1] > 0):
        return float("nan")
    return float(np.log(y[-1] / y[0]) / np.log(x[-1] / x[0]))


def _inefficiency(ns, norms):
    n_mid, I = data_inefficiency(np.asarray(ns, float), np.asarray(norms, float))
    return np.asarray(n_mid), np.asarray(I)


#: the paper's Fig. 1 values (brief E1, E2): thresholds t and z_eff(-15, y_g = 1), left (T = 5) and right (ρ = 0.05)
FIG1_PAPER = {"left": {0.89524: (1.750, -0.851), 0.46564: (3.500, 2.221), 0.09780: (5.250, 4.243),
                       0.014851: (7.000, 6.12)},
              "right": {0.2: (1.887, 1.037), 0.5: (2.897, 2.155), 1.0: (3.664, 2.944), 2.0: (4.529, 3.757),
                        5.0: (5.882, 4.931)}}


def fig1_checks(data) -> list:
    """The Fig. 1 claims as tests on the computed curves: ``[(claim, ok, detail)]``. Thresholds are the
    paper's legend numbers (to 1e-3; z_eff(-15) to 5e-3, the paper gives ≈6.12 for the last); the
    orderings and |z_eff| > |z_t| are claims of §2.5 tested on every grid point; the paper-GD curves
    (T < 1) must plateau at 11.46 ± 0.3 for z_t = 5 and rejoin z_eff = z_t at |z_t| = 13 and 15."""
    out = []
    for side, key in (("left", "ρ"), ("right", "T")):
        dev = max(max(abs(data[side][k]["threshold"] - t), abs(data[side][k]["z_eff(-15, y=1)"] - z) / 5)
                  for k, (t, z) in FIG1_PAPER[side].items())
        out.append((f"thresholds t and z_eff(-15) equal the paper's ({side}, by {key}; max |Δt|, |Δz|/5)",
                    dev <= 1e-3 + 1e-12, f"{dev:.1e}"))
    left = sorted((k, v["threshold"]) for k, v in data["left"].items() if k < 1)
    out.append(("the split at z_t = 0 widens as the hard ratio 1 - ρ grows (T = 5)",
                all(a[1] > b[1] for a, b in zip(left, left[1:])), ", ".join(f"{t:.3f}" for _, t in left)))
    hot = sorted((k, v["threshold"]) for k, v in data["right"].items() if k >= 1)
    out.append(("for T ≥ 1 a higher T widens the split (ρ = 0.05)",
                all(a[1] < b[1] for a, b in zip(hot, hot[1:])), ", ".join(f"{t:.3f}" for _, t in hot)))
    gap = min(data["min |z_eff| - |z_t|"].values())
    out.append(("a correct teacher's student logit is larger: |z_eff| > |z_t| for ρ < 1 (min over the grid)",
                gap > 0, f"{gap:.3g}"))
    for T, g in data["paper_gd"].items():
        ok = abs(g["z_t=5"] - 11.46) < 0.3 and abs(g["z_t=13"] - 13) < 0.3 and abs(g["z_t=15"] - 15) < 0.3
        out.append((f"paper GD (T = {T}): plateau at 11.46 ± 0.3 for z_t = 5 (exact: 26.3), rejoins z_t (± 0.3) "
                    "at 13 and 15", ok,
                    f"{g['z_t=5']:.3f}, {g['z_t=13']:.3f}, {g['z_t=15']:.3f}"))
    return out


@with_float64
def _fig1(d: Path) -> dict:
    import jax.numpy as jnp

    zt = jnp.linspace(-15, 15, 601)
    left = [1.0, *FIG1_PAPER["left"]]
    right = list(FIG1_PAPER["right"])
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    data = {"left": {}, "right": {}, "paper_gd": {}, "min |z_eff| - |z_t|": {}}
    correct = (zt > 0).astype(zt.dtype)
    for i, rho in enumerate(left):
        yc = effective_logits(zt, correct, rho, 5.0)
        yw = effective_logits(zt, 1 - correct, rho, 5.0)
        ax[0].plot(zt, yc, color=f"C{i}", label=f"ρ = {rho}")
        ax[0].plot(zt, yw, color=f"C{i}", ls="--")
        data["left"][rho] = {"threshold": float(threshold(rho, 5.0)) if rho < 1 else 0.0,
                             "z_eff(-15, y=1)": float(effective_logits(-15.0, 1.0, rho, 5.0))}
        if rho < 1:
            data["min |z_eff| - |z_t|"][f"rho={rho}"] = float(jnp.min(jnp.abs(yc) - jnp.abs(zt)))
    z32 = zt.astype(jnp.float32)
    for i, T in enumerate(right):
        y = effective_logits(zt, correct, 0.05, T)
        ax[1].plot(zt, y, color=f"C{i}", label=f"T = {T}")
        data["right"][T] = {"threshold": float(threshold(0.05, T)),
                            "z_eff(-15, y=1)": float(effective_logits(-15.0, 1.0, 0.05, T))}
        data["min |z_eff| - |z_t|"][f"T={T}"] = float(jnp.min(jnp.abs(y) - jnp.abs(zt)))
        if T < 1:  # the paper's truncated-GD solver (float32, lr 10, 10k steps), started at z_t [G]
            yg = effective_logits(z32, correct.astype(jnp.float32), 0.05, T, method="paper_gd", init="teacher")
            ax[1].plot(zt, yg, color=f"C{i}", ls=":", label=f"T = {T}, paper GD solver")
            at = effective_logits(jnp.array([5.0, 13.0, 15.0], jnp.float32), 1.0, 0.05, T, method="paper_gd",
                                  init="teacher")
            data["paper_gd"][T] = {f"z_t={z}": float(v) for z, v in zip((5, 13, 15), at)}
    for a, title in zip(ax, ["T = 5 (solid: correct teacher, dashed: wrong teacher)", "ρ = 0.05"]):
        a.set_xlabel("teacher logit z_t")
        a.set_ylabel("effective student logit z_s,eff")
        a.set_title(title, fontsize=10)
        a.axhline(0, color="k", lw=0.5)
        a.set_xlim(-15, 15)
        a.legend(fontsize=8)
    ax[1].set_ylim(-15, 15)  # the paper's axis; the exact T < 1 roots leave it (E5)
    fig.suptitle("Ji & Zhu Fig. 1: effective student logits (Eq. 3), exact root")
    fig.tight_layout()
    fig.savefig(d / "fig1.png", dpi=120)
    plt.close(fig)
    lines = ["Effective logits of Eq. 3 (exact root; dotted: the paper's truncated GD solver, started at z_t).",
             "", "| ρ (T = 5) | threshold t | paper | z_eff(-15, y_g = 1) | paper |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['threshold']:.3f} | {FIG1_PAPER['left'].get(k, (0.0,))[0]:.3f} | "
              f"{v['z_eff(-15, y=1)']:.3f} | {FIG1_PAPER['left'].get(k, (0, -15.0))[1]} |"
              for k, v in data["left"].items()]
    lines += ["", "| T (ρ = 0.05) | threshold t | paper | z_eff(-15, y_g = 1) | paper |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['threshold']:.3f} | {FIG1_PAPER['right'][k][0]:.3f} | {v['z_eff(-15, y=1)']:.3f} | "
              f"{FIG1_PAPER['right'][k][1]} |" for k, v in data["right"].items()]
    checks = fig1_checks(data)
    data["checks"] = [{"claim": c, "holds": ok, "value": v} for c, ok, v in checks]
    lines += ["", "Checks (deterministic: the exact solver's values against the paper's and §2.5's claims):", ""]
    lines += [f"- {c}: {verdict(ok)} ({v})" for c, ok, v in checks]
    return write_summary(d, "Fig. 1: effective student logits", lines, data)


@with_float64
def _figS7(d: Path) -> dict:
    import jax
    import jax.numpy as jnp

    kf = mlp_kernel_fn(3)
    rng = np.random.default_rng(0)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    data = {}
    for i, s in enumerate([1e2, 1e3, 1e4, 1e5, 1e6]):  # the paper's σ_x
        x = jnp.asarray(rng.normal(size=(10000, 2)) * s)
        diag = jax.vmap(lambda v: kf(v[None], None, "ntk")[0, 0])(x)
        ratio = np.asarray(diag / jnp.sum(x * x, axis=1))
        norm = np.linalg.norm(np.asarray(x), axis=1)
        ax.loglog(norm, ratio, ".", ms=1, color=f"C{i}", label=f"σ_x = {s}")
        ident = np.abs(np.asarray(diag) - (np.asarray(jnp.sum(x * x, axis=1)) / 4 + 3.25)) / np.asarray(diag)
        data[s] = {"min_ratio": float(ratio.min()), "median_norm": float(np.median(norm)),
                   "identity_max_rel_dev": float(ident.max())}
    big = jnp.asarray([[10.0, 0.0], [0.0, 30.0], [1e2, 1e2]])
    tail = np.asarray(jax.vmap(lambda v: kf(v[None], None, "ntk")[0, 0])(big) / jnp.sum(big * big, 1))
    ax.axhline(0.25, color="k", ls="--", lw=0.8, label="1/4")
    ax.set_xlabel("‖x‖")
    ax.set_ylabel("Θ(x, x) / xᵀx")
    ax.set_title("Ji & Zhu Fig. S7: L = 3, σ_W = σ_b = 1, d = 2, x ~ N(0, σ_x² I)", fontsize=10)
    ax.legend(markerscale=8, fontsize=8)
    fig.tight_layout()
    fig.savefig(d / "figS7.png", dpi=120)
    plt.close(fig)
    overall_min = min(v["min_ratio"] for v in data.values())
    dev = max(v["identity_max_rel_dev"] for v in data.values())
    lines = ["**Identity, not a reproduced claim.** For d = 2, L = 3, σ_W = σ_b = 1 the ReLU NTK diagonal is "
             "exactly Θ(x, x) = xᵀx/4 + 3.25 (every layer maps the diagonal affinely), so Θ(x, x)/xᵀx = 1/4 + "
             "3.25/xᵀx > 1/4 for every x and → 1/4 as ‖x‖ grows; the figure shows that curve.",
             f"- max relative deviation from xᵀx/4 + 3.25 over 50,000 samples, σ_x = 10²…10⁶: {dev:.1e} "
             f"(the identity to rounding: {verdict(dev < 1e-12)})",
             f"- min of Θ(x, x)/xᵀx: {overall_min:.6f} (K1, ≥ 1/4 by the identity)",
             f"- at ‖x‖ = 10, 30, 141: {', '.join(f'{v:.4f}' for v in tail)} (→ 0.250)"]
    return write_summary(d, "Fig. S7: NTK diagonal of ReLU features", lines,
                          {"by_sigma": data, "tail": tail.tolist(), "min": overall_min})


def _meta(d: Path) -> dict:
    """A figure folder's ``figure.json`` (``protocol`` "kernel" for folders written before protocols)."""
    meta = json.loads((d / "figure.json").read_text()) if (d / "figure.json").exists() else {}
    return {"quick": False, "protocol": "kernel", **meta}


def _teacher_words(task: dict) -> str:
    """One line on a stored sweep's teacher, from its config."""
    if task["kind"] == "network_teacher":
        return (f"network teacher (d = 2, L = {task['teacher_depth']}, width {task['teacher_width']}, Adam "
                f"{task['teacher_lr']:g}, online batches of {task['teacher_batch']}, hard labels of a "
                f"{task['modes']}-mode mixture), r = {task['reduction']:g}")
    return (f"kernel teacher (NTK L = {task['teacher_depth']}, hard labels ±{task['label_scale']:g} of a "
            f"{task['modes']}-mode mixture at {task['fit_n']} points), r = {task['reduction']:g}")


def _student_words(st: dict) -> str:
    z0 = (f"z0 from initialized width-{st['init_width']} networks" if st["init"] == "network"
          else "z0 = 0 (the infinite-width mean)")
    kernel = ("the empirical NTK of that network (the linearized finite student)"
              if st.get("kernel") == "empirical" else "analytic NTK")
    return f"students: L = {st['depth']}, {kernel}, {z0}"


def _stored_config(part: Path) -> dict:
    return json.loads((part / "config.json").read_text())


def plot(d) -> dict:
    """Draw a figure directory's PNGs and ``summary.md`` from its stores; returns the summary data.
    A directory with ``figure.json`` gets that figure's plots; a plain sweep directory (``results.sqlite``)
    gets the generic sweep plots."""
    d = Path(d)
    meta = d / "figure.json"
    if meta.exists():
        fig = json.loads(meta.read_text())["figure"]
        if fig in ("fig1", "figS7"):
            return {"fig1": _fig1, "figS7": _figS7}[fig](d)
        if fig == "figS6":
            return _replot_finite(d)
        return {"fig2": _plot_fig2, "fig3": _plot_fig3, "fig4": _plot_fig4, "fig5": _plot_fig5}[fig](d)
    if (d / "results.sqlite").exists():
        return _plot_generic(d)
    if (d / "results.json").exists() and (d / "config.json").exists():  # ntkd finite-width
        return _replot_finite(d)
    raise FileNotFoundError(f"{d} holds neither a reproduction (figure.json) nor a sweep (results.sqlite)")


def _replot_finite(d: Path) -> dict:
    res = json.loads((d / "results.json").read_text())
    plot_finite(finite_config(json.loads((d / "config.json").read_text())), res, d)
    return res


def _plot_fig2(d: Path) -> dict:
    rows, curves = store_rows(d / "students")
    plt = pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(20, 4.3))
    risk = mean_by(rows, ("rho", "n"), "risk")
    alpha = mean_by(rows, ("rho", "n"), "alpha")
    bound = mean_by(rows, ("rho", "n"), "bound")
    rhos = sorted({k[0] for k in risk}, reverse=True)
    slopes, ends, last, alpha_last, first = {}, {}, {}, {}, {}
    for i, rho in enumerate(rhos):
        ns = [k[1] for k in risk if k[0] == rho]
        rv = [risk[(rho, n)][0] for n in ns]
        av = [alpha[(rho, n)][0] for n in ns]
        slopes[rho] = loglog_slope(ns, rv)
        ends[rho] = endpoint_slope(ns, rv)
        first[rho] = rv[0]
        last[rho], alpha_last[rho] = rv[-1], av[-1]
        ax[0].loglog(ns, rv, "o-", color=f"C{i}", label=f"ρ = {rho} (slope {slopes[rho]:.2f})")
        ax[3].semilogx(ns, av, "o-", color=f"C{i}", label=f"ρ = {rho}")
    ax[0].set_xlabel("n")
    ax[0].set_ylabel("transfer risk")
    ax[0].set_title("Fig. 2 L: transfer risk vs n", fontsize=10)
    ax[3].set_xlabel("n")
    ax[3].set_ylabel("α'_n = ᾱ(Δŵ_n, Δw_*) (rad)")
    ax[3].set_title("Fig. 2 R: student–oracle angle", fontsize=10)
    panels = [[1.0, 0.96, 0.646, 0.5], [0.5, 0.35, 0.145, 0.017, 0.002]]
    pdata = {}
    for j, group in enumerate(panels):
        for i, rho in enumerate(group):
            c = [v for v in curves.values() if abs(v["rho"] - rho) < 1e-12]
            if not c:
                continue
            c = c[0]
            b, p = np.asarray(c["betas"]), np.asarray(c["p"])
            ax[1 + j].plot(b, p, color=f"C{i}", label=f"ρ = {rho}")
            pdata[rho] = {"p(1.5)": float(np.interp(1.5, b, p)), "p(1.55)": float(np.interp(1.55, b, p)),
                          "beta_p_half": float(b[np.argmin(np.abs(p - 0.5))]), "oracle_norm": c["oracle_norm"]}
        ax[1 + j].set_xlabel("β (rad)")
        ax[1 + j].set_ylabel("p(β)")
        ax[1 + j].set_xlim(1.550, 1.570)  # the paper's axis: the whole drop of p(β) is here
        ax[1 + j].set_title(f"Fig. 2 M{'ab'[j]}: accumulative angle distribution", fontsize=10)
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(d / "fig2.png", dpi=110)
    plt.close(fig)
    n_last = max(k[1] for k in risk)
    bmin = min(v[0] for v in bound.values())
    checks = fig2_checks(rows, pdata)
    (q1a, q1b, q2a, q2b, q3) = (c[1] for c in checks)
    cfg = _stored_config(d / "students")
    n_first = min(k[1] for k in risk)
    lines = [f"Protocol: {_meta(d)['protocol']}. Perfect {_teacher_words(cfg['task'])}; "
             f"{_student_words(cfg['student'])}; T = 10; seeds per point: {next(iter(risk.values()))[2]}. "
             f"Rows: {len(rows)}.", "",
             f"| ρ | least-squares slope of log risk vs log n | endpoint slope (n = {n_first} → {n_last}) | risk at "
             f"n = {n_first} | risk at n = {n_last} | α'_n at n = {n_last} (rad) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r} | {slopes[r]:.3f} | {ends[r]:.3f} | {first[r]:.4f} | {last[r]:.4f} | "
              f"{alpha_last[r]:.3f} |" for r in rhos]
    lines += ["", "Checks: tests on the stored rows, paired by seed (the same training sets), holding only beyond "
              "2 SEM of the paired differences, over every n they name:", ""]
    lines += [f"- {c}: {verdict(ok)} ({v})" for c, ok, v in checks]
    lines += [f"- smallest Theorem 1 bound over the grid: {bmin:.3f} (vacuous when ≈ 1)"]
    return write_summary(d, "Fig. 2: transfer risk, p(β), α'_n", lines, {
        "slopes": slopes, "endpoint_slopes": ends, "risk_first": first, "risk_last": last, "alpha_last": alpha_last,
        "p_beta": pdata, "min_bound": bmin,
        "Q1": [q1a, q1b], "Q2": [q2a, q2b], "Q3": q3})


def fig2_checks(rows, pdata) -> list:
    """The Fig. 2 claims as tests on the stored rows: ``[(claim, ok, detail)]``. Q1/Q2 pair the ρ = 1 rows
    with each ρ < 1 by seed and hold only beyond 2 SEM; "large n" is the upper half of the n grid, every
    n of it; Q3 reads the ρ = 1 angle distribution where the paper draws it (β ∈ [1.55, π/2])."""
    rhos = sorted({r["rho"] for r in rows}, reverse=True)
    lt1 = [r for r in rhos if r < 1]
    ns = sorted({r["n"] for r in rows})
    upper = set(ns[len(ns) // 2:])

    def is_rho(rho):
        return lambda r: r["rho"] == rho

    def fmt(tab):
        return "; ".join(f"{k}: {m:+.3g} ± {se:.2g}" for k, (m, se, _) in tab.items())

    def slope_diffs(metric, log_y):
        one = per_seed_slopes(rows, metric, is_rho(1.0), log_y=log_y)
        tab = {}
        for r in lt1:
            other = per_seed_slopes(rows, metric, is_rho(r), log_y=log_y)
            d = [one[k] - other[k] for k in one if k in other and np.isfinite(one[k] - other[k])]
            if d:
                m, se = mean_sem(d)
                tab[r] = (float(m), float(se), len(d))
        return tab

    out = []
    tab = slope_diffs("risk", True)
    out.append(("Q1: the ρ = 1 risk falls faster in n (per-seed log-log slope below every ρ < 1)",
                beyond_2sem(tab, -1), "slope difference by ρ: " + fmt(tab)))
    worst = {}
    ok = True
    for r in lt1:
        t = {n: v for n, v in paired(rows, "risk", is_rho(1.0), is_rho(r)).items() if n in upper}
        ok &= beyond_2sem(t, -1)
        worst[r] = max(t.values(), key=lambda v: v[0] + 2 * v[1]) if t else (float("nan"), 0.0, 0)
    out.append((f"Q1: at every large n ({min(upper)}–{max(upper)}) the ρ = 1 risk is below every ρ < 1", ok,
                "least favourable n by ρ: " + fmt(worst)))
    one = per_seed_slopes(rows, "alpha", is_rho(1.0), log_y=False)
    m, se = mean_sem(list(one.values())) if len(one) > 1 else (float("nan"), float("nan"))
    out.append(("Q2: α'_n decreases with n for ρ = 1 (per-seed slope of α'_n vs log n < 0)",
                len(one) > 1 and bool(m < -2 * se), f"{m:+.3g} ± {se:.2g} rad per e-fold of n"))
    worst, ok = {}, True
    for r in lt1:
        t = {n: v for n, v in paired(rows, "alpha", is_rho(1.0), is_rho(r)).items() if n in upper}
        ok &= beyond_2sem(t, -1)
        worst[r] = max(t.values(), key=lambda v: v[0] + 2 * v[1]) if t else (float("nan"), 0.0, 0)
    out.append(("Q2: at every large n the ρ = 1 angle α'_n is the smallest", ok,
                "least favourable n by ρ: " + fmt(worst)))
    p = pdata.get(1.0, {})
    out.append(("Q3 (one curve per ρ, no seed spread): p(β) ≈ 1 up to β = 1.55 for ρ = 1, the drop within "
                "[1.55, π/2]", p.get("p(1.55)", 0) > 0.9,
                f"p(1.5) = {p.get('p(1.5)', float('nan')):.3f}, p(1.55) = {p.get('p(1.55)', float('nan')):.3f}, "
                f"p = 1/2 at β = {p.get('beta_p_half', float('nan')):.4f}"))
    return out


def _vkey(v):
    """Sort key of a variant label 'name=value[,...]' (or a number): numeric where the value is."""
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    parts = []
    for item in str(v).split(","):
        val = item.split("=", 1)[-1]
        try:
            parts.append((0, float(val), ""))
        except ValueError:
            parts.append((1, 0.0, val))
    return tuple(parts)


def _I_curves(rows, where=lambda r: True, key="variant"):
    norms = mean_by(rows, (key, "n"), "w_norm", where)
    out = {}
    for v in sorted({k[0] for k in norms}, key=_vkey):
        ns = [k[1] for k in norms if k[0] == v]
        nm, I = _inefficiency(ns, [norms[(v, n)][0] for n in ns])
        out[v] = (nm, I, ns, [norms[(v, n)][0] for n in ns])
    return out


def jackknife_I(rows, where=lambda r: True, key="variant") -> dict:
    """``{group: (n_mid, I, I_leave_one_seed_out)}``: I(n) from the seed-mean norms (the mean before the
    log, as the paper) and the same estimate with each seed left out, ``(S, g - 1)``, for jackknife errors."""
    out = {}
    sel = [r for r in rows if where(r)]
    for v in sorted({r[key] for r in sel}, key=_vkey):
        mine = [r for r in sel if r[key] == v]
        ns, seeds = sorted({r["n"] for r in mine}), sorted({r["seed"] for r in mine})
        W = np.full((len(seeds), len(ns)), np.nan)
        for r in mine:
            W[seeds.index(r["seed"]), ns.index(r["n"])] = r["w_norm"]
        nm, I = _inefficiency(ns, np.nanmean(W, 0))
        loo = np.stack([_inefficiency(ns, np.nanmean(np.delete(W, s, 0), 0))[1] for s in range(len(seeds))])
        out[v] = (nm, I, loo)
    return out


def _jk(stat, curve):
    """A statistic of one jackknife curve and its jackknife standard error."""
    _, I, loo = curve
    vals = np.array([stat(v) for v in loo])
    S = len(vals)
    se = float(np.sqrt((S - 1) / S * ((vals - vals.mean(0)) ** 2).sum(0))) if S > 1 else float("nan")
    return float(stat(I)), se


def _rises(a, b, mask=None) -> tuple:
    """(holds, worst margin): curve b above curve a beyond 2 jackknife SE at every n (of ``mask``)."""
    sa = np.sqrt((len(a[2]) - 1) / len(a[2]) * ((a[2] - a[2].mean(0)) ** 2).sum(0))
    sb = np.sqrt((len(b[2]) - 1) / len(b[2]) * ((b[2] - b[2].mean(0)) ** 2).sum(0))
    z = (b[1] - a[1]) / np.sqrt(sa ** 2 + sb ** 2)
    z = z if mask is None else z[mask]
    return bool(len(z) and (z > 2).all()), float(np.min(z)) if len(z) else float("nan")


def _ordered(curves, mask=None) -> tuple:
    """An ordering claim over curves listed in the claimed order: no adjacent pair reversed beyond 2 SE at
    any n (of ``mask``), and the last above the first beyond 2 SE at every n: monotone within the noise,
    with an effect beyond it. Returns (holds, detail)."""
    steps = [_rises(a, b, mask)[1] for a, b in zip(curves, curves[1:])]
    ok_end, z_end = _rises(curves[0], curves[-1], mask)
    ok = ok_end and all(z > -2 for z in steps)
    return ok, (f"last vs first: min {z_end:.2f} SE; adjacent pairs: min " + ", ".join(f"{z:.2f}" for z in steps)
                + " SE")


def _plain_minor_ticks(ax):
    """Log axes without minor tick labels (matplotlib labels 2×10¹, 3×10¹, ... on short log ranges; they overlap)."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _slope_I(I, nm):
    return float(np.polyfit(np.log(nm), I, 1)[0])


def fig3_checks(modes, refs, flips) -> list:
    """The Fig. 3 claims (Q4) as tests on :func:`jackknife_I` curves, at every n (``(claim, ok, detail)``):
    separations beyond 2 jackknife SE; orderings as in :func:`_ordered` (monotone within 2 SE, the ends
    apart beyond 2 SE)."""
    out = []
    zero = next(c for v, c in refs.items() if "zero" in str(v))
    rnd = next(c for v, c in refs.items() if "random" in str(v))
    zs = [_rises(zero, c) for c in modes.values()] + [_rises(c, rnd) for c in modes.values()]
    out.append(("Q4: at every n, the zero function below every mixture and every mixture below random",
                all(ok for ok, _ in zs), f"smallest margin {min(z for _, z in zs):.2f} SE"))
    sl = {v: _jk(lambda I, c=c: _slope_I(I, c[0]), c) for v, c in modes.items()}
    out.append(("Q4: each mixture's I(n) decreases in n (slope of I vs log n < 0)",
                all(m < -2 * se for m, se in sl.values()),
                ", ".join(f"{v}: {m:+.3f} ± {se:.3f}" for v, (m, se) in sl.items())))
    out.append(("Q4: I(n) grows with the mode number at every n", *_ordered(list(modes.values()))))
    order = list(flips.values())
    upper = np.arange(len(order[0][0])) >= len(order[0][0]) // 2
    out.append(("Q4: at every large n, more flip noise gives a higher I(n)", *_ordered(order, upper)))
    return out


def _plot_fig3(d: Path) -> dict:
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.3))
    res = {}
    refs = _I_curves(store_rows(d / "references")[0])
    modes = _I_curves(store_rows(d / "modes")[0])
    flips = _I_curves(store_rows(d / "flips")[0])
    for a, group in ((ax[0], modes), (ax[1], flips)):
        for i, (v, (nm, I, _, _)) in enumerate(group.items()):
            a.loglog(nm, I, "o-", ms=3, color=f"C{i}", label=v)
        for v, (nm, I, _, _) in refs.items():
            a.loglog(nm, I, "k--" if "random" in v else "k:", label=v)
        a.set_xlabel("n")
        a.set_ylabel("data inefficiency I(n) (log; I ≤ 0 not drawn)")
        _plain_minor_ticks(a)
        a.legend(fontsize=7)
    ax[0].set_title("Fig. 3 L: Gaussian mixtures by mode number", fontsize=10)
    ax[1].set_title("Fig. 3 R: sign-flip noise (q = 103)", fontsize=10)
    fig.tight_layout()
    fig.savefig(d / "fig3.png", dpi=110)
    plt.close(fig)
    for name, group in (("references", refs), ("modes", modes), ("flips", flips)):
        for v, (nm, I, ns, norms) in group.items():
            res[f"{name}:{v}"] = {"I_mean": float(np.mean(I)), "I_first": float(I[0]), "I_last": float(I[-1]),
                                  "norm_first": norms[0], "norm_last": norms[-1]}
    checks = fig3_checks(*(jackknife_I(store_rows(d / part)[0]) for part in ("modes", "references", "flips")))
    lines = ["Student NTK L = 5, z0 from initialized width-1024 networks; I(n) = log-log slope of "
             "E‖Δŵ_n‖ on the n grid (seeds averaged before the log).", "",
             "| task | mean I(n) | I at smallest n | I at largest n |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['I_mean']:.3f} | {v['I_first']:.3f} | {v['I_last']:.3f} |" for k, v in res.items()]
    lines += ["", "Checks: I(n) from the seed-mean norms; errors by the jackknife over seeds; each holds only "
              "beyond 2 SE at every n it names:", ""]
    lines += [f"- {c}: {verdict(ok)} ({v})" for c, ok, v in checks]
    return write_summary(d, "Fig. 3: data inefficiency orders tasks by difficulty", lines,
                          {"I": res, "Q4": [ok for _, ok, _ in checks]})


def fig4_checks(mid, right) -> list:
    """The Fig. 4 claims (Q5, Q6) as tests on :func:`jackknife_I` curves, beyond 2 jackknife SE:
    ``mid`` by teacher stopping time (ρ = 1, earliest first), ``right`` by ρ (one stopping time). Q6 uses
    the paper's hard ratios only (1 - ρ ≤ 1.688e-2; the added 0.1 and 0.5 are drawn, not tested)."""
    out = []
    out.append(("Q5: at every n, an earlier-stopped teacher gives a lower I(n)",
                *_ordered([mid[v] for v in sorted(mid, key=_vkey)])))
    paper = {rho: c for rho, c in right.items() if 1 - rho <= FIG4_PAPER_MAX_HARD + 1e-12}
    one = paper[max(paper)]
    m, se = _jk(lambda I: _slope_I(I, one[0]), one)
    out.append(("Q6: with soft labels only (ρ = 1) I(n) decreases (slope of I vs log n < 0)", m < -2 * se,
                f"{m:+.3f} ± {se:.3f}"))
    order = [paper[r] for r in sorted(paper, reverse=True)]  # growing hard ratio
    upper = np.arange(len(order[0][0])) >= len(order[0][0]) // 2
    out.append(("Q6: at every large n, I(n) grows with the hard ratio 1 - ρ", *_ordered(order, upper)))
    top = paper[min(paper)]
    half = top[0] >= np.sqrt(top[0][0] * top[0][-1])
    m, se = _jk(lambda I: float(np.polyfit(np.log(top[0][half]), I[half], 1)[0]), top)
    out.append((f"Q6: the largest hard ratio of the paper (1 - ρ = {FIG4_PAPER_MAX_HARD}) sits near its "
                "plateau: over the upper half of n its I(n) slope is above -0.05 by 2 SE", m - 2 * se > -0.05,
                f"{m:+.3f} ± {se:.3f}"))
    return out


def _plot_fig4(d: Path) -> dict:
    rows = store_rows(d / "teachers")[0]
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.3))
    meta = _meta(d)
    cfg = _stored_config(d / "teachers")
    net = cfg["task"]["kind"] == "network_teacher"
    # Fig. 4 R's teacher: stop time 100 (kernel), the paper's epoch 511 (paper; drawn in R only, as the paper)
    stop_R = f"stop_epoch={FIG4R_STOP[meta['quick']]}" if net else "stop_time=100.0"

    def in_mid(r):
        return r["rho"] == 1.0 and not (net and r["variant"] == stop_R)

    mid = _I_curves(rows, where=in_mid)
    right = _I_curves(rows, where=lambda r: r["variant"] == stop_R, key="rho")
    for i, (v, (nm, I, _, _)) in enumerate(mid.items()):
        ax[0].loglog(nm, I, "o-", ms=3, color=f"C{i}", label=v)
    for i, (rho, (nm, I, _, _)) in enumerate(sorted(right.items(), reverse=True)):
        ax[1].loglog(nm, I, "o-", ms=3, color=f"C{i}", label=f"1 - ρ = {1 - rho:.4g}")
    ax[0].set_title(f"Fig. 4 M: I(n) by teacher stopping {'epoch' if net else 'time'} (ρ = 1)", fontsize=10)
    ax[1].set_title(f"Fig. 4 R: I(n) by hard ratio ({stop_R}, T = 10)", fontsize=10)
    for a in ax:
        a.set_xlabel("n")
        a.set_ylabel("I(n) (log; I ≤ 0 not drawn)")
        _plain_minor_ticks(a)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(d / "fig4.png", dpi=110)
    plt.close(fig)

    order = sorted(mid, key=_vkey)
    hard = sorted(right.items(), reverse=True)  # ρ = 1 first
    checks = fig4_checks(jackknife_I(rows, where=in_mid),
                         jackknife_I(rows, where=lambda r: r["variant"] == stop_R, key="rho"))
    lines = [f"Protocol: {meta['protocol']}. Perfect {_teacher_words(cfg['task'])}, stopped at "
             f"{'epoch e' if net else 'gradient-flow time t_stop'}; {_student_words(cfg['student'])}; T = 10.",
             "", f"| teacher stop {'epoch' if net else 'time'} | I at smallest n | mean I | I at largest n |",
             "|---|---|---|---|"]
    lines += [f"| {v} | {mid[v][1][0]:.3f} | {np.mean(mid[v][1]):.3f} | {mid[v][1][-1]:.3f} |" for v in order]
    lines += ["", f"| 1 − ρ ({stop_R}) | I at smallest n | mean I over the upper half of n | I at largest n |",
              "|---|---|---|---|"]
    lines += [f"| {1 - rho:.4g} | {c[1][0]:.3f} | {np.mean(c[1][len(c[1]) // 2:]):.3f} | {c[1][-1]:.3f} |"
              for rho, c in hard]
    lines += ["", "Checks: I(n) from the seed-mean norms; errors by the jackknife over seeds; each holds only "
              "beyond 2 SE at every n it names (transition scale ρ/T² = 0.01):", ""]
    lines += [f"- {c}: {verdict(ok)} ({v})" for c, ok, v in checks]
    return write_summary(d, "Fig. 4: early stopping and hard labels vs data inefficiency", lines, {
        "I_mid": {v: mid[v][1].tolist() for v in order}, "I_right": {r: c[1].tolist() for r, c in hard},
        "Q5": checks[0][1], "Q6": [ok for _, ok, _ in checks[1:]]})


def fig5_checks(rows_m, rows_r) -> list:
    """The Fig. 5 claims (Q8, Q9) as tests on the stored rows: Q8 pairs student errors by seed (beyond
    2 SEM; the best ρ is chosen on the same rows, so its margin is optimistic by selection); Q9 needs the
    Eq. 12 bracket's sign beyond 2 SEM over seeds at every n, and its magnitude to grow n to n."""
    out = []
    err = mean_by(rows_m, ("rho",), "error")
    best = min((r for (r,) in err if r < 1), key=lambda r: err[(r,)][0])
    low = min(r for (r,) in err)

    def is_rho(rho):
        return lambda r: r["rho"] == rho

    a = paired(rows_m, "error", is_rho(best), is_rho(1.0))
    b = paired(rows_m, "error", is_rho(1.0), is_rho(low))
    fmt = lambda t: "; ".join(f"{m * 100:+.3f} ± {se * 100:.3f} %" for m, se, _ in t.values())  # noqa: E731
    out.append((f"Q8: a little hard label helps: the best ρ < 1 ({best}) beats ρ = 1 (paired by seed)",
                beyond_2sem(a, -1), fmt(a)))
    out.append((f"Q8: too much hard label hurts: ρ = 1 beats ρ = {low} (paired by seed)", beyond_2sem(b, -1), fmt(b)))
    stops = sorted({r["variant"] for r in rows_r}, key=_vkey)
    ns = sorted({r["n"] for r in rows_r})

    def stat(n, v):
        m, se = mean_sem([r["hle"] for r in rows_r if r["n"] == n and r["variant"] == v])
        return float(m), float(se)

    first = {n: stat(n, stops[0]) for n in ns}
    last = {n: stat(n, stops[-1]) for n in ns}
    out.append(("Q9: hard labels help an early-stopped teacher (bracket > 0 at the earliest stop, every n)",
                all(m > 2 * se for m, se in first.values()),
                ", ".join(f"n={n}: {m:+.3g} ± {se:.2g}" for n, (m, se) in first.items())))
    out.append(("Q9: and hurt a converged one (bracket < 0 at the latest stop, every n)",
                all(m < -2 * se for m, se in last.values()),
                ", ".join(f"n={n}: {m:+.3g} ± {se:.2g}" for n, (m, se) in last.items())))
    grow = [(abs(first[b][0]) - abs(first[a][0])) / np.hypot(first[a][1], first[b][1]) for a, b in zip(ns, ns[1:])]
    out.append(("Q9: the early-stop effect grows with n (|bracket| rises from each n to the next)",
                bool(grow) and all(z > 2 for z in grow), "margins " + ", ".join(f"{z:.1f}" for z in grow) + " SE"))
    return out


def _plot_fig5(d: Path) -> dict:
    rows_m = store_rows(d / "error_vs_rho")[0]
    rows_r = store_rows(d / "hard_label_effect")[0]
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.3))
    err = mean_by(rows_m, ("rho",), "error")
    terr = mean_by(rows_m, ("rho",), "teacher_error")
    rhos = sorted((k[0] for k in err), reverse=True)  # the paper's bars run from ρ = 1 down
    means = [err[(r,)][0] * 100 for r in rhos]
    stds = [err[(r,)][1] * 100 for r in rhos]
    ax[0].bar(range(len(rhos)), means, yerr=stds, capsize=3)
    ax[0].set_xticks(range(len(rhos)), [str(r) for r in rhos], rotation=30, fontsize=8)
    t_err = next(iter(terr.values()))[0] * 100
    ax[0].axhline(t_err, color="k", ls="--", label="teacher")
    ax[0].set_ylim(min(min(means), t_err) * 0.8, max(means + [t_err]) * 1.1)
    ax[0].set_xlabel("soft ratio ρ")
    ax[0].set_ylabel("student test error (%)")
    n_m = rows_m[0]["n"]
    ax[0].set_title(f"Fig. 5 M: imperfect teacher, n = {n_m}, T = 10 (mean ± std over seeds)", fontsize=10)
    ax[0].legend()
    hle = mean_by(rows_r, ("n", "variant"), "hle")
    ns = sorted({k[0] for k in hle})
    stops = sorted({k[1] for k in hle}, key=_vkey)
    tx = [_vkey(v)[0][1] for v in stops]
    terr_r = mean_by(rows_r, ("variant",), "teacher_error")
    flips = {}
    for i, n in enumerate(ns):
        y = [hle[(n, v)][0] for v in stops]
        ax[1].plot(tx, y, "o-", color=f"C{i}", label=f"n = {n}")
        sign = np.sign(y)
        flips[n] = next((tx[j] for j in range(1, len(y)) if sign[j] < 0 <= sign[j - 1]), None)
    ax[1].set_xscale("log")
    ax[1].set_yscale("symlog", linthresh=1.0)
    ax[1].axhline(0, color="k", lw=0.6)
    cfg_m, cfg_r = _stored_config(d / "error_vs_rho"), _stored_config(d / "hard_label_effect")
    net = cfg_r["task"]["kind"] == "network_teacher"
    unit = "epoch" if net else "time"
    ax[1].set_xlabel(f"teacher stopping {unit}")
    ax[1].set_ylabel("⟨δŵ_h, Δŵ_c⟩ (Eq. 12 bracket)")
    ax[1].set_title("Fig. 5 R: effect of hard labels at ρ = 1", fontsize=10)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(d / "fig5.png", dpi=110)
    plt.close(fig)
    best = rhos[int(np.argmin(means))]
    flip_t = [v for v in flips.values() if v is not None]
    q9b = len(flip_t) == len(ns) and max(flip_t) / min(flip_t) <= 10
    checks = fig5_checks(rows_m, rows_r)
    tm = cfg_m["task"]
    stop_m = f"epoch {tm['stop_epoch']}" if net else f"t = {tm['stop_time']:g}"
    lines = [f"Protocol: {_meta(d)['protocol']}. Imperfect {_teacher_words(tm)}, stopped at {stop_m}, test error "
             f"{next(iter(terr.values()))[0] * 100:.2f} %; {_student_words(cfg_m['student'])}; T = 10.", "",
             "| ρ | student test error (%) | std over seeds |", "|---|---|---|"]
    lines += [f"| {r} | {m:.3f} | {s:.3f} |" for r, m, s in zip(rhos, means, stds)]
    lines += ["", f"| teacher stop {unit} | teacher error (%) | " + " | ".join(f"n = {n}" for n in ns) + " |",
              "|---|---|" + "---|" * len(ns)]
    lines += [f"| {t:g} | {terr_r[(v,)][0] * 100:.2f} | " + " | ".join(f"{hle[(n, v)][0]:.4g}" for n in ns) + " |"
              for t, v in zip(tx, stops)]
    lines += ["", "Checks: tests on the stored rows, beyond 2 SEM over seeds:", ""]
    lines += [f"- {c}: {verdict(ok)} ({v})" for c, ok, v in checks]
    lines += [f"- Q9: the sign flips at a similar stopping time across n (within 10×; on the seed means): "
              f"{verdict(q9b)} ({flips})"]
    return write_summary(d, "Fig. 5 (synthetic): imperfect teacher", lines, {
        "error": dict(zip(rhos, means)), "best_rho": best, "hle": {f"{n}|{v}": hle[(n, v)][0] for n in ns
                                                                  for v in stops},
        "flip_time": flips, "Q8": [ok for _, ok, _ in checks[:2]], "Q9": [ok for _, ok, _ in checks[2:]] + [q9b]})


def _plot_generic(d: Path) -> dict:
    """Plots of any sweep: risk, test error and I(n) vs n per (variant, ρ, T) at t = max."""
    rows, _ = store_rows(d)
    plt = pyplot()
    tmax = max(r["time"] for r in rows)
    sel = [r for r in rows if r["time"] == tmax]
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.3))
    summary = {}
    for metric, a in (("risk", ax[0]), ("error", ax[1])):
        m = mean_by(sel, ("variant", "depth", "rho", "T", "n"), metric)
        for i, key in enumerate(sorted({k[:4] for k in m}, key=str)):
            ns = [k[4] for k in m if k[:4] == key]
            ys = [m[key + (n,)][0] for n in ns]
            a.loglog(ns, ys, "o-", ms=3, label=f"{key[0]} L={key[1]} ρ={key[2]} T={key[3]}")
            summary.setdefault("|".join(map(str, key)), {})[f"{metric}loglog_slope"] = loglog_slope(ns, ys)
        a.set_xlabel("n")
        a.set_ylabel(metric)
    norms = mean_by(sel, ("variant", "depth", "rho", "T", "n"), "w_norm")
    for key in sorted({k[:4] for k in norms}, key=str):
        ns = [k[4] for k in norms if k[:4] == key]
        if len(ns) > 1:
            nm, I = _inefficiency(ns, [norms[key + (n,)][0] for n in ns])
            ax[2].semilogx(nm, I, "o-", ms=3, label=f"{key[0]} L={key[1]} ρ={key[2]} T={key[3]}")
            summary.setdefault("|".join(map(str, key)), {})["I_mean"] = float(np.mean(I))
    ax[2].set_xlabel("n")
    ax[2].set_ylabel("I(n)")
    for a in ax:
        a.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(d / "sweep.png", dpi=110)
    plt.close(fig)
    lines = [f"{len(rows)} rows; metrics at t = {tmax}.", "", "| variant, L, ρ, T | risk slope | error slope | "
             "mean I(n) |", "|---|---|---|---|"]
    lines += [f"| {k} | {v.get('risk_slope', float('nan')):.3f} | {v.get('error_slope', float('nan')):.3f} | "
              f"{v.get('I_mean', float('nan')):.3f} |" for k, v in summary.items()]
    return write_summary(d, "Sweep summary", lines, {"curves": summary})
