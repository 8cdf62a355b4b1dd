"""The shared reproduce shell (experiments/runner.py) with a fake figure computation: the files it writes,
what a failing figure leaves, and that a rerun resumes from what the figure stored."""
import io
import json

import pytest

from ntkd.experiments.plotting import write_summary
from ntkd.experiments.runner import run_figures, timing_line


def _fake(calls, fail=()):
    """run_one that stores a 'result' once (resumable: skipped when present) and writes a summary."""
    def run_one(k, d):
        calls.append(k)
        res = d / "result.txt"
        if not res.exists():
            res.write_text(f"value of {k}")
        if k in fail:
            raise RuntimeError(f"{k} failed")
        return write_summary(d, f"fake {k}", [f"- result: {res.read_text()}"], {"value": res.read_text()})
    return run_one


def test_files_written(tmp_path):
    calls, log = [], io.StringIO()
    out = run_figures("fake", ["a", "b"], tmp_path, quick=True, run_one=_fake(calls), title="Fake (2024) reproduction",
                      meta=lambda k: {"extra": k * 2}, note=", kernel protocol", progress=log)
    assert calls == ["a", "b"] and list(out) == ["a", "b"]
    for k in "ab":
        d = tmp_path / k
        assert json.loads((d / "figure.json").read_text()) == {"paper": "fake", "figure": k, "quick": True,
                                                                "extra": k * 2}
        s = json.loads((d / "summary.json").read_text())
        assert s == out[k] and s["value"] == f"value of {k}"
        assert isinstance(s["programs_compiled"], int) and s["programs_compiled"] >= 0
        assert s["seconds"] >= 0 and s["compile_seconds"] >= 0
        md = (d / "summary.md").read_text()
        assert md == (f"## fake {k}\n\n- result: value of {k}\n\n"
                      + timing_line(s["seconds"], s["compile_seconds"], s["programs_compiled"]) + "\n")
        assert f"fake-{k}: done in {s['seconds']} s" in log.getvalue()
    top = (tmp_path / "summary.md").read_text()
    assert top.startswith("# Fake (2024) reproduction (quick), kernel protocol\n\n## fake a\n")
    assert top.index("## fake a") < top.index("## fake b")
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_single_figure_writes_no_combined_summary(tmp_path):
    run_figures("fake", ["a"], tmp_path, quick=False, run_one=_fake([]), title="t", progress=None)
    assert (tmp_path / "a" / "summary.json").exists() and not (tmp_path / "summary.md").exists()
    assert json.loads((tmp_path / "a" / "figure.json").read_text())["quick"] is False


def test_failure_leaves_no_half_written_summary_and_rerun_resumes(tmp_path):
    calls = []
    with pytest.raises(RuntimeError, match="b failed"):
        run_figures("fake", ["a", "b", "c"], tmp_path, quick=True, run_one=_fake(calls, fail={"b"}), title="t",
                    progress=None)
    assert calls == ["a", "b"]  # stops at the failure
    assert (tmp_path / "a" / "summary.json").exists()  # the finished figure is complete
    assert not (tmp_path / "b" / "summary.json").exists() and not (tmp_path / "b" / "summary.md").exists()
    assert not (tmp_path / "c").exists() and not (tmp_path / "summary.md").exists()
    assert (tmp_path / "b" / "result.txt").read_text() == "value of b"  # what the figure stored is kept
    assert not list(tmp_path.rglob("*.tmp"))
    # rerun: the figure's stored result is reused (the runner removes nothing), the summaries complete
    (tmp_path / "b" / "result.txt").write_text("stored before the failure")
    out = run_figures("fake", ["a", "b", "c"], tmp_path, quick=True, run_one=_fake(calls), title="t", progress=None)
    assert out["b"]["value"] == "stored before the failure"
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["value"] == "stored before the failure"
    assert (tmp_path / "summary.md").read_text().count("This run: ") == 3


def test_run_one_must_return_a_dict(tmp_path):
    def bad(k, d):
        write_summary(d, "x", [], {})

    with pytest.raises(TypeError, match="summary dict"):
        run_figures("fake", ["a"], tmp_path, quick=True, run_one=bad, title="t", progress=None)
    assert not (tmp_path / "a" / "summary.json").exists()


def test_killed_write_keeps_the_previous_summary(tmp_path, monkeypatch):
    run_figures("fake", ["a"], tmp_path, quick=True, run_one=_fake([]), title="t", progress=None)
    before = (tmp_path / "a" / "summary.json").read_text()
    import ntkd._core.io as io_mod

    real = io_mod.os.replace

    def dies_on_summary_json(src, dst):
        if str(dst).endswith("summary.json"):
            raise KeyboardInterrupt  # a kill between writing the temporary file and renaming it
        real(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", dies_on_summary_json)
    (tmp_path / "a" / "result.txt").write_text("new")
    with pytest.raises(KeyboardInterrupt):
        run_figures("fake", ["a"], tmp_path, quick=True, run_one=_fake([]), title="t", progress=None)
    assert (tmp_path / "a" / "summary.json").read_text() == before  # the old file whole, not half a new one
    assert json.loads(before)["value"] == "value of a"
    assert not list(tmp_path.rglob("*.tmp"))
