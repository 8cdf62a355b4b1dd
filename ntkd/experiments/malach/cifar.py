"""Data for the CIFAR-10 -> CIFAR-5m distillation protocol of Kaplun et al. (2022) (brief §4.1, exact from
the authors' code ``GalKaplun/sampler-distillation``), run when the user supplies the data locally
(nothing is downloaded).

* :func:`load_cifar10`: the standard python-pickle layout (``cifar-10-batches-py/data_batch_{1..5}``,
  ``test_batch``) or a plain ``.npz`` with ``x_train, y_train, x_test, y_test``;
* :func:`load_cifar5m`: the authors' layout (a folder of ``class{0..9}.npy``, images of one class each,
  truncated to the same count, 509,716 in the paper) or ``.npz`` parts with ``X``/``Y`` (or ``x``/``y``);
* :func:`pairflip_labels`: the teachers' noisy labels, c -> (c + 5) mod 10 for exactly ρ·(class count)
  images of every class (1000 of 5000 at ρ = 0.2, as in the authors' ``files/noisy_labels.npy``; their
  exact file is not shipped, so the indices are drawn with a fixed seed).

Images are returned as uint8 ``(n, 32, 32, 3)`` (HWC) and labels as int64 ``(n,)``; normalisation and
augmentation belong to the training script (CIFAR-10 mean/std for CIFAR-10; (0.4555, 0.4362, 0.3415) /
(0.2284, 0.2167, 0.2165) for CIFAR-5m).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

__all__ = [
    "CIFAR5M_MEAN",
    "CIFAR5M_PER_CLASS",
    "CIFAR5M_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "load_cifar5m",
    "load_cifar10",
    "pairflip_labels",
]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR5M_MEAN = (0.4555, 0.4362, 0.3415)
CIFAR5M_STD = (0.2284, 0.2167, 0.2165)
CIFAR5M_PER_CLASS = 509_716  # the authors' truncation: 5,097,160 images in all


def _images(x, where):
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == 3072:  # pickle rows: 1024 R, 1024 G, 1024 B (CHW order)
        x = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(f"{where}: expected images (n, 32, 32, 3) or pickle rows (n, 3072); got {x.shape}.")
    return np.ascontiguousarray(x.astype(np.uint8, copy=False))


def _labels(y, n, where, num_classes=10):
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if y.shape != (n,) or (y.size and (y.min() < 0 or y.max() >= num_classes)):
        raise ValueError(f"{where}: expected {n} labels in 0..{num_classes - 1}; got shape {y.shape}.")
    return y


def _unpickle(f: Path):
    with open(f, "rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    return _images(d["data"], str(f)), np.asarray(d["labels"])


def load_cifar10(path) -> dict:
    """CIFAR-10 from ``path``: a folder holding (or being) ``cifar-10-batches-py``, or an ``.npz``.

    Returns ``{"x_train", "y_train", "x_test", "y_test"}`` (uint8 HWC images, int64 labels).
    """
    p = Path(path)
    if p.suffix == ".npz":
        if not p.exists():
            raise ValueError(f"`path` {p} does not exist; pass the .npz with x_train, y_train, x_test, y_test.")
        with np.load(p) as z:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
            if missing:
                raise ValueError(f"`path` {p} lacks arrays {sorted(missing)}; it needs x_train, y_train, x_test, y_test.")
            out = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        out["x_train"], out["x_test"] = _images(out["x_train"], f"{p}:x_train"), _images(out["x_test"], f"{p}:x_test")
        out["y_train"] = _labels(out["y_train"], len(out["x_train"]), f"{p}:y_train")
        out["y_test"] = _labels(out["y_test"], len(out["x_test"]), f"{p}:y_test")
        return out
    root = p / "cifar-10-batches-py" if (p / "cifar-10-batches-py").is_dir() else p
    batches = [root / f"data_batch_{i}" for i in range(1, 6)]
    if not all(b.exists() for b in batches) or not (root / "test_batch").exists():
        raise ValueError(f"`path` {p}: expected the CIFAR-10 python layout (data_batch_1..5 and test_batch in "
                         "cifar-10-batches-py/) or an .npz file.")
    parts = [_unpickle(b) for b in batches]
    xt, yt = _unpickle(root / "test_batch")
    x = np.concatenate([a for a, _ in parts])
    return {"x_train": x, "y_train": _labels(np.concatenate([b for _, b in parts]), len(x), str(root)),
            "x_test": xt, "y_test": _labels(yt, len(xt), str(root / "test_batch"))}


def load_cifar5m(path, *, per_class: int | None = CIFAR5M_PER_CLASS, mmap: bool = True) -> tuple:
    """CIFAR-5m images and labels ``(x uint8 (n, 32, 32, 3), y int64 (n,))``.

    ``path``: a folder with ``class0.npy`` .. ``class9.npy`` (each class truncated to ``per_class``
    images, ``None`` = the smallest class count; memory-mapped with ``mmap``), or a folder of
    ``cifar5m_part*.npz`` / a single ``.npz`` with ``X``, ``Y`` (or ``x``, ``y``).
    """
    p = Path(path)
    if p.is_dir() and (p / "class0.npy").exists():
        files = [p / f"class{c}.npy" for c in range(10)]
        if not all(f.exists() for f in files):
            raise ValueError(f"`path` {p}: expected class0.npy .. class9.npy.")
        arrs = [np.load(f, mmap_mode="r" if mmap else None) for f in files]
        k = min(len(a) for a in arrs) if per_class is None else per_class
        if any(len(a) < k for a in arrs):
            raise ValueError(f"`per_class`={k} exceeds the smallest class file ({min(len(a) for a in arrs)} images); "
                             "pass per_class=None to use the smallest count.")
        x = np.concatenate([_images(a[:k], str(f)) for a, f in zip(arrs, files)])
        return x, np.repeat(np.arange(10, dtype=np.int64), k)
    files = [p] if p.suffix == ".npz" else sorted(p.glob("*.npz")) if p.is_dir() else []
    if not files:
        raise ValueError(f"`path` {p}: expected a folder of class{{0..9}}.npy, a folder of .npz parts or an .npz.")
    xs, ys = [], []
    for f in files:
        with np.load(f) as z:
            kx = "X" if "X" in z.files else "x"
            ky = "Y" if "Y" in z.files else "y"
            if kx not in z.files or ky not in z.files:
                raise ValueError(f"{f}: needs arrays X and Y (or x and y); has {z.files}.")
            xs.append(_images(z[kx], str(f)))
            ys.append(_labels(z[ky], len(xs[-1]), str(f)))
    return np.concatenate(xs), np.concatenate(ys)


def pairflip_labels(y, *, rho: float = 0.2, seed: int = 0, num_classes: int = 10):
    """Noisy labels with exactly ``round(ρ·count_c)`` images of every class c relabelled (c + K/2) mod K,
    chosen uniformly without replacement by ``np.random.default_rng(seed)`` (the paper's file flips 1000 of
    the 5000 images of each CIFAR-10 class). Returns ``(noisy int64 (n,), flipped bool (n,))``."""
    y = np.asarray(y).astype(np.int64)
    if not 0 <= rho <= 1:
        raise ValueError(f"`rho` must lie in [0, 1]; got {rho!r}.")
    rng = np.random.default_rng(seed)
    flipped = np.zeros(len(y), bool)
    for c in range(num_classes):
        idx = np.flatnonzero(y == c)
        flipped[rng.choice(idx, round(rho * len(idx)), replace=False)] = True
    noisy = np.where(flipped, (y + num_classes // 2) % num_classes, y)
    return noisy, flipped
