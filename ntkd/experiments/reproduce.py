"""The reproduce registry: ``ntkd reproduce <paper>[-<figure>]`` and ``ntkd plot DIR``.

Each paper's study registers its figure catalogue here: a module with ``FIGURES`` (figure names),
``reproduce(name, out, quick=..., progress=...)`` (one figure, or all of them for the bare paper name) and
``plot(dir)`` (redraw a figure directory from its stored data).
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

__all__ = ["PAPERS", "reproduce", "plot", "names"]

#: paper prefix -> module of its figure catalogue
PAPERS = {"ji-zhu": "ntkd.experiments.ji_zhu.figures", "kamath": "ntkd.experiments.kamath.figures",
          "menon": "ntkd.experiments.menon.figures", "malach": "ntkd.experiments.malach.figures",
          "saglietti": "ntkd.experiments.saglietti.figures"}


def _catalogue(paper: str):
    return importlib.import_module(PAPERS[paper])


def names() -> list:
    """Every name ``ntkd reproduce`` accepts: each paper, and each ``<paper>-<figure>``."""
    out = []
    for paper in PAPERS:
        out += [paper] + [f"{paper}-{f}" for f in _catalogue(paper).FIGURES]
    return out


def reproduce(name: str, out, *, quick: bool = False, protocol=None, progress=sys.stderr) -> dict:
    """Run the reproduction ``name`` (a paper, or ``<paper>-<figure>``) into ``out``; returns its summaries.
    ``protocol`` (Ji & Zhu only: ``"paper"`` or ``"kernel"``; None = the catalogue's default)."""
    for paper in PAPERS:
        if name == paper or name.startswith(paper + "-"):
            if protocol is None:
                return _catalogue(paper).reproduce(name, out, quick=quick, progress=progress)
            if paper != "ji-zhu":
                raise ValueError(f"`protocol` applies to the ji-zhu reproductions only; drop it for {name!r}")
            return _catalogue(paper).reproduce(name, out, quick=quick, protocol=protocol, progress=progress)
    raise ValueError(f"unknown reproduction {name!r}; choose one of: {', '.join(names())}")


def plot(d) -> dict:
    """Redraw a reproduction's or a sweep's figures from its stored data (the paper is read from
    ``figure.json``; directories without one are Ji & Zhu sweeps or finite-width runs)."""
    meta = Path(d) / "figure.json"
    paper = json.loads(meta.read_text()).get("paper", "ji-zhu") if meta.exists() else "ji-zhu"
    return _catalogue(paper).plot(d)
