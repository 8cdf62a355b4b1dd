"""What every study's figures share: matplotlib without a display, rows read back from a store, means over
seeds, and the ``summary.md`` of headline numbers and claim verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._core.io import write_text_atomic
from .._core.stats import loglog_slope, mean_sem
from .store import ResultsStore

__all__ = ["pyplot", "store_rows", "mean_by", "verdict", "write_summary", "paired", "beyond_2sem", "per_seed_slopes",
           "figure_names"]


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


def paired(rows, metric, a, b, *, by="n", pair="seed") -> dict:
    """Paired differences ``metric(a) - metric(b)`` of rows matched on (``by``, ``pair``), where ``a`` and
    ``b`` are row predicates (e.g. two ρ values): ``{by value: (mean, sem, count)}`` over the pairs both
    have. Pairing on the seed removes the spread the two share (the same training sets)."""
    A = {(r[by], r[pair]): r[metric] for r in rows if a(r) and r[metric] is not None}
    B = {(r[by], r[pair]): r[metric] for r in rows if b(r) and r[metric] is not None}
    out = {}
    for v in sorted({k[0] for k in A} & {k[0] for k in B}):
        d = [A[k] - B[k] for k in A if k[0] == v and k in B]
        m, se = mean_sem(d)
        out[v] = (float(m), float(se), len(d))
    return out


def beyond_2sem(table: dict, sign: int) -> bool:
    """True when every entry ``(mean, sem, count)`` of ``table`` has the sign ``sign`` (+1 or -1) by more
    than two standard errors, with at least two pairs each (and at least one entry)."""
    return bool(table) and all(k >= 2 and sign * m > 2 * se for m, se, k in table.values())


def per_seed_slopes(rows, metric, where, *, x="n", log_y=True, pair="seed") -> dict:
    """``{seed: slope}`` of ``metric`` against log ``x`` for each seed's rows (log-log when ``log_y``)."""
    out = {}
    for sd in sorted({r[pair] for r in rows if where(r)}):
        pts = sorted((r[x], r[metric]) for r in rows if where(r) and r[pair] == sd and r[metric] is not None)
        if len(pts) >= 2:
            xs, ys = np.array(pts, float).T
            out[sd] = loglog_slope(xs, ys) if log_y else float(np.polyfit(np.log(xs), ys, 1)[0])
    return out


def figure_names(paper: str, name: str, figures) -> list:
    """The figures ``ntkd reproduce name`` asks of a catalogue: all of ``figures`` for the bare ``paper``,
    else the one of ``<paper>-<figure>`` (or ``<figure>``); an unknown one is refused naming the choices."""
    key = name.removeprefix(paper).lstrip("-")
    names = list(figures) if key == "" else [key]
    for k in names:
        if k not in figures:
            raise ValueError(f"unknown reproduction {name!r}; choose {paper} or one of "
                             + ", ".join(f"{paper}-{f}" for f in figures))
    return names
