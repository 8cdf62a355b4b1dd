"""The malach figure catalogue: verdicts are computed from the stored rows and fail when the rows
contradict the claim; rows already stored are not recomputed (resume); names are checked."""
import json

import pytest

from ntkd.experiments.malach import figures as F


def _write(d, fig, rows):
    (d / "rows").mkdir(parents=True)
    (d / "figure.json").write_text(json.dumps({"paper": "malach", "figure": fig}))
    for r in rows:
        (d / "rows" / f"{r['key']}.json").write_text(json.dumps(r))


def _c2_rows(student):
    rows = []
    for m in (500, 2000):
        for s in range(3):
            for t in ("1nn", "laplace", "ntk"):
                rows.append({"key": f"m{m}_s{s}_{t}", "teacher_risk": 0.31 + 0.001 * s, "teacher_p1_up": 0.80,
                             "replication": 0.95, "student_risk": student + 0.001 * s, "student_dis_bayes": 0.01,
                             "eps_h": 0.01, "eps_n": 0.01})
            rows.append({"key": f"m{m}_s{s}_direct", "student_risk": 0.205, "student_dis_bayes": 0.01})
    return rows


@pytest.mark.parametrize("student, holds", [(0.205, True), (0.33, False)])
def test_c2_verdicts_follow_the_rows(tmp_path, student, holds):
    _write(tmp_path, "c2", _c2_rows(student))
    out = F.plot(tmp_path)
    md = (tmp_path / "summary.md").read_text()
    assert out["ok"][1] is holds and out["ok"][2] is holds  # student beats teacher / near Bayes
    assert ("does not hold" in md) is (not holds)
    assert (tmp_path / "c2.png").stat().st_size > 10_000


def test_c6_verdicts_follow_the_rows(tmp_path):
    rows = [{"key": f"s{s}", "teacher_risk": 0.31, "ridge_1e-06": 0.305 + 0.001 * s, "ridge_1": 0.21, "ridge_10": 0.208,
             "flow_1": 0.21, "flow_100": 0.207, "flow_10000": 0.225 + 0.001 * s} for s in range(3)]
    _write(tmp_path, "c6", rows)
    assert F.plot(tmp_path)["ok"] == [True, True, True]
    rows = [dict(r, **{"ridge_1e-06": 0.21}) for r in rows]  # an interpolating student that denoises: claim fails
    _write(tmp_path / "b", "c6", rows)
    assert F.plot(tmp_path / "b")["ok"][0] is False


def test_rows_are_computed_once(tmp_path):
    calls = []
    row = F._row(tmp_path, "k", lambda: calls.append(1) or {"x": 1.0})
    again = F._row(tmp_path, "k", lambda: calls.append(1) or {"x": 2.0})
    assert row == again == {"key": "k", "x": 1.0} and len(calls) == 1


def test_unknown_figure_is_refused(tmp_path):
    with pytest.raises(ValueError, match="malach-c2"):
        F.reproduce("malach-fig9", tmp_path)


def _c5_rows(mid_risk, mid_regime):
    rows = []
    for s in range(2):
        r = {"key": f"s{s}", "1nn_risk": 0.32, "1nn_replication": 1.0, "1nn_regime": 2.0}
        for n, sigmas in (("gaussian", (0.002, 0.005, 0.03)), ("laplace", (0.002, 0.1))):
            for sg in sigmas:
                small = sg <= 0.005
                risk = 0.32 + 0.001 * s if small else (mid_risk + 0.002 * s if n == "gaussian" else 0.29)
                r |= {f"{n}_{sg:g}_agree": 0.99 if small else 0.7, f"{n}_{sg:g}_risk": risk,
                      f"{n}_{sg:g}_replication": (risk - 0.2) / 0.12,
                      f"{n}_{sg:g}_regime": 2.0 if small else (mid_regime if n == "gaussian" else 1.0)}
        rows.append(r)
    return rows


@pytest.mark.parametrize("mid_risk, mid_regime, holds", [(0.43, 3.0, True), (0.30, 1.0, False)])
def test_c5_verdicts_follow_the_rows(tmp_path, mid_risk, mid_regime, holds):
    _write(tmp_path, "c5", _c5_rows(mid_risk, mid_regime))
    out = F.plot(tmp_path)
    assert out["ok"] == [True, True, holds, holds, True]
    md = (tmp_path / "summary.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| gaussian | 0.03 |"))
    assert ("not a sampler" in row) is holds and ("does not hold" in md) is (not holds)


@pytest.mark.parametrize("late_gain, holds", [(0.0, True), (0.01, False)])
def test_c7_verdicts_follow_the_rows(tmp_path, late_gain, holds):
    rows = []
    for m, floor in ((200, 0.23), (2000, 0.205)):
        for s in range(3):
            e = 0.001 * s
            rows.append({"key": f"m{m}_s{s}", "teacher_risk": 0.32, "direct_risk": floor + e,
                         "student_n1": floor + 0.03 + e, "student_n10": floor + late_gain + e,
                         "student_n100": floor + e})
    _write(tmp_path, "c7", rows)
    out = F.plot(tmp_path)
    assert out["ok"] == [holds, True]


@pytest.mark.parametrize("interpolated", [1.0, 0.0])
def test_mlp_summary_reports_interpolation_and_the_regime(tmp_path, interpolated):
    R = 2
    rows = []
    for s in range(2):
        r = {"key": f"s{s}", "mlp_steps_mean": 2000.0, "mlp_steps_max": 3000.0, "mlp_train_acc_min": interpolated,
             "mlp_all_interpolated": interpolated, "direct_risk": 0.22}
        for t, rep, code in (("mlp", 0.6, 1.0), ("1nn", 1.0, 2.0)):
            r |= {f"{t}_p1_up": 0.85, f"{t}_replication": rep, f"{t}_regime": code, f"{t}_gap": 0.18}
            r |= {f"{t}_risk_r{i}": 0.27 + 0.01 * i for i in range(R)}
            r |= {f"{t}_student_risk_r{i}": 0.21 + 0.001 * i for i in range(R)}
        rows.append(r)
    _write(tmp_path, "mlp", rows)
    (tmp_path / "figure.json").write_text(json.dumps({"paper": "malach", "figure": "mlp", "sizes": F._sizes("mlp", True) | {"R": R}}))
    out = F.plot(tmp_path)
    assert out["ok"] == [interpolated == 1.0, True, True]
    assert "**partial sampler**" in (tmp_path / "summary.md").read_text()
    assert out["floor"] == pytest.approx(0.64 * 0.2 + 0.32 * 0.3 + 0.04 * 0.8, abs=1e-12)  # E|Bin(2, .8)/2 - .8|
