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
