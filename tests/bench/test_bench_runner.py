"""``ntkd bench`` (issue 6) mechanics on a tiny grid: rows, accuracy columns, resume, refusals.

Timings are never asserted. The float32 error column is checked against an independent float64 NumPy
evaluation of the depth-1 ReLU kernel (arc-cosine formulas) so the column is known to mean what it says.
"""
import json

import numpy as np
import pytest

from ntkd.bench import runner as bench


def _relu_depth1_numpy(x):
    """Depth-1 ReLU NNGP/NTK (W_std = b_std = 1, NTK parameterization) in float64 NumPy."""
    d = x.shape[1]
    s0 = x @ x.T / d + 1
    q = np.diag(s0)
    c = np.clip(s0 / np.sqrt(np.outer(q, q)), -1, 1)
    np.fill_diagonal(c, 1)
    th = np.arccos(c)
    nngp1 = np.sqrt(np.outer(q, q)) * (np.sin(th) + (np.pi - th) * c) / (2 * np.pi)
    dot = (np.pi - th) / (2 * np.pi)
    nngp = nngp1 + 1
    return nngp, nngp + s0 * dot


def test_bench_rows_resume_and_table(tmp_path):
    rows = bench.run_bench(tmp_path, n=[60], depth=[1, 2], d=[3], dtype=["float32", "float64"],
                           activation=["relu", "erf"], repeats=1, nt_python="none", progress=None)
    assert len(rows) == 8
    for r in rows:
        assert r["ntkd_s"] > 0 and r["gram_s"] > 0 and r["entries_per_s"] == pytest.approx(60 * 60 / r["ntkd_s"])
        assert "nt_s" not in r
        if r["dtype"] == "float32":
            assert 0 < r["ntkd_err"] <= 1e-5 and 0 < r["ntkd_scaled_err"] <= 1e-5
        else:
            assert r["ntkd_err"] is None and r["ntkd_scaled_err"] is None
    # the float64 reference the error column uses is the kernel itself: check it independently once
    import jax.numpy as jnp
    import ntkd

    x = bench._inputs(60, 3)
    ours = ntkd.mlp_kernel_fn(1)(jnp.asarray(x), None)
    for a, b in zip(ours, _relu_depth1_numpy(x)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10)
    lines = (tmp_path / "bench.jsonl").read_text().splitlines()
    assert len(lines) == 8
    again = bench.run_bench(tmp_path, n=[60], depth=[1, 2], d=[3], dtype=["float32", "float64"],
                            activation=["relu", "erf"], repeats=1, nt_python="none", progress=None)
    assert len((tmp_path / "bench.jsonl").read_text().splitlines()) == 8  # nothing recomputed
    assert [r["key"] for r in again] == [r["key"] for r in rows]
    table = (tmp_path / "bench.md").read_text().strip().splitlines()
    assert len(table) == 2 + 8 and "speedup" in table[0]
    assert json.loads((tmp_path / "bench.json").read_text())["rows"][0]["key"] == rows[0]["key"]


def test_bench_ntk_alone_rows_share_the_folder(tmp_path):
    pair = bench.run_bench(tmp_path, n=[50], depth=[1], d=[3], dtype=["float32"], activation=["relu"], repeats=1,
                           nt_python="none", progress=None)
    rows = bench.run_bench(tmp_path, n=[50], depth=[1], d=[3], dtype=["float32", "float64"], activation=["relu"],
                           repeats=1, get="ntk", nt_python="none", progress=None)
    assert [r["key"] for r in rows] == ["relu|L=1|d=3|n=50|float32|ntk", "relu|L=1|d=3|n=50|float64|ntk"]
    assert pair[0]["key"] == "relu|L=1|d=3|n=50|float32" and all(r["get"] == "ntk" for r in rows)
    assert len((tmp_path / "bench.jsonl").read_text().splitlines()) == 3
    # the error column is the NTK's alone: float32 against the independent float64 NumPy NTK
    import jax.numpy as jnp
    import ntkd

    x = bench._inputs(50, 3)
    ntk32 = np.asarray(ntkd.mlp_kernel_fn(1)(jnp.asarray(x, jnp.float32), None, "ntk"), np.float64)
    ref = _relu_depth1_numpy(x)[1]
    assert rows[0]["ntkd_err"] == pytest.approx(np.max(np.abs(ntk32 - ref) / ref), rel=0.05, abs=1e-8)
    dg = np.sqrt(np.diag(ref))
    assert rows[0]["ntkd_scaled_err"] == pytest.approx(np.max(np.abs(ntk32 - ref) / np.outer(dg, dg)), rel=0.05,
                                                       abs=1e-8)
    assert 0 < rows[0]["ntkd_err"] <= 1e-5
    table = (tmp_path / "bench.md").read_text().splitlines()
    assert "| kernels |" in table[0] and all("| NTK |" in line for line in table[2:])
    with pytest.raises(ValueError, match="get"):
        bench.run_bench(tmp_path, n=[8], depth=[1], d=[2], get="nngp", progress=None)


@pytest.mark.parametrize("kw, name", [({"dtype": ["float16"]}, "dtype"), ({"activation": ["tanh"]}, "activation"),
                                      ({"n": [0]}, "n"), ({"repeats": 0}, "repeats"),
                                      ({"nt_python": "/no/such/python"}, "nt_python")])
def test_bench_refuses_bad_arguments(tmp_path, kw, name):
    with pytest.raises(ValueError, match=name):
        bench.run_bench(tmp_path, **{"n": [8], "depth": [1], "d": [2], "progress": None, **kw})


def test_empirical_bench_rows_resume_and_table(tmp_path):
    rows = bench.run_empirical_bench(tmp_path, n=[9], width=[16], depth=[1, 2], d=3, repeats=1, nt_python="none",
                                     progress=None)
    assert [r["depth"] for r in rows] == [1, 2]
    for r in rows:
        assert r["n_params"] == 3 * 16 + 16 + (r["depth"] - 1) * (16 * 16 + 16) + 16 + 1
        assert r["ntkd_jacobian_s"] > 0 and r["ntkd_ntvp_s"] > 0 and "speedup" not in r
        assert 0 < r["ntkd_jacobian_err"] <= 1e-5 and 0 < r["ntkd_ntvp_err"] <= 1e-5  # float32 vs float64
        assert 0 < r["ntkd_structured_err"] <= 1e-5 and r["ntkd_structured_s"] > 0
    bench.run_empirical_bench(tmp_path, n=[9], width=[16], depth=[1, 2], d=3, repeats=1, nt_python="none",
                              progress=None)
    assert len((tmp_path / "empirical.jsonl").read_text().splitlines()) == 2  # nothing recomputed
    table = (tmp_path / "empirical.md").read_text().strip().splitlines()
    assert len(table) == 2 + 2 and table[0].count("|") == table[1].count("|") == table[2].count("|")
    with pytest.raises(ValueError, match="width"):
        bench.run_empirical_bench(tmp_path, width=[0], progress=None)
    with pytest.raises(ValueError, match="nt_python"):
        bench.run_empirical_bench(tmp_path, n=[9], width=[16], nt_python="/no/such/python", progress=None)
