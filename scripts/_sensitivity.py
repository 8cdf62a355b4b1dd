"""The loop both Ji & Zhu sensitivity scripts share: run each variant's sweep (resumable) under
``results/sens/``, summarize its rows, and rewrite the JSON of what finished after every variant."""
import json
import time
from pathlib import Path

from ntkd.experiments.ji_zhu.sweep import SweepConfig, run_sweep
from ntkd.experiments.store import ResultsStore


def run_variants(variants: dict, prefix: str, summarize, out_json: str) -> dict:
    """``variants``: name -> sweep config dict; ``summarize(raw, rows) -> dict``; returns
    ``{name: {"seconds", "res"}}``, also written to ``out_json``."""
    out = {}
    for name, cfg in variants.items():
        raw = {**cfg, "name": prefix + name.replace(" ", "").replace(",", "_").replace("=", "")}
        d = f"results/sens/{raw['name']}"
        t0 = time.time()
        run_sweep(SweepConfig.from_dict(raw), d, progress=None)
        with ResultsStore(d + "/results.sqlite", read_only=True) as st:
            rows = st.rows()
        out[name] = {"seconds": round(time.time() - t0, 1), "res": summarize(raw, rows)}
        print(name, out[name]["seconds"], flush=True)
        Path(out_json).write_text(json.dumps(out, indent=1))
    return out
