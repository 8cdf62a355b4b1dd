"""Progress of long runs with an honest ETA, and the compilation time JAX spent meanwhile.

On a terminal the progress is a ``rich`` bar (rich comes with flax); elsewhere (logs, CI, pipes) one line
per update. The ETA separates computation from compilation (``jax.monitoring``'s compile events):

* computation: each chunk's seconds minus its compile seconds, fitted as ``a·blocks + b·work`` over the
  chunks so far (least squares, a, b >= 0; the work of a block is the study's cost model, e.g. n³), so
  that small, overhead-bound chunks do not extrapolate to large ones by flops alone; with one kind of
  chunk only, seconds per block;
* compilation: each group (e.g. a new training-set size) compiles new programs; the groups still to
  start are charged the mean compile time of the groups after the first (the first also compiles the
  run's one-time programs), or the first's while it is the only one.

Only the compilations of the thread that runs the progress count against its chunks, plus the time it
waited for a compilation in another thread (:func:`note_compile_wait`): programs compiled ahead in a
background thread overlap the computation and cost the run no wall time of their own.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np

__all__ = ["Progress", "compile_stats", "note_compile_wait"]

_COMPILE = {"count": 0, "seconds": 0.0}
_BY_THREAD: dict = {}  # thread id -> its compile seconds + seconds it waited for other threads' compilations
_LOCK = threading.Lock()
_REGISTERED = []


def _listener(event, duration, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        tid = threading.get_ident()
        with _LOCK:
            _COMPILE["count"] += 1
            _COMPILE["seconds"] += duration
            _BY_THREAD[tid] = _BY_THREAD.get(tid, 0.0) + duration


def note_compile_wait(seconds: float) -> None:
    """Charge ``seconds`` that the calling thread waited for a compilation in another thread (a program
    compiled ahead of time) to this thread's compile time, as :class:`Progress` sees it."""
    tid = threading.get_ident()
    with _LOCK:
        _BY_THREAD[tid] = _BY_THREAD.get(tid, 0.0) + float(seconds)


def _thread_compile_seconds() -> float:
    with _LOCK:
        return _BY_THREAD.get(threading.get_ident(), 0.0)


def compile_stats() -> tuple:
    """``(XLA programs, seconds)`` compiled, or loaded from the persistent compilation cache, in this
    process since the first call (the listener is registered then)."""
    if not _REGISTERED:
        import jax

        jax.monitoring.register_event_duration_secs_listener(_listener)
        _REGISTERED.append(True)
    with _LOCK:
        return _COMPILE["count"], _COMPILE["seconds"]


def _fmt_seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


class Progress:
    """Progress of ``total`` units of work (e.g. blocks) in ``groups`` groups that each compile new
    programs (e.g. one per training-set size); ``stream=None`` is silent.

    ``update(done, work, group_started, note)`` after each chunk: ``done`` units finished in it, ``work``
    their cost in any unit (e.g. n³; default ``done``), ``group_started`` whether the chunk began a new
    group. ``eta()`` is the estimate described in the module docstring.
    """

    def __init__(self, label: str, total: int, *, total_work: float = None, groups: int = 1, stream=sys.stderr,
                 unit: str = "blocks"):
        self.label, self.total, self.unit, self.stream = label, total, unit, stream
        self.total_work = float(total if total_work is None else total_work)
        self.groups = max(1, groups)
        self.done = 0
        self.work = 0.0
        self.groups_started = 0
        self.t0 = time.perf_counter()
        self.c0 = compile_stats()
        self._last = (self.t0, _thread_compile_seconds())
        self._chunks = []  # (blocks, work, compute seconds)
        self._group_compile = []  # compile seconds of each group started
        self._bar = None
        if stream is not None and getattr(stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                                     console=Console(file=stream), transient=False)
            self._task = self._bar.add_task(label, total=total, eta="")
            self._bar.start()

    def compile_seconds(self) -> tuple:
        c, s = compile_stats()
        return c - self.c0[0], s - self.c0[1]

    def eta(self) -> float:
        """Seconds left (see the module docstring); NaN before the first chunk."""
        left_blocks = max(self.total - self.done, 0)
        left_work = max(self.total_work - self.work, 0.0)
        chunks = [c for c in self._chunks if c[0] > 0]  # an empty update (e.g. a resumed step) fits nothing
        if not chunks:
            return float("nan")
        b_ = np.array([c[0] for c in chunks], float)
        w_ = np.array([c[1] for c in chunks], float)
        t_ = np.array([c[2] for c in chunks], float)
        a, b = t_.sum() / b_.sum(), 0.0
        if len(chunks) > 1 and np.ptp(w_ / b_) > 0:
            (a2, b2), *_ = np.linalg.lstsq(np.stack([b_, w_], 1), t_, rcond=None)
            if a2 >= 0 and b2 >= 0:
                a, b = a2, b2
            elif b2 > 0:  # a clipped to 0
                a, b = 0.0, float(np.sum(t_ * w_) / np.sum(w_ * w_))
        left = a * left_blocks + b * left_work
        if self._group_compile:
            later = self._group_compile[1:]
            per_group = float(np.mean(later)) if later else self._group_compile[0]
            left += per_group * max(self.groups - self.groups_started, 0)
        return float(left)

    def start_group(self):
        self.groups_started += 1
        self._group_compile.append(0.0)

    def update(self, done: int, work: float = None, note: str = ""):
        work = float(done if work is None else work)
        self.done += done
        self.work += work
        now, comp_now = time.perf_counter(), _thread_compile_seconds()
        comp = comp_now - self._last[1]
        self._chunks.append((done, work, max(now - self._last[0] - comp, 0.0)))
        if self._group_compile:
            self._group_compile[-1] += comp
        self._last = (now, comp_now)
        if self.stream is None:
            return
        el = now - self.t0
        n_comp, comp = self.compile_seconds()
        eta = self.eta()
        tail = (f"elapsed {_fmt_seconds(el)} ({_fmt_seconds(comp)} compiling {n_comp} XLA programs), "
                f"ETA {_fmt_seconds(eta) if eta == eta else '?'}")
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, eta=f"ETA {_fmt_seconds(eta)}", description=self.label)
            if note:
                self._bar.console.print(f"  {note}")
        else:
            print(f"  [{self.done}/{self.total} {self.unit}] {note}: {tail}", file=self.stream, flush=True)

    def message(self, text: str):
        if self.stream is None:
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> dict:
        """Stop the bar; returns ``{"seconds", "compile_seconds", "programs_compiled"}``."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        n_comp, comp = self.compile_seconds()
        return {"seconds": time.perf_counter() - self.t0, "compile_seconds": comp, "programs_compiled": n_comp}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
