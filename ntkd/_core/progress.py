"""Progress of long runs with an honest ETA, and the compilation time JAX spent meanwhile.

On a terminal the progress is a ``rich`` bar (rich comes with flax); elsewhere (logs, CI, pipes) one line
per update. The ETA divides the work left by the rate of work per second of *computation*: the seconds
XLA spent compiling (``jax.monitoring``'s compile events) are taken out of the rate and added back as the
compile time of the programs still to come, estimated from those compiled so far. A first chunk that is
mostly compilation therefore no longer promises a run many times longer than it is.
"""
from __future__ import annotations

import sys
import threading
import time

__all__ = ["Progress", "compile_stats"]

_COMPILE = {"count": 0, "seconds": 0.0}
_LOCK = threading.Lock()
_REGISTERED = []


def _listener(event, duration, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        with _LOCK:
            _COMPILE["count"] += 1
            _COMPILE["seconds"] += duration


def compile_stats() -> tuple:
    """``(programs compiled, seconds spent compiling them)`` by XLA in this process since the first call
    (the listener is registered then)."""
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
        """Seconds left: compute left at the compute rate so far, plus the compile time of the groups
        not yet started at the mean compile time per group started so far."""
        el = time.perf_counter() - self.t0
        _, comp = self.compile_seconds()
        compute = max(el - comp, 1e-9)
        left_work = max(self.total_work - self.work, 0.0)
        rate = self.work / compute if self.work > 0 else None
        left = left_work / rate if rate else float("nan")
        if self.groups_started:
            left += comp / self.groups_started * max(self.groups - self.groups_started, 0)
        return left

    def start_group(self):
        self.groups_started += 1

    def update(self, done: int, work: float = None, note: str = ""):
        self.done += done
        self.work += float(done if work is None else work)
        if self.stream is None:
            return
        el = time.perf_counter() - self.t0
        n_comp, comp = self.compile_seconds()
        eta = self.eta()
        tail = (f"elapsed {_fmt_seconds(el)} ({_fmt_seconds(comp)} compiling {n_comp} programs), "
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
