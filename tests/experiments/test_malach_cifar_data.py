"""The CIFAR-10 / CIFAR-5m loaders of the Kaplun et al. (2022) script on small generated files in the
standard layouts (python pickle batches, .npz, class{c}.npy), and the exact per-class pair-flip noise."""
import pickle

import numpy as np
import pytest

from ntkd.experiments.malach import cifar

RNG = np.random.default_rng(0)


def _batch(n):
    x = RNG.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    rows = x.transpose(0, 3, 1, 2).reshape(n, 3072)  # the pickle layout: R plane, G plane, B plane
    return x, rows, RNG.integers(0, 10, size=n)


def test_cifar10_pickle_layout_and_npz(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    xs, ys = [], []
    for i in range(1, 6):
        x, rows, y = _batch(7)
        xs.append(x)
        ys.append(y)
        with open(root / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": rows, b"labels": list(y)}, f)
    xt, rows, yt = _batch(5)
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": rows, b"labels": list(yt)}, f)
    d = cifar.load_cifar10(tmp_path)
    np.testing.assert_array_equal(d["x_train"], np.concatenate(xs))
    np.testing.assert_array_equal(d["y_train"], np.concatenate(ys))
    np.testing.assert_array_equal(d["x_test"], xt)
    assert d["x_train"].dtype == np.uint8 and d["y_test"].dtype == np.int64
    np.savez(tmp_path / "c10.npz", **d)
    e = cifar.load_cifar10(tmp_path / "c10.npz")
    for k in d:
        np.testing.assert_array_equal(e[k], d[k])
    np.savez(tmp_path / "bad.npz", x_train=d["x_train"])
    with pytest.raises(ValueError, match="lacks arrays"):
        cifar.load_cifar10(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="python layout"):
        cifar.load_cifar10(tmp_path / "nowhere")


def test_cifar5m_class_files_and_npz_parts(tmp_path):
    per = [RNG.integers(0, 256, size=(4 + c % 3, 32, 32, 3), dtype=np.uint8) for c in range(10)]
    for c, a in enumerate(per):
        np.save(tmp_path / f"class{c}.npy", a)
    x, y = cifar.load_cifar5m(tmp_path, per_class=4)
    assert x.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), 4))
    np.testing.assert_array_equal(x[8:12], per[2][:4])
    x2, _ = cifar.load_cifar5m(tmp_path, per_class=None)
    assert len(x2) == 40
    with pytest.raises(ValueError, match="per_class"):
        cifar.load_cifar5m(tmp_path, per_class=5)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(2):
        np.savez(parts / f"cifar5m_part{i}.npz", X=per[i], Y=np.full(len(per[i]), i))
    x3, y3 = cifar.load_cifar5m(parts)
    np.testing.assert_array_equal(x3, np.concatenate(per[:2]))
    np.testing.assert_array_equal(y3, np.repeat([0, 1], [len(per[0]), len(per[1])]))


def test_pairflip_flips_exactly_rho_of_every_class_to_c_plus_5():
    y = np.repeat(np.arange(10), 50)
    noisy, flipped = cifar.pairflip_labels(y, rho=0.2, seed=3)
    for c in range(10):
        assert flipped[y == c].sum() == 10
    np.testing.assert_array_equal(noisy[flipped], (y[flipped] + 5) % 10)
    np.testing.assert_array_equal(noisy[~flipped], y[~flipped])
    np.testing.assert_array_equal(np.bincount(noisy), np.full(10, 50))  # the pairs keep class counts
    np.testing.assert_array_equal(cifar.pairflip_labels(y, rho=0.2, seed=3)[0], noisy)  # fixed seed
