"""Checkpoints of training runs: a fingerprint of everything that determines a run, and the state and logs
saved after every logging interval so that a rerun resumes.

A checkpoint is an orbax ``CheckpointManager`` directory at the given path (whatever its name, ``.npz``
included) keeping one step, the number of finished log points: ``PATH/<done>/arrays`` (the state's
leaves ``s0, s1, ...`` and the logs stacked per key) and ``PATH/<done>/meta`` (JSON: fingerprint, done).
orbax writes each step into a temporary directory and renames it when complete, so a run killed at any
moment leaves the previous step loadable (a half-written temporary directory is ignored, then removed).
orbax is imported inside the functions: ``import ntkd`` does not import it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["fingerprint", "save_checkpoint", "load_checkpoint"]


def fingerprint(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, (np.ndarray, jax.Array)):
            a = np.ascontiguousarray(np.asarray(p))
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()[:24]


def _manager(path: Path):
    import orbax.checkpoint as ocp

    if path.is_file():  # e.g. an .npz checkpoint of the former format
        raise ValueError(f"`checkpoint` {str(path)!r} is a file, not a checkpoint directory; delete it or "
                         "pass another path.")
    # synchronous saves (the step is on disk when save returns); only the newest step is kept
    opts = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    return ocp, ocp.CheckpointManager(Path(path).absolute(), options=opts)


def save_checkpoint(path: Path, fingerprint, done, state, logs):
    """Save ``state`` (a pytree) and ``logs`` (key -> list of equal-shape arrays) as step ``done``."""
    ocp, mngr = _manager(path)
    arrays = {"state": {f"s{i}": np.asarray(v) for i, v in enumerate(jax.tree_util.tree_leaves(state))},
              "logs": {k: np.stack(v) for k, v in logs.items()}}
    with mngr:
        mngr.save(done, args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays),
                                                meta=ocp.args.JsonSave({"fingerprint": fingerprint,
                                                                        "done": done})))


def load_checkpoint(path: Path, fingerprint, state_like):
    """``(done, state, logs)`` of the newest step at ``path`` (``(0, state_like, {})`` if none); the state
    takes the structure and dtypes of ``state_like``. Another run's checkpoint raises ValueError."""
    ocp, mngr = _manager(path)
    with mngr:
        step = mngr.latest_step()
        if step is None:
            return 0, state_like, {}
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        if meta["fingerprint"] != fingerprint:
            raise ValueError(f"`checkpoint` {str(path)!r} was written by a different run (other data, "
                             "model, ρ/T/seeds, schedule or optimizer_id); delete it or pass another path.")
        arrays = mngr.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore())).arrays
    leaves, treedef = jax.tree_util.tree_flatten(state_like)
    state = jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(arrays["state"][f"s{i}"], dtype=l.dtype) for i, l in enumerate(leaves)])
    return meta["done"], state, {k: list(v) for k, v in arrays["logs"].items()}
