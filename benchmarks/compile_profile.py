"""Where a reproduction's compile time goes: XLA compile seconds per program name, and the run's tracing
and lowering seconds, for one ``reproduce`` call in-process (no persistent compilation cache).

    python benchmarks/compile_profile.py ji-zhu-fig2 results/prof              # full size, kernel protocol
    python benchmarks/compile_profile.py ji-zhu-fig2 results/prof --quick --protocol paper
    NTKD_PRECOMPILE=1 python benchmarks/compile_profile.py ji-zhu-fig2 results/prof

Program names and seconds come from JAX's "Finished XLA compilation of NAME in S sec" log records (any
thread); totals from ``jax.monitoring``'s ``/jax/core/compile/*`` duration events. Only ji-zhu figures
take ``--protocol``.
"""
from __future__ import annotations

import argparse
import collections
import logging
import re
import time

import jax

from ntkd.experiments.reproduce import reproduce

_FINISHED = re.compile(r"Finished XLA compilation of (.+) in ([0-9.eE+-]+) sec")


class _Programs(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.rows = []

    def emit(self, record):
        m = _FINISHED.match(record.getMessage())
        if m:
            self.rows.append((m.group(1), float(m.group(2))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("out")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--protocol", default="kernel")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args(argv)
    totals = collections.Counter()
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **_: totals.update({event.rsplit("/", 1)[-1]: duration})
        if event.startswith("/jax/core/compile/") else None)
    handler = _Programs()
    log = logging.getLogger("jax._src.dispatch")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    kw = {"protocol": a.protocol} if a.name.startswith("ji-zhu") else {}
    t = time.perf_counter()
    reproduce(a.name, a.out, quick=a.quick, progress=None, **kw)
    wall = time.perf_counter() - t
    comp = totals["backend_compile_duration"]
    print(f"{a.name}{' (quick)' if a.quick else ''}: wall {wall:.1f} s; {len(handler.rows)} programs, XLA compile "
          f"{comp:.1f} s ({comp / wall:.0%}), tracing {totals['jaxpr_trace_duration']:.1f} s, lowering "
          f"{totals['jaxpr_to_mlir_module_duration']:.1f} s")
    per = collections.defaultdict(lambda: [0, 0.0])
    for name, sec in handler.rows:
        per[name][0] += 1
        per[name][1] += sec
    print("| program | count | XLA compile (s) |\n|---|---|---|")
    for name, (count, sec) in sorted(per.items(), key=lambda kv: -kv[1][1])[:a.top]:
        print(f"| `{name}` | {count} | {sec:.2f} |")


if __name__ == "__main__":
    main()
