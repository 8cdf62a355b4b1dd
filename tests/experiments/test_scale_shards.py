"""Sweeps over several processes: ``--shard I/N`` and ``jax.distributed`` processes each write their own
store, ``ntkd merge`` joins them.

* ``shard_units`` deals whole units out deterministically: the shards are disjoint and cover every unit;
* the one-process run compiles one grid program per bucket of n (6 and 12 padded, 20 its own), each
  once, ahead of its first chunk in the engine's background thread;
* two local CPU processes of one ``jax.distributed`` job (coordinator on localhost), and three shards
  computed one after another, merged, give the rows of a one-process run bitwise;
* merge deduplicates (merging a shard again, or the full run on top, adds nothing) and refuses a store of
  another configuration.
"""
import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from ntkd.cli import main
from ntkd.experiments.engine import Unit, parse_shard, shard_units, size_buckets
from ntkd.experiments.ji_zhu import sweep as S
from ntkd.experiments.store import ResultsStore, merge_stores
from ntkd.theories.transfer_risk.grid import METRICS, compiled_grid

INF = float("inf")
CFG = {
    "name": "shards", "seed": 11,
    "task": {"kind": "kernel_teacher", "modes": 4, "fit_n": 32, "stop_time": INF},
    "student": {"depth": 1},
    "grid": {"rho": [1.0, 0.6], "T": [5.0], "t": [INF], "n": [6, 12, 20], "seeds": 2},
    "eval": {"n_test": 16, "n_ref": 12},
}


def _toml(raw):
    def val(v):
        if isinstance(v, dict):
            return None
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, str):
            return json.dumps(v)
        return "inf" if v == INF else repr(v)
    lines = [f"{k} = {val(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def _rows(path):
    with ResultsStore(path, read_only=True) as st:
        return {(r["n"], r["seed"], r["rho"]): tuple(r[m] for m in METRICS) + (r["factor"],) for r in st.rows()}


def _blocks(path):
    with ResultsStore(path, read_only=True) as st:
        return st.done_blocks()


def test_shards_are_a_deterministic_partition_of_the_units():
    units = [Unit(f"u{k}", [(f"u{k}|{s}", s) for s in range(k % 3 + 1)], None, block_work=float(k * k + 1))
             for k in range(11)]
    for n in (1, 2, 3, 5, 16):
        parts = [shard_units(units, (i, n)) for i in range(n)]
        labels = [u.label for p in parts for u in p]
        assert sorted(labels) == sorted(u.label for u in units)  # disjoint and complete
        assert [[u.label for u in p] for p in parts] == [[u.label for u in shard_units(units, (i, n))]
                                                          for i in range(n)]
    # the costliest units go to different shards first
    costs = [sum(len(u.blocks) * u.block_work for u in shard_units(units, (i, 2))) for i in range(2)]
    assert max(costs) / sum(costs) < 0.6
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) is None
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


class _GridCompiles(logging.Handler):
    """The threads in which XLA compiled a grid program (JAX logs each compilation at DEBUG level)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.threads = []

    def emit(self, record):
        if record.getMessage().startswith("Finished XLA compilation of jit(grid_core)"):
            self.threads.append(record.threadName)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The one-process run, with its bucket programs compiled ahead in the engine's background thread
    (on the CPU only on request); the processes of the shard tests compile them inline (the default)."""
    d = tmp_path_factory.mktemp("single")
    cfg = S.SweepConfig.from_dict(CFG)
    prog = compiled_grid(S._student_kernel(cfg.student, 1), "chol", 0.0, True, batched=True, padded=True)
    before = prog._cache_size()
    log = logging.getLogger("jax._src.dispatch")
    handler, level = _GridCompiles(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        S.run_sweep(cfg, d, progress=None, precompile=True)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    programs = prog._cache_size() - before
    return d / "results.sqlite", programs, handler.threads


def test_one_grid_program_per_bucket_compiled_ahead(single):
    assert size_buckets(CFG["grid"]["n"]) == {6: 8, 12: 16, 20: 20}
    assert single[1] == 3
    # each compiled once, in the background thread: the sweep's own calls found them compiled
    assert single[2] == ["ntkd-precompile_0"] * 3


def test_two_jax_distributed_processes_merge_to_the_one_process_rows(tmp_path, single):
    single = single[0]
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(_toml(CFG))
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-m", "ntkd.cli", "--no-compile-cache", "sweep", str(cfg), "--out",
                               str(tmp_path / "job"), "--quiet", "--coordinator", f"localhost:{port}",
                               "--num-processes", "2", "--process-id", str(i)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    shards = [tmp_path / "job" / f"shard-{i}-of-2" for i in range(2)]
    b0, b1 = (_blocks(d / "results.sqlite") for d in shards)
    assert b0 and b1 and not b0 & b1  # each process computed its own units, none twice
    assert main(["merge", str(tmp_path / "merged"), *map(str, shards)]) == 0
    merged = tmp_path / "merged" / "results.sqlite"
    assert _rows(merged) == _rows(single)  # bitwise, every metric and the factorization
    assert b0 | b1 == _blocks(single)
    assert (tmp_path / "merged" / "config.json").exists() and (tmp_path / "merged" / "results.csv").exists()
    # merging again, or the one-process store on top, adds nothing
    again = merge_stores(merged, [shards[1] / "results.sqlite", single])
    assert again["blocks"] == 0 and again["skipped"] == len(b1) + len(b0 | b1)
    assert _rows(merged) == _rows(single)


def test_merge_refuses_a_store_of_another_configuration(tmp_path, single):
    single = single[0]
    with ResultsStore(tmp_path / "other" / "results.sqlite", S.SCHEMA) as st:  # another sweep's (empty) store
        st.claim('{"other": 1}', "f" * 64, "0")
    with pytest.raises(ValueError, match="another configuration"):
        merge_stores(tmp_path / "m" / "results.sqlite", [single, tmp_path / "other" / "results.sqlite"])
    merge_stores(tmp_path / "m2" / "results.sqlite", [tmp_path / "other" / "results.sqlite"])
    with pytest.raises(ValueError, match="different sweep configuration"):  # the target's own config
        merge_stores(tmp_path / "m2" / "results.sqlite", [single])
    assert main(["merge", str(tmp_path / "m3"), str(tmp_path / "nowhere")]) == 2


def test_three_shards_merge_to_the_one_process_rows(tmp_path, single):
    """``--shard i/3`` (the partition every one of 3 processes would compute), run here one after another
    (their programs are the one-process run's, already compiled), merged: the one-process rows bitwise."""
    cfg = S.SweepConfig.from_dict(CFG)
    shards = [tmp_path / f"s{i}" for i in range(3)]
    for i, d in enumerate(shards):
        S.run_sweep(cfg, d, progress=None, shard=(i, 3))
    blocks = [_blocks(d / "results.sqlite") for d in shards]
    assert sum(len(b) for b in blocks) == len(set().union(*blocks)) == len(_blocks(single[0]))
    merge_stores(tmp_path / "merged" / "results.sqlite", [d / "results.sqlite" for d in shards])
    assert _rows(tmp_path / "merged" / "results.sqlite") == _rows(single[0])
