"""The shared multi-class pieces of ntkd.losses (softmax CE, KL, tempered/smoothed probabilities, one-hot,
simplex checks) against float64 NumPy references, under jit/vmap/grad, with their argument checks, and the
theories' public names that now alias them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkd import losses as L
from ntkd.theories import bias_variance as bv
from ntkd.theories import crossfit as cf
from ntkd.theories import samplers as S

RNG = np.random.default_rng(0)
Z = RNG.normal(size=(4, 3)) * 2.0  # logits (n, K)
P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)  # probability rows
Q = np.exp(-Z) / np.exp(-Z).sum(1, keepdims=True)
Y = np.array([0, 2, 1, 2])
TAU = np.array([0.5, 1.0, 2.0, 3.0])


def np_logsoftmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# name -> (function of float64 arrays, NumPy reference, arguments)
CASES = {
    "softmax_ce_soft": (L.softmax_cross_entropy, lambda z, q: -(q * np_logsoftmax(z)).sum(-1), (Z, Q)),
    "softmax_ce_labels": (L.softmax_cross_entropy, lambda z, y: -np_logsoftmax(z)[np.arange(4), y], (Z, Y)),
    "kl": (L.kl_divergence, lambda p, q: (p * np.log(p / q)).sum(-1), (P, Q)),
    "tempered": (L.tempered_probs, lambda p, t: p ** (1 / t[:, None]) / (p ** (1 / t[:, None])).sum(-1, keepdims=True),
                 (P, TAU)),
    "smoothed": (L.smoothed_probs, lambda p, e: (1 - e[:, None]) * p + e[:, None] / 3, (P, TAU / 4)),
    "one_hot": (lambda y: L.one_hot(y, 3), lambda y: np.eye(3)[y], (Y,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy_float64_eager_jit_and_vmap(name):
    fn, ref, args = CASES[name]
    want = ref(*args)
    args = tuple(jnp.asarray(a) for a in args)
    got = fn(*args)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jax.jit(fn)(*args), got, rtol=1e-14, atol=1e-15)  # fusion: ulp-level
    rows = jnp.stack([fn(*(a[i] for a in args)) for i in range(4)])  # one row at a time
    np.testing.assert_allclose(jax.vmap(fn)(*args), rows, rtol=1e-14, atol=1e-15)


def _central(f, x, h=1e-6):
    x = np.asarray(x, float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name, argnum", [("softmax_ce_soft", 0), ("softmax_ce_soft", 1), ("softmax_ce_labels", 0),
                                          ("kl", 0), ("kl", 1), ("tempered", 0), ("tempered", 1),
                                          ("smoothed", 0), ("smoothed", 1)])
def test_grad_matches_central_differences(name, argnum):
    fn, _, args = CASES[name]
    w = np.linspace(0.3, 1.7, 12).reshape(4, 3)  # weights of a scalar read-out of the result

    def scalar(x):  # perturbations off the simplex stay unchecked: the argument is a tracer or a float array
        a = list(args)
        a[argnum] = x
        out = fn(*a)
        return jnp.sum(out * w[..., : out.shape[-1]] if out.ndim == 2 else out * w[:, 0])

    g = jax.grad(scalar)(jnp.asarray(args[argnum], float))
    # NumPy-side differences through the JAX function, on a jitted copy so the checks see tracers
    fd = _central(lambda x: float(jax.jit(scalar)(jnp.asarray(x))), args[argnum])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("call, arg", [
    (lambda: L.softmax_cross_entropy(Z, np.array([0, 3, 1, 2])), "targets"),
    (lambda: L.softmax_cross_entropy(Z, Q[:, :2]), "targets"),
    (lambda: L.softmax_cross_entropy(Z, Q * 2), "targets"),
    (lambda: L.softmax_cross_entropy(Z, np.array([0, 1])), "targets"),
    (lambda: L.softmax_cross_entropy(1.0, Y), "logits"),
    (lambda: L.kl_divergence(P, Q + 0.1), "`q`"),
    (lambda: L.kl_divergence(-P, Q), "`p`"),
    (lambda: L.tempered_probs(P, 0.0), "`tau`"),
    (lambda: L.tempered_probs(P, np.ones(3)), "`tau`"),
    (lambda: L.tempered_probs(P * 2, 1.0), "`p`"),
    (lambda: L.smoothed_probs(P, 1.5), "`eps`"),
    (lambda: L.one_hot(np.array([0, 3]), 3), "`labels`"),
    (lambda: L.one_hot(np.array([0.0, 1.0]), 3), "`labels`"),
    (lambda: L.one_hot(Y, 3, dtype=jnp.int32), "`dtype`"),
    (lambda: L.check_probs(np.array([[0.5, 0.6]]), "p_t"), "`p_t`"),
])
def test_bad_eager_input_raises_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


def test_traced_bad_values_give_nan_rows_not_plausible_numbers():
    bad_q = jnp.asarray(Q).at[1].set(jnp.array([0.5, 0.6, 0.2]))
    out = jax.jit(L.softmax_cross_entropy)(Z, bad_q)
    assert np.isnan(out[1]) and np.isfinite(np.delete(np.asarray(out), 1)).all()
    out = np.asarray(jax.jit(L.softmax_cross_entropy)(Z, jnp.array([0, 3, 1, -1])))
    assert np.isnan(out[[1, 3]]).all() and np.isfinite(out[[0, 2]]).all()
    assert np.isnan(jax.jit(L.kl_divergence)(P, bad_q)[1])
    t = np.asarray(jax.jit(L.tempered_probs)(P, jnp.array([1.0, -1.0, 2.0, jnp.inf])))
    assert np.isnan(t[[1, 3]]).all() and np.isfinite(t[[0, 2]]).all()
    assert np.isnan(jax.jit(L.smoothed_probs)(P, 2.0)).all()
    oh = np.asarray(jax.jit(lambda y: L.one_hot(y, 3))(jnp.array([0, 5, -1])))
    assert np.isnan(oh[1:]).all() and (oh[0] == [1.0, 0, 0]).all()
    assert not jax.jit(L.probs_valid)(bad_q)[1] and jax.jit(L.probs_valid)(bad_q)[0]


def test_float32_in_float32_out():
    z, q, p = (jnp.asarray(a, jnp.float32) for a in (Z, Q, P))
    outs = [L.softmax_cross_entropy(z, q), L.softmax_cross_entropy(z, jnp.asarray(Y)), L.kl_divergence(p, q),
            L.tempered_probs(p, 2.0), L.smoothed_probs(p, 0.1), L.one_hot(jnp.asarray(Y), 3, dtype=jnp.float32)]
    for o in outs:
        assert o.dtype == jnp.float32
    np.testing.assert_allclose(outs[0], CASES["softmax_ce_soft"][1](Z, Q), rtol=2e-6)
    np.testing.assert_allclose(outs[3], CASES["tempered"][1](P, np.full(4, 2.0)), rtol=2e-6)
    # float32 rows cast up to float64 (sums off by ~1e-7) still count as probabilities
    assert bool(L.probs_valid(p.astype(jnp.float64)).all())


def test_conventions_zero_entries_binary_case_and_kl_identity():
    p0 = jnp.array([0.0, 0.25, 0.75])
    for tau in (0.5, 3.0, 1e3):  # 0^{1/τ} = 0 at every τ (no clipping floor)
        t = L.tempered_probs(p0, tau)
        assert t[0] == 0.0
        np.testing.assert_allclose(t[1:], p0[1:] ** (1 / tau) / (p0[1:] ** (1 / tau)).sum(), rtol=1e-12)
    assert np.isfinite(jax.grad(lambda tau: L.tempered_probs(p0, tau)[1])(2.0))
    # a -inf logit with zero target weight contributes nothing (not 0·inf = NaN)
    assert L.softmax_cross_entropy(jnp.array([-jnp.inf, 0.0, 1.0]), p0) == pytest.approx(
        -(0.25 * np.log(1 / (1 + np.e)) + 0.75 * np.log(np.e / (1 + np.e))), rel=1e-12)
    # binary: logits (0, z), label 1 -> Ji & Zhu's softplus(-z); KL with q = 0 where p > 0 is +inf
    zz = np.array([-2.0, 0.3, 4.0])
    np.testing.assert_allclose(L.softmax_cross_entropy(bv.binary_logits(zz), jnp.ones(3, int)), np.logaddexp(0, -zz),
                               rtol=1e-12)
    assert L.kl_divergence(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])) == np.inf
    # KL(p ‖ q) = CE(p, log q) − CE(p, log p) on logits
    np.testing.assert_allclose(L.kl_divergence(P, Q), L.softmax_cross_entropy(-Z, P) - L.softmax_cross_entropy(Z, P),
                               rtol=1e-10)


def test_theory_names_are_the_shared_functions():
    assert bv.tempered is L.tempered_probs and cf.tempered is L.tempered_probs
    assert bv.smoothed is L.smoothed_probs and cf.smoothed is L.smoothed_probs
    from ntkd.theories.bias_variance import estimators
    assert estimators.probs_valid is L.probs_valid and estimators.check_probs is L.check_probs
    np.testing.assert_array_equal(S.one_hot(jnp.asarray(Y), 3, jnp.float32), np.eye(3, dtype=np.float32)[Y])
    # crossfit's CE and tempered CE are the shared softmax CE
    np.testing.assert_allclose(cf.label_ce(Z, Y), L.softmax_cross_entropy(Z, Y), rtol=1e-14)
    np.testing.assert_allclose(cf.tempered_ce(-Z, P, T=2.0),
                               L.softmax_cross_entropy(-Z / 2, L.tempered_probs(P, 2.0)), rtol=1e-14)
