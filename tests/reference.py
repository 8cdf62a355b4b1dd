"""Independent float64 NumPy reference implementations (written separately from ntkd's JAX code).

Entry-by-entry formulas in plain NumPy/`math`, no shared helpers with ntkd.
"""
import math

import numpy as np


def _relu_family(a, b, s11, s12, s22):
    """E[phi(u) phi(v)] and E[phi'(u) phi'(v)] for phi = a*min(x,0) + b*max(x,0)."""
    norm = math.sqrt(s11 * s22)
    if norm == 0.0:
        return 0.0, (a * a + b * b) / 2  # degenerate: zero variance
    rho = max(-1.0, min(1.0, s12 / norm))
    th = math.acos(rho)
    # arc-cosine kernel of order 1 (Cho & Saul): E[relu u relu v] = norm/(2 pi) (sin th + (pi - th) cos th)
    j1 = norm / (2 * math.pi) * (math.sin(th) + (math.pi - th) * math.cos(th))
    e_uv = s12
    k = (a - b) ** 2 * j1 + a * b * e_uv
    # P(u>0, v>0) = (pi - th) / (2 pi);  P(u>0, v<0) = th / (2 pi)
    p_pp = (math.pi - th) / (2 * math.pi)
    p_pm = th / (2 * math.pi)
    kd = b * b * p_pp + a * a * p_pp + 2 * a * b * p_pm
    return k, kd


def _erf_family(a, b, c, s11, s12, s22):
    """phi = a erf(b x) + c (Williams 1997)."""
    bb = 2 * b * b
    k = a * a * 2 / math.pi * math.asin(bb * s12 / math.sqrt((1 + bb * s11) * (1 + bb * s22))) + c * c
    det = (1 + bb * s11) * (1 + bb * s22) - (bb * s12) ** 2
    kd = a * a * b * b * 4 / (math.pi * math.sqrt(det))
    return k, kd


def act_maps(activation):
    if activation == "relu":
        return lambda *s: _relu_family(0.0, 1.0, *s)
    if activation == "identity":
        return lambda s11, s12, s22: (s12, 1.0)
    if activation == "erf":
        return lambda *s: _erf_family(1.0, 1.0, 0.0, *s)
    name, *p = activation
    if name == "leaky_relu":
        return lambda *s: _relu_family(p[0], 1.0, *s)
    if name == "ab_relu":
        return lambda *s: _relu_family(p[0], p[1], *s)
    if name == "erf":
        return lambda *s: _erf_family(*p, *s)
    raise ValueError(activation)


def mlp_kernels(x1, x2, depth, activation="relu", W_std=1.0, b_std=1.0, parameterization="ntk", width=None):
    """Float64 NNGP and NTK, one entry at a time (2x2 covariance propagated per pair)."""
    x1 = np.asarray(x1, np.float64)
    x2 = np.asarray(x2, np.float64)
    f = act_maps(activation)
    d = x1.shape[1]
    w2 = W_std ** 2
    bb = 0.0 if b_std is None else b_std ** 2
    nngp = np.zeros((len(x1), len(x2)))
    ntk = np.zeros((len(x1), len(x2)))
    for i, u in enumerate(x1):
        for j, v in enumerate(x2):
            s11, s12, s22 = u @ u / d, u @ v / d, v @ v / d
            fan_in = d
            th = 0.0
            for layer in range(depth + 1):
                if layer > 0:
                    (k12, kd12), (k11, _), (k22, _) = f(s11, s12, s22), f(s11, s11, s11), f(s22, s22, s22)
                    th = th * kd12
                    s11, s12, s22 = k11, k12, k22
                    fan_in = width
                new12 = w2 * s12 + bb
                if parameterization == "ntk":
                    th = new12 + w2 * th
                else:
                    th = fan_in * s12 + (0.0 if b_std is None else 1.0) + w2 * th
                s11, s12, s22 = w2 * s11 + bb, new12, w2 * s22 + bb
            nngp[i, j], ntk[i, j] = s12, th
    return nngp, ntk


def scaled_error(got, ref, diag1, diag2):
    """max |got - ref| / sqrt(K(x,x) K(x',x')): the error relative to the kernel's scale at each pair."""
    scale = np.sqrt(np.outer(np.abs(diag1), np.abs(diag2)))
    return float(np.max(np.abs(np.asarray(got, np.float64) - ref) / scale))
