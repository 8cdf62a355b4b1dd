"""The face of the package: ``import ntkd`` brings the public API without flax, optax or orbax, and the
module paths of earlier releases still import, warning once with the new path."""
import importlib
import subprocess
import sys
import warnings

import pytest

import ntkd

# the old module paths warn by design; the tests below check that they do
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_import_ntkd_does_not_import_flax_optax_or_orbax():
    code = ("import sys, ntkd; ntkd.mlp_kernel_fn(2); "
            "print(sorted(m for m in ('flax', 'optax', 'orbax', 'orbax.checkpoint') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.parametrize("old, name, new", [
    ("ntkd.distill", "effective_logits", "ntkd.theories.transfer_risk.distill"),
    ("ntkd.risk", "risk_bound", "ntkd.theories.transfer_risk.risk"),
    ("ntkd.inefficiency", "data_inefficiency", "ntkd.theories.transfer_risk.inefficiency"),
    ("ntkd.tasks", "gaussian_mixture", "ntkd.theories.transfer_risk.tasks"),
    ("ntkd.empirical", "empirical_ntk", "ntkd.kernels.empirical"),
    ("ntkd.store", "ResultsStore", "ntkd.experiments.store"),
    ("ntkd.store", "METRICS", "ntkd.theories.transfer_risk.grid"),
    ("ntkd.sweep", "run_sweep", "ntkd.experiments.ji_zhu.sweep"),
    ("ntkd.sweep", "evaluate_grid", "ntkd.theories.transfer_risk.grid"),
    ("ntkd.sweep", "task_teacher", "ntkd.experiments.ji_zhu.teachers"),
    ("ntkd.reproduce", "figure_configs", "ntkd.experiments.ji_zhu.figures"),
    ("ntkd.finite_runs", "run_finite", "ntkd.experiments.ji_zhu.finite_runs"),
])
def test_old_module_paths_still_import_the_same_objects(old, name, new):
    mod = importlib.import_module(old)
    assert getattr(mod, name) is getattr(importlib.import_module(new), name)
    assert getattr(getattr(ntkd, old.split(".")[1]), name) is getattr(mod, name)


def test_an_old_path_warns_once_naming_the_new_one(monkeypatch):
    from ntkd import _deprecated

    monkeypatch.setattr(_deprecated, "_WARNED", set())
    monkeypatch.delitem(sys.modules, "ntkd.risk", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.import_module("ntkd.risk")
        monkeypatch.delitem(sys.modules, "ntkd.risk")
        importlib.import_module("ntkd.risk")
    msgs = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(msgs) == 1 and "ntkd.theories.transfer_risk.risk" in msgs[0]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        importlib.import_module("ntkd.risk").nope


def test_every_name_in_all_resolves():
    for name in ntkd.__all__:
        assert getattr(ntkd, name) is not None, name
