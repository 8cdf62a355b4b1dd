"""Fit the polynomials behind ntkd's arcsin (``ntkd.kernels._numerics.asin_small``); prints the coefficients.

asin(x) = x + x·z·P(z) with z = x², |x| <= 1/2. P is the power series Σ_k c_{k+1} z^k of
(asin(√z) - √z)/z^{3/2}, c_k = (2k)! / (4^k (k!)² (2k+1)), all terms positive, summed exactly in
Fraction arithmetic (no cancellation, no float reference needed). The fit is a least-squares Chebyshev
fit of that series on z ∈ [0, 1/4], converted to the power basis; its relative error on P is printed
(it enters asin(x) scaled by z·P(z)/(1 + z·P(z)) <= 0.045).

Usage: python scripts/fit_asin.py [DEGREE_FLOAT32 DEGREE_FLOAT64]
"""
import sys
from fractions import Fraction
from math import comb

import numpy as np


def series(z: Fraction, terms=60) -> Fraction:
    s = Fraction(0)
    zk = Fraction(1)
    for k in range(1, terms):
        s += Fraction(comb(2 * k, k), 4**k * (2 * k + 1)) * zk
        zk *= z
    return s


def fit(deg, m=400):
    zs = [Fraction(1, 8) * (1 - Fraction(np.cos(np.pi * (i + 0.5) / m)).limit_denominator(10**18)) for i in range(m)]
    ref = np.array([float(series(z)) for z in zs])
    zf = np.array([float(z) for z in zs])
    cheb = np.polynomial.chebyshev.Chebyshev.fit(zf, ref, deg, domain=[0, 0.25])
    power = cheb.convert(kind=np.polynomial.Polynomial, domain=[-1, 1], window=[-1, 1]).coef
    test = [Fraction(i, 4 * 4000) for i in range(4001)]
    exact = np.array([float(series(z)) for z in test])
    got = np.polynomial.polynomial.polyval(np.array([float(z) for z in test]), power)
    return power, float(np.max(np.abs(got - exact) / exact))


if __name__ == "__main__":
    d32, d64 = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (5, 11)
    for name, deg in (("float32", d32), ("float64", d64)):
        c, err = fit(deg)
        print(f"{name}: degree {deg}, max relative error of P on [0, 1/4]: {err:.2e}")
        print("  (" + ", ".join(repr(float(v)) for v in c) + ")")
