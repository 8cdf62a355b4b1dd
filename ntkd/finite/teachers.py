"""Teachers that are finite networks: trained on the hard labels of a ground truth with online batches and
kept at chosen epochs (early stopping), as Ji & Zhu (2020) train theirs."""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._core.checks import check_int, check_positive
from .train import TrainLog, geometric_steps, online_sampler, train_kd

__all__ = ["TeacherRun", "train_teacher", "network_teacher"]

class TeacherRun(NamedTuple):
    """A teacher trained on hard labels with online batches (:func:`train_teacher`).

    epochs ``(E,)`` (the stopping epochs); params (pytree with a leading ``(E,)`` axis: the checkpoint at
    each epoch); test_error ``(E,)`` (fraction of ``x_test`` where sign(f) ≠ sign(ground truth));
    log (:class:`TrainLog` of the whole run).
    """

    epochs: np.ndarray
    params: object
    test_error: np.ndarray
    log: TrainLog

    def at(self, epoch: int):
        """Parameters of the checkpoint at ``epoch`` (one of ``epochs``)."""
        hits = np.flatnonzero(self.epochs == epoch)
        if hits.size == 0:
            raise ValueError(f"`epoch`={epoch} is not a checkpoint; choose one of {self.epochs.tolist()}.")
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a[hits[0]]), self.params)


def train_teacher(apply_fn: Callable, params0, ground_truth: Callable, *, epochs: int, batch_size: int,
                  stop_epochs: Sequence[int], optimizer=None, seed: int = 0, d: int = 2, scale: float = 5.0,
                  n_test: int = 4096, checkpoint=None, optimizer_id: str = "", progress=None) -> TeacherRun:
    """Train a teacher network on the hard labels ``1{z_g(x) > 0}`` of a ground-truth logit function with
    online batches (fresh ``x ~ N(0, scale² I_d)`` every epoch; Ji & Zhu §6), keeping early-stopping
    checkpoints at ``stop_epochs``.

    The loss is the hard-label cross-entropy (Eq. 2 with ρ = 0). Returns a :class:`TeacherRun`; turn a
    checkpoint into a teacher with ``network_teacher(apply_fn, run.at(epoch), reduction=r)``.
    """
    epochs = check_int(epochs, "epochs", minimum=1)
    stops = np.unique(np.asarray(stop_epochs, int))
    if stops.size == 0 or stops[0] < 0 or stops[-1] > epochs:
        raise ValueError(f"`stop_epochs` must lie in [0, {epochs}]; got {list(stop_epochs)!r}.")
    dtype = jax.tree_util.tree_leaves(params0)[0].dtype
    sampler = online_sampler(ground_truth, d=d, scale=scale, dtype=dtype)
    x_te = scale * jax.random.normal(jax.random.PRNGKey(2**30 + seed), (n_test, d), dtype)
    log_at = np.unique(np.concatenate([geometric_steps(epochs), stops]))
    params, log = train_kd(apply_fn, params0, sampler, rho=0.0, T=1.0, optimizer=optimizer, steps=epochs,
                           batch_size=batch_size, log_steps=log_at, x_test=x_te, seed=seed,
                           keep_params=True, checkpoint=checkpoint, optimizer_id=optimizer_id,
                           progress=progress)
    idx = np.searchsorted(log.steps, stops)
    zg = np.asarray(ground_truth(x_te)[0] if isinstance(ground_truth(x_te[:1]), tuple) else ground_truth(x_te))
    err = np.mean(np.sign(log.test_logits[idx]) != np.sign(zg)[None], axis=1)
    ck = jax.tree_util.tree_map(lambda a: a[idx], log.params)
    return TeacherRun(stops, ck, err, log._replace(params=None))


def network_teacher(apply_fn: Callable, params, *, reduction: float = 1.0) -> Callable:
    """A trained network as a teacher: ``teacher(x) = reduction · apply_fn(params, x)`` (the paper's
    reduction factor r, ``z_t,new = r z_t``; r = 0.3 in Figs. 2 and 5 right)."""
    r = check_positive(reduction, "reduction")
    return lambda x: r * apply_fn(params, x)
