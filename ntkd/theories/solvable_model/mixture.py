"""The binary Gaussian mixture of Saglietti & Zdeborová (2022), "Solvable Model for Inheriting the
Regularization through Knowledge Distillation" (MSML 2021, PMLR 145), §3 Eq. 10, its test error (Eq. 12)
and the Bayes-optimal bounds (Eqs. 13-14, 23-24).

Symbols and keywords (ntkd keeps ``rho`` for the *soft fraction* in every theory, so the paper's cluster
fraction ρ has another name here):

* ``p_plus`` = the paper's ρ: the probability of the "+" cluster, ``P(y = 1)``;
* ``delta`` = Δ, the noise variance; ``alpha`` = α = M/N; ``eta`` = η, the student's trainable fraction.

Data: ``x = (2y - 1) v/√N + √Δ z`` with ``v, z ~ N(0, I_N)``, labels ``y ∈ {0, 1}``. A linear classifier
``h = w·x/√N + b`` predicts 1 iff ``h > 0``; its test error depends on ``m = w·v/N``, ``q = ‖w‖²/N`` and
``b`` only.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from ..._core.checks import all_true, as_float_array, check_int

__all__ = ["bayes_error", "bo_bias", "gauss_tail", "gen_error", "gmm_sample"]


def gauss_tail(x):
    """𝓗(x) = ∫_x^∞ Dt, the standard Gaussian upper tail (``erfc(x/√2)/2``, accurate in both tails)."""
    return 0.5 * erfc(x / jnp.sqrt(2.0).astype(jnp.result_type(x)))


def _check_unit_open(x, name, what):
    x = as_float_array(x, name)
    if not all_true(x, lambda a: ((a > 0) & (a < 1)).all()):
        raise ValueError(f"`{name}` ({what}) must lie strictly between 0 and 1; got {x!r}.")
    return x


def _check_pos(x, name, what, allow_zero=False):
    x = as_float_array(x, name)
    ok = (lambda a: (a >= 0).all()) if allow_zero else (lambda a: (a > 0).all())
    if not all_true(x, lambda a: jnp.isfinite(a).all() & ok(a)):
        raise ValueError(f"`{name}` ({what}) must be finite and {'>= 0' if allow_zero else '> 0'}; got {x!r}.")
    return x


def _dtype(*xs):
    """The result's float dtype; Python scalars are weak, so float32 arrays stay float32 under x64."""
    return jnp.result_type(float, *xs)


def gen_error(m, q, b, *, p_plus, delta):
    """Test error of a linear classifier on the mixture (Eq. 12):
    ``ε_g = ρ 𝓗((m + b)/√(Δq)) + (1 - ρ) 𝓗((m - b)/√(Δq))`` with ρ = ``p_plus``.

    Args (broadcast together): ``m = w·v/N``, ``q = ‖w‖²/N > 0`` (a student's normalized by the full N),
    bias ``b``; keyword ``p_plus`` (paper's ρ) and ``delta`` (Δ). Returns an array of the broadcast shape.
    A ``q <= 0`` or NaN input gives NaN (eagerly: a ``ValueError``).
    """
    m, q, b = (as_float_array(v, n) for v, n in ((m, "m"), (q, "q"), (b, "b")))
    p_plus = _check_unit_open(p_plus, "p_plus", "the paper's cluster fraction ρ = P(y = 1)")
    delta = _check_pos(delta, "delta", "noise variance Δ")
    if not all_true(q, lambda a: (a > 0).all()):
        raise ValueError(f"`q` (the squared norm ‖w‖²/N) must be > 0; got {q!r}.")
    dt = _dtype(m, q, b, p_plus, delta)
    m, q, b, p_plus, delta = (jnp.asarray(v, dt) for v in (m, q, b, p_plus, delta))
    return gen_error_core(m, q, b, p_plus, delta)


def gen_error_core(m, q, b, p_plus, delta):
    """Unvalidated Eq. 12 (traced code); NaN for q <= 0."""
    s = jnp.sqrt(jnp.where(q > 0, delta * q, jnp.nan))
    return p_plus * gauss_tail((m + b) / s) + (1 - p_plus) * gauss_tail((m - b) / s)


def bo_bias(alpha, p_plus, delta):
    """The Bayes-optimal (plug-in) bias ``b_BO = Δ(1 + Δ/α)/2 · log(ρ/(1 - ρ))`` (Eq. 24), ρ = ``p_plus``."""
    return delta * (1 + delta / alpha) / 2 * jnp.log(p_plus / (1 - p_plus))


def bayes_error(alpha, *, p_plus, delta, eta=1.0):
    """Bayes-optimal test error at sample ratio α (§1.6 of the brief; paper Eqs. 13-14, 23).

    ``eta = 1``: the dense (teacher) bound, Eq. 12 at ``m = 1, q = 1 + Δ/α, b = b_BO``. ``eta < 1``: the
    sparsified plug-in student, ``m = η, q = η(1 + Δ/α)``, same bias (derived from the paper's statements).
    Arrays broadcast; invalid values give NaN under jit and a ``ValueError`` eagerly.
    """
    alpha = _check_pos(alpha, "alpha", "sample ratio M/N")
    eta = as_float_array(eta, "eta")
    if not all_true(eta, lambda a: ((a > 0) & (a <= 1)).all()):
        raise ValueError(f"`eta` (trainable fraction η) must lie in (0, 1]; got {eta!r}.")
    p_plus = _check_unit_open(p_plus, "p_plus", "the paper's cluster fraction ρ = P(y = 1)")
    delta = _check_pos(delta, "delta", "noise variance Δ")
    dt = _dtype(alpha, eta, p_plus, delta)
    alpha, eta, p_plus, delta = (jnp.asarray(v, dt) for v in (alpha, eta, p_plus, delta))
    ok = (alpha > 0) & (eta > 0) & (eta <= 1) & (p_plus > 0) & (p_plus < 1) & (delta > 0)
    alpha = jnp.where(ok, alpha, jnp.nan)
    b = bo_bias(alpha, p_plus, delta)
    return gen_error_core(eta, eta * (1 + delta / alpha), b, p_plus, delta)


def gmm_sample(key, n_features: int, n_samples: int, *, p_plus, delta, v=None, dtype=None):
    """Draw ``(v, X, y)`` from the mixture (Eq. 10).

    Args:
      key: ``jax.random`` key. n_features: N. n_samples: M.
      p_plus: P(y = 1) (paper's ρ). delta: noise variance Δ.
      v: the cluster direction, shape ``(N,)``; ``None`` draws ``v ~ N(0, I_N)`` (pass the training ``v``
        to draw test data of the same task).
      dtype: float dtype (default: JAX's default float).

    Returns: ``v`` (N,), ``X`` (M, N) with ``X = (2y - 1) vᵀ/√N + √Δ Z``, ``y`` (M,) in {0, 1} (float).
    """
    n_features = check_int(n_features, "n_features", minimum=1)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    dt = jnp.dtype(dtype) if dtype is not None else jnp.result_type(float)
    p_plus = _check_unit_open(p_plus, "p_plus", "the paper's cluster fraction ρ = P(y = 1)").astype(dt)
    delta = _check_pos(delta, "delta", "noise variance Δ").astype(dt)  # traced values are fine
    kv, ky, kz = jax.random.split(key, 3)
    if v is None:
        v = jax.random.normal(kv, (n_features,), dt)
    else:
        v = jnp.asarray(v, dt)
        if v.shape != (n_features,):
            raise ValueError(f"`v` must have shape ({n_features},) (the task's cluster direction); got {v.shape}.")
    y = jax.random.bernoulli(ky, p_plus, (n_samples,)).astype(dt)
    z = jax.random.normal(kz, (n_samples, n_features), dt)
    x = (2 * y - 1)[:, None] * v[None, :] / jnp.sqrt(jnp.asarray(n_features, dt)) + jnp.sqrt(delta) * z
    return v, x, y
