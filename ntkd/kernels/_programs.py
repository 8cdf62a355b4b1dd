"""Compiled programs of the analytic kernels: both outputs packed into one pass, symmetric kernels in
tiles on and above the diagonal, eager kernels in row blocks, and the static configuration they share."""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .._core.linalg import mm
from ._numerics import any_unbatched, gram_delta, needs_near_check
from ._recursion import mlp_kernel
from .activations import Act

class Cfg(NamedTuple):
    """Static configuration of one analytic kernel evaluation (hashable: a jit static argument)."""

    depth: int
    act: Act
    W_std: float
    b_std: Optional[float]
    parameterization: str
    width: Optional[int]
    names: tuple  # the outputs wanted, in order: ("nngp",), ("ntk",), ("nngp", "ntk") or ("ntk", "nngp")


def _opaque_true(x):
    """True for any x without NaN at its first entry, a value XLA cannot know at compile time (the
    predicate of :func:`_guarded`'s conditional, whose branches are equal, so the value itself never
    matters). Unbatched under ``jax.vmap`` (:func:`any_unbatched`), and a comparison, so ``jax.grad``
    has nothing to differentiate."""
    v = x.reshape(-1)[:1]
    return any_unbatched(v == v)


def packed_pass(xr, xc, row_start, col_start, *, symmetric, cfg: Cfg, qr=None, qc=None):
    """The kernel of the points ``xr`` against ``xc``, packed into ONE array: the wanted output itself,
    or for two outputs ``complex(first, second)`` in ``cfg.names`` order (see :func:`_unpack`).
    ``symmetric``: both are rows of one input, ``xr`` from row ``row_start`` and ``xc`` from
    ``col_start`` (either may be traced), and the pairs of the same row get the exact diagonal.
    ``qr``, ``qc``: the points' ``|x|²/d`` when the caller has them.

    For the ReLU family on inputs wider than :data:`EXACT_DISTANCE_MAX_DIM` a conditional on the Gram
    block chooses between two fused passes: without near-duplicate pairs (:data:`NEAR_DELTA`) 1 - cos
    comes from the Gram block alone; with any, their 1 - cos comes from pairwise differences. Checking
    costs one more read of the Gram block; only blocks with near-duplicates pay for the differences.
    Under ``jax.vmap`` one check covers the whole batch (a conditional, not a select).
    """
    d = xr.shape[1]
    qr = jnp.sum(xr * xr, axis=1) / d if qr is None else qr
    qc = jnp.sum(xc * xc, axis=1) / d if qc is None else qc

    def same_point():  # built where it is used: an operand of the conditional would be written out
        if not symmetric:
            return None
        return (row_start + jnp.arange(xr.shape[0]))[:, None] == (col_start + jnp.arange(xc.shape[0]))[None, :]

    gram = mm(xr, xc.T)

    def run(exact_near):
        nngp, ntk = mlp_kernel(xr, xc, qr[:, None], qc[None, :], same_point(), gram, depth=cfg.depth, act=cfg.act,
                                W_std=cfg.W_std, b_std=cfg.b_std, parameterization=cfg.parameterization,
                                width=cfg.width, want_ntk="ntk" in cfg.names, exact_near=exact_near)
        vals = {"nngp": nngp, "ntk": ntk}
        if len(cfg.names) == 1:
            return vals[cfg.names[0]]
        return jax.lax.complex(vals[cfg.names[0]], vals[cfg.names[1]])

    if not needs_near_check(cfg.act, cfg.depth, d):
        return run(False)
    # the branches compute δ from the Gram block again (in their fused pass): passed in, it would be written out
    near = gram_delta(gram, qr[:, None], qc[None, :], same_point(), d)[1]
    # rows first: XLA fuses the mask into a row reduction (a reduction of the whole block is not fused)
    return jax.lax.cond(any_unbatched(jnp.any(near, axis=1)), lambda: run(True), lambda: run(False))


def _block(x1, x2, start, *, rows, symmetric, cfg: Cfg, guard: bool = False):
    """Rows ``start .. start + rows`` of ``x1`` against the points ``x2`` (``symmetric``: ``x2`` is x1
    itself, and those pairs get the exact diagonal), packed by :func:`packed_pass`.

    Packing is what makes XLA on CPU compute the recursion in a single fused pass: a program with two
    outputs that share one elementwise chain is split into several passes that recompute parts of it
    and write n1 x n2 intermediates, markedly slower at depth 5 and 10 (benchmarks/README.md, "Design decisions").
    """
    xr = x1 if rows == x1.shape[0] else jax.lax.dynamic_slice_in_dim(x1, start, rows)

    def packed(xr, x2, start):
        return packed_pass(xr, x2, start, 0, symmetric=symmetric, cfg=cfg)

    if not guard or len(cfg.names) == 1 or jax.default_backend() != "cpu":
        return packed(xr, x2, start)
    # ``guard``: the caller unpacks in the same program (under a user's jit). XLA would fold
    # real(complex(a, b)) -> a there and split the pass again; a conditional keeps the packed array
    # intact (much faster; benchmarks/README.md, "Design decisions").
    return _guarded(packed, cfg, xr, x2, start)


def _guarded(packed, cfg: Cfg, xr, *args):
    """``packed(xr, *args)`` (a :func:`packed_pass` call) as the output of a conditional, which XLA neither
    fuses into its consumers nor looks through: on a predicate it cannot evaluate at compile time
    (:func:`_opaque_true`; both branches are the same function, so its value does not matter), unless
    :func:`packed_pass` has its own near-duplicate conditional, which does the same (a second around it
    would only compile the recursion twice more)."""
    if needs_near_check(cfg.act, cfg.depth, xr.shape[1]):
        return packed(xr, *args)
    return jax.lax.cond(_opaque_true(xr), packed, packed, xr, *args)


#: A symmetric kernel on CPU with more than this many points is computed in square tiles of at most
#: this edge (:func:`symmetric_tiles`): small enough for a tile's blocks to stay in cache, large enough
#: to keep the loop short; measured with ``benchmarks/kernel_pair.py --tile-edge`` (benchmarks/README.md, "Design decisions").
TILE_EDGE = 400


def tile_edge(n):
    """The tile edge for a symmetric kernel of ``n`` points, or None for one untiled pass: not on CPU,
    or ``n <= TILE_EDGE``. Tiles are as even as possible: ``ceil(n / ceil(n / TILE_EDGE))``."""
    if jax.default_backend() != "cpu" or n <= TILE_EDGE:
        return None
    return -(-n // -(-n // TILE_EDGE))


def symmetric_tiles(x, cfg: Cfg, edge: int):
    """The symmetric kernel of ``x`` ``(n, d)`` as a dict name -> ``(n, n)`` array, computed in
    ``edge × edge`` tiles on and above the diagonal, each mirrored into the lower triangle.

    A loop (one compiled body) goes over the tiles: a tile's Gram block and its packed recursion stay
    in cache, each is written into the outputs (and transposed into the mirror position) right after
    it is computed, and only ~(n² + n·edge)/2 entries are computed. It is faster than one untiled pass
    (benchmarks/README.md, "Design decisions"), and the temporaries are a few tiles whatever n is. The tile
    starts are ``k·edge`` clipped to ``n - edge``, so a ragged last
    tile overlaps its neighbour; overlapping entries are written again with the same formula, and
    every pair of the same row gets the exact diagonal wherever it falls (the mask is built from the
    tile offsets). Mirrored entries are exact copies (``K[j, i]`` is ``K[i, j]``); inside diagonal
    tiles the two orientations come from the same symmetric arithmetic. The conditional around each
    tile (:func:`_guarded`) keeps XLA from fusing the recursion into both writes (it would compute each
    tile twice) and, for two outputs, from splitting the packed pass (see :func:`_block`).
    """
    n = x.shape[0]
    starts = np.minimum(np.arange(-(-n // edge)) * edge, n - edge)
    ii, jj = np.triu_indices(len(starts))
    rows = jnp.asarray(starts[ii], jnp.int32)
    cols = jnp.asarray(starts[jj], jnp.int32)

    q = jnp.sum(x * x, axis=1) / x.shape[1]  # once, not per tile

    def tile(a, b, qa, qb, i, j):
        return packed_pass(a, b, i, j, symmetric=True, cfg=cfg, qr=qa, qc=qb)

    def body(k, outs):
        i, j = rows[k], cols[k]
        a = jax.lax.dynamic_slice_in_dim(x, i, edge)
        b = jax.lax.dynamic_slice_in_dim(x, j, edge)
        qa = jax.lax.dynamic_slice_in_dim(q, i, edge)
        qb = jax.lax.dynamic_slice_in_dim(q, j, edge)
        z = _guarded(tile, cfg, a, b, qa, qb, i, j)
        parts = _unpack(z, cfg.names)
        # the mirror first: on a diagonal tile (i == j) the tile itself is written last
        return tuple(jax.lax.dynamic_update_slice(jax.lax.dynamic_update_slice(o, parts[name].T, (j, i)),
                                                  parts[name], (i, j))
                     for o, name in zip(outs, cfg.names))

    outs = tuple(jnp.zeros((n, n), x.dtype) for _ in cfg.names)
    outs = jax.lax.fori_loop(0, len(ii), body, outs)
    return dict(zip(cfg.names, outs))


def _one_program(x1, x2, *, symmetric, cfg: Cfg, edge):
    """The kernel as a dict name -> array in one program: tiles for a symmetric kernel on CPU
    (``edge`` from :func:`tile_edge`), else one packed pass unpacked behind :func:`_block`'s guard."""
    if symmetric and edge is not None:
        return symmetric_tiles(x1, cfg, edge)
    return _unpack(_block(x1, x2, 0, rows=x1.shape[0], symmetric=symmetric, cfg=cfg, guard=True), cfg.names)


def _unpack(z, names):
    """Inverse of the packing of :func:`_block`: a dict name -> array."""
    if len(names) == 1:
        return {names[0]: z}
    return {names[0]: jnp.real(z), names[1]: jnp.imag(z)}


def _assemble(zs, n1, names):
    return _unpack((zs[0] if len(zs) == 1 else jnp.concatenate(zs, axis=0))[:n1], names)


#: Entries per row block of an eagerly evaluated kernel that is not tiled (a cross kernel, or any kernel
#: off CPU; symmetric CPU kernels go through :func:`symmetric_tiles`), by backend. Up to this many entries the kernel
#: is one program (packed pass and unpacking behind :func:`_block`'s guard); larger kernels go through
#: it in row blocks, which bounds the temporaries (Gram block, packed block) to a few block sizes, and
#: one more program concatenates and unpacks: a little slower, much less memory (benchmarks/README.md, "Design decisions").
BLOCK_ENTRIES = {"cpu": 2**26, "other": 2**26}


#: At most this many row blocks: XLA's CPU code for the concatenating (and unpacking) program slows
#: down sharply beyond 8 operands, so larger kernels get larger blocks.
MAX_BLOCKS = 8


# One compiled program per (configuration, shapes, dtype): called outside ``jax.jit`` the recursion would
# otherwise dispatch op by op; inside an outer jit or vmap these nested jits are inlined.
_block_jit = jax.jit(_block, static_argnames=("rows", "symmetric", "cfg"))


_assemble_jit = jax.jit(_assemble, static_argnames=("n1", "names"))


_whole_jit = jax.jit(_one_program, static_argnames=("symmetric", "cfg", "edge"))


def evaluate(x1, x2, cfg: Cfg):
    """The kernel of x1 against x2 (``x2=None``: x1 against itself with the exact diagonal) as a dict
    name -> array for ``cfg.names``. A symmetric kernel of more than :data:`TILE_EDGE` points on CPU
    is one program of tiles (:func:`symmetric_tiles`, eager or traced). Otherwise, up to
    :data:`BLOCK_ENTRIES` entries (and always under a trace: an outer jit or vmap) it is one packed
    pass unpacked behind :func:`_block`'s guard; larger eager kernels go in row blocks of that many
    entries (at most :data:`MAX_BLOCKS`) through :func:`_block`, and one more program concatenates and
    unpacks them."""
    symmetric = x2 is None
    xc = x1 if symmetric else x2
    n1, n2 = x1.shape[0], xc.shape[0]
    edge = tile_edge(n1) if symmetric else None
    if isinstance(x1, jax.core.Tracer) or isinstance(xc, jax.core.Tracer):
        # the body of _whole_jit, not a call to it: a nested jit here compiles differently (51 fusions
        # instead of 35 for a jitted depth-3 pair; vmap of the NTK 0.018 -> 0.023 s at 4 x 1000 points)
        return _one_program(x1, xc, symmetric=symmetric, cfg=cfg, edge=edge)
    per = BLOCK_ENTRIES["cpu" if jax.default_backend() == "cpu" else "other"]
    nb = min(MAX_BLOCKS, max(1, -(-n1 * n2 // per)))
    rows = -(-n1 // nb)
    nb = -(-n1 // rows)
    if nb == 1 or edge is not None:  # one program (the tiles' temporaries are a few tiles at any n)
        return _whole_jit(x1, xc, symmetric=symmetric, cfg=cfg, edge=edge)
    xp = pad_rows(x1, nb * rows)
    zs = [_block_jit(xp, xc, i * rows, rows=rows, symmetric=symmetric, cfg=cfg) for i in range(nb)]
    return _assemble_jit(zs, n1, cfg.names)


# ----------------------------------------------------------------------------------------------------
# Tiled evaluation.
# ----------------------------------------------------------------------------------------------------
def pad_rows(x, size):
    """Pad ``x`` to ``size`` rows by repeating its last row (keeps every row a valid input). A NumPy
    array stays on the host (kernel_matrix's tiles), a JAX array stays a JAX array."""
    n = x.shape[0]
    if n == size:
        return x
    xp = np if isinstance(x, np.ndarray) else jnp
    return xp.concatenate([x, xp.broadcast_to(x[-1:], (size - n,) + x.shape[1:])], axis=0)


# The contract between ntkd's analytic kernel_fns and kernel_matrix: a kernel_fn made by mlp_kernel_fn
# carries its static configuration as the attribute ``ntkd_config``; kernel_matrix runs such kernels as
# packed tiles through one cached program, and any other kernel_fn through its generic tile programs.
CONFIG_ATTR = "ntkd_config"


def attach_config(kernel_fn, cfg: Cfg) -> None:
    """Mark ``kernel_fn`` as the analytic kernel of ``cfg`` (read back by :func:`config_of`)."""
    setattr(kernel_fn, CONFIG_ATTR, cfg)


def config_of(kernel_fn) -> Optional[Cfg]:
    """The :class:`Cfg` of a kernel_fn made by :func:`ntkd.mlp_kernel_fn`, or None for any other."""
    cfg = getattr(kernel_fn, CONFIG_ATTR, None)
    return cfg if isinstance(cfg, Cfg) else None
