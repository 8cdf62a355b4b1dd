"""The package's layers: every module imports only from the layers below it (or its own package), no
import circle, no private name or private module across packages, and no theory imports another.

The rules read the source (``ast``), imports inside functions included; the tests at the bottom show
that each rule fails when a violating import is added to a copy of the package.
"""
import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ntkd"

#: top-level entry of ntkd -> layer. A new top-level module or package must be placed here.
LAYERS = {
    "_core": 0, "_version": 0,
    "kernels": 1, "predict": 1, "losses": 1,
    "theories": 2,
    "finite": 3,
    "experiments": 4,
    "cli": 5, "bench": 5,
}
#: the face: ntkd/__init__.py re-exports every layer; _deprecated aliases old module paths (by name only)
FACE = {"ntkd", "ntkd._deprecated"}


def _modules(root: Path) -> dict:
    """module name -> path, for every .py file under root (a package named like root)."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = (root.name,) + p.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict):
    """(target module, imported name or None, line) for every import of the package in a module, and the
    private attributes read from imported package modules (name ``.attr``)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rsplit(".", 1)[0]
    root = name.split(".")[0]
    bound = {}  # local name -> module it refers to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == root:
                    found.append((a.name, None, node.lineno))
                    if a.asname:
                        bound[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != root:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:
                    found.append((sub, None, node.lineno))
                    bound[a.asname or a.name] = sub
                else:
                    found.append((base, a.name, node.lineno))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append((bound[node.value.id], "." + node.attr, node.lineno))
    return found


def _layer(module: str):
    parts = module.split(".")
    return None if len(parts) < 2 else LAYERS.get(parts[1])


def violations(root: Path = ROOT) -> list:
    """Every broken rule in the package at ``root``, as readable strings (empty when the layout holds)."""
    modules = _modules(root)
    out = []
    graph = {m: set() for m in modules}
    for m, path in modules.items():
        if m not in FACE and _layer(m) is None:
            out.append(f"{m}: not in a layer (add its top-level entry to LAYERS in tests/test_layout.py)")
            continue
        for target, name, line in _imports(m, path, modules):
            where = f"{path.relative_to(root.parent)}:{line}"
            if target not in modules:
                continue
            graph[m].add(target)
            if m in FACE:
                continue
            lt, ls = _layer(target), _layer(m)
            if target not in FACE and lt is not None and lt > ls:
                out.append(f"{where}: upward import of {target} (layer {lt}) from {m} (layer {ls})")
            if m.split(".")[1] == "theories" and target.split(".")[1] == "theories":
                mt, tt = m.split(".")[2:3], target.split(".")[2:3]
                if mt and tt and mt != tt:
                    out.append(f"{where}: theory {mt[0]} imports theory {tt[0]}")
            if name and name.lstrip(".").startswith("_") and not name.lstrip(".").startswith("__"):
                out.append(f"{where}: private name {name.lstrip('.')} of {target} used in {m}")
            parts = target.split(".")
            for i, part in enumerate(parts[1:], start=1):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not (m == owner or m.startswith(owner + ".")):
                    out.append(f"{where}: private module {'.'.join(parts[:i + 1])} imported from {m}, "
                               f"outside {owner}")
    # circles: strongly connected components of the import graph, the face excluded
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w in FACE:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in graph:
        if v not in FACE and v not in index:
            strong(v)
    out += [f"import circle: {' <-> '.join(c)}" for c in sccs]
    return out


def test_the_package_keeps_its_layers():
    assert violations() == []


def test_every_layer_is_in_the_table():
    entries = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
               if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())) and p.name != "__init__.py"}
    assert entries - {"_deprecated"} <= set(LAYERS), entries - set(LAYERS)


def _copy(tmp_path):
    dst = tmp_path / "ntkd"
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(dst) == []
    return dst


def _append(path: Path, line: str):
    path.write_text(path.read_text() + "\n" + line + "\n")


@pytest.mark.parametrize("file, line, expected", [
    ("kernels/base.py", "from ..experiments import store", "upward import of ntkd.experiments.store"),
    ("theories/transfer_risk/grid.py", "from ...finite import train_kd", "upward import of ntkd.finite"),
    ("kernels/_programs.py", "from .tiled import kernel_matrix", "import circle"),
    ("predict.py", "from .kernels._programs import Cfg", "private module ntkd.kernels._programs"),
    ("predict.py", "from .losses import _private", "private name _private"),
    ("finite/train.py", "from ..losses import check_rho as c\nfrom .. import losses\nx = losses._secret",
     "private name _secret"),
])
def test_each_rule_fails_when_a_violating_import_is_added(tmp_path, file, line, expected):
    root = _copy(tmp_path)
    _append(root / file, line)
    found = violations(root)
    assert any(expected in v for v in found), found


def test_a_theory_importing_another_theory_fails(tmp_path):
    root = _copy(tmp_path)
    other = root / "theories" / "other_theory"
    other.mkdir()
    (other / "__init__.py").write_text("from ..transfer_risk import risk\n")
    found = violations(root)
    assert any("theory other_theory imports theory transfer_risk" in v for v in found), found


def test_a_module_outside_the_layer_table_fails(tmp_path):
    root = _copy(tmp_path)
    (root / "newthing.py").write_text("x = 1\n")
    assert any("ntkd.newthing: not in a layer" in v for v in violations(root))
