"""samplers.replication_regime: the regime of a teacher from its noise replication ratio r, against
hand-computed r on a task with constant noise 0.2 (r = Pr[f ≠ f*] / 0.2)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkd.theories import samplers as S

N = 1000
ETA = np.where(np.arange(N) % 2 == 0, 0.8, 0.2)
P = jnp.asarray(np.stack([1 - ETA, ETA], 1))
BAYES = (ETA > 0.5).astype(np.int32)


def _flip(q):
    """Bayes labels with the first q·N flipped: Pr[f ≠ f*] = q, so r = q / 0.2."""
    f = BAYES.copy()
    f[: round(q * N)] ^= 1
    return jnp.asarray(f)


@pytest.mark.parametrize("q, code", [(0.0, 0), (0.01, 0), (0.1, 1), (0.17, 1), (0.2, 2), (0.21, 2), (0.4, 3)])
def test_codes_follow_the_replication_ratio(q, code):
    assert float(S.noise_replication_ratio(_flip(q), P)) == pytest.approx(q / 0.2, abs=1e-12)
    got = S.replication_regime(_flip(q), P)
    assert got.dtype == P.dtype and float(got) == code
    assert S.REGIMES[code] == ("bayes-like", "partial sampler", "sampler", "not a sampler")[code]


def test_label_laws_jit_vmap_and_invalid_values():
    preds = jnp.stack([_flip(q) for q in (0.0, 0.1, 0.2, 0.4)])
    loop = [float(S.replication_regime(f, P)) for f in preds]
    assert loop == [0, 1, 2, 3]
    assert jax.vmap(S.replication_regime, (0, None))(preds, P).tolist() == loop
    assert float(jax.jit(S.replication_regime)(preds[2], P)) == 2
    # a label law: the average of teachers at r = 0 and r = 2 has r = 1 (r is linear in the law)
    law = S.label_frequencies(preds[jnp.array([0, 3])], 2)
    assert float(S.replication_regime(law, P)) == 2
    assert np.isnan(float(S.replication_regime(BAYES, jax.nn.one_hot(BAYES, 2, dtype=P.dtype))))  # no noise: 0/0
    assert np.isnan(float(jax.jit(lambda t: S.replication_regime(preds[2], P, tol=t))(0.7)))
    for tol in (0.0, 0.5, -1.0):
        with pytest.raises(ValueError, match="tol"):
            S.replication_regime(preds[2], P, tol=tol)
    p32 = P.astype(jnp.float32)
    assert S.replication_regime(preds[2], p32).dtype == jnp.float32
