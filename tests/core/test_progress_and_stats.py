"""Layer L0: the honest ETA of long runs, and the small statistics of stored results."""
import io

import numpy as np
import pytest

from ntkd._core import progress as P
from ntkd._core.stats import loglog_slope, mean_sem


def test_loglog_slope_of_a_power_law_and_too_few_points():
    x = np.array([16.0, 64.0, 256.0, 1024.0])
    assert loglog_slope(x, 3.0 * x**-0.5) == pytest.approx(-0.5, abs=1e-12)
    assert loglog_slope(np.r_[x, 0.0], np.r_[3.0 * x**-0.5, 1.0]) == pytest.approx(-0.5, abs=1e-12)  # x = 0 left out
    assert np.isnan(loglog_slope([1.0, 2.0], [1.0, -1.0]))


def test_mean_sem_is_the_sample_standard_error():
    v = np.array([[1.0, 2.0], [3.0, 5.0], [5.0, 11.0]])
    m, s = mean_sem(v)
    np.testing.assert_allclose(m, [3.0, 6.0])
    np.testing.assert_allclose(s, [2.0 / np.sqrt(3), np.std(v[:, 1], ddof=1) / np.sqrt(3)])
    m1, s1 = mean_sem(v[:1])
    np.testing.assert_allclose(s1, [0.0, 0.0])


def test_eta_takes_compilation_out_of_the_rate_and_adds_it_back_per_group(monkeypatch):
    """10 units of work in 5 groups; the first unit took 10 s of which 8 s compiling. A naive ETA says
    90 s; the compute rate is 1 unit / 2 s (18 s for 9 units), plus 8 s of compiling for each of the 4
    groups still to start: 50 s."""
    clock = {"t": 100.0}
    comp = {"c": (3, 1.0)}  # compilations before the run are not counted
    monkeypatch.setattr(P.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(P, "compile_stats", lambda: comp["c"])
    monkeypatch.setattr(P, "_thread_compile_seconds", lambda: comp["c"][1])
    out = io.StringIO()
    bar = P.Progress("run", 10, groups=5, stream=out)
    bar.start_group()
    clock["t"] += 10.0
    comp["c"] = (5, 9.0)
    bar.update(1, note="first")
    assert bar.eta() == pytest.approx(50.0)
    assert "[1/10 blocks] first" in out.getvalue() and "8 s compiling 2 XLA programs" in out.getvalue()
    assert "ETA 50 s" in out.getvalue()
    stats = bar.close()
    assert stats["compile_seconds"] == pytest.approx(8.0) and stats["programs_compiled"] == 2


def test_compile_stats_count_a_new_program():
    import jax
    import jax.numpy as jnp

    n0, s0 = P.compile_stats()
    jax.jit(lambda v: jnp.sin(v) * 3.0 + 0.25)(jnp.arange(7.0))
    n1, s1 = P.compile_stats()
    assert n1 >= n0 + 1 and s1 > s0


def test_eta_fits_overhead_and_work_and_charges_later_groups_their_own_compile_time(monkeypatch):
    """Two groups done: 3 small blocks (work 1 each) in 3 s of compute after 8 s compiling, then 3 blocks
    of work 10 in 6 s after 2 s compiling. The fit a·blocks + b·work gives a = 8/9, b = 1/9 s; the last
    group, 3 blocks of work 100, costs 3a + 300b = 36 s of compute plus 2 s of compiling (the second
    group's, not the first's, which also held the run's one-time programs): 38 s. Flops alone (18 s per
    unit of work seen first) would have said 5400 s."""
    clock, comp = {"t": 0.0}, {"c": (0, 0.0)}
    monkeypatch.setattr(P.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(P, "compile_stats", lambda: comp["c"])
    monkeypatch.setattr(P, "_thread_compile_seconds", lambda: comp["c"][1])
    bar = P.Progress("run", 9, total_work=3 + 30 + 300, groups=3, stream=None)
    for blocks_s, compile_s, work in ((3.0, 8.0, 3.0), (6.0, 2.0, 30.0)):
        bar.start_group()
        clock["t"] += blocks_s + compile_s
        comp["c"] = (comp["c"][0] + 1, comp["c"][1] + compile_s)
        bar.update(3, work)
    assert bar.eta() == pytest.approx(38.0)


def test_eta_counts_this_threads_compilations_and_waits_not_other_threads(monkeypatch):
    """A chunk of 10 s during which another thread compiled for 5 s (a program compiled ahead) and this
    thread waited 2 s for a compilation: 8 s of compute for the rate (not 5 s), and the run's compile
    seconds report all 5 s of compiling."""
    import threading

    clock = {"t": 0.0}
    monkeypatch.setattr(P.time, "perf_counter", lambda: clock["t"])
    P.compile_stats()  # registers the listener
    bar = P.Progress("run", 2, groups=1, stream=None)
    bar.start_group()
    clock["t"] += 10.0
    th = threading.Thread(target=P._listener, args=("/jax/core/compile/backend_compile_duration", 5.0))
    th.start()
    th.join()
    P.note_compile_wait(2.0)
    bar.update(1)
    assert bar.eta() == pytest.approx(8.0)
    stats = bar.close()
    assert stats["compile_seconds"] == pytest.approx(5.0) and stats["programs_compiled"] == 1


def test_write_text_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    import os

    from ntkd._core.io import write_text_atomic

    p = tmp_path / "summary.md"
    write_text_atomic(p, "old\n")
    write_text_atomic(p, "new\n")
    assert p.read_text() == "new\n" and os.listdir(tmp_path) == ["summary.md"]

    def killed(src, dst):  # the process dies between writing the temporary and the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(p, "half")
    assert p.read_text() == "new\n" and os.listdir(tmp_path) == ["summary.md"]
