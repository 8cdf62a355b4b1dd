"""One process against two `jax.distributed` processes on the same sweep (issue 27).

Runs ``ntkd sweep`` on one configuration (a kernel teacher, n in --n, --seeds seeds, a 4 × 2 ρ × T grid)
as one process, then as two local CPU processes of one ``jax.distributed`` job (coordinator on
localhost), each writing its shard, and merges them. Reports per run: wall seconds, each process's CPU
seconds (user + sys, from ``os.wait4``), its blocks, and CPU seconds per block; checks that the merged
rows equal the one-process rows. No persistent compile cache, so each process compiles what it runs.

Run: ``python benchmarks/process_scaling.py [--n 256 512 1024] [--seeds 8] [--out benchmarks/results]``;
writes ``process_scaling.json`` and prints a markdown table. On a machine with fewer free cores than
processes no speedup is expected: the processes share the cores (the CPU columns are the fairer cost).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _toml(ns, seeds):
    n = ", ".join(str(v) for v in ns)
    return f"""name = "process-scaling"
seed = 3
[task]
kind = "kernel_teacher"
modes = 8
fit_n = 512
[student]
depth = 3
[grid]
rho = [1.0, 0.9, 0.6, 0.3]
T = [2.0, 5.0]
t = [inf]
n = [{n}]
seeds = {seeds}
[eval]
n_test = 512
n_ref = 0
"""


def _run(cmds):
    """Start every command, wait for all; returns (wall s, [(returncode, cpu s, stderr)])."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "JAX_PLATFORMS": "cpu"}) for c in cmds]
    out = {}
    while len(out) < len(procs):
        pid, status, ru = os.wait4(-1, 0)
        out[pid] = (os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime)
    wall = time.perf_counter() - t0
    return wall, [(out[p.pid][0], out[p.pid][1], p.stderr.read()) for p in procs]


def _blocks(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]


def _rows(db):
    """Every stored row without its id, write time and version (which differ between runs)."""
    with sqlite3.connect(db) as c:
        cols = [r[1] for r in c.execute("PRAGMA table_info(results)")
                if r[1] not in ("id", "written_at", "version")]
        return sorted(c.execute(f"SELECT {', '.join(cols)} FROM results").fetchall(), key=repr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args(argv)
    cli = [sys.executable, "-m", "ntkd.cli", "--no-compile-cache", "sweep"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = tmp / "cfg.toml"
        cfg.write_text(_toml(a.n, a.seeds))
        wall1, (p1,) = _run([cli + [str(cfg), "--out", str(tmp / "one"), "--quiet"]])
        assert p1[0] == 0, p1[2]
        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        wall2, ps = _run([cli + [str(cfg), "--out", str(tmp / "two"), "--quiet", "--coordinator",
                                 f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)]
                          for i in range(2)])
        assert all(p[0] == 0 for p in ps), [p[2] for p in ps]
        shards = [tmp / "two" / f"shard-{i}-of-2" / "results.sqlite" for i in range(2)]
        subprocess.run([sys.executable, "-m", "ntkd.cli", "merge", str(tmp / "merged"),
                        *(str(s.parent) for s in shards)], check=True, capture_output=True)
        same = _rows(tmp / "merged" / "results.sqlite") == _rows(tmp / "one" / "results.sqlite")
        b1 = _blocks(tmp / "one" / "results.sqlite")
        bs = [_blocks(s) for s in shards]
    rec = {"n": a.n, "seeds": a.seeds, "machine": platform.processor() or platform.machine(),
           "cores": os.cpu_count(), "load_before": os.getloadavg(), "rows_equal": same,
           "one": {"wall_s": wall1, "cpu_s": p1[1], "blocks": b1},
           "two": {"wall_s": wall2, "cpu_s": [p[1] for p in ps], "blocks": bs}}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "process_scaling.json").write_text(json.dumps(rec, indent=1))
    print("| processes | wall (s) | CPU s per process | blocks per process | CPU s per block |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {wall1:.1f} | {p1[1]:.1f} | {b1} | {p1[1] / b1:.2f} |")
    print(f"| 2 | {wall2:.1f} | {' / '.join(f'{p[1]:.1f}' for p in ps)} | {' / '.join(map(str, bs))} | "
          f"{sum(p[1] for p in ps) / sum(bs):.2f} |")
    print(f"merged rows equal the one-process rows: {same}")


if __name__ == "__main__":
    main()
