"""Synthetic tasks with an exactly known conditional law D(y|x) (Kaplun, Malach, Nakkiran & Shalev-Shwartz
2022, brief §5.1): the ground truth against which samplers, teachers and students are scored.

Every task is a frozen dataclass registered as a JAX pytree: numeric parameters (flip rate ρ, slope a,
means, transition matrix T) are leaves, sizes (d) are static, so a task can be passed into ``jax.jit``
and ``jax.vmap``-ed over its parameters. Methods (``K`` classes, labels ``0..K-1``; binary tasks have
``K = 2`` with ``η(x) = D(1|x)`` in column 1):

* ``sample_x(key, n) -> (n, d)`` from D_X;
* ``cond_probs(x) -> (n, K)`` the exact D(·|x); ``sample_y(key, x) -> (n,)`` int labels drawn from it;
* ``bayes(x) -> (n,)`` argmax_y D(y|x) (ties -> lowest class); ``clean(x)`` the noise-free class;
* ``bayes_risk()`` = E[1 - max_y D(y|x)] (L*) and ``sampler_risk()`` = E[1 - Σ_y D(y|x)²], the risk of
  an exact sampler (the Cover–Hart asymptotic 1-NN risk), both in closed form and differentiable in the
  parameters.

Invalid parameters raise ``ValueError`` eagerly; traced invalid values make ``cond_probs`` and the risks
NaN. Inputs are sampled in the dtype of the task's parameters (float32, or float64 with x64).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..._core.checks import check_int, is_concrete
from ..._core.linalg import mm

__all__ = [
    "GaussianLDA",
    "HalfspaceFlip",
    "HalfspaceLipschitz",
    "SphereSign",
    "TransitionSectors",
    "gaussian_lda",
    "halfspace_flip",
    "halfspace_lipschitz",
    "pairflip_matrix",
    "sector_of",
    "sectors_pairflip",
    "sphere_sign",
    "transition_sectors",
]


def _float(v):
    v = jnp.asarray(v)
    return v if jnp.issubdtype(v.dtype, jnp.floating) else v.astype(jnp.result_type(float))


def _checked(v, name, lo, hi, *, open_lo=False):
    """``v`` as a float array; eager ValueError outside [lo, hi] (or (lo, hi]); NaN where traced and invalid."""
    v = _float(v)
    bad = (v <= lo if open_lo else v < lo) | (v > hi) | jnp.isnan(v)
    if is_concrete(v):
        if bool(jnp.any(bad)):
            rng = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
            raise ValueError(f"`{name}` must lie in {rng}; got {np.asarray(v)!r}.")
        return v
    return jnp.where(bad, jnp.nan, v)


def _binary(eta):
    return jnp.stack([1 - eta, eta], axis=-1)


def _pytree(data, meta):
    def wrap(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
    return wrap


class _Task:
    """Shared methods of the tasks (a task defines ``cond_probs``, ``sample_x`` and the two risks)."""

    def sample_y(self, key, x):
        """Labels ``(n,)`` (int32) drawn from D(·|x), one independent draw per row."""
        p = self.cond_probs(x)
        return jax.random.categorical(key, jnp.log(p), axis=-1).astype(jnp.int32)

    def bayes(self, x):
        """The Bayes-optimal labels argmax_y D(y|x), ``(n,)`` int32."""
        return jnp.argmax(self.cond_probs(x), axis=-1).astype(jnp.int32)

    @property
    def num_classes(self) -> int:
        return 2


@_pytree(["rho"], ["d"])
class HalfspaceFlip(_Task):
    """x ~ U[0,1]^d, clean label 1[x_1 > 1/2], flipped with probability ρ: η = 1-ρ on x_1 > 1/2, else ρ.
    L* = min(ρ, 1-ρ), exact-sampler risk 2ρ(1-ρ) (0.20 and 0.32 at ρ = 0.2)."""
    rho: jax.Array
    d: int

    def sample_x(self, key, n):
        return jax.random.uniform(key, (n, self.d), dtype=self.rho.dtype)

    def clean(self, x):
        return (x[:, 0] > 0.5).astype(jnp.int32)

    def cond_probs(self, x):
        return _binary(jnp.where(x[:, 0] > 0.5, 1 - self.rho, self.rho))

    def bayes_risk(self):
        return jnp.minimum(self.rho, 1 - self.rho)

    def sampler_risk(self):
        return 2 * self.rho * (1 - self.rho)


@_pytree(["a", "margin"], ["d"])
class HalfspaceLipschitz(_Task):
    """x ~ U[0,1]^d, η(x) = clip(1/2 + a(x_1 - 1/2), margin, 1 - margin): an a-Lipschitz η (brief
    ``halfspace_lipschitz``), Bayes classifier 1[x_1 > 1/2]. Closed forms with c = 1/2 - margin and
    s* = min(c/a, 1/2): L* = 1/2 - 2(a s*²/2 + c(1/2 - s*)), sampler risk 1/2 - 4(a² s*³/3 + c²(1/2 - s*))
    (0.1850 and 0.2570 at a = 1.5, margin = 0.05)."""
    a: jax.Array
    margin: jax.Array
    d: int

    def sample_x(self, key, n):
        return jax.random.uniform(key, (n, self.d), dtype=self.a.dtype)

    def clean(self, x):
        return (x[:, 0] > 0.5).astype(jnp.int32)

    def cond_probs(self, x):
        return _binary(jnp.clip(0.5 + self.a * (x[:, 0] - 0.5), self.margin, 1 - self.margin))

    def _s(self):
        c = 0.5 - self.margin
        return c, jnp.minimum(c / self.a, 0.5)

    def bayes_risk(self):
        c, s = self._s()
        return 0.5 - 2 * (self.a * s**2 / 2 + c * (0.5 - s))

    def sampler_risk(self):
        c, s = self._s()
        return 0.5 - 4 * (self.a**2 * s**3 / 3 + c**2 * (0.5 - s))


_GH_T, _GH_W = np.polynomial.hermite.hermgauss(80)  # Gauss–Hermite nodes for the LDA sampler risk


@_pytree(["mu0", "mu1", "cov"], [])
class GaussianLDA(_Task):
    """Equal-prior Gaussian classes y ∈ {0, 1}, x | y ~ N(μ_y, Σ): η(x) = σ(wᵀx + b) with w = Σ⁻¹(μ1 - μ0),
    b = (μ0ᵀΣ⁻¹μ0 - μ1ᵀΣ⁻¹μ1)/2. L* = Φ(-Δ/2) with Δ the Mahalanobis distance; the sampler risk is
    E[2σ(z)σ(-z)] over z = wᵀx + b ~ N(Δ²/2, Δ²) (the class-1 law; the class-0 law is its mirror image and
    the integrand is even), by 80-node Gauss–Hermite quadrature. There is no noise-free class:
    ``clean`` raises."""
    mu0: jax.Array
    mu1: jax.Array
    cov: jax.Array

    @property
    def d(self):
        return self.mu0.shape[0]

    def _wb(self):
        w = jax.scipy.linalg.solve(self.cov, self.mu1 - self.mu0, assume_a="pos")
        b = 0.5 * (jnp.dot(self.mu0 + self.mu1, -w, precision="highest"))
        return w, b

    def delta(self):
        """Mahalanobis distance Δ between the class means."""
        w, _ = self._wb()
        return jnp.sqrt(jnp.dot(self.mu1 - self.mu0, w, precision="highest"))

    def sample_x(self, key, n):
        k1, k2 = jax.random.split(key)
        y = jax.random.bernoulli(k1, 0.5, (n,))
        chol = jnp.linalg.cholesky(self.cov)
        z = jax.random.normal(k2, (n, self.d), dtype=self.mu0.dtype)
        return jnp.where(y[:, None], self.mu1, self.mu0) + mm(z, chol.T)

    def clean(self, x):
        raise ValueError("GaussianLDA has no noise-free class (the label is the mixture component); use "
                         "bayes(x) for the Bayes-optimal class.")

    def cond_probs(self, x):
        w, b = self._wb()
        return _binary(jax.nn.sigmoid(mm(x, w) + b))

    def bayes_risk(self):
        return jax.scipy.stats.norm.cdf(-self.delta() / 2)

    def sampler_risk(self):
        dl = self.delta()
        t = jnp.asarray(_GH_T, dl.dtype)
        w = jnp.asarray(_GH_W, dl.dtype) / math.sqrt(math.pi)
        z = dl**2 / 2 + math.sqrt(2) * dl * t
        return jnp.sum(w * 2 * jax.nn.sigmoid(z) * jax.nn.sigmoid(-z))


@_pytree(["rho"], ["d", "law"])
class SphereSign(_Task):
    """x ~ N(0, I_d) (``law="gaussian"``) or uniform on S^{d-1} (``law="sphere"``); clean label 1[x_1 > 0]
    flipped with probability ρ. L* = min(ρ, 1-ρ), sampler risk 2ρ(1-ρ)."""
    rho: jax.Array
    d: int
    law: str

    def sample_x(self, key, n):
        x = jax.random.normal(key, (n, self.d), dtype=self.rho.dtype)
        if self.law == "sphere":
            x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        return x

    def clean(self, x):
        return (x[:, 0] > 0).astype(jnp.int32)

    def cond_probs(self, x):
        return _binary(jnp.where(x[:, 0] > 0, 1 - self.rho, self.rho))

    def bayes_risk(self):
        return jnp.minimum(self.rho, 1 - self.rho)

    def sampler_risk(self):
        return 2 * self.rho * (1 - self.rho)


def sector_of(x, num_sectors: int):
    """Angle sector ⌊K θ / 2π⌋ of 2-D points, θ = atan2(x_2, x_1) in [0, 2π): ``(n,)`` int32 in 0..K-1."""
    theta = jnp.mod(jnp.arctan2(x[:, 1], x[:, 0]), 2 * jnp.pi)
    return jnp.clip(jnp.floor(theta * num_sectors / (2 * jnp.pi)), 0, num_sectors - 1).astype(jnp.int32)


@_pytree(["T"], [])
class TransitionSectors(_Task):
    """K-class task on the unit circle: x = (cos θ, sin θ), θ ~ U[0, 2π), clean class c(x) = the angle
    sector ⌊Kθ/2π⌋ (equally likely), and D(y|x) = T[c(x), y] for a row-stochastic (K, K) matrix T (the
    brief's ``transition_matrix(T)``; ``sectors_pairflip`` is T = (1-ρ)I + ρ·shift(K/2)). [G] the brief
    leaves D_X open; the unit circle makes 1-NN a nearest-angle rule. L* = mean_c(1 - max_y T_cy), sampler
    risk mean_c(1 - Σ_y T_cy²)."""
    T: jax.Array

    @property
    def num_classes(self) -> int:
        return self.T.shape[0]

    def sample_x(self, key, n):
        th = jax.random.uniform(key, (n,), dtype=self.T.dtype) * 2 * jnp.pi
        return jnp.stack([jnp.cos(th), jnp.sin(th)], axis=1)

    def clean(self, x):
        return sector_of(x, self.num_classes)

    def cond_probs(self, x):
        return self.T[self.clean(x)]

    def bayes_risk(self):
        return jnp.mean(1 - jnp.max(self.T, axis=1))

    def sampler_risk(self):
        return jnp.mean(1 - jnp.sum(self.T**2, axis=1))

    def bayes_clean_accuracy(self):
        """Accuracy of the Bayes classifier against the clean class: mean_c 1[argmax_y T_cy = c]."""
        return jnp.mean((jnp.argmax(self.T, axis=1) == jnp.arange(self.num_classes)).astype(self.T.dtype))

    def sampler_clean_accuracy(self):
        """Accuracy of an exact sampler against the clean class: mean_c T_cc."""
        return jnp.mean(jnp.diagonal(self.T))


def halfspace_flip(*, d: int = 2, rho=0.2) -> HalfspaceFlip:
    """:class:`HalfspaceFlip` with flip rate ``rho`` ∈ [0, 1] in ``d`` dimensions."""
    return HalfspaceFlip(rho=_checked(rho, "rho", 0.0, 1.0), d=check_int(d, "d", minimum=1))


def halfspace_lipschitz(*, d: int = 2, a=1.5, margin=0.05) -> HalfspaceLipschitz:
    """:class:`HalfspaceLipschitz` with slope ``a`` > 0 and ``margin`` ∈ [0, 1/2]."""
    a = _checked(a, "a", 0.0, float("inf"), open_lo=True)
    margin = _checked(margin, "margin", 0.0, 0.5).astype(a.dtype)
    return HalfspaceLipschitz(a=a, margin=margin, d=check_int(d, "d", minimum=1))


def gaussian_lda(mu0, mu1, cov=None) -> GaussianLDA:
    """:class:`GaussianLDA` with class means ``mu0``, ``mu1`` ``(d,)`` and a positive-definite ``cov``
    ``(d, d)`` (default identity)."""
    mu0, mu1 = _float(mu0), _float(mu1)
    if mu0.ndim != 1 or mu0.shape != mu1.shape:
        raise ValueError(f"`mu0` and `mu1` must be vectors of the same length d; got {mu0.shape}, {mu1.shape}.")
    d = mu0.shape[0]
    cov = jnp.eye(d, dtype=mu0.dtype) if cov is None else _float(cov).astype(mu0.dtype)
    if cov.shape != (d, d):
        raise ValueError(f"`cov` must have shape ({d}, {d}); got {cov.shape}.")
    if is_concrete(cov) and not bool(jnp.all(jnp.linalg.eigvalsh((cov + cov.T) / 2) > 0)):
        raise ValueError("`cov` must be symmetric positive definite (all eigenvalues > 0).")
    return GaussianLDA(mu0=mu0, mu1=mu1.astype(mu0.dtype), cov=cov)


def sphere_sign(*, d: int = 2, rho=0.2, law: str = "gaussian") -> SphereSign:
    """:class:`SphereSign` with flip rate ``rho``; ``law`` is ``"gaussian"`` (N(0, I_d)) or ``"sphere"``."""
    if law not in ("gaussian", "sphere"):
        raise ValueError(f"`law` must be 'gaussian' or 'sphere'; got {law!r}.")
    return SphereSign(rho=_checked(rho, "rho", 0.0, 1.0), d=check_int(d, "d", minimum=1), law=law)


def pairflip_matrix(num_classes: int = 10, rho=0.2, *, shift=None):
    """``(K, K)`` transition matrix (1-ρ) I + ρ P with P the cyclic shift c -> (c + shift) mod K (default
    K/2: the paper's CIFAR-10 noise c -> c+5)."""
    K = check_int(num_classes, "num_classes", minimum=2)
    shift = K // 2 if shift is None else check_int(shift, "shift", minimum=1)
    rho = _checked(rho, "rho", 0.0, 1.0)
    eye = jnp.eye(K, dtype=rho.dtype)
    return (1 - rho) * eye + rho * jnp.roll(eye, shift, axis=1)


def transition_sectors(T) -> TransitionSectors:
    """:class:`TransitionSectors` with a row-stochastic ``T`` ``(K, K)`` (rows: clean class, columns: label)."""
    T = _float(T)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] < 2:
        raise ValueError(f"`T` must be a square (K, K) matrix with K >= 2; got shape {T.shape}.")
    if is_concrete(T):
        if not bool(jnp.all(T >= 0)) or not bool(jnp.allclose(T.sum(1), 1, atol=1e-6)):
            raise ValueError("`T` must be row-stochastic: entries >= 0 and every row summing to 1.")
    else:
        T = jnp.where(jnp.all(T >= 0) & jnp.all(jnp.abs(T.sum(1) - 1) < 1e-6), T, jnp.nan)
    return TransitionSectors(T=T)


def sectors_pairflip(*, num_classes: int = 10, rho=0.2) -> TransitionSectors:
    """The 2-D analogue of the paper's CIFAR-10 noise: K angle sectors, label c -> (c + K/2) mod K with
    probability ρ. L* = ρ vs noisy labels (0 vs clean), sampler risk 1 - (1-ρ)² - ρ² (0.32 at ρ = 0.2)."""
    return TransitionSectors(T=pairflip_matrix(num_classes, rho))


