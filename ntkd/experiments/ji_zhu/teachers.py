"""The teachers of Ji & Zhu sweep tasks: ``task_teacher(task) -> teacher(x, key) -> (z_t, z_g)``.

The sweep's task model ([G] choices of the brief, fixed and documented here):

* ``kind = "mixture"``: the teacher *is* a Gaussian-mixture logit function z_g (:mod:`ntkd.theories.transfer_risk.tasks`), with
  optional per-sample sign flips (``p_flip``, Fig. 3 right).
* ``kind = "kernel_teacher"``: a wide teacher network in the kernel limit — the NTK predictor of depth
  ``teacher_depth`` trained by gradient flow (MSE) on the hard labels ``±label_scale`` of a Gaussian
  mixture z_g at ``fit_n`` fixed inputs and stopped at ``stop_time`` (inf = converged), times the
  reduction factor ``reduction`` (r = 0.3 in the paper). The paper trains finite teachers with online
  batches; in the kernel limit a large fixed fit set is the analogue, and the stopping time plays the
  role of the stopping epoch (Figs. 4, 5).
* ``kind = "network_teacher"``: the paper's teacher itself, a finite network (``teacher_width``,
  ``teacher_depth``) trained with Adam (``teacher_lr``) on the hard labels of the mixture with online
  batches (``teacher_batch`` fresh samples per epoch) and stopped at epoch ``stop_epoch``, times r
  (:func:`ntkd.finite.train_teacher`). These four keys are accepted only with this kind.
* ``kind = "random"``: i.i.d. N(0, 1) logits at every point (the upper reference of Fig. 3).
* ``kind = "zero"``: the zero function (the lower reference of Fig. 3).
* ``perfect = true``: the ground-truth labels are the teacher's signs, y_g = 1{z_t > 0} (§3–4);
  ``false``: y_g = 1{z_g > 0} for the mixture z_g behind the teacher (an imperfect teacher, §5).

Students start at z0 = 0 (``init = "zero"``: the infinite-width mean predictor) or at the outputs of
an initialized finite NTK-parameterized network of width ``init_width`` (``init = "network"``, as the
paper's Fig. 3). Angles against the oracle neglect Δw_z (as Eq. 9 does).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ...kernels import shared_mlp_kernel_fn
from ...theories.transfer_risk import tasks as T_

__all__ = ["task_teacher", "init_outputs", "prefetch_network_teachers", "empirical_student"]

def task_teacher(task: dict, *, dtype=None) -> Callable:
    """The teacher of a sweep task (module docstring): ``teacher(x, key) -> (z_t, z_g)``, teacher and
    ground-truth logits at inputs ``x (n, d)``; ``key`` drives the random kind and the sign flips."""
    dtype = dtype or jnp.result_type(float)
    kind = task["kind"]
    tkey = jax.random.PRNGKey(task["task_seed"])
    if kind == "zero":
        return lambda x, key: (jnp.zeros(x.shape[0], dtype), jnp.zeros(x.shape[0], dtype))
    if kind == "random":
        def random_teacher(x, key):
            z = jax.random.normal(key, (x.shape[0],), dtype)
            return z, z
        return random_teacher
    mix = _mixture(task, dtype)
    if kind == "mixture":
        p = task["p_flip"]

        def mixture_teacher(x, key):
            zg = mix.logits(x)
            return (T_.flip_signs(key, zg, p) if p > 0 else zg), zg
        return mixture_teacher
    if kind == "network_teacher":
        f = _network_teacher(task, dtype)
        return lambda x, key: (f(x), mix.logits(x))
    # kernel_teacher: the fit kernel's eigendecomposition is shared by every stopping time of one fit set
    kfn = shared_mlp_kernel_fn(task["teacher_depth"], "relu", 1.0, 1.0)
    x_fit = T_.sample_inputs(jax.random.fold_in(tkey, 1), task["fit_n"], dtype=dtype)
    y_fit = task["label_scale"] * jnp.where(mix.logits(x_fit) > 0, 1.0, -1.0).astype(dtype)
    fit_key = (task["teacher_depth"], task["fit_n"], task["task_seed"], task["modes"], task["amplitude"],
               jnp.dtype(dtype).name)
    if fit_key not in _TEACHER_EIG:
        _TEACHER_EIG.clear()
        _TEACHER_EIG[fit_key] = jnp.linalg.eigh(kfn(x_fit, None, "ntk"))
    teacher = T_.kernel_teacher(kfn, x_fit, y_fit, r=task["reduction"], stop_time=task["stop_time"],
                                eig=_TEACHER_EIG[fit_key])
    return lambda x, key: (teacher(x), mix.logits(x))


_TEACHER_EIG: dict = {}
_TEACHER_NET: dict = {}


def _mixture(task, dtype):
    """The Gaussian-mixture logit function z_g behind a task (from ``task_seed``, ``modes``, ``amplitude``)."""
    mix = T_.gaussian_mixture(jax.random.fold_in(jax.random.PRNGKey(task["task_seed"]), 0), task["modes"],
                              amplitude=task["amplitude"])
    return T_.GaussianMixture(*(jnp.asarray(a, dtype) for a in mix))


_NET_RECIPE = ("teacher_width", "teacher_depth", "teacher_lr", "teacher_batch", "task_seed", "modes", "amplitude")


def _recipe(task, dtype):
    """A network teacher's training run, without its stopping epoch: tasks that differ only in
    ``stop_epoch`` are checkpoints of one run (the online batches of epoch i do not depend on when the run
    stops, so a checkpoint equals a run stopped there)."""
    return tuple(task[k] for k in _NET_RECIPE) + (jnp.dtype(dtype).name,)


def _train_run(task, stops, dtype):
    """Train one network-teacher run (:func:`_network_teacher`) with checkpoints at ``stops``; cached."""
    import optax

    from ...finite import mlp, train_teacher

    stops = sorted({int(s) for s in stops})
    mix = _mixture(task, dtype)
    init_fn, apply_fn = mlp(mix.centers.shape[1], task["teacher_width"], task["teacher_depth"], dtype=dtype)
    run = train_teacher(apply_fn, init_fn(jax.random.fold_in(jax.random.PRNGKey(task["task_seed"]), 2)), mix.logits,
                        epochs=max(1, stops[-1]), batch_size=task["teacher_batch"], stop_epochs=stops,
                        optimizer=optax.adam(task["teacher_lr"]), seed=task["task_seed"])
    # a few runs (all of one reproduction): checkpoints hold whole networks
    if _recipe(task, dtype) not in _TEACHER_NET and len(_TEACHER_NET) >= 4:
        _TEACHER_NET.pop(next(iter(_TEACHER_NET)))
    _TEACHER_NET[_recipe(task, dtype)] = (apply_fn, run)
    return apply_fn, run


def prefetch_network_teachers(tasks, *, dtype=None) -> dict:
    """Train every network-teacher run that ``tasks`` (validated task dicts, e.g.
    ``[t for _, t in cfg.variants()]`` of several configs) need, once per run with a checkpoint at each
    requested ``stop_epoch``, so that later :func:`task_teacher` calls of these tasks reuse them instead of
    training one run per stopping epoch. Other kinds are ignored. Returns ``{recipe: stop epochs}``;
    the teachers equal the ones trained one by one (same batches, same steps)."""
    dtype = dtype or jnp.result_type(float)
    plan: dict = {}
    first: dict = {}
    for t in tasks:
        if t.get("kind") != "network_teacher":
            continue
        k = _recipe(t, dtype)
        plan.setdefault(k, set()).add(int(t["stop_epoch"]))
        first.setdefault(k, t)
    for k, stops in plan.items():
        have = _TEACHER_NET.get(k)
        if have is None or not stops <= set(have[1].epochs.tolist()):
            _train_run(first[k], stops | (set(have[1].epochs.tolist()) if have else set()), dtype)
    return {k: sorted(v) for k, v in plan.items()}


def _network_teacher(task, dtype):
    """A finite ReLU teacher (width ``teacher_width``, depth ``teacher_depth``, NTK parameterization) trained
    with Adam (``teacher_lr``) on the hard labels 1{z_g > 0} of the mixture with online batches of
    ``teacher_batch`` fresh samples per epoch, stopped at ``stop_epoch`` (:func:`ntkd.finite.train_teacher`),
    times the reduction factor. Runs are cached by recipe (:func:`prefetch_network_teachers` trains all
    stopping epochs of a recipe at once); a missing epoch trains a run up to it."""
    from ...finite import network_teacher

    have = _TEACHER_NET.get(_recipe(task, dtype))
    if have is None or task["stop_epoch"] not in have[1].epochs:
        have = _train_run(task, [task["stop_epoch"]], dtype)
    apply_fn, run = have
    return network_teacher(apply_fn, run.at(task["stop_epoch"]), reduction=task["reduction"])


def init_outputs(student, depth, key, xs, dtype):
    """Outputs of an initialized finite NTK-parameterized network (init = "network") at each x in xs."""
    from flax import nnx

    from ...finite import NTKMLP

    model = NTKMLP(xs[0].shape[1], student["init_width"], depth, activation=student["activation"],
                   W_std=student["W_std"], b_std=student["b_std"],
                   rngs=nnx.Rngs(int(jax.random.randint(key, (), 0, 2**31 - 1))), dtype=dtype)
    return [jnp.reshape(model(x), (x.shape[0],)) for x in xs]


def empirical_student(student, depth, key, dtype, *, d: int = 2):
    """The linearized finite student of ``student.kernel = "empirical"``: one initialized NTK-parameterized
    network of width ``init_width`` (:func:`ntkd.finite.mlp`, initialized from ``key``) gives both the kernel,
    its empirical NTK Θ̂ (structured derivatives, :func:`ntkd.kernels.empirical_ntk`), and z0 = f(·; w0),
    so the sweep's predictor z0(x) + Θ̂(x, X) Θ̂_n⁻¹ (z_eff − z0(X)) is Eq. 4 of that very network.
    ``d``: the input dimension (the sweep's tasks are 2-D, :func:`ntkd.theories.transfer_risk.tasks.sample_inputs`).
    Returns ``(kernel_fn(x1, x2, get), z0_fn(x))`` for inputs ``(n, d)``; ``get`` must be "ntk"."""
    from ...finite import mlp
    from ...kernels import empirical_ntk

    init_fn, apply_fn = mlp(d, student["init_width"], depth, activation=student["activation"],
                            W_std=student["W_std"], b_std=student["b_std"], dtype=dtype)
    params = init_fn(key)

    def kernel_fn(x1, x2=None, get="ntk"):
        if get != "ntk":
            raise ValueError(f"the empirical student has only its NTK; got get={get!r}")
        return empirical_ntk(apply_fn, params, x1, x2, method="structured")

    return kernel_fn, lambda x: jnp.reshape(apply_fn(params, x), (x.shape[0],))
