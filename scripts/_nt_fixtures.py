"""Runs inside the pinned neural-tangents environment (see scripts/make_nt_fixtures.sh).

Writes reference kernels and gradient-flow predictions computed by neural-tangents 0.6.5 in float64 to
an .npz file. Every configuration is described by a JSON string stored next to its arrays so the test
side can rebuild the same ntkd kernel without guessing.
"""
import json
import sys

import jax

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

out_path = sys.argv[1]
rng = np.random.default_rng(20201020)
x1 = rng.normal(size=(7, 5)) * 1.5
x2 = rng.normal(size=(4, 5))
x1[3] = x1[1] * 0.999 + 1e-3  # a near-duplicate pair
x2d = rng.normal(size=(6, 2)) * 5.0  # Ji & Zhu inputs: d = 2, N(0, 5^2)


def act_layer(spec):
    name = spec[0]
    if name == "relu":
        return stax.Relu()
    if name == "erf":
        return stax.Erf(*spec[1:])
    if name == "identity":
        return stax.Identity()
    if name == "leaky_relu":
        return stax.LeakyRelu(spec[1])
    if name == "ab_relu":
        return stax.ABRelu(spec[1], spec[2])
    raise ValueError(spec)


configs = []
for depth in (0, 1, 3, 5):
    for act in (["relu"], ["erf", 1.0, 1.0, 0.0], ["identity"], ["leaky_relu", 0.1], ["ab_relu", -0.5, 2.0],
                ["erf", 2.0, 0.5, 0.3]):
        for W_std, b_std in ((1.0, 1.0), (2.0**0.5, None), (1.3, 0.05)):
            configs.append(dict(depth=depth, activation=act, W_std=W_std, b_std=b_std, parameterization="ntk"))
for depth in (1, 3):
    for act in (["relu"], ["erf", 1.0, 1.0, 0.0]):
        for b_std in (1.0, None):
            configs.append(dict(depth=depth, activation=act, W_std=1.5, b_std=b_std,
                                parameterization="standard", width=64))
configs.append(dict(depth=10, activation=["relu"], W_std=1.0, b_std=1.0, parameterization="ntk"))

arrays = {"x1": x1, "x2": x2, "x2d": x2d}
for i, cfg in enumerate(configs):
    width = cfg.get("width", 512)
    layers = []
    for _ in range(cfg["depth"]):
        layers += [stax.Dense(width, cfg["W_std"], cfg["b_std"], parameterization=cfg["parameterization"]),
                   act_layer(cfg["activation"])]
    layers.append(stax.Dense(1, cfg["W_std"], cfg["b_std"], parameterization=cfg["parameterization"]))
    _, _, kernel_fn = stax.serial(*layers)
    k11 = kernel_fn(x1, None, ("nngp", "ntk"))
    k12 = kernel_fn(x1, x2, ("nngp", "ntk"))
    arrays[f"cfg{i}"] = np.array(json.dumps(cfg))
    arrays[f"cfg{i}_nngp11"] = np.asarray(k11.nngp)
    arrays[f"cfg{i}_ntk11"] = np.asarray(k11.ntk)
    arrays[f"cfg{i}_nngp12"] = np.asarray(k12.nngp)
    arrays[f"cfg{i}_ntk12"] = np.asarray(k12.ntk)
arrays["n_configs"] = np.array(len(configs))

# Gradient-flow / GP predictions (pins time units and diag_reg scaling): Ji & Zhu student, L = 3.
_, _, kernel_fn = stax.serial(stax.Dense(512, 1.0, 1.0), stax.Relu(), stax.Dense(512, 1.0, 1.0), stax.Relu(),
                              stax.Dense(512, 1.0, 1.0), stax.Relu(), stax.Dense(1, 1.0, 1.0))
xtr = x2d
xte = rng.normal(size=(3, 2)) * 5.0
ytr = rng.normal(size=(6, 2))
f0tr = rng.normal(size=(6, 2)) * 0.3
f0te = rng.normal(size=(3, 2)) * 0.3
ktt = kernel_fn(xtr, None, "ntk")
kte = kernel_fn(xte, xtr, "ntk")
ts = np.array([0.0, 0.3, 2.0, 25.0])
arrays.update(pred_xtr=xtr, pred_xte=xte, pred_ytr=ytr, pred_f0tr=f0tr, pred_f0te=f0te, pred_t=ts)
for lr, reg in ((1.0, 0.0), (0.7, 1e-2)):
    predict_fn = nt.predict.gradient_descent_mse(ktt, ytr, learning_rate=lr, diag_reg=reg)
    tr, te = predict_fn(ts, f0tr, f0te, kte)
    tri, tei = predict_fn(None, f0tr, f0te, kte)
    tag = f"lr{lr}_reg{reg}"
    arrays[f"pred_{tag}_train"] = np.asarray(tr)
    arrays[f"pred_{tag}_test"] = np.asarray(te)
    arrays[f"pred_{tag}_train_inf"] = np.asarray(tri)
    arrays[f"pred_{tag}_test_inf"] = np.asarray(tei)
kte_te = kernel_fn(xte, None, "nngp")
ktt_n = kernel_fn(xtr, None, "nngp")
kte_n = kernel_fn(xte, xtr, "nngp")
gp = nt.predict.gp_inference(ktt_n, ytr, diag_reg=1e-3)
mean_cov = gp("nngp", kte_n, kte_te)
arrays["gp_mean"] = np.asarray(mean_cov.mean)
arrays["gp_cov"] = np.asarray(mean_cov.covariance)
arrays["versions"] = np.array(json.dumps({"jax": jax.__version__, "neural_tangents": nt.__version__}))
np.savez_compressed(out_path, **arrays)
print(f"wrote {len(configs)} kernel configurations and predictor references to {out_path}")
