"""The kernel result type and the ``get`` convention shared by ntkd's kernel functions.

``kernel_fn(x1, x2=None, get=None)`` (neural-tangents' signature): ``get=None`` returns a :class:`Kernel`
``(nngp, ntk)``, ``"nngp"`` or ``"ntk"`` one ``(n1, n2)`` array, a tuple of names a namedtuple in that order.
"""
from __future__ import annotations

from collections import namedtuple
from typing import NamedTuple

import jax

__all__ = ["Kernel", "GETS", "normalize_get", "pack"]

GETS = ("nngp", "ntk")


class Kernel(NamedTuple):
    """Pytree of kernel matrices, shape ``(n1, n2)`` each (same field names as neural-tangents)."""

    nngp: jax.Array
    ntk: jax.Array


def normalize_get(get):
    if get is None:
        return None, GETS
    if isinstance(get, str):
        if get not in GETS:
            raise ValueError(f"`get` must be None, 'nngp', 'ntk' or a tuple of those; got {get!r}.")
        return get, (get,)
    get = tuple(get)
    if not get or any(g not in GETS for g in get):
        raise ValueError(f"`get` must be None, 'nngp', 'ntk' or a tuple of those; got {get!r}.")
    return get, get


_namedtuple_cache = {}


def pack(get, values: dict):
    if get is None:
        return Kernel(values["nngp"], values["ntk"])
    if isinstance(get, str):
        return values[get]
    if get == GETS:
        return Kernel(values["nngp"], values["ntk"])
    cls = _namedtuple_cache.setdefault(get, namedtuple("Kernel", get))
    return cls(*(values[g] for g in get))
