"""Fig. 2 sensitivity at quick size: one modelling choice changed at a time (issue 22)."""
import copy
import sys

import numpy as np
from ntkd.experiments.ji_zhu import figures as FG
from ntkd._core.stats import loglog_slope

from _sensitivity import run_variants

base = FG.paper_configs("fig2", True)["students"]
base = copy.deepcopy(base)
base["grid"] = {**base["grid"], "rho": [1.0, 0.96, 0.5, 0.017], "T": [10.0, 2.0], "seeds": 8}
base["eval"] = {"n_test": 2048, "n_ref": 0}
kern = FG.figure_configs("fig2", True, "kernel")["students"]["task"]
V = {
    "paper": base,
    "paper, z0 = 0": {**base, "student": {"depth": 3}},
    "kernel teacher, z0 net": {**base, "task": kern},
    "kernel (teacher, z0 = 0)": {**base, "task": kern, "student": {"depth": 3}},
    "paper, m = 128": {**base, "student": {**base["student"], "init_width": 128}},
    "paper, m = 2048": {**base, "student": {**base["student"], "init_width": 2048}},
    "paper, teacher width 256": {**base, "task": {**base["task"], "teacher_width": 256}},
    "paper, teacher stop 136": {**base, "task": {**base["task"], "stop_epoch": 136}},
    "paper, empirical NTK m = 512": {**base, "student": {**base["student"], "kernel": "empirical"}},
    "paper, empirical NTK m = 2048": {**base, "student": {**base["student"], "kernel": "empirical",
                                                          "init_width": 2048}},
}
only = sys.argv[1:] or list(V)[:6]


def summarize(raw, rows):
    res = {}
    for T in (10.0, 2.0):
        for seeds in (3, 8):
            for rho in raw["grid"]["rho"]:
                sel = [r for r in rows if r["T"] == T and r["rho"] == rho and r["seed"] < seeds]
                ns = sorted({r["n"] for r in sel})
                m = [np.mean([r["risk"] for r in sel if r["n"] == n]) for n in ns]
                se = [np.std([r["risk"] for r in sel if r["n"] == n], ddof=1) / np.sqrt(seeds) for n in ns]
                res[f"T={T}|S={seeds}|rho={rho}"] = {"ns": ns, "risk": m, "se": se, "ls": loglog_slope(ns, m),
                                                     "end": float(np.log(m[-1] / m[0]) / np.log(ns[-1] / ns[0]))}
    return res


run_variants({k: V[k] for k in only}, "sens-", summarize,
             f"results/sens/sens_{'all' if len(only) >= 6 else only[0].replace(' ', '')}.json")
