"""The batched grid evaluation of Ji & Zhu (``evaluate_grid``: one factorization, batched ρ × T × t
right-hand sides) is the twin of the scalar theory functions: it equals a naive loop that recomputes
every grid point with the public per-point functions (``weight_change_norm``, ``hard_label_effect``,
``oracle_norm``, ``feature_cosines``, ``risk_bound``) and float64 NumPy solves."""
import numpy as np
import pytest

import ntkd

INF = float("inf")


def _problem(n=40, m=60, R=50, seed=0):
    rng = np.random.default_rng(seed)
    x, xt, xr = (rng.normal(size=(k, 2)) * 5 for k in (n, m, R))
    f = lambda a: 3 * np.sin(a[:, 0] / 3) + a[:, 1] / 4  # noqa: E731
    g = lambda a: 3 * np.sin(a[:, 0] / 3) + a[:, 1] / 4 - 0.3  # noqa: E731  ground truth differs a little
    zt, ztt, ztr = f(x), f(xt), f(xr)
    return dict(x=x, xt=xt, xr=xr, zt=zt, yg=(g(x) > 0) * 1.0, zg=g(x), ztt=ztt, ygt=(g(xt) > 0) * 1.0,
                ztr=ztr, ygr=(ztr > 0) * 1.0, z0=rng.normal(size=n) * 0.3, z0t=rng.normal(size=m) * 0.3)


def _naive(kf, p, rho, T, t, jitter):
    """Every metric of one grid point, from scratch, with public ntkd functions and NumPy float64."""
    K = np.asarray(kf(p["x"], None, "ntk")) + jitter * np.eye(len(p["x"]))
    Kx = np.asarray(kf(p["xt"], p["x"], "ntk"))
    z_eff = np.asarray(ntkd.effective_logits(p["zt"], p["yg"], rho, T))
    dz = z_eff - p["z0"]
    if np.isinf(t):
        c = np.linalg.solve(K, dz)
        f = p["z0t"] + Kx @ c
        f_ref = np.asarray(ntkd.converged_student(Kx, K, z_eff, z0_train=p["z0"], z0_test=p["z0t"]))
        np.testing.assert_allclose(f, f_ref, rtol=1e-8, atol=1e-8)
    else:  # Eq. S1: df/dτ = -Θ (f - z_eff) / n  ==  gradient_descent_mse on one output column
        _, f = ntkd.gradient_descent_mse(K, z_eff)(t, p["z0"], p["z0t"], Kx)
        f = np.asarray(f)
        lam, V = np.linalg.eigh(K)
        c = V @ ((1 - np.exp(-lam * t / len(dz))) / lam * (V.T @ dz))
    w = np.sqrt(c @ K @ c)
    out = {"risk": np.mean(p["ztt"] * f < 0), "error": np.mean((f > 0) != (p["ygt"] > 0.5)), "w_norm": w}
    if np.isinf(t):
        np.testing.assert_allclose(w, float(ntkd.weight_change_norm(K, dz)), rtol=1e-8)
    dzg, dzt = p["zg"] - p["z0"], p["zt"] - p["z0"]
    cg = np.linalg.solve(K, dzg)
    out["cos_g"] = (c @ dzg) / (w * np.sqrt(dzg @ cg))
    dzh = np.asarray(ntkd.correction_logits(p["zt"], p["yg"], T))
    out["hle"] = float(ntkd.hard_label_effect(K, dzg, dzt, dzh))
    KR = np.asarray(kf(p["xr"], None, "ntk")) + jitter * np.eye(len(p["xr"]))
    zr = np.asarray(ntkd.effective_logits(p["ztr"], p["ygr"], rho, T))
    a = np.linalg.solve(KR, zr)
    onorm = np.sqrt(zr @ a)
    np.testing.assert_allclose(onorm, float(ntkd.oracle_norm(KR, zr)), rtol=1e-8)
    cos = (c @ np.asarray(kf(p["x"], p["xr"], "ntk")) @ a) / (w * onorm)
    out["alpha"] = np.arccos(min(abs(cos), 1.0))
    out["alpha_eq9"] = np.arccos(min(w / onorm, 1.0))
    diag = np.array([float(kf(v[None], None, "ntk")[0, 0]) for v in p["xt"]])
    zte = np.asarray(ntkd.effective_logits(p["ztt"], p["ygt"], rho, T))
    cos_te = ntkd.feature_cosines(zte, diag, onorm)
    out["bound"] = float(ntkd.risk_bound(out["alpha"], cos_te))
    out["oracle_norm"] = onorm
    return out


@pytest.mark.parametrize("times", [(INF,), (3.0, 40.0, INF)], ids=["converged-cholesky", "times-eigh"])
def test_evaluate_grid_matches_naive_loop(times):
    p = _problem()
    kf = ntkd.mlp_kernel_fn(3)
    rhos, Ts, jitter = [1.0, 0.9, 0.3], [10.0, 2.0], 1e-6
    res = ntkd.evaluate_grid(kf, p["x"], p["zt"], p["yg"], p["xt"], p["ztt"], p["ygt"], rho=rhos, T=Ts, t=times,
                          z_g_train=p["zg"], z0_train=p["z0"], z0_test=p["z0t"], jitter=jitter,
                          reference=(p["xr"], p["ztr"], p["ygr"]))
    assert res["factor"] == ("chol" if len(times) == 1 else "eigh")
    for it, t in enumerate(times):
        for i, rho in enumerate(rhos):
            for j, T in enumerate(Ts):
                ref = _naive(kf, p, rho, T, t, jitter)
                for k, v in ref.items():
                    np.testing.assert_allclose(res[k][it, i, j], v, rtol=1e-6, atol=1e-9,
                                               err_msg=f"{k} at t={t}, rho={rho}, T={T}")
    # the grid is informative: hard labels change the student (risk differs between ρ = 1 and 0.3)
    assert not np.allclose(res["w_norm"][-1, 0], res["w_norm"][-1, 2])


def test_evaluate_grid_rejects_bad_input():
    p = _problem(n=8, m=5, R=4)
    kf = ntkd.mlp_kernel_fn(1)
    with pytest.raises(ValueError, match="rho"):
        ntkd.evaluate_grid(kf, p["x"], p["zt"], p["yg"], p["xt"], p["ztt"], p["ygt"], rho=[0.0], T=[1.0])
    with pytest.raises(ValueError, match="T"):
        ntkd.evaluate_grid(kf, p["x"], p["zt"], p["yg"], p["xt"], p["ztt"], p["ygt"], rho=[1.0], T=[-1.0])
    with pytest.raises(ValueError, match="z_t_train"):
        ntkd.evaluate_grid(kf, p["x"], p["zt"][:3], p["yg"], p["xt"], p["ztt"], p["ygt"], rho=[1.0], T=[1.0])


@pytest.mark.parametrize("kw, match", [
    ({"rho": [np.nan]}, "`rho`"), ({"T": [np.nan]}, "`T`"), ({"T": [np.inf]}, "`T`"),
    ({"jitter": -1e-3}, "`jitter`"), ({"y_g_train": "pm1"}, "`y_g`"), ({"x_test": "nan"}, "`x_test`"),
])
def test_evaluate_grid_refuses_bad_input_before_computing(kw, match):
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    zt, ztt = np.sin(x[:, 0]), np.sin(xt[:, 0])
    args = dict(x_train=x, z_t_train=zt, y_g_train=(zt > 0) * 1.0, x_test=xt, z_t_test=ztt,
                y_g_test=(ztt > 0) * 1.0, rho=[0.5], T=[2.0])
    if kw.get("y_g_train") == "pm1":
        kw = {"y_g_train": 2 * args["y_g_train"] - 1}
    if kw.get("x_test") == "nan":
        kw = {"x_test": np.where(xt > 1, np.nan, xt)}
    with pytest.raises(ValueError, match=match):
        ntkd.evaluate_grid(ntkd.mlp_kernel_fn(1), **{**args, **kw})
