"""GPU-scale CIFAR-10 -> CIFAR-5m sampler distillation (Kaplun et al. 2022, brief §4.1; protocol exact from
``GalKaplun/sampler-distillation``), for data the user supplies locally::

    python -m ntkd.experiments.malach.cifar_run teachers --cifar10 DIR_OR_NPZ --out runs/ --teachers 10
    python -m ntkd.experiments.malach.cifar_run student --cifar10 ... --cifar5m DIR --out runs/ \\
        --mode one|random10|ensemble5|labels

* teachers: CIFAR-10 ResNet-18 (3x3 stem, stride 1, no max-pool) trained 50 epochs on the 20% pair-flip
  labels (exactly 1000 per class, c -> c+5; :func:`.cifar.pairflip_labels`, seed 0), SGD momentum 0.9,
  weight decay 5e-4, LR 0.1·batch/256 (0.05 at batch 128), cosine over the run; each teacher its own seed,
  the same noisy labels (as in the authors' code);
* students: one pass over CIFAR-5m at batch 128, LR 0.05 with a cosine over the pass, hard labels
  computed on the augmented batch from one teacher (``one``), a teacher drawn uniformly per batch out of
  10 (``random10``), the argmax of the summed logits of 5 (``ensemble5``), or CIFAR-5m's own labels
  (``labels``, the upper reference); clean CIFAR-10 test accuracy every ``--eval-every`` steps.
* augmentation: random crop 32 with padding 4 and horizontal flip; CIFAR-10 / CIFAR-5m mean-std
  normalisation.

Checkpoints (``.npz`` of parameters and batch statistics) and a JSON log per run go to ``--out``; a run
whose final checkpoint exists is skipped (resume). ``--width`` and ``--limit`` shrink the model and data
for a smoke run on a CPU. This script is not run by the test suite (it needs the data and a GPU); its
data loading is (tests/experiments/test_malach_cifar_data.py).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import cifar


def _resnet18(num_classes, width):
    import flax.linen as nn
    import jax.numpy as jnp

    class Block(nn.Module):
        ch: int
        stride: int

        @nn.compact
        def __call__(self, x, train):
            bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
            y = nn.relu(bn()(nn.Conv(self.ch, (3, 3), self.stride, use_bias=False)(x)))
            y = bn()(nn.Conv(self.ch, (3, 3), 1, use_bias=False)(y))
            if self.stride != 1 or x.shape[-1] != self.ch:
                x = bn()(nn.Conv(self.ch, (1, 1), self.stride, use_bias=False)(x))
            return nn.relu(x + y)

    class ResNet18(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            x = nn.Conv(width, (3, 3), 1, use_bias=False)(x)  # CIFAR stem: 3x3, stride 1, no max-pool
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
            for i, ch in enumerate([width, 2 * width, 4 * width, 8 * width]):
                x = Block(ch, 1 if i == 0 else 2)(x, train)
                x = Block(ch, 1)(x, train)
            return nn.Dense(num_classes)(jnp.mean(x, axis=(1, 2)))

    return ResNet18()


def _augment(key, x):
    import jax
    import jax.numpy as jnp

    k1, k2 = jax.random.split(key)
    n = x.shape[0]
    pad = jnp.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="constant")
    off = jax.random.randint(k1, (n, 2), 0, 9)
    crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (32, 32, x.shape[-1])))(pad, off)
    flip = jax.random.bernoulli(k2, 0.5, (n,))
    return jnp.where(flip[:, None, None, None], crop[:, :, ::-1], crop)


def _normalise(x_uint8, mean, std):
    import jax.numpy as jnp

    return (x_uint8.astype(jnp.float32) / 255.0 - jnp.asarray(mean)) / jnp.asarray(std)


class _Trainer:
    def __init__(self, width, steps, lr, seed):
        import jax
        import jax.numpy as jnp
        import optax

        self.model = _resnet18(10, width)
        v = self.model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3)), train=False)
        self.params, self.stats = v["params"], v["batch_stats"]
        sched = optax.cosine_decay_schedule(lr, max(steps, 1))
        self.tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(sched, momentum=0.9))
        self.opt = self.tx.init(self.params)

        def loss(params, stats, x, y):
            logits, upd = self.model.apply({"params": params, "batch_stats": stats}, x, train=True,
                                           mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd["batch_stats"]

        @jax.jit
        def step(params, stats, opt, x, y):
            (val, stats), g = jax.value_and_grad(loss, has_aux=True)(params, stats, x, y)
            upd, opt = self.tx.update(g, opt, params)
            return optax.apply_updates(params, upd), stats, opt, val

        self._step = step
        self.logits = jax.jit(lambda p, s, x: self.model.apply({"params": p, "batch_stats": s}, x, train=False))

    def step(self, x, y):
        self.params, self.stats, self.opt, val = self._step(self.params, self.stats, self.opt, x, y)
        return float(val)

    def accuracy(self, x, y, mean, std, batch=1000):
        import jax.numpy as jnp

        hits = 0
        for i in range(0, len(x), batch):
            z = self.logits(self.params, self.stats, _normalise(jnp.asarray(x[i:i + batch]), mean, std))
            hits += int((np.asarray(z).argmax(1) == y[i:i + batch]).sum())
        return hits / len(x)

    def save(self, path):
        import jax

        flat = {"/".join(str(k.key) for k in kp): np.asarray(v) for kp, v in
                jax.tree_util.tree_flatten_with_path({"params": self.params, "batch_stats": self.stats})[0]}
        np.savez(path, **flat)

    def load(self, path):
        import jax
        import jax.numpy as jnp

        z = np.load(path)
        tree = {"params": self.params, "batch_stats": self.stats}
        leaves = [jnp.asarray(z["/".join(str(k.key) for k in kp)]) for kp, _ in
                  jax.tree_util.tree_flatten_with_path(tree)[0]]
        tree = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), leaves)
        self.params, self.stats = tree["params"], tree["batch_stats"]


def train_teachers(args):
    import jax
    import jax.numpy as jnp

    d = cifar.load_cifar10(args.cifar10)
    x, y = d["x_train"][:args.limit], d["y_train"][:args.limit]
    noisy, _ = cifar.pairflip_labels(y, rho=0.2, seed=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = len(x) // args.batch
    for t in range(args.teachers):
        ck = out / f"teacher{t}.npz"
        if ck.exists():
            continue
        tr = _Trainer(args.width, args.epochs * steps_per_epoch, 0.1 * args.batch / 256, seed=t)
        key = jax.random.PRNGKey(1000 + t)
        log, t0 = [], time.time()
        for ep in range(args.epochs):
            perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, ep), len(x)))
            for s in range(steps_per_epoch):
                idx = perm[s * args.batch:(s + 1) * args.batch]
                xb = _augment(jax.random.fold_in(key, ep * 100_000 + s), jnp.asarray(x[idx]))
                tr.step(_normalise(xb, cifar.CIFAR10_MEAN, cifar.CIFAR10_STD), jnp.asarray(noisy[idx]))
            acc = tr.accuracy(d["x_test"], d["y_test"], cifar.CIFAR10_MEAN, cifar.CIFAR10_STD)
            log.append({"epoch": ep + 1, "clean_test_acc": acc, "seconds": time.time() - t0})
            print(f"teacher {t} epoch {ep + 1}: clean test acc {acc:.4f}", flush=True)
        tr.save(ck)
        (out / f"teacher{t}.json").write_text(json.dumps(log))


def train_student(args):
    import jax
    import jax.numpy as jnp

    d = cifar.load_cifar10(args.cifar10)
    x5, y5 = cifar.load_cifar5m(args.cifar5m, per_class=args.per_class)
    n = len(x5) if args.limit is None else min(args.limit, len(x5))
    steps = n // args.batch
    out = Path(args.out)
    ck = out / f"student_{args.mode}.npz"
    if ck.exists():
        return
    k_teachers = {"one": 1, "random10": 10, "ensemble5": 5, "labels": 0}[args.mode]
    teachers = []
    for t in range(k_teachers):
        tt = _Trainer(args.width, 1, 0.0, seed=t)
        tt.load(out / f"teacher{t}.npz")
        teachers.append(tt)
    st = _Trainer(args.width, steps, 0.1 * args.batch / 256, seed=10_000)
    key = jax.random.PRNGKey(7)
    perm = np.asarray(jax.random.permutation(key, len(x5)))[:n]
    log, t0 = [], time.time()
    for s in range(steps):
        idx = np.sort(perm[s * args.batch:(s + 1) * args.batch])
        xb = _augment(jax.random.fold_in(key, s), jnp.asarray(x5[idx]))
        xs = _normalise(xb, cifar.CIFAR5M_MEAN, cifar.CIFAR5M_STD)
        xt = _normalise(xb, cifar.CIFAR10_MEAN, cifar.CIFAR10_STD)  # teachers see their own normalisation
        if args.mode == "labels":
            yb = jnp.asarray(y5[idx])
        elif args.mode == "random10":  # one teacher per batch, drawn uniformly (the code's max_teachers)
            tt = teachers[int(jax.random.randint(jax.random.fold_in(key, 10**9 + s), (), 0, len(teachers)))]
            yb = jnp.argmax(tt.logits(tt.params, tt.stats, xt), axis=1)
        else:  # one teacher, or the argmax of the summed logits of 5 (the code's ensemble=True)
            yb = jnp.argmax(sum(tt.logits(tt.params, tt.stats, xt) for tt in teachers), axis=1)
        st.step(xs, yb)
        if (s + 1) % args.eval_every == 0 or s + 1 == steps:
            acc = st.accuracy(d["x_test"], d["y_test"], cifar.CIFAR5M_MEAN, cifar.CIFAR5M_STD)
            log.append({"step": s + 1, "clean_test_acc": acc, "seconds": time.time() - t0})
            print(f"student {args.mode} step {s + 1}: clean test acc {acc:.4f}", flush=True)
    st.save(ck)
    (out / f"student_{args.mode}.json").write_text(json.dumps(log))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["teachers", "student"])
    p.add_argument("--cifar10", required=True)
    p.add_argument("--cifar5m")
    p.add_argument("--out", required=True)
    p.add_argument("--mode", default="one", choices=["one", "random10", "ensemble5", "labels"])
    p.add_argument("--teachers", type=int, default=10)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=64, help="ResNet-18 base width (64 = the paper's)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images (smoke runs)")
    p.add_argument("--per-class", type=int, default=cifar.CIFAR5M_PER_CLASS)
    p.add_argument("--eval-every", type=int, default=400)
    args = p.parse_args(argv)
    if args.what == "teachers":
        train_teachers(args)
    else:
        if args.cifar5m is None:
            p.error("student needs --cifar5m")
        train_student(args)


if __name__ == "__main__":
    main()
