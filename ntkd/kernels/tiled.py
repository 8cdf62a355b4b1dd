"""Any kernel_fn in tiles spread over the local devices: :func:`kernel_matrix`."""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import jax
import numpy as np

from .._core.checks import check_inputs_2d, check_int
from ._programs import Cfg, config_of, packed_pass, pad_rows
from .base import GETS, pack

__all__ = ["kernel_matrix"]

def _devices(devices):
    """``None`` -> all local devices; an int k -> the first k; else a sequence of devices."""
    local = jax.local_devices()
    if devices is None:
        return local
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        k = check_int(devices, "devices", minimum=1)
        if k > len(local):
            raise ValueError(f"`devices`={k} but only {len(local)} local device(s) exist; pass at most "
                             f"{len(local)} or None for all.")
        return local[:k]
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` is empty; pass None for all local devices.")
    return devices


#: Host copies of kernel_matrix's tiles: stripes of _STRIPE tile rows are copied by a pool of at most
#: _COPY_THREADS threads (NumPy releases the GIL while it copies), and a symmetric kernel's mirrored tile
#: is written _MIRROR_CHUNK rows at a time, since one transposed copy of a whole tile strides through
#: memory (benchmarks/README.md, "Large kernels" and "Kernels on a GPU").
_STRIPE = 256


_MIRROR_CHUNK = 16


_COPY_THREADS = 8


def _copy_stripe(o, t, i, j, s, mirror):
    """Copy rows s .. s + _STRIPE of tile ``t`` to ``o[i + s.., j..]`` and, with ``mirror``, their
    transpose to ``o[j.., i + s..]``."""
    e = min(s + _STRIPE, t.shape[0])
    ja = t.shape[1]
    o[i + s:i + e, j:j + ja] = t[s:e]
    if mirror:
        for c in range(s, e, _MIRROR_CHUNK):
            c2 = min(c + _MIRROR_CHUNK, e)
            o[j:j + ja, i + c:i + c2] = t[c:c2].T


def _sharding(devs):
    """Tiles (the leading axis) spread over ``devs``: a 1-D mesh."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    return NamedSharding(Mesh(np.array(devs), ("tiles",)), PartitionSpec("tiles"))


@functools.lru_cache(maxsize=16)
def _own_tile_program(cfg: Cfg, b1: int, b2: int, symmetric: bool, devs: tuple):
    """kernel_matrix's one program for ntkd's analytic kernels, kept across calls (tracing and compiling
    it costs 1-3 s on CPU): a ``(devices, b1, d)`` and a ``(devices, b2, d)`` stack of tiles and their
    row offsets in, the packed tiles (:func:`packed_pass`) out. For a symmetric kernel the offsets give the
    pairs of the same point their exact diagonal, so diagonal and off-diagonal tiles share the program."""
    spread = _sharding(devs)

    def tile(a, b, i, j):
        return packed_pass(a, b, i, j, symmetric=symmetric, cfg=cfg)

    return jax.jit(jax.vmap(tile), out_shardings=spread), spread


@functools.lru_cache(maxsize=16)
def _generic_tile_programs(kernel_fn, get, devs: tuple):
    """kernel_matrix's two programs for any neural-tangents style ``kernel_fn`` (cross tiles and
    diagonal tiles ``kernel_fn(a, None, get)``), kept across calls with the same ``kernel_fn``."""
    spread = _sharding(devs)
    single = isinstance(get, str)

    def as_tuple(o):
        return (o,) if single else tuple(o)

    cross = jax.jit(jax.vmap(lambda a, b: as_tuple(kernel_fn(a, b, get))), out_shardings=spread)
    diag = jax.jit(jax.vmap(lambda a: as_tuple(kernel_fn(a, None, get))), out_shardings=spread)
    return (cross, diag), spread


@functools.lru_cache(maxsize=64)
def _placer(part, transpose: bool):
    """A jitted in-place write of the tile ``blk[0]`` (or its transpose) into a device buffer ``o`` at rows
    r, columns c; ``part``: ``"re"``/``"im"`` of a packed pair tile, or None. ``o`` is donated, so the
    buffer is updated without a copy where the backend allows."""
    from jax import lax

    def put(o, blk, r, c):
        t = blk[0]
        t = t.real if part == "re" else t.imag if part == "im" else t
        t = t.T if transpose else t
        return lax.dynamic_update_slice(o, t.astype(o.dtype), (r, c))

    return jax.jit(put, donate_argnums=0)


def _row_split(n1: int, n_dev: int) -> int:
    """How many devices the device result's rows are split over: the largest k ≤ n_dev dividing n1
    (a ``jax.Array`` shards only evenly)."""
    return max(k for k in range(1, n_dev + 1) if n1 % k == 0)


def _margins(starts, edge: int, rows: int, k: int) -> tuple:
    """Rows above and below each of the k row shards of ``rows`` rows that the tiles of edge ``edge``
    at ``starts`` reach into; every shard's buffer gets the same margins, so one placing program."""
    top = bottom = 0
    for s in range(k):
        lo, hi = s * rows, (s + 1) * rows
        for i in starts:
            if i < hi and i + edge > lo:
                top, bottom = max(top, lo - i), max(bottom, i + edge - hi)
    return top, bottom


def kernel_matrix(kernel_fn: Callable, x1, x2=None, *, get="ntk", block_size: int = 2048, devices=None,
                  out=None, progress=None):
    """Evaluate ``kernel_fn`` on all pairs of rows in tiles, spread over devices, with bounded memory.

    The ``n1 × n2`` result is assembled on the host (NumPy) from ``block_size × block_size`` tiles.
    Tiles are computed in groups of one per device: each group is a ``(devices, block, d)`` stack
    sharded over a 1-D ``jax.sharding.Mesh`` of ``devices`` and mapped through a jitted, ``vmap``-ed
    ``kernel_fn``, so every device runs the same one-tile program and the result does not depend on the
    number of devices (tested bitwise on forced host devices). The next group is dispatched before the
    previous one is copied to the host, so host copies overlap device work. Device memory stays a few
    ``block_size²`` arrays per device whatever n is (the last tiles are padded to the full block shape).

    With ``x2=None`` only the tiles on and above the diagonal are computed and mirrored, and the pairs
    of the same point keep ``kernel_fn``'s exact diagonal.

    Programs: for ntkd's analytic kernels (``mlp_kernel_fn``) one program computes every tile, both
    kernels of a pair in one fused pass; the tile offsets mark the pairs of the same point. Any other
    ``kernel_fn`` gets two, cross tiles ``kernel_fn(a, b, get)`` and diagonal tiles
    ``kernel_fn(a, None, get)``. The compiled programs are kept (an LRU cache of 16 per kind) for later
    calls with the same kernel, tile shapes and devices: tracing and compiling a depth-5 ReLU tile
    takes 1-3 s on a 2-core CPU.

    Args:
      kernel_fn: any callable with the neural-tangents signature ``kernel_fn(x1, x2, get)`` that is
        jit- and vmap-compatible: ntkd's own, an ``ntkd.empirical_kernel_fn``, or a neural-tangents
        ``stax`` kernel_fn (duck typing).
      x1: inputs ``(n1, d)``. x2: inputs ``(n2, d)`` or ``None`` for the symmetric kernel.
      get: ``"ntk"``, ``"nngp"`` (one ``(n1, n2)`` array) or a tuple of names (a namedtuple of arrays).
      block_size: tile edge. On CPU 2048 is a good default. A symmetric CPU kernel that fits in memory
        is faster as ``kernel_fn(x)`` itself, one program of small tiles that computes only one
        triangle and mirrors inside the program. On a GPU the host's copies of the tiles take nearly
        all the time (benchmarks/README.md, "Large kernels" and "Kernels on a GPU").
      devices: ``None`` (all ``jax.local_devices()``), a count k (the first k), or a list of devices.
      out: optional preallocated host arrays to write into, ``(n1, n2)`` of ``x1``'s dtype: one array
        for a single ``get``, else a sequence in the order of ``get``. Pass ``np.lib.format.open_memmap``
        arrays for kernels larger than RAM (n = 50,000 in float32 is 10 GB per kernel).
        ``out="device"``: no host copy; the result is a ``jax.Array`` whose rows are split evenly
        over the largest number k ≤ len(devices) of devices that divides n1 (``NamedSharding`` over
        a 1-D mesh ``("rows",)``; k = 1 when n1 is prime, so pick n1 divisible by the device count
        for an even split), for a solve on the devices next. Each tile is copied device to device
        only to the shards its rows touch and written into a donated buffer. Device memory per
        device: its n1/k rows (plus at most one tile edge of margin above and below) times n2
        padded to whole tiles, plus one tile per device in flight. Values equal the host result
        bitwise for every device count (tests/kernels/test_tiled_device.py).
      progress: optional callable ``progress(done_tiles, total_tiles)``.

    Several processes (``jax.distributed``, ``jax.process_count() > 1``) with ``out="device"`` and
    ``devices=None``: the result is one global ``jax.Array`` whose rows are split evenly over the largest
    number k ≤ ``len(jax.devices())`` of all processes' devices that divides n1. Every process calls
    ``kernel_matrix`` with the same arguments and computes only the row stripes of its own devices (each
    stripe against all columns, on that device), so no data moves between processes; each process holds
    its stripes (``.addressable_shards``). A symmetric kernel's stripes compute both triangles (no
    mirroring across processes); the pairs of the same point keep the exact diagonal, which needs ntkd's
    analytic kernels (a generic ``kernel_fn``: pass ``x2`` for its cross kernel). Equal to the one-process
    result (tests/kernels/test_tiled_processes.py).

    Returns:
      NumPy arrays of dtype ``x1.dtype`` (``out`` itself when given; ``jax.Array`` s for
      ``out="device"``); shaped like ``kernel_fn``'s output for ``get``.
    """
    if isinstance(out, str) and out == "device" and devices is None and jax.process_count() > 1:
        return _over_processes(kernel_fn, x1, x2, get=get, block_size=block_size, progress=progress)
    return _kernel_matrix(kernel_fn, x1, x2, get=get, block_size=block_size, devices=devices, out=out,
                          progress=progress)


def _names(get):
    """``(single, names)`` of a ``get`` argument, refused unless it is a kernel name or a tuple of them."""
    single = isinstance(get, str)
    names = (get,) if single else tuple(get)
    if not names or any(n not in GETS for n in names):
        raise ValueError(f"`get` must be 'nngp', 'ntk' or a tuple of those; got {get!r}.")
    return single, names


def _same_features(x1, x2):
    if x2.shape[1] != x1.shape[1]:
        raise ValueError(f"`x2` has {x2.shape[1]} features but `x1` has {x1.shape[1]}; they must match.")
    return x2


def _over_processes(kernel_fn, x1, x2, *, get, block_size, progress):
    """:func:`kernel_matrix` with ``out="device"`` in a multi-process job: this process's row stripes of
    a global array over ``jax.devices()``."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    check_int(block_size, "block_size", minimum=1)
    single, names = _names(get)
    x1 = check_inputs_2d(x1, "x1")
    symmetric = x2 is None or x2 is x1
    if symmetric and config_of(kernel_fn) is None:
        raise ValueError("a symmetric kernel_matrix over several processes needs ntkd's analytic kernels for "
                         "the exact diagonal; for another kernel_fn pass x2=x1 (its cross kernel).")
    x2 = x1 if symmetric else _same_features(x1, check_inputs_2d(x2, "x2"))  # checked here too: a process
    n1, n2 = x1.shape[0], x2.shape[0]  # may own no stripe
    devs = jax.devices()
    k_rows = _row_split(n1, len(devs))
    rows = n1 // k_rows
    mine = [s for s in range(k_rows) if devs[s].process_index == jax.process_index()]
    x1h, x2h = np.asarray(x1), np.asarray(x2)
    parts = [[] for _ in names]
    for s in mine:
        stripe = x1h[s * rows:(s + 1) * rows]
        res = _kernel_matrix(kernel_fn, stripe, x2h, get=names, block_size=block_size, devices=[devs[s]],
                             out="device", progress=progress, row0=s * rows if symmetric else None)
        for p, a in zip(parts, res):
            p.append(a)
    split = NamedSharding(Mesh(np.array(devs[:k_rows]), ("rows",)), PartitionSpec("rows", None))
    out = [jax.make_array_from_single_device_arrays((n1, n2), split, p) for p in parts]
    if single:
        return out[0]
    return pack(tuple(names), dict(zip(names, out)))


def _kernel_matrix(kernel_fn, x1, x2=None, *, get, block_size, devices, out, progress, row0=None):
    """The body of :func:`kernel_matrix` on this process's devices. ``row0``: ``x1`` are the rows
    ``row0 ..`` of ``x2`` (a row stripe of a symmetric kernel): every tile is computed (no mirroring)
    and the pairs of the same point get the exact diagonal from the tile offsets (analytic kernels)."""
    block_size = check_int(block_size, "block_size", minimum=1)
    single, names = _names(get)
    x1 = check_inputs_2d(x1, "x1")
    mirror = (x2 is None or x2 is x1) and row0 is None  # compute the upper triangle, mirror the rest
    symmetric = mirror or row0 is not None  # pairs of the same point get the exact diagonal
    x2 = x1 if mirror else _same_features(x1, check_inputs_2d(x2, "x2"))
    row0 = row0 or 0
    n1, n2 = x1.shape[0], x2.shape[0]
    dtype = np.dtype(x1.dtype)
    on_device = isinstance(out, str)
    if on_device and out != "device":
        raise ValueError(f"`out` must be None, host arrays, or 'device' (a jax.Array kept on the devices); "
                         f"got {out!r}.")
    if on_device:
        out = None
    if out is None:
        out = [np.empty((n1, n2), dtype=dtype) for _ in names]
    else:
        out = [out] if single else list(out)
        if len(out) != len(names) or any(getattr(o, "shape", None) != (n1, n2) or getattr(o, "dtype", None) != dtype
                                          for o in out):
            raise ValueError(f"`out` must be {len(names)} array(s) of shape {(n1, n2)} and dtype {dtype} "
                             f"(one per name in get={get!r}); got "
                             f"{[(getattr(o, 'shape', None), getattr(o, 'dtype', None)) for o in out]}.")
    devs = tuple(_devices(devices))
    n_dev = len(devs)
    b1, b2 = min(block_size, n1), min(block_size, n2)
    if on_device:  # row shards with margins, columns padded to whole tiles; the host arrays are not used
        import jax.numpy as jnp

        k_rows = _row_split(n1, n_dev)
        rows = n1 // k_rows
        top, bottom = _margins(range(0, n1, b1), b1, rows, k_rows)
        shape = (top + rows + bottom, -(-n2 // b2) * b2)
        out = [[jnp.zeros(shape, dtype, device=d) for d in devs[:k_rows]] for _ in names]
    cfg = config_of(kernel_fn)
    own = cfg is not None  # ntkd's analytic kernels: one packed program for every tile
    if own:
        program, spread = _own_tile_program(cfg._replace(names=names), b1, b2, symmetric, devs)
    else:
        key = get if single else names
        try:
            hash(kernel_fn)
        except TypeError:  # not cacheable: programs for this call only
            (cross, diag), spread = _generic_tile_programs.__wrapped__(kernel_fn, key, devs)
        else:
            (cross, diag), spread = _generic_tile_programs(kernel_fn, key, devs)
    x1h = np.asarray(x1)
    x2h = x1h if mirror else np.asarray(x2)
    starts1, starts2 = range(0, n1, b1), range(0, n2, b2)
    tiles = [(i, j) for i in starts1 for j in starts2 if not (mirror and j < i)]
    if own:  # one program: diagonal tiles get the exact diagonal from the tile offsets
        kinds = ([], tiles)
    else:  # a generic kernel_fn's diagonal tiles are kernel_fn(a, None): a second program
        kinds = ([t for t in tiles if t[0] == t[1]], [t for t in tiles if t[0] != t[1]]) if mirror else ([], tiles)
    groups = [(k == 0, g[s:s + n_dev]) for k, g in enumerate(kinds) for s in range(0, len(g), n_dev)]

    def stack(rows, start, size):
        xs = [pad_rows(rows[s:s + size], size) for s in start]
        xs += [xs[-1]] * (n_dev - len(xs))  # pad the last group with repeats
        return jax.device_put(np.stack(xs), spread)

    def offsets(start):
        start = list(start) + [start[-1]] * (n_dev - len(start))
        return jax.device_put(np.asarray(start, np.int32), spread)

    def launch(is_diag, group):
        xa = stack(x1h, [i for i, _ in group], b1)
        if is_diag:
            return diag(xa)
        xb = stack(x2h, [j for _, j in group], b2)
        if own:
            return program(xa, xb, offsets([row0 + i for i, _ in group]), offsets([j for _, j in group]))
        return cross(xa, xb)

    def store_device(group, blocks):
        parts = ("re", "im") if own and len(names) == 2 else (None,) * len(names)
        blocks = [blocks] * len(names) if own else blocks
        for o_idx, (blk, part) in enumerate(zip(blocks, parts)):
            tiles_on = sorted(blk.addressable_shards, key=lambda sh: sh.index[0].start or 0)
            for k, (i, j) in enumerate(group):
                moved = {}
                for r, c, transpose in [(i, j, False)] + ([(j, i, True)] if mirror and i != j else []):
                    edge = b2 if transpose else b1
                    for s in range(r // rows, min(k_rows, -(-(r + edge) // rows))):
                        if s not in moved:  # one device-to-device copy per destination shard
                            moved[s] = jax.device_put(tiles_on[k].data, devs[s])
                        put = _placer(part, transpose)
                        out[o_idx][s] = put(out[o_idx][s], moved[s], np.int32(r - s * rows + top), np.int32(c))

    def store(group, blocks):
        if on_device:
            return store_device(group, blocks)
        if own:  # one packed array: both kernels as complex(first, second), split as views (no copy)
            z = np.asarray(blocks)
            blocks = (z.real, z.imag) if len(names) == 2 else (z,)
        tasks = []
        for o, blk in zip(out, blocks):
            blk = np.asarray(blk)
            for k, (i, j) in enumerate(group):
                t = blk[k, :min(b1, n1 - i), :min(b2, n2 - j)]
                tasks += [(o, t, i, j, s, mirror and i != j) for s in range(0, t.shape[0], _STRIPE)]
        for f in [pool.submit(_copy_stripe, *a) for a in tasks]:
            f.result()

    done = 0
    pending = None
    with ThreadPoolExecutor(max_workers=min(_COPY_THREADS, os.cpu_count() or 1)) as pool:
        for item in groups + [None]:  # None: no further launch, only the last copy
            # dispatch is asynchronous: this launch overlaps the host copy of the previous group below
            launched = None if item is None else (item[1], launch(*item))
            if pending is not None:
                store(*pending)
                done += len(pending[0])
                if progress is not None:
                    progress(done, len(tiles))
            pending = launched
    if on_device:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        split = NamedSharding(Mesh(np.array(devs[:k_rows]), ("rows",)), PartitionSpec("rows", None))
        out = [jax.make_array_from_single_device_arrays((n1, n2), split, [b[top:top + rows, :n2] for b in bufs])
               for bufs in out]
    if single:
        return out[0]
    return pack(tuple(names), dict(zip(names, out)))
