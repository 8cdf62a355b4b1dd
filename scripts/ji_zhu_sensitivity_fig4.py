"""Fig. 4 sensitivity at quick size (issue 22): I(n) by teacher stop and hard ratio, one choice changed at a time."""
import copy
import numpy as np
from ntkd.experiments.ji_zhu import figures as FG

from _sensitivity import run_variants

base = copy.deepcopy(FG.paper_configs("fig4", True)["teachers"])
base["task"]["stop_epoch"] = [8, 16, 60, 688]
base["grid"] = {**base["grid"], "rho": [1.0, 1 - 1.688e-2, 0.5], "T": [10.0, 2.0], "seeds": 8}
kern = copy.deepcopy(FG.figure_configs("fig4", True, "kernel")["teachers"])
kt = {**kern["task"], "stop_time": [10.0, 100.0, 1000.0, float("inf")]}
V = {"paper": base, "paper, z0 = 0": {**base, "student": {"depth": 5}},
     "kernel teacher": {**base, "task": kt}, "kernel teacher, z0 = 0": {**base, "task": kt, "student": {"depth": 5}}}


def summarize(raw, rows):
    res = {}
    for T in (10.0, 2.0):
        for S in (4, 8):
            for var in sorted({r["variant"] for r in rows}, key=FG._vkey):
                for rho in raw["grid"]["rho"]:
                    sel = [r for r in rows if r["T"] == T and r["rho"] == rho and r["seed"] < S and r["variant"] == var]
                    ns = sorted({r["n"] for r in sel})
                    W = np.array([[r["w_norm"] for r in sel if r["n"] == n] for n in ns])
                    nm, I = FG._inefficiency(ns, W.mean(1))
                    res[f"T={T}|S={S}|{var}|rho={rho}"] = {"n_mid": nm.tolist(), "I": I.tolist(),
                                                            "norm_last": float(W.mean(1)[-1])}
    return res


run_variants(V, "sens4-", summarize, "results/sens/sens4.json")
