"""The one configuration dialect of ntkd's studies: TOML tables of typed keys, validated before any
computation, every error naming the key (``config key 'task.modes': must be an integer; got 'a'``).

A study declares each table as ``{key: (default, kind, listable)}``: ``kind`` is ``int``, ``float``,
``bool``, ``str`` or a set of allowed strings; ``listable`` is False (one value), True (one value or a
list: a swept axis) or ``"list"`` (a non-empty list is required). Lists may not repeat a value. A
``float`` key must be finite (NaN and ±inf would pass validation, claim the results store and fail later),
except that a key whose default is ``inf`` (a stopping time) also takes ``inf``.
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

__all__ = ["fail", "typed", "section", "num_list", "as_list", "fmt", "json_default", "read_toml", "top_level",
           "dtype_name"]

def fail(key, msg):
    raise ValueError(f"config key '{key}': {msg}")


def typed(key, value, kind, *, allow_inf=False):
    if isinstance(kind, set):
        if value not in kind:
            fail(key, f"must be one of {sorted(kind)}; got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            fail(key, f"must be true or false; got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, f"must be an integer; got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(key, f"must be a number; got {value!r}")
        if value != value or (math.isinf(value) and not allow_inf):
            fail(key, f"must be finite; got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            fail(key, f"must be a string; got {value!r}")
        return value
    raise AssertionError(kind)


def section(raw, name, spec):
    sec = raw.get(name, {})
    if not isinstance(sec, dict):
        fail(name, f"must be a table ([{name}]); got {sec!r}")
    unknown = set(sec) - set(spec)
    if unknown:
        fail(f"{name}.{sorted(unknown)[0]}", f"unknown key; known keys of [{name}]: {', '.join(sorted(spec))}")
    out = {}
    for key, (default, kind, listable) in spec.items():
        value = sec.get(key, default)
        full = f"{name}.{key}"
        inf_ok = any(isinstance(d, float) and math.isinf(d) for d in as_list(default))
        if listable == "list" and not (isinstance(value, list) and value):
            fail(full, f"must be a non-empty list; got {value!r}")
        if isinstance(value, list):
            if not listable:
                fail(full, "takes one value, not a list")
            if not value:
                fail(full, "an empty list has no values to sweep")
            out[key] = [typed(full, v, kind, allow_inf=inf_ok) for v in value]
            if len(set(map(repr, out[key]))) != len(out[key]):
                fail(full, f"has repeated values {out[key]}")
        else:
            out[key] = typed(full, value, kind, allow_inf=inf_ok)
    return out


def num_list(raw, key, kind, *, lo=None, hi=None, lo_open=False, allow_inf=False):
    v = raw.get(key)
    full = f"grid.{key}"
    if v is None:
        fail(full, "is required")
    vals = v if isinstance(v, list) else [v]
    if not vals:
        fail(full, "must not be empty")
    out = []
    for x in vals:
        x = typed(full, x, kind, allow_inf=allow_inf)
        if lo is not None and (x < lo or (lo_open and x == lo)):
            fail(full, f"must be {'>' if lo_open else '>='} {lo}; got {x!r}")
        if hi is not None and x > hi:
            fail(full, f"must be <= {hi}; got {x!r}")
        out.append(x)
    if len(set(out)) != len(out):
        fail(full, f"has repeated values {out}")
    return out


def as_list(v):
    return v if isinstance(v, list) else [v]


def fmt(v):
    return repr(v) if isinstance(v, float) else str(v)


def json_default(o):
    if isinstance(o, float):
        return repr(o)
    raise TypeError(o)



def top_level(raw, known) -> None:
    """A config must be a table whose top-level keys are all in ``known``."""
    if not isinstance(raw, dict):
        raise ValueError("a config must be a TOML table")
    unknown = set(raw) - set(known)
    if unknown:
        fail(sorted(unknown)[0], f"unknown top-level key; known: {', '.join(sorted(known))}")


def dtype_name(raw) -> str:
    """The config's ``dtype``: "float32" or "float64" (the default)."""
    dtype = raw.get("dtype", "float64")
    if dtype not in ("float32", "float64"):
        fail("dtype", f"must be 'float32' or 'float64'; got {dtype!r}")
    return dtype


def read_toml(path) -> dict:
    """The table of a TOML file; a missing file or invalid TOML is a ValueError naming the file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
