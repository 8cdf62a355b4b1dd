"""What every study's figures share: matplotlib without a display, rows read back from a store, means over
seeds, and the ``summary.md`` of headline numbers and claim verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._core.io import write_text_atomic
from .store import ResultsStore

__all__ = ["pyplot", "store_rows", "mean_by", "verdict", "write_summary"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only; matplotlib is the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def store_rows(path):
    """``(rows, curves)`` of the store ``path/results.sqlite``, read-only."""
    with ResultsStore(Path(path) / "results.sqlite", read_only=True) as st:
        return st.rows(), st.curves()


def mean_by(rows, keys, metric, where=lambda r: True):
    """{key tuple: (mean, std, count)} of a metric over seeds."""
    acc = {}
    for r in rows:
        if not where(r) or r[metric] is None:
            continue
        acc.setdefault(tuple(r[k] for k in keys), []).append(r[metric])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in sorted(acc.items())}


def verdict(ok):
    return "**holds**" if ok else "**does not hold**"


def write_summary(d: Path, title: str, lines: list, data: dict) -> dict:
    write_text_atomic(d / "summary.md", "\n".join([f"## {title}", ""] + lines + [""]))
    data["summary_md"] = str(d / "summary.md")
    return data
