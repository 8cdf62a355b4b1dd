"""Module paths of ntkd before its layered layout, kept importable: ``import ntkd.sweep`` or
``from ntkd.risk import risk_bound`` still work, through an alias module that looks names up in the new
modules and warns once (a DeprecationWarning naming the new path)."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: old module -> the modules that now hold its public names, searched in order
MOVED = {
    "ntkd.distill": ("ntkd.theories.transfer_risk.distill",),
    "ntkd.risk": ("ntkd.theories.transfer_risk.risk",),
    "ntkd.inefficiency": ("ntkd.theories.transfer_risk.inefficiency",),
    "ntkd.tasks": ("ntkd.theories.transfer_risk.tasks",),
    "ntkd.empirical": ("ntkd.kernels.empirical",),
    "ntkd.store": ("ntkd.experiments.store", "ntkd.experiments.ji_zhu.sweep"),
    "ntkd.sweep": ("ntkd.experiments.ji_zhu.sweep", "ntkd.theories.transfer_risk.grid",
                   "ntkd.experiments.ji_zhu.teachers"),
    "ntkd.reproduce": ("ntkd.experiments.reproduce", "ntkd.experiments.ji_zhu.figures"),
    "ntkd.finite_runs": ("ntkd.experiments.ji_zhu.finite_runs",),
}
_WARNED: set = set()


class _Alias(types.ModuleType):
    """A module whose attributes are those of the modules in ``__targets__``."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        for mod in self.__dict__.get("__targets__", ()):
            if hasattr(mod, name):
                return getattr(mod, name)
        raise AttributeError(f"module {self.__name__!r} (moved to {self.__dict__.get('__moved_to__')}) has no "
                             f"attribute {name!r}")

    def __dir__(self):
        return sorted({n for m in self.__dict__.get("__targets__", ()) for n in getattr(m, "__all__", dir(m))})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return _Alias(spec.name)

    def exec_module(self, module):
        targets = MOVED[module.__name__]
        module.__moved_to__ = targets[0]
        module.__targets__ = [importlib.import_module(t) for t in targets]
        module.__all__ = [n for m in module.__targets__ for n in getattr(m, "__all__", ())]
        if module.__name__ not in _WARNED:
            _WARNED.add(module.__name__)
            warnings.warn(f"`{module.__name__}` moved to `{targets[0]}`; import from there or from `ntkd` "
                          "(the old path will be removed in a future release).", DeprecationWarning, stacklevel=2)


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
