"""Finite networks against their kernel limit: empirical vs analytic NTK with width, trained students
against the converged kernel student (Eq. 4 of Ji & Zhu 2020), and the gap against width with its
fitted log-log slope."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._core.checks import check_inputs_2d, check_int, check_positive
from .._core.linalg import mm
from .._core.stats import loglog_slope
from ..kernels import empirical_ntk, mlp_kernel_fn
from ..losses import check_labels, check_T
from ..theories.transfer_risk.distill import converged_student, effective_logits
from .models import mlp
from .train import train_kd

__all__ = ["ntk_convergence", "student_vs_kernel", "width_gap", "loglog_slope"]

def ntk_convergence(x, widths: Sequence[int], *, depth: int, seeds: Sequence[int] = (0, 1, 2),
                    activation="relu", W_std: float = 1.0, b_std: float = 1.0, dtype=jnp.float64) -> dict:
    """Comparison 1: the empirical NTK at initialization against the analytic NTK as width grows.

    The empirical NTK is computed by structured derivatives (``empirical_ntk(method="structured")``:
    matrix products over the layers, O(n · width) memory), one compiled program per width, so the
    paper's width 2048 and beyond run on a CPU.

    Returns ``{"widths", "rel_err" (W, S): ‖Θ̂ - Θ‖_F / ‖Θ‖_F per width and seed, "mean", "std",
    "slope"}`` where slope is the log-log slope of the mean error against width (-1/2 expected: the
    fluctuations of Θ̂ are O(1/√m)).
    """
    x = check_inputs_2d(x, "x").astype(dtype)
    theta = np.asarray(mlp_kernel_fn(depth, W_std=W_std, b_std=b_std, activation=activation)(x, None, "ntk"))
    errs = []
    for m in widths:
        init_fn, apply_fn = mlp(x.shape[1], check_int(m, "widths", minimum=1), depth, activation=activation,
                                W_std=W_std, b_std=b_std, dtype=dtype)
        ntk = jax.jit(lambda p, _a=apply_fn: empirical_ntk(_a, p, x, method="structured"))
        row = []
        for s in seeds:
            emp = np.asarray(ntk(init_fn(jax.random.PRNGKey(s))))
            row.append(np.linalg.norm(emp - theta) / np.linalg.norm(theta))
        errs.append(row)
    errs = np.asarray(errs)
    mean = errs.mean(1)
    return {"widths": np.asarray(widths), "rel_err": errs, "mean": mean, "std": errs.std(1, ddof=1)
            if errs.shape[1] > 1 else np.zeros_like(mean), "slope": loglog_slope(widths, mean)}


def _kernel_gd(th_nn, th_xn, z0_tr, z0_te, z_t, y_g, rho, T, s, lr, steps):
    """Full-batch gradient descent of a linearized student in function space, with kernel Θ:
    z ← z - η Θ_nn ∇_z L, f ← f - η Θ_xn ∇_z L, ∇_z L = kd_grad_z / n (the exact image of
    ``optax.sgd(η)`` on a linear model whose tangent kernel is Θ)."""
    n = z_t.shape[0]

    def body(_, zf):
        z, f = zf
        g = (rho * s / T * (jax.nn.sigmoid(z / T) - jax.nn.sigmoid(z_t / T))
             + (1 - rho) * (jax.nn.sigmoid(z) - y_g)) / n
        return z - lr * mm(th_nn, g), f - lr * mm(th_xn, g)

    return jax.lax.fori_loop(0, steps, body, (z0_tr, z0_te))[1]


def student_vs_kernel(x_train, z_t, y_g, x_test, *, rhos: Sequence[float], T: float, width: int,
                      depth: int, seeds: Sequence[int] = (0,), steps: int = 2000, learning_rate: float = 1.0,
                      optimizer: str = "sgd", reference: str = "converged", activation="relu",
                      W_std: float = 1.0, b_std: float = 1.0, dtype=jnp.float64, nonlinear: bool = True,
                      linearized: bool = True, checkpoint_dir=None, progress=None) -> dict:
    """Comparison 2: trained finite students (the network and its linearization) against the kernel
    prediction on test logits, for each ρ.

    Training is full batch with ``optimizer`` ``"sgd"`` (gradient descent, step ``learning_rate``) or
    ``"adam"`` for ``steps`` steps; every (seed, ρ) pair is one run and all train together in one ``vmap``.
    The kernel prediction keeps each run's own initial outputs f(·; w0) (module notes) and is

    * ``reference="converged"``: the converged student of Eq. 4 with the analytic NTK
      (:func:`ntkd.converged_student`); finite students must have trained long enough;
    * ``reference="trajectory"`` (``"sgd"`` only): the same number of gradient-descent steps taken in
      function space with the analytic NTK (``z ← z - η Θ ∇_z L``), the infinite-width limit of the very
      training run, so that the gap measures width alone and not convergence.

    For the linearized network the prediction from its own empirical NTK at initialization is also
    reported (the exact fixed point of its gradient-descent training); that NTK is computed by
    structured derivatives for all runs in one ``vmap``.

    Returns a dict of ``(S, R, m)`` test-logit arrays ``kernel`` (the reference), ``empirical``
    (empirical-NTK Eq. 4), ``nonlinear`` / ``linearized`` (trained), ``z0_test``, and ``(S, R)`` relative
    gaps ``gap_nonlinear`` / ``gap_linearized`` = ‖f_trained - f_kernel‖ / ‖f_kernel - f0‖ over x_test
    (error relative to the function the student learned), ``gap_linearized_empirical``; plus ``rhos``,
    ``T``, ``width``.
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"`optimizer` must be 'sgd' or 'adam'; got {optimizer!r}.")
    if reference not in ("converged", "trajectory"):
        raise ValueError(f"`reference` must be 'converged' or 'trajectory'; got {reference!r}.")
    if reference == "trajectory" and optimizer != "sgd":
        raise ValueError("`reference`='trajectory' follows gradient descent; use optimizer='sgd' "
                         "(or reference='converged' for Adam).")
    lr = check_positive(learning_rate, "learning_rate")
    x_train = check_inputs_2d(x_train, "x_train").astype(dtype)
    x_test = check_inputs_2d(x_test, "x_test").astype(dtype)
    z_t = jnp.asarray(z_t, dtype)
    y_g = check_labels(y_g).astype(dtype)
    rhos = np.asarray(rhos, float)
    T = float(check_T(T))
    S, R = len(seeds), len(rhos)
    init_fn, apply_fn = mlp(x_train.shape[1], width, depth, activation=activation, W_std=W_std, b_std=b_std,
                            dtype=dtype)
    kfn = mlp_kernel_fn(depth, W_std=W_std, b_std=b_std, activation=activation)
    th_nn, th_xn = kfn(x_train, None, "ntk"), kfn(x_test, x_train, "ntk")
    z_eff = effective_logits(z_t[:, None], y_g[:, None], jnp.asarray(rhos, dtype)[None], T)  # (n, R)
    seed_b = np.repeat(np.asarray(seeds, int), R)
    rho_b = jnp.tile(jnp.asarray(rhos, dtype), S)
    params0 = jax.vmap(init_fn)(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seed_b)))
    z0_tr = jax.vmap(apply_fn, (0, None))(params0, x_train)  # (S R, n)
    z0_te = jax.vmap(apply_fn, (0, None))(params0, x_test)
    zeff_b = jnp.tile(z_eff.T, (S, 1))  # (S R, n)
    if reference == "converged":
        kernel = np.stack([np.asarray(converged_student(th_xn, th_nn, zeff_b[i], z0_train=z0_tr[i],
                                                        z0_test=z0_te[i])) for i in range(S * R)])
    else:
        kernel = np.asarray(jax.jit(jax.vmap(_kernel_gd, (None, None, 0, 0, None, None, 0, None, None, None,
                                                          None)), static_argnums=10)(
            th_nn, th_xn, z0_tr, z0_te, z_t, y_g, rho_b, T, 1.0, lr, steps))
    out = {"rhos": rhos, "T": T, "width": width, "kernel": kernel.reshape(S, R, -1),
           "z0_test": np.asarray(z0_te).reshape(S, R, -1)}
    denom = np.linalg.norm(kernel - np.asarray(z0_te), axis=-1)
    opt = optax.sgd(lr) if optimizer == "sgd" else optax.adam(lr)
    for name, lin in (("nonlinear", False), ("linearized", True)):
        if not (nonlinear if name == "nonlinear" else linearized):
            continue
        ck = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}_w{width}"
        if ck is not None:
            ck.parent.mkdir(parents=True, exist_ok=True)
        _, log = train_kd(apply_fn, params0, (x_train, z_t, y_g), rho=rho_b, T=T, optimizer=opt, steps=steps,
                          x_test=x_test, seed=seed_b, runs=S * R, log_steps=[0], linearized=lin,
                          checkpoint=ck, optimizer_id=f"{optimizer}:{lr}", progress=progress)
        f = log.test_logits[:, -1]
        out[name] = f.reshape(S, R, -1)
        out["gap_" + name] = (np.linalg.norm(f - kernel, axis=-1) / denom).reshape(S, R)
        if lin:
            e_nn, e_xn = jax.jit(jax.vmap(lambda p: (empirical_ntk(apply_fn, p, x_train, method="structured"),
                                                     empirical_ntk(apply_fn, p, x_test, x_train,
                                                                   method="structured"))))(params0)
            emp = [np.asarray(converged_student(e_xn[i], e_nn[i], zeff_b[i], z0_train=z0_tr[i],
                                                z0_test=z0_te[i])) for i in range(S * R)]
            out["empirical"] = np.stack(emp).reshape(S, R, -1)
            out["gap_linearized_empirical"] = (np.linalg.norm(f - np.stack(emp), axis=-1) / denom).reshape(S, R)
    return out


def width_gap(x_train, z_t, y_g, x_test, *, widths: Sequence[int], progress=None, **kw) -> dict:
    """Comparison 4: the gap between trained finite students and the kernel prediction against width.

    Runs :func:`student_vs_kernel` (same keyword arguments) at each width. Returns ``{"widths",
    "gap" (W, S, R) per model kind, "mean" (W,), "std" (W,) over seeds and ρ, "slope"}`` for the
    nonlinear network (and ``"linearized"`` entries when trained), slope = log-log slope of the mean gap
    against width.
    """
    res = {"widths": np.asarray(widths)}
    per = [student_vs_kernel(x_train, z_t, y_g, x_test, width=int(m), progress=progress, **kw) for m in widths]
    for name in ("nonlinear", "linearized"):
        if "gap_" + name not in per[0]:
            continue
        g = np.stack([p["gap_" + name] for p in per])  # (W, S, R)
        m = g.reshape(len(widths), -1).mean(1)
        res[name] = {"gap": g, "mean": m, "std": g.reshape(len(widths), -1).std(1, ddof=1) if g[0].size > 1
                     else np.zeros_like(m), "slope": loglog_slope(widths, m)}
    return res
