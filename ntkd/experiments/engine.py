"""The paper-neutral study engine: units of blocks, memory-bounded chunks, device sharding, resume and
progress, over a :class:`~ntkd.experiments.store.ResultsStore`.

A study turns its configuration into :class:`Unit` s. A unit is a group of blocks computed by one
compiled program (e.g. the seeds of one training-set size); a block is the smallest unit of resume (all
of its rows are written in one transaction, or none). The engine skips finished blocks, cuts the rest
of a unit into chunks that fit ``memory_gib`` (a multiple of the local device count), calls the unit's
``compute`` on each chunk and commits its rows, reporting progress with an honest ETA
(:class:`ntkd._core.progress.Progress`). A killed run loses at most the chunk in flight; rerunning the
same command resumes.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import numpy as np

from .._core.progress import Progress, note_compile_wait
from .store import ResultsStore, Schema

__all__ = ["Unit", "run_units", "once", "device_mesh", "replicated", "shard_seeds", "chunk_size", "size_buckets",
           "batch_size", "shard_units", "parse_shard"]


class Unit(NamedTuple):
    """``label``: shown in progress lines; ``blocks``: ``[(block id, item), ...]`` in order;
    ``compute(store, items) -> {block id: [row, ...]}`` for a chunk of items (rows carry the schema's
    columns and ``config``); ``block_bytes``: the memory one block needs in the chunk; ``block_work``:
    its relative cost (for the ETA).

    ``prepare`` (optional): compiles the unit's program ahead of time, a :func:`once` callable that
    ``compute`` also calls before it runs the program (so it waits for a compilation in flight instead of
    starting a second one). :func:`run_units` calls the prepares of the units still to do in order, in a
    background thread, while earlier units compute; units that share a program share one prepare."""

    label: str
    blocks: Sequence
    compute: Callable
    block_bytes: float = 0.0
    block_work: float = 1.0
    prepare: Optional[Callable[[], None]] = None


def once(fn: Callable[[], object]) -> Callable[[], None]:
    """``fn`` as a thread-safe callable that runs it the first time and does nothing afterwards; a call
    while another thread runs it waits for that run (the wait counts as the caller's compile time in its
    progress ETA, :func:`ntkd._core.progress.note_compile_wait`). Exceptions are logged at DEBUG level
    and swallowed: a prepare is an optimization (ahead-of-time compilation), and the program's real call
    compiles it again and raises whatever is wrong."""
    lock = threading.Lock()
    done = []

    def run() -> None:
        t = time.perf_counter()
        with lock:
            if done:
                note_compile_wait(time.perf_counter() - t)
                return
            done.append(True)
            try:
                fn()
            except Exception:  # noqa: BLE001 - the real call compiles again and raises
                logging.getLogger(__name__).debug("a prepare failed; its program compiles when called", exc_info=True)
    return run


def _caller_scope():
    """A context-manager factory that enters, in another thread, the calling thread's JAX settings that
    change how a program lowers: x64, default matmul precision, default device, rank and dtype promotion
    (thread-local scopes, all part of JAX's compile cache key)."""
    import contextlib

    c = jax.config
    vals = (bool(c.jax_enable_x64), c.jax_default_matmul_precision, c.jax_default_device,
            c.jax_numpy_rank_promotion, c.jax_numpy_dtype_promotion)

    @contextlib.contextmanager
    def scope():
        x64, prec, dev, rank, dtypes = vals
        with contextlib.ExitStack() as stack:
            stack.enter_context(jax.enable_x64(x64))
            stack.enter_context(jax.default_matmul_precision(prec))
            stack.enter_context(jax.default_device(dev))
            stack.enter_context(jax.numpy_rank_promotion(rank))
            stack.enter_context(jax.numpy_dtype_promotion(dtypes))
            yield
    return scope


def _in_scope(scope, fn):
    with scope():
        fn()


def device_mesh():
    """A 1-D mesh ``("s",)`` over ``jax.local_devices()``."""
    from jax.sharding import Mesh

    return Mesh(np.array(jax.local_devices()), ("s",))


def chunk_size(block_bytes: float, memory_gib: float, fixed: int, n_dev: int) -> int:
    """Blocks per chunk: ``fixed`` if > 0, else as many as fit ``memory_gib``; at least one per device
    and a multiple of the device count."""
    chunk = fixed or max(1, int(memory_gib * 2**30 // max(block_bytes, 1.0)))
    return max(n_dev, (chunk // n_dev) * n_dev)


def size_buckets(sizes, *, floor_fraction: float = 0.125) -> dict:
    """The bucket size of each training-set size: ``{n: N}`` with ``N >= n``, so that a sweep over many
    n compiles one program per bucket (padded exactly, see
    :func:`ntkd.theories.transfer_risk.grid.grid_core`), not one per n.

    Ladder: powers of two, at least ``floor_fraction`` of the largest size (sizes below that share one
    bucket: their O(N³) cost is at most floor_fraction³ of the largest unit's), and the largest size
    itself (never padded: it costs the most). E.g. sizes 10 .. 1000 -> buckets 128, 256, 512, 1000.
    """
    sizes = sorted({int(n) for n in sizes})
    if not sizes:
        return {}
    top = sizes[-1]
    floor = 1 << max(0, int(np.ceil(np.log2(max(1.0, top * floor_fraction)))))
    return {n: min(top, max(floor, 1 << int(np.ceil(np.log2(n))))) for n in sizes}


def batch_size(n_blocks: int, block_bytes: float, memory_gib: float, fixed: int, n_dev: int) -> int:
    """The one batch size of a unit's chunks: :func:`chunk_size`, but no larger than the unit's blocks
    (rounded up to the device count). Chunks with fewer blocks (the last one, or what is left after a
    resume) are padded to it, so every chunk of the unit runs the same compiled program."""
    step = chunk_size(block_bytes, memory_gib, fixed, n_dev)
    return min(step, -(-n_blocks // n_dev) * n_dev)


def replicated(mesh):
    """The sharding that places a whole array on every device of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def shard_seeds(arrays, mesh, size: int = 0):
    """Stack per-block arrays (lists of equal-shape arrays) along a new leading axis, padded to ``size``
    blocks (if larger) and to a multiple of the mesh size by repeating the last block, and place them
    sharded over the mesh. Stacked on the host (NumPy): no eager program per shape."""
    from jax.sharding import NamedSharding, PartitionSpec

    n_dev = mesh.devices.size
    count = max(len(arrays[0]), size)
    pad = count - len(arrays[0]) + (-count) % n_dev
    shard = NamedSharding(mesh, PartitionSpec("s"))
    out = []
    for parts in arrays:
        parts = [np.asarray(a) for a in parts]
        parts += [parts[-1]] * pad
        out.append(jax.device_put(np.stack(parts), shard))
    return out


def parse_shard(text) -> Optional[tuple]:
    """``"i/N"`` (0 <= i < N) -> ``(i, N)``; None -> None. A ValueError names ``--shard`` otherwise."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ValueError(f"`--shard` must be i/N with 0 <= i < N (e.g. 0/4 .. 3/4); got {text!r}")
    return i, n


def shard_units(units: Sequence[Unit], shard: Optional[tuple]) -> list:
    """The units of shard ``(i, N)``: whole units (each compiles its own program), dealt out by
    longest-processing-time first (cost = blocks x block_work, ties by position) to the least loaded
    shard. Deterministic: every process computes the same partition from the same configuration, so
    the N shards are disjoint and together cover every unit. ``None``: all units."""
    if shard is None:
        return list(units)
    i, n = shard
    order = sorted(range(len(units)), key=lambda k: (-len(units[k].blocks) * units[k].block_work, k))
    load = [0.0] * n
    mine = set()
    for k in order:
        s = min(range(n), key=lambda j: (load[j], j))
        load[s] += len(units[k].blocks) * units[k].block_work
        if s == i:
            mine.add(k)
    return [u for k, u in enumerate(units) if k in mine]


def run_units(path, schema: Schema, units: Sequence[Unit], *, config_json: str, config_hash: str, version: str,
              name: str, memory_gib: float = 4.0, fixed_chunk: int = 0, progress=sys.stderr,
              max_blocks: Optional[int] = None, shard: Optional[tuple] = None, precompile: Optional[bool] = None) -> dict:
    """Run (or resume) ``units`` into the store at ``path`` bound to one configuration; returns the run's
    statistics (blocks computed, seconds, compile seconds and programs compiled).

    ``max_blocks`` stops after that many new blocks (for tests); ``progress=None`` is silent.
    ``shard=(i, N)``: only this shard's units (:func:`shard_units`), for N processes or array jobs that
    each write their own store; ``ntkd merge`` joins the stores.
    ``precompile``: one background thread runs the :attr:`Unit.prepare` of every unit still to do, in
    order and in this thread's JAX setting scopes (x64, matmul precision, default device, promotion), so
    that the next units' programs compile on the host while the accelerator computes the current one; the
    thread is joined before this returns (after a stop, the compilation in flight finishes first).
    Compile seconds and program counts include it. ``None`` (default): the environment variable
    ``NTKD_PRECOMPILE`` (``1`` or ``0``) if set, else on when JAX's default backend is not the CPU. On
    the CPU the compilations compete with the computation for the same cores (2-core machine, full-size
    Ji & Zhu Fig. 2: no wall-time gain beyond run-to-run noise, benchmarks/README.md). On a GPU, XLA's
    autotuning during a background compilation takes device memory next to the running chunk: keep
    ``memory_gib`` well below the device's memory, or set ``NTKD_PRECOMPILE=0``. Untested on a GPU so far
    (none was available).
    """
    path = Path(path)
    units = shard_units(units, shard)
    if shard is not None:
        name = f"{name} [shard {shard[0]}/{shard[1]}]"
    n_dev = len(jax.local_devices())
    with ResultsStore(path, schema) as store:
        resumed = store.claim(config_json, config_hash, version)
        done = store.done_blocks()
        total = sum(len(u.blocks) for u in units)
        todo_units = [(u, [(b, it) for b, it in u.blocks if b not in done]) for u in units]
        todo_units = [(u, todo) for u, todo in todo_units if todo]
        total_work = sum(len(todo) * u.block_work for u, todo in todo_units)
        bar = Progress(name, total, total_work=total_work or 1.0, groups=len(todo_units), stream=progress)
        bar.done = total - sum(len(todo) for _, todo in todo_units)
        bar.message(f"{name}: {total} blocks in {len(units)} units, {n_dev} device(s); "
                    f"{'resuming, ' + str(len(done)) + ' blocks already done' if resumed else 'new store'} "
                    f"-> {path}")
        new = 0
        preps = list(dict.fromkeys(u.prepare for u, _ in todo_units if u.prepare is not None))
        if precompile is None:
            env = os.environ.get("NTKD_PRECOMPILE", "").strip().lower()
            precompile = env not in ("0", "false", "no", "off") if env else jax.default_backend() != "cpu"
        pool = ThreadPoolExecutor(1, thread_name_prefix="ntkd-precompile") if precompile and preps else None
        scope = _caller_scope() if pool else None  # the worker compiles as this thread would
        for prep in preps if pool else ():
            pool.submit(_in_scope, scope, prep)
        try:
            for unit, todo in todo_units:
                bar.start_group()
                step = chunk_size(unit.block_bytes, memory_gib, fixed_chunk, n_dev)
                for i in range(0, len(todo), step):
                    part = todo[i:i + step]
                    blocks = unit.compute(store, [it for _, it in part])
                    store.write_blocks(blocks, version)
                    new += len(part)
                    bar.update(len(part), len(part) * unit.block_work,
                               f"{unit.label} blocks {part[0][0].rsplit('|', 1)[-1]}..{part[-1][0].rsplit('|', 1)[-1]}")
                    if max_blocks is not None and new >= max_blocks:
                        break
                if max_blocks is not None and new >= max_blocks:
                    break
        finally:
            try:
                if pool is not None:  # the compilation in flight finishes; the others are cancelled
                    pool.shutdown(wait=True, cancel_futures=True)
            finally:
                stats = bar.close()
    return {"blocks": new, **stats}
