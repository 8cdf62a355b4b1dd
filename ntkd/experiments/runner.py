"""The shell every figure catalogue's ``reproduce`` shares: one folder per figure, its ``figure.json``, the
figure's computation timed (wall seconds, and the seconds and XLA programs JAX compiled meanwhile), the
timing line appended to its ``summary.md``, its ``summary.json``, a done line on ``progress``, and the
combined ``summary.md`` of a whole paper. Every file is written atomically (a killed run leaves the old
file or the new one, never half of one); what a figure computes, and how it resumes, is the catalogue's."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .._core.io import write_text_atomic
from .._core.progress import compile_stats

__all__ = ["run_figures", "timing_line"]


def timing_line(seconds: float, compile_seconds: float, programs: int) -> str:
    """The ``This run: ...`` line closing each figure's ``summary.md``."""
    return (f"This run: {seconds} s, of which {compile_seconds} s compiling {programs} XLA programs or loading them "
            "from the persistent compilation cache (`ntkd --compile-cache`), which makes a rerun's share small.")


def run_figures(paper: str, names, out, *, quick: bool, run_one, title: str, meta=None, note: str = "",
                progress=sys.stderr) -> dict:
    """Run the figures ``names`` of ``paper`` (its prefix, e.g. ``"kamath"``) into ``out/<figure>/``;
    returns ``{figure: summary}``.

    For each figure, in order: make ``out/<figure>``, write ``figure.json`` = ``{"paper", "figure",
    "quick"}`` plus ``meta(figure)`` (a dict of the catalogue's extra keys; None = none), call
    ``run_one(figure, folder)``, which computes the figure, writes its ``summary.md`` (e.g. through
    ``plotting.write_summary``) and returns its summary dict; then add ``seconds``, ``compile_seconds``
    (both rounded to 0.1 s) and ``programs_compiled`` (XLA programs compiled or loaded from the persistent
    cache, :func:`ntkd._core.progress.compile_stats`) to it, append :func:`timing_line` to ``summary.md``,
    write ``summary.json`` and print ``<paper>-<figure>: done in ...`` to ``progress`` (None = silent).
    With more than one figure, ``out/summary.md`` then joins the figures' summaries under
    ``# <title>[ (quick)]<note>``.

    An exception in ``run_one`` propagates at once: that figure gets no ``summary.json`` from this run
    and the combined summary is not written; nothing the figure stored is removed, so a rerun resumes.
    """
    out = Path(out)
    summaries = {}
    for k in names:
        t0, c0 = time.perf_counter(), compile_stats()
        d = out / k
        d.mkdir(parents=True, exist_ok=True)
        fig_meta = {"paper": paper, "figure": k, "quick": quick, **(meta(k) if meta is not None else {})}
        write_text_atomic(d / "figure.json", json.dumps(fig_meta))
        s = run_one(k, d)
        if not isinstance(s, dict):
            raise TypeError(f"run_one({k!r}, ...) must return the figure's summary dict; got {type(s).__name__}")
        c1 = compile_stats()
        s["seconds"] = round(time.perf_counter() - t0, 1)
        s["compile_seconds"] = round(c1[1] - c0[1], 1)
        s["programs_compiled"] = c1[0] - c0[0]
        md = d / "summary.md"
        line = timing_line(s["seconds"], s["compile_seconds"], s["programs_compiled"])
        write_text_atomic(md, md.read_text().rstrip("\n") + "\n\n" + line + "\n")
        write_text_atomic(d / "summary.json", json.dumps(s, indent=1, default=str))
        summaries[k] = s
        if progress is not None:
            print(f"{paper}-{k}: done in {s['seconds']} s ({s['compile_seconds']} s compiling or loading "
                  f"{s['programs_compiled']} programs) -> {d}", file=progress, flush=True)
    if len(names) > 1:
        lines = [f"# {title}" + (" (quick)" if quick else "") + note, ""]
        lines += [(out / k / "summary.md").read_text() for k in names]
        write_text_atomic(out / "summary.md", "\n".join(lines))
    return summaries
