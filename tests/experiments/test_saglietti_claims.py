"""Saglietti & Zdeborová (2022) figure checks can fail: each claim check of the catalogue (brief §4.3 Q2, Q7,
Q8 and the messages of Figs 1, 6, 8, 11, 12) holds on the paper's own digitized curves and breaks on a
constructed counter-example; the digitized check reports a miss with its number ("does not hold")."""
import numpy as np
import pytest

from ntkd.experiments.saglietti import figures
from ntkd.experiments.saglietti.figures import DIGITIZED, claim_checks


def curve(pts):
    xs = np.array(sorted(pts), float)
    return xs, np.array([pts[x] for x in sorted(pts)], float)


def digitized(fig, **extra):
    th = {name: curve(pts) for name, pts in DIGITIZED[fig].items()}
    th.update(extra)
    return th


def verdicts(fig, th):
    return {name: ok for name, ok, _line in claim_checks(fig, th)}


LAMS = np.array([1e-3, 1e-2, .1, .2, .3, .5, 1])


def test_q2_teacher_optimality_inherited():
    student = curve(DIGITIZED["fig3"]["KD a=4.5"])  # the paper's curve: minimum near λ̃ = 0.3
    teacher = (LAMS, 0.1416 + 0.01 * np.log(LAMS / 0.265) ** 2)  # a teacher optimal at 0.265 (paper)
    assert verdicts("fig3", {"KD a=4.5": student, "teacher a=4.5": teacher})["Q2"] is True
    far = (LAMS, 0.1416 + 0.01 * np.log(LAMS / 0.02) ** 2)  # a teacher optimal at 0.02: factor 15 away
    (_name, ok, line), = claim_checks("fig3", {"KD a=4.5": student, "teacher a=4.5": far})
    assert ok is False and "does not hold" in line
    # a student without an interior minimum (monotone decreasing) is at the grid's end: 1/0.265 > 2
    mono = (LAMS, 0.2 - 0.01 * np.log(LAMS))
    assert verdicts("fig3", {"KD a=4.5": mono, "teacher a=4.5": teacher})["Q2"] is False


def test_q7_robustness_to_over_regularization():
    th = digitized("fig7")
    assert verdicts("fig7", th)["Q7"] is True  # paper: .1735 < .1764 at α = 9
    th["KD lt=1"] = (th["KD lt=1"][0], th["KD lt=1"][1] + np.array([0, 0, 0.004]))  # .1775 > .1764
    assert verdicts("fig7", th)["Q7"] is False
    th["KD lt=1"] = (th["KD lt=1"][0], np.array([.1952, .1827, np.nan]))  # a failed solve is no success
    assert verdicts("fig7", th)["Q7"] is False


def test_q8_label_smoothing_match():
    th = digitized("fig9")
    for a in (1.5, 4.5, 7.5):
        x, y = th[f"smoothed a={a:g}"]
        th[f"KD smoothed teacher a={a:g}"] = (x, y + 2e-4)
    assert verdicts("fig9", th)["Q8"] is True
    x, y = th["KD smoothed teacher a=4.5"]
    th["KD smoothed teacher a=4.5"] = (x, y + np.where(x == 0.2, 2e-3, 0.0))  # one ε off by 2e-3
    (_, ok, line), = claim_checks("fig9", th)
    assert ok is False and "2.2e-03 at α = 4.5" in line
    th["KD smoothed teacher a=4.5"] = (x, np.where(x == 0.2, np.nan, y))
    assert verdicts("fig9", th)["Q8"] is False


def test_other_new_figure_claims_hold_on_paper_values_and_break():
    th1 = digitized("fig1")
    assert verdicts("fig1", th1)["gap to BO"] is True
    th1["optimal lt"] = (th1["optimal lt"][0], th1["teacher BO"][1] + 1e-3)  # optimal ridge ≈ Bayes
    assert verdicts("fig1", th1)["gap to BO"] is False
    a = np.array([1.5, 3, 4.5, 9])
    th1["optimal lt|lam_t"] = (a, np.array([.15, .21, .27, .33]))  # T3: argmin λ̃ within ±20 %
    assert verdicts("fig1", th1)["T3 argmin"] is True
    th1["optimal lt|lam_t"] = (a, np.array([.15, .21, .27, .5]))  # 0.5 vs 0.341 at α = 9
    assert verdicts("fig1", th1)["T3 argmin"] is False
    th6 = digitized("fig6")  # λ̃ = 1e-5 peaks at α = 4.5 with .2053
    assert verdicts("fig6", th6)["peak below teacher separability"] is True
    x, y = th6["teacher lt=1e-05"]
    th6["teacher lt=1e-05"] = (x, np.where(x == 3, 0.21, y))  # peak moved to α = 3
    assert verdicts("fig6", th6)["peak below teacher separability"] is False
    th8 = digitized("fig8")
    assert verdicts("fig8", th8)["low chi at small alpha"] is True
    th8["chi=0.2"] = (th8["chi=0.2"][0], th8["chi=1"][1] + 1e-4)
    assert verdicts("fig8", th8)["low chi at small alpha"] is False
    th12 = digitized("fig12")
    assert verdicts("fig12", th12) == {"ordering inherited": True, "ordering inherited a>=2": True}
    x, y = th12["student lt=0.01"]
    th12["student lt=0.01"] = (x, np.where(x == 9, 0.2579, y))  # above λ̃ = 1e-5's .2578 at α = 9
    assert verdicts("fig12", th12) == {"ordering inherited": False, "ordering inherited a>=2": False}
    # out of order only below α = 2 (as this theory finds at α = 1): the paper's wording fails, α >= 2 holds
    th12 = {k: (np.r_[1.0, x], np.r_[{"student lt=1e-05": .3696, "student lt=0.01": .3724}.get(k, v[1][0]), v[1]])
            for k, v in digitized("fig12").items()}
    assert verdicts("fig12", th12) == {"ordering inherited": False, "ordering inherited a>=2": True}


def test_fig11_q_peak_check():
    a = np.array([.25, .5, .75, 1, 1.5, 1.75, 2, 3])
    bump = lambda at: np.exp(-((a - at) / 0.2) ** 2)
    th = {"lt=0.1|q": (a, 1 + bump(0.5)), "lt=0.1": (a, 0.2 + bump(0.5)),
          "lt=1e-05|q": (a, 1 + bump(1.75)), "lt=1e-05": (a, 0.2 + bump(1.75))}
    assert all(verdicts("fig11", th).values())
    th["lt=1e-05|q"] = (a, 1 + bump(1.0))  # q peaks where ε does not
    assert verdicts("fig11", th) == {"Q5 q lt=0.1": True, "Q5 q lt=1e-05": False}


def test_digitized_check_reports_misses_with_numbers():
    th = digitized("fig7")
    lines, ok = figures._digitized_check("fig7", th)
    assert ok is True
    x, y = th["direct lam=1"]
    th["direct lam=1"] = (x, y + np.where(x == 5, 2e-3, 0.0))
    lines, ok = figures._digitized_check("fig7", th)
    text = "\n".join(lines)
    assert ok is False and "does not hold" in text and "2.0e-03" in text and "at x = 5" in text
    # Fig. 11's log-scale panels: q to 1 % relative, the cross-entropy to 1e-3 absolute
    th11 = digitized("fig11")
    assert figures._digitized_check("fig11", th11)[1] is True
    x, y = th11["lt=1e-05|q"]
    th11["lt=1e-05|q"] = (x, y * 1.005)  # 301.5 -> 303: within 1 %
    assert figures._digitized_check("fig11", th11)[1] is True
    th11["lt=1e-05|q"] = (x, y * 1.02)
    assert figures._digitized_check("fig11", th11)[1] is False


@pytest.mark.parametrize("fig", ["fig1", "fig6", "fig7", "fig8", "fig9", "fig11", "fig12"])
def test_new_figures_are_in_the_catalogue(fig):
    assert fig in figures.FIGURES
    cfg = figures.figure_config(fig, quick=True)
    names = {c["name"] for c in cfg["curves"]}
    digitized_curves = {k.split("|")[0] for k in DIGITIZED[fig]}
    assert digitized_curves <= names  # every digitized curve is computed
    for c in cfg["curves"]:  # and every digitized x lies on the quick grid, so it is checked
        for key, pts in DIGITIZED[fig].items():
            if key.split("|")[0] == c["name"]:
                assert set(pts) <= set(c["values"]), (c["name"], set(pts) - set(c["values"]))
