"""neural-tangents side of ``ntkd bench``: runs in the pinned reference environment, never imports ntkd.

``ntkd bench`` starts it once as ``NT_PYTHON ntkd/_nt_worker.py`` (see scripts/nt_env.sh) and talks to
it in JSON lines. Each request on stdin is one case:
    {"key", "activation": "relu" | "erf", "depth", "x": path to (n, d) .npy in the case's dtype,
     "get": "pair" | "ntk" (absent: "pair"),
     "ref": {"nngp": path, "ntk": path} float64 reference kernels (only "ntk" for get "ntk"), "repeats"}
It builds the network ``ntkd.mlp_kernel_fn(depth, activation=...)`` describes (depth × [Dense(W_std=1,
b_std=1), act] and a final Dense, NTK parameterization), jits ``kernel_fn(x, None, ("nngp", "ntk"))``
(``kernel_fn(x, None, "ntk")`` for get "ntk"),
calls it once (compilation) and once more untimed (warm-up), times ``repeats`` calls and answers one line:
    {"key", "seconds": [...], "compile_s", "dtype", "err": {"nngp", "ntk"}, "scaled_err": {...}, "jax",
     "neural_tangents"}
with err the max over entries of |k - k_ref| / |k_ref| and scaled_err that of |k - k_ref| / √(k_ref,ii
k_ref,jj) (the definitions ``ntkd.bench`` uses).

A request with ``"kind": "empirical"`` times ``nt.empirical_ntk_fn`` instead:
    {"kind": "empirical", "key", "depth", "width", "params": path to .npz (W0, b0, W1, b1, ... in
     neural-tangents' Dense layout, W (fan_in, fan_out)), "x": path, "implementation": 1 | 2 | 3,
     "ref": path to the float64 (n, n) reference, "repeats"}
on the ``stax`` network Dense(width), Relu, ..., Dense(1) (W_std = b_std = 1, NTK parameterization)
with those parameters, jitted as ``ntk_fn(x, None, params)`` with ``vmap_axes=0`` and the output axis
traced; it answers the same fields with err = {"ntk": ...}. A case that raises is answered
{"key", "error": message} and the worker goes on (neural-tangents' structured derivatives, for one,
fail on jax 0.5.3). A blank line or end of input stops it.

JAX's x64 flag is global, and with it on neural-tangents silently promotes float32 inputs to float64
(NumPy float64 constants in its recursions), so ``ntkd bench`` runs one worker per dtype: this one
enables x64 only when ``NTKD_NT_X64=1``, and answers with the dtype its kernels actually came out in.
"""
import os
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", os.environ.get("NTKD_NT_X64") == "1")
import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

_fns = {}


def _kernel(activation, depth, get):
    if (activation, depth, get) not in _fns:
        act = {"relu": stax.Relu, "erf": stax.Erf}[activation]()
        layers = [stax.Dense(512, W_std=1.0, b_std=1.0), act] * depth + [stax.Dense(1, W_std=1.0, b_std=1.0)]
        kernel_fn = stax.serial(*layers)[2]
        if get == "pair":
            _fns[activation, depth, get] = jax.jit(lambda x: tuple(kernel_fn(x, None, ("nngp", "ntk"))))
        else:
            _fns[activation, depth, get] = jax.jit(lambda x: (kernel_fn(x, None, "ntk"),))
    return _fns[activation, depth, get]


def _empirical(case):
    layers = [stax.Dense(case["width"], W_std=1.0, b_std=1.0), stax.Relu()] * case["depth"]
    apply_fn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=1.0))[1]
    z = np.load(case["params"])
    dense = [(jnp.asarray(z[f"W{i}"]), jnp.asarray(z[f"b{i}"])) for i in range(case["depth"] + 1)]
    params = [p for layer in dense for p in (layer, ())][:-1]  # Dense, Relu, ..., Dense
    ntk_fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                         implementation=case["implementation"]))
    return lambda x: (ntk_fn(x, None, params),)


def _answer(case):
    empirical = case.get("kind") == "empirical"
    f = _empirical(case) if empirical else _kernel(case["activation"], case["depth"], case.get("get", "pair"))
    x = jnp.asarray(np.load(case["x"]))
    t0 = time.perf_counter()
    out = jax.block_until_ready(f(x))
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(f(x))  # one untimed warm-up call, as ntkd's side does
    secs = []
    for _ in range(case["repeats"]):
        t0 = time.perf_counter()
        out = jax.block_until_ready(f(x))
        secs.append(time.perf_counter() - t0)
    err, scaled = {}, {}
    out_dtype = str(out[-1].dtype)
    refs = {"ntk": case["ref"]} if empirical else case["ref"]
    for name, k in zip(refs, out):
        ref = np.load(refs[name])
        diff = np.abs(np.asarray(k, np.float64) - ref)
        err[name] = float(np.max(diff / np.abs(ref)))
        d = np.sqrt(np.abs(np.diag(ref)))
        scaled[name] = float(np.max(diff / np.outer(d, d)))
    return {"key": case["key"], "seconds": secs, "compile_s": compile_s, "dtype": out_dtype, "err": err,
            "scaled_err": scaled, "jax": jax.__version__, "neural_tangents": nt.__version__}


for line in sys.stdin:
    if not line.strip():
        break
    case = json.loads(line)
    try:
        answer = _answer(case)
    except Exception as e:  # report, keep serving: one failing implementation must not end the run
        answer = {"key": case["key"], "error": f"{type(e).__name__}: {e}"[:500], "jax": jax.__version__,
                  "neural_tangents": nt.__version__}
    print(json.dumps(answer), flush=True)
