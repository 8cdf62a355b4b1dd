"""The Ji & Zhu study through the engine, the results store and the CLI.

* ``run_sweep`` rows equal ``evaluate_grid`` on the same data;
* a sweep killed with SIGKILL and restarted ends with exactly the rows of an uninterrupted run;
* 4 forced host devices give the same rows as one device;
* malformed or inconsistent configs are refused before any computation, naming the key.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkd
from ntkd.experiments.ji_zhu import sweep as S
from ntkd.experiments.ji_zhu.teachers import task_teacher
from ntkd.experiments.store import ResultsStore
from ntkd.theories.transfer_risk.grid import METRICS

INF = float("inf")

SMALL = {
    "name": "t", "seed": 3,
    "task": {"kind": "kernel_teacher", "modes": 6, "fit_n": 64, "stop_time": [30.0, INF]},
    "student": {"depth": 2},
    "grid": {"rho": [1.0, 0.8], "T": [5.0], "t": [INF], "n": [8, 24], "seeds": 3},
    "eval": {"n_test": 40, "n_ref": 30, "seed_chunk": 1},
}


def _rowset(path):
    with ResultsStore(path, read_only=True) as st:
        rows = st.rows()
    keys = ("variant", "depth", "n", "seed", "rho", "T", "time")
    return {tuple(r[k] for k in keys): tuple(r[m] for m in METRICS) for r in rows}, len(rows)


def _row_mismatches(a, b):
    """Where two row sets differ: bitwise on CPU. On a GPU the same program run in another process may
    round differently (XLA autotunes its cuBLAS/cuSOLVER algorithms per process; seen on an H100: a few
    ulps in float64 metrics), so there metrics agree to 1e-10 relative, 1e-13 absolute."""
    if a.keys() != b.keys():
        return [("keys", sorted(set(a) ^ set(b))[:5])]
    exact = jax.default_backend() == "cpu"
    bad = []
    for k in a:
        for m, u, v in zip(METRICS, a[k], b[k]):
            both_nan = isinstance(u, float) and isinstance(v, float) and np.isnan(u) and np.isnan(v)
            same = u == v or both_nan or (not exact and u is not None and v is not None
                                          and np.isclose(u, v, rtol=1e-10, atol=1e-13))
            if not same:
                bad.append((k, m, u, v))
    return bad


def test_run_sweep_rows_equal_evaluate_grid(tmp_path):
    cfg = S.SweepConfig.from_dict(SMALL)
    path = S.run_sweep(cfg, tmp_path, progress=None)
    rows, count = _rowset(path)
    assert count == cfg.n_rows() == 2 * 2 * 3 * 2
    # recompute variant stop_time=30, n = 24, seed 2 with the per-set function on the same data
    task = dict(cfg.task, stop_time=30.0)
    keys = S._keys(cfg.seed)
    x_te = jax.random.normal(keys["test"], (40, 2)) * 5.0
    teacher = task_teacher(task)
    zt_te, zg_te = teacher(x_te, jax.random.fold_in(keys["test"], 1))
    yg_te = S._labels(task, zt_te, zg_te)
    x_ref = jax.random.normal(keys["ref"], (30, 2)) * 5.0
    zt_r, zg_r = teacher(x_ref, jax.random.fold_in(keys["ref"], 1))
    d = S._seed_data({}, 2, teacher, task, cfg.student, 2, 24, keys, x_te, zt_te, yg_te, jnp.float64)
    res = ntkd.evaluate_grid(ntkd.mlp_kernel_fn(2), d[0][:24], d[1][:24], d[2][:24], x_te, d[5], d[6],
                          rho=[1.0, 0.8], T=[5.0], z_g_train=d[3][:24],
                          reference=(x_ref, zt_r, S._labels(task, zt_r, zg_r)))
    for i, rho in enumerate([1.0, 0.8]):
        got = rows[("stop_time=30.0", 2, 24, 2, rho, 5.0, INF)]
        for k, m in enumerate(METRICS):
            if got[k] is not None:
                np.testing.assert_allclose(got[k], res[m][0, i, 0], rtol=1e-9, atol=1e-12, err_msg=m)


def test_float32_sweep_rows_match_a_float64_solve_of_the_same_data(tmp_path):
    """A float32 sweep (with the jitter a float32 sweep requires) against float64 ``evaluate_grid`` on
    the very arrays the sweep drew (float32 data cast up), the kernels and solves in float64.

    Tolerance: a backward-stable solve in float32 has relative error about κ·eps32, with κ the
    condition number of Θ_n + jitter·I, computed here in float64; continuous metrics must agree to
    20·κ·eps32. Risk and error count sign disagreements over the 40 test points, and a student logit
    within that error of 0 may flip: they may differ by one test point (1/40), in a few rows at most.
    """
    jitter = 1e-3
    cfg = S.SweepConfig.from_dict(dict(SMALL, dtype="float32", student=dict(SMALL["student"], jitter=jitter),
                                       task=dict(SMALL["task"], stop_time=30.0),
                                       grid=dict(SMALL["grid"], seeds=2)))
    rows, count = _rowset(S.run_sweep(cfg, tmp_path, progress=None))
    assert count == cfg.n_rows() == 2 * 2 * 2
    f32 = jnp.float32
    keys = S._keys(cfg.seed)
    x_te = jax.random.normal(keys["test"], (40, 2), f32) * 5.0
    teacher = task_teacher(cfg.task, dtype=f32)
    zt_te, zg_te = teacher(x_te, jax.random.fold_in(keys["test"], 1))
    yg_te = S._labels(cfg.task, zt_te, zg_te)
    x_ref = jax.random.normal(keys["ref"], (30, 2), f32) * 5.0
    zt_r, zg_r = teacher(x_ref, jax.random.fold_in(keys["ref"], 1))
    up = lambda a: np.asarray(a, np.float64)  # noqa: E731
    kf = ntkd.mlp_kernel_fn(2)
    eps32 = float(np.finfo(np.float32).eps)
    flips = 0
    for seed in range(2):
        d = S._seed_data({}, seed, teacher, cfg.task, cfg.student, 2, 24, keys, x_te, zt_te, yg_te, f32)
        assert d[0].dtype == f32 and d[1].dtype == f32
        for n in (8, 24):
            x = up(d[0][:n])
            kappa = np.linalg.cond(np.asarray(kf(x, None, "ntk")) + jitter * np.eye(n))
            tol = 20 * kappa * eps32
            assert tol < 0.05, f"the test's own setting is too ill-conditioned (κ = {kappa:.3g})"
            res = ntkd.evaluate_grid(kf, x, up(d[1][:n]), up(d[2][:n]), up(x_te), up(d[5]), up(d[6]),
                                  rho=[1.0, 0.8], T=[5.0], z_g_train=up(d[3][:n]), jitter=jitter,
                                  reference=(up(x_ref), up(zt_r), up(S._labels(cfg.task, zt_r, zg_r))))
            for i, rho in enumerate([1.0, 0.8]):
                got = dict(zip(METRICS, rows[("base", 2, n, seed, rho, 5.0, INF)]))
                for m in ("w_norm", "oracle_norm", "cos_g", "hle"):
                    np.testing.assert_allclose(got[m], res[m][0, i, 0], rtol=tol, atol=tol * 1e-3,
                                               err_msg=f"{m} n={n} seed={seed} rho={rho}")
                # angles: arccos loses relative accuracy near 0; compare the cosines
                np.testing.assert_allclose(np.cos(got["alpha"]), np.cos(res["alpha"][0, i, 0]), atol=tol)
                for m in ("risk", "error"):
                    diff = abs(got[m] - res[m][0, i, 0])
                    assert diff <= 1 / 40 + 1e-9, (m, n, seed, rho, diff)
                    flips += diff > 1e-6  # a flip moves a fraction by 1/40; float32 rounding by ~1e-9
    assert flips <= 2


def _write_cfg(tmp_path, cfg):
    lines = [f'name = "{cfg["name"]}"', f'seed = {cfg["seed"]}']
    for sec in ("task", "student", "grid", "eval"):
        lines.append(f"[{sec}]")
        for k, v in cfg[sec].items():
            lines.append(f"{k} = {json.dumps(v).replace('Infinity', 'inf')}")
    p = tmp_path / "cfg.toml"
    p.write_text("\n".join(lines))
    return p


def _cli(args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "ntkd.cli", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_rows(tmp_path):
    cfg = dict(SMALL, grid=dict(SMALL["grid"], n=[8, 16, 24, 32], seeds=4))
    path = _write_cfg(tmp_path, cfg)
    # the uninterrupted reference runs in this process (the CLI's own run_sweep; no start-up, no plot);
    # its programs land in the run's compilation cache, which the CLI processes below then load
    expected, n_expected = _rowset(S.run_sweep(S.load_config(path), tmp_path / "full", progress=None))
    assert n_expected == 2 * 4 * 4 * 2

    killed = tmp_path / "killed"
    p = _cli(["sweep", str(path), "--out", str(killed), "--quiet"])
    db = killed / "results.sqlite"
    done = 0
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                    done = c.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
        if done >= 5:
            os.kill(p.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    partial, n_partial = _rowset(db)
    assert 0 < n_partial < n_expected and n_partial % 2 == 0  # whole blocks only
    assert not _row_mismatches({k: expected[k] for k in partial}, partial)
    p = _cli(["sweep", str(path), "--out", str(killed), "--quiet"])
    assert p.wait(timeout=600) == 0, p.stderr.read()
    resumed, n_resumed = _rowset(db)
    assert n_resumed == n_expected  # no duplicates, nothing lost
    assert not _row_mismatches(resumed, expected)  # same numbers
    # a rerun of a finished sweep computes nothing and adds nothing
    p = _cli(["sweep", str(path), "--out", str(killed), "--quiet"])
    assert p.wait(timeout=600) == 0
    assert _rowset(db)[1] == n_expected


@pytest.mark.slow
def test_four_host_devices_give_the_one_device_rows(tmp_path):
    cfg = dict(SMALL, grid=dict(SMALL["grid"], seeds=5), eval=dict(SMALL["eval"], seed_chunk=0))
    path = _write_cfg(tmp_path, cfg)
    # one device: in this process (the CLI's run_sweep, as the subprocess below runs it); 4: a subprocess
    assert len(jax.local_devices()) == 1
    out = {1: _rowset(S.run_sweep(S.load_config(path), tmp_path / "1", progress=None))}
    for ndev in (4,):
        env = {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={ndev}",
               "JAX_PLATFORMS": "cpu"}
        code = textwrap.dedent(f"""
            import jax, ntkd.experiments.ji_zhu.sweep as S
            assert len(jax.local_devices()) == {ndev}
            S.run_sweep(S.load_config({str(path)!r}), {str(tmp_path / str(ndev))!r}, progress=None)
        """)
        r = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        out[ndev] = _rowset(tmp_path / str(ndev) / "results.sqlite")
    assert out[1][1] == out[4][1] == cfg_rows(cfg)
    for k, v in out[1][0].items():
        np.testing.assert_allclose(np.array(out[4][0][k], float), np.array(v, float), rtol=1e-10, atol=1e-12)


def cfg_rows(cfg):
    return S.SweepConfig.from_dict(cfg).n_rows()


BAD = [
    ({"grid": {"rho": [1.2], "T": [1.0], "n": [4]}}, "grid.rho"),
    ({"grid": {"rho": [0.0], "T": [1.0], "n": [4]}}, "grid.rho"),
    ({"grid": {"rho": [1.0], "T": [0.0], "n": [4]}}, "grid.T"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [0]}}, "grid.n"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4], "t": [-1.0]}}, "grid.t"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4, 4]}}, "grid.n"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4.5]}}, "grid.n"),
    ({"grid": {"rho": [1.0], "T": [1.0]}}, "grid.n"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4], "temperature": [2.0]}}, "grid.temperature"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "task": {"kind": "cifar"}}, "task.kind"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "task": {"p_flip": 2.0}}, "task.p_flip"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "task": {"modes": []}}, "task.modes"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "student": {"W_std": [1.0, 2.0]}}, "student.W_std"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "student": {"depth": 0}}, "student.depth"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "dtype": "float32"}, "student.jitter"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "eval": {"n_test": "many"}}, "eval.n_test"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "extra": 1}, "extra"),
    ({}, "grid"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "task": {"teacher_width": 64}}, "task.teacher_width"),
    # non-finite values would pass validation, claim the store and fail later (inf only where the default is)
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "task": {"amplitude": float("inf")}}, "task.amplitude"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "student": {"W_std": float("nan")}}, "student.W_std"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "student": {"jitter": float("inf")}}, "student.jitter"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "eval": {"memory_gib": float("inf")}}, "eval.memory_gib"),
    ({"grid": {"rho": [1.0], "T": [1.0], "n": [4]}, "task": {"kind": "network_teacher", "teacher_lr": 0.0}},
     "task.teacher_lr"),
]


@pytest.mark.parametrize("raw,key", BAD, ids=[k for _, k in BAD])
def test_bad_configs_are_refused_naming_the_key(raw, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        S.SweepConfig.from_dict(raw)


def test_cli_refuses_bad_toml_before_computing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\nrho = [1.0]\nT = [1.0]\nn = [4]\n[student]\ndepht = 3\n')
    out = tmp_path / "out"
    p = _cli(["sweep", str(bad), "--out", str(out)])
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "student.depht" in err and "known keys" in err
    assert not out.exists()
    broken = tmp_path / "broken.toml"
    broken.write_text("[grid\nrho = 1")
    p = _cli(["sweep", str(broken), "--out", str(out)])
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "not valid TOML" in err


def test_store_refuses_another_config_and_exports(tmp_path):
    cfg = S.SweepConfig.from_dict(dict(SMALL, task=dict(SMALL["task"], stop_time=INF),
                                       grid=dict(SMALL["grid"], n=[8], seeds=2)))
    path = S.run_sweep(cfg, tmp_path, progress=None)
    other = S.SweepConfig.from_dict(dict(SMALL, grid=dict(SMALL["grid"], n=[8], seeds=3)))
    with pytest.raises(ValueError, match="different sweep configuration"):
        S.run_sweep(other, tmp_path, progress=None)
    with ResultsStore(path, read_only=True) as st:
        csv_path = st.to_csv(tmp_path / "r.csv")
        rows = st.rows()
    lines = csv_path.read_text().strip().splitlines()
    assert len(lines) == 1 + len(rows) == 1 + cfg.n_rows()
    r = rows[0]
    conf = json.loads(r["config"])
    assert conf["task"]["kind"] == "kernel_teacher" and conf["rho"] == r["rho"] and r["version"]
    assert 0 <= r["risk"] <= 1 and r["w_norm"] > 0 and 0 <= r["alpha"] <= np.pi / 2


def test_store_exports_to_pandas_and_names_pandas_when_missing(tmp_path, monkeypatch):
    """to_pandas gives one DataFrame row per stored row, columns and values as rows() has them; without
    pandas it raises an ImportError that names the package and the alternatives."""
    pd = pytest.importorskip("pandas")
    cfg = S.SweepConfig.from_dict(dict(SMALL, task=dict(SMALL["task"], stop_time=INF),
                                       grid=dict(SMALL["grid"], n=[8], seeds=2)))
    path = S.run_sweep(cfg, tmp_path, progress=None)
    with ResultsStore(path, read_only=True) as st:
        df, rows, cols = st.to_pandas(), st.rows(), st.columns()
        assert isinstance(df, pd.DataFrame)
        assert list(df.columns) == cols and len(df) == len(rows) == cfg.n_rows()
        for i, r in enumerate(rows):
            for c in ("variant", "n", "seed", "rho", "T", "config", "version"):
                assert df[c].iloc[i] == r[c], c
            for m in METRICS:
                if r[m] is None:
                    assert pd.isna(df[m].iloc[i]), m
                else:
                    assert df[m].iloc[i] == r[m], m
        import builtins
        real_import = builtins.__import__

        def no_pandas(name, *a, **k):
            if name == "pandas" or name.startswith("pandas."):
                raise ImportError("No module named 'pandas'")
            return real_import(name, *a, **k)

        monkeypatch.setattr(builtins, "__import__", no_pandas)
        with pytest.raises(ImportError, match=r"pip install pandas.*to_csv"):
            st.to_pandas()


def test_reproduce_fig1_through_the_cli(tmp_path):
    p = _cli(["reproduce", "ji-zhu-fig1", "--out", str(tmp_path), "--quiet"])
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert (tmp_path / "fig1" / "fig1.png").stat().st_size > 10_000
    s = json.loads((tmp_path / "fig1" / "summary.json").read_text())
    # E1 thresholds of the brief at T = 5
    got = [s["left"][k]["threshold"] for k in ("0.89524", "0.46564", "0.0978", "0.014851")]
    np.testing.assert_allclose(got, [1.75, 3.5, 5.25, 7.0], atol=1e-3)


def test_example_config_is_valid():
    cfg = S.load_config(Path(__file__).parents[2] / "scripts" / "configs" / "example_sweep.toml")
    assert cfg.n_rows() == 2 * 1 * 3 * 3 * 4 * 2 * 1 and len(cfg.variants()) == 2


def test_network_teacher_task_is_the_trained_finite_teacher(tmp_path):
    """kind = "network_teacher": the sweep's teacher is ntkd.finite.train_teacher's checkpoint times r,
    and a sweep over it runs; the keys do not enter other configs (their hashes are unchanged)."""
    import optax

    from ntkd import finite as F
    from ntkd.theories.transfer_risk import tasks as T_

    raw = {"name": "net", "task": {"kind": "network_teacher", "modes": 5, "teacher_width": 16, "teacher_depth": 2,
                                   "stop_epoch": 40, "teacher_batch": 64, "reduction": 0.5},
           "student": {"depth": 2}, "grid": {"rho": [1.0, 0.5], "T": [2.0], "n": [8, 16], "seeds": 2},
           "eval": {"n_test": 32, "n_ref": 0}}
    cfg = S.SweepConfig.from_dict(raw)
    task = cfg.variants()[0][1]
    teacher = task_teacher(task)
    mix = T_.gaussian_mixture(jax.random.fold_in(jax.random.PRNGKey(0), 0), 5)
    init_fn, apply_fn = F.mlp(2, 16, 2, dtype=jnp.float64)
    run = F.train_teacher(apply_fn, init_fn(jax.random.fold_in(jax.random.PRNGKey(0), 2)), mix.logits, epochs=40,
                          batch_size=64, stop_epochs=[40], optimizer=optax.adam(1e-2))
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(9), (20, 2))) * 5
    zt, zg = teacher(x, None)
    np.testing.assert_allclose(zt, 0.5 * apply_fn(run.at(40), x), rtol=1e-12)
    np.testing.assert_allclose(zg, mix.logits(x), rtol=1e-12)
    path = S.run_sweep(cfg, tmp_path, progress=None)
    rows, count = _rowset(path)
    assert count == cfg.n_rows() == 2 * 2 * 2
    assert all(np.isfinite(v[0]) for v in rows.values())
    assert "teacher_width" not in S.SweepConfig.from_dict(SMALL).to_json()


def test_fig1_checks_hold_on_the_solver_and_fail_on_counter_examples(tmp_path):
    import copy

    from ntkd.experiments.ji_zhu.figures import _fig1, fig1_checks

    data = _fig1(tmp_path)
    assert all(c["holds"] for c in data["checks"]), data["checks"]
    g = data["paper_gd"][0.2]
    assert abs(g["z_t=13"] - 13) < 0.3 and abs(g["z_t=15"] - 15) < 0.3  # rejoins z_eff = z_t as in the paper
    bad = copy.deepcopy(data)
    bad["left"][0.46564]["threshold"] += 0.01  # a threshold off by 1e-2
    bad["right"][5.0]["threshold"] = 4.0  # T = 5 no longer widens the split
    bad["min |z_eff| - |z_t|"]["T=0.2"] = -1e-3
    bad["paper_gd"][0.2]["z_t=13"] = 11.46  # the GD started at 0: flat beyond 11.46
    failed = {c for c, ok, _ in fig1_checks(bad) if not ok}
    assert len(failed) == 5, failed


def _fig2_rows(seed_noise=0.02, flip_at=None):
    """Synthetic Fig. 2 rows: risk ∝ n^-slope(ρ) with seed noise; ρ = 1 falls fastest and ends lowest."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        shared = rng.normal(0, seed_noise, 4)  # the same training sets for every ρ of one seed
        for rho, slope, a0 in ((1.0, 0.7, 0.2), (0.5, 0.3, 0.15), (0.1, 0.2, 0.12)):
            for i, n in enumerate((32, 128, 512, 2048)):
                risk = a0 * (n / 32) ** -slope * np.exp(shared[i] + rng.normal(0, 0.002))
                alpha = 1.0 - (0.2 if rho == 1 else 0.05) * np.log(n / 32) + shared[i]
                if flip_at is not None and rho == 1.0 and n == flip_at:
                    risk, alpha = 1.0, 2.0
                rows.append({"rho": rho, "n": n, "seed": seed, "risk": risk, "alpha": alpha})
    return rows


def test_fig2_checks_need_every_large_n_beyond_two_sem_and_fail_on_counter_examples():
    from ntkd.experiments.ji_zhu.figures import fig2_checks

    pdata = {1.0: {"p(1.5)": 1.0, "p(1.55)": 0.95, "beta_p_half": 1.565}}
    good = fig2_checks(_fig2_rows(), pdata)
    assert all(ok for _, ok, _ in good), good
    # ρ = 1 worse at one large n (not the last): the "every large n" checks fail, first vs last would not
    bad = {c for c, ok, _ in fig2_checks(_fig2_rows(flip_at=512), pdata) if not ok}
    assert any("every large n" in c and "risk" in c for c in bad) and any("angle" in c for c in bad)
    # differences within the seed spread (unpaired noise 10x the effect) do not hold
    rows = _fig2_rows()
    rng = np.random.default_rng(1)
    for r in rows:
        r["risk"] *= np.exp(rng.normal(0, 3.0))
    assert not fig2_checks(rows, pdata)[0][1]
    assert not fig2_checks(_fig2_rows(), {1.0: {"p(1.5)": 0.99, "p(1.55)": 0.6, "beta_p_half": 1.55}})[4][1]


NS = [10, 18, 32, 56, 100, 178, 316, 562, 1000]


def _norm_rows(curves, field="variant", seeds=5, noise=0.005, extra=None):
    """Rows whose seed-mean norms have the data inefficiency I(n) = curves[key](log n) (integrated on NS)."""
    rng = np.random.default_rng(0)
    ln = np.log(NS)
    rows = []
    for key, I in curves.items():
        logw = np.concatenate([[0.0], np.cumsum(np.diff(ln) * I((ln[1:] + ln[:-1]) / 2))])
        for sd in range(seeds):
            for n, lw in zip(NS, logw + rng.normal(0, noise, len(NS))):
                rows.append({field: key, "n": n, "seed": sd, "w_norm": float(np.exp(lw)), **(extra or {})})
    return rows


def test_fig3_and_fig4_checks_hold_on_the_claimed_shapes_and_fail_on_counter_examples():
    from ntkd.experiments.ji_zhu.figures import fig3_checks, fig4_checks, jackknife_I

    mixture = {f"modes={q}": (lambda u, k=k: 0.3 + 0.05 * k - 0.015 * u) for k, q in enumerate((22, 48, 103))}
    refs = {"kind='zero'": lambda u: 0.01 + 0 * u, "kind='random'": lambda u: 0.5 + 0 * u}
    flips = {f"p_flip={p}": (lambda u, j=j: 0.3 + 0.1 * j - 0.015 * u) for j, p in enumerate((0.0, 0.01, 0.5))}
    J = lambda c: jackknife_I(_norm_rows(c))  # noqa: E731
    assert all(ok for _, ok, _ in fig3_checks(J(mixture), J(refs), J(flips)))
    swapped = dict(zip(mixture, reversed(list(mixture.values()))))  # harder tasks with lower I
    bad = [ok for _, ok, _ in fig3_checks(J(swapped), J(refs), J(flips))]
    assert bad == [True, True, False, True]
    noisy = jackknife_I(_norm_rows(mixture, noise=0.5))  # the effect inside the seed spread
    assert not fig3_checks(noisy, J(refs), J(flips))[2][1]

    stops = {f"stop_time={t}": (lambda u, j=j: 0.1 + 0.1 * j - 0.01 * u) for j, t in enumerate((10.0, 100.0, 1e4))}
    hard = {1.0: lambda u: 0.4 - 0.05 * u, 0.99: lambda u: 0.45 - 0.05 * u,
            1 - 1.688e-2: lambda u: np.maximum(0.5, 0.8 - 0.1 * u)}
    mid, right = jackknife_I(_norm_rows(stops)), jackknife_I(_norm_rows(hard, field="rho"), key="rho")
    assert all(ok for _, ok, _ in fig4_checks(mid, right))
    still_falling = {**hard, 1 - 1.688e-2: lambda u: 0.9 - 0.1 * u}  # no plateau at the largest ratio
    assert [ok for _, ok, _ in fig4_checks(mid, jackknife_I(_norm_rows(still_falling, field="rho"), key="rho"))] \
        == [True, True, True, False]
    late_first = dict(zip(stops, reversed(list(stops.values()))))
    assert not fig4_checks(jackknife_I(_norm_rows(late_first)), right)[0][1]


def test_fig5_checks_need_paired_seed_margins_and_every_n():
    from ntkd.experiments.ji_zhu.figures import fig5_checks

    rng = np.random.default_rng(0)

    def rows(best_gain=0.01, flip_n=None):
        m = []
        for sd in range(6):
            shared = rng.normal(0, 0.02)
            for rho, e in ((1.0, 0.10), (0.99, 0.10 - best_gain), (0.9, 0.2)):
                m.append({"rho": rho, "n": 512, "seed": sd, "error": e + shared + rng.normal(0, 1e-3)})
        r = []
        for sd in range(6):
            for n, scale in ((32, 1.0), (128, 3.0), (512, 9.0)):
                for v, sign in (("stop_time=10.0", 1), ("stop_time=1000.0", 0.2), ("stop_time=100000.0", -1)):
                    s = -sign if (flip_n == n and v == "stop_time=10.0") else sign
                    r.append({"n": n, "variant": v, "seed": sd, "hle": s * scale + rng.normal(0, 0.05)})
        return m, r

    assert all(ok for _, ok, _ in fig5_checks(*rows()))
    assert [ok for _, ok, _ in fig5_checks(*rows(best_gain=0.0))][0] is False  # no gain beyond the seed spread
    bad = [ok for _, ok, _ in fig5_checks(*rows(flip_n=128))]
    assert bad[2] is False and bad[3] is True  # one n with the wrong sign breaks "every n"


def test_a_refused_config_changes_nothing_on_disk_and_names_the_keys(tmp_path):
    import jax

    cfg = S.SweepConfig.from_dict(dict(SMALL, grid=dict(SMALL["grid"], n=[8], seeds=1)))
    x64 = jax.config.jax_enable_x64
    with jax.enable_x64(False):
        S.run_sweep(cfg, tmp_path, progress=None)
        assert not jax.config.jax_enable_x64  # the float64 sweep ran in a scope, the setting is as it was
    assert jax.config.jax_enable_x64 == x64
    before = (tmp_path / "config.json").read_text()
    other = S.SweepConfig.from_dict(dict(SMALL, grid=dict(SMALL["grid"], n=[8], seeds=1, T=[3.0])))
    with pytest.raises(ValueError, match=r"keys that differ: grid\.T"):
        S.run_sweep(other, tmp_path, progress=None)
    assert (tmp_path / "config.json").read_text() == before
    # run-time knobs are not part of the results' identity: a resume may change them
    knobs = S.SweepConfig.from_dict(dict(SMALL, grid=dict(SMALL["grid"], n=[8], seeds=1),
                                         eval=dict(SMALL["eval"], seed_chunk=2, memory_gib=1.0)))
    assert knobs.hash() == cfg.hash() and knobs.to_json() != cfg.to_json()
    S.run_sweep(knobs, tmp_path, progress=None)


def test_cli_store_failures_show_what_to_do(tmp_path):
    """What a user sees: a corrupt store and a store of another configuration are refused with exit 2
    and a message naming the file and the fix, before computing; the refused run leaves config.json."""
    path = _write_cfg(tmp_path, dict(SMALL, grid=dict(SMALL["grid"], n=[8], seeds=1)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"this is not a database" * 100)
    p = _cli(["--no-compile-cache", "sweep", str(path), "--out", str(out)])
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "corrupt or truncated" in err and "results.sqlite" in err, err
    (out / "results.sqlite").unlink()
    cfg = S.load_config(path)
    with ResultsStore(out / "results.sqlite", S.SCHEMA) as st:  # a store bound to cfg (nothing computed)
        st.claim(cfg.to_json(), cfg.hash(), "test")
    before = "the config.json of the first run"
    (out / "config.json").write_text(before)
    (tmp_path / "o").mkdir()
    other = _write_cfg(tmp_path / "o", dict(SMALL, grid=dict(SMALL["grid"], n=[8], seeds=1, T=[7.0])))
    p = _cli(["--no-compile-cache", "sweep", str(other), "--out", str(out)])
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "keys that differ: grid.T" in err, err
    assert (out / "config.json").read_text() == before
