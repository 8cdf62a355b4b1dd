"""Digests of the optimized XLA programs of ntkd's analytic kernels, source locations left out, so that
two checkouts can be shown to compile to the same programs (a refactor with no speed change).

    PYTHONPATH=/path/to/checkout python benchmarks/hlo_digest.py > digests.txt   # once per checkout
    cmp digests_a.txt digests_b.txt

Programs: float32 and float64 x (ReLU depth 3, ReLU depth 10, erf depth 5) x (symmetric pair, cross
pair, NTK alone), jitted, at n = 4000 (1000 against 4000 for the cross pair), d = 100.
"""
import hashlib
import re

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import ntkd  # noqa: E402


def _strip(text: str) -> str:
    text = re.sub(r",? ?metadata=\{[^}]*\}", "", text)
    keep = [line for line in text.splitlines()
            if not re.match(r'^\s*\d+ ["{]', line)
            and not any(k in line for k in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"))]
    return "\n".join(re.sub(r"stack_frame_id=\d+", "", line) for line in keep)


def main():
    x = np.random.default_rng(0).normal(size=(4000, 100))
    for dt in (np.float32, np.float64):
        for depth, act in ((3, "relu"), (10, "relu"), (5, "erf")):
            kf = ntkd.mlp_kernel_fn(depth, activation=act)
            for name, f in (("pair", lambda a: kf(a)), ("cross", lambda a: kf(a[:1000], a)),
                            ("ntk", lambda a: kf(a, None, "ntk"))):
                text = _strip(jax.jit(f).lower(x.astype(dt)).compile().as_text())
                print(np.dtype(dt).name, act, depth, name, hashlib.sha256(text.encode()).hexdigest()[:16])


if __name__ == "__main__":
    main()
