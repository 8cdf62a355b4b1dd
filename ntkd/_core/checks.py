"""Argument validation shared by the public functions.

Every check raises ``ValueError`` whose message names the offending argument and says how to fix it.
Value checks (finiteness, conditioning) run only on concrete arrays: inside ``jax.jit`` the values are
unknown, so they are skipped there (shape and dtype checks still run).
"""
from __future__ import annotations

import contextvars
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer under jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


_CHECKIFY = contextvars.ContextVar("ntkd_checkify", default=False)


def all_true(x, pred, name: str | None = None) -> bool:
    """``pred(x)`` for a concrete ``x`` (evaluated eagerly even while a jit trace is active, e.g. for an
    array closed over by a jitted function); True for a tracer, whose values are unknown. Inside
    :func:`checked` a tracer's check becomes a ``jax.experimental.checkify`` check naming ``name``."""
    if not is_concrete(x):
        if _CHECKIFY.get():
            try:
                ok = jnp.all(pred(x))
            except jax.errors.ConcretizationTypeError:  # a predicate written for concrete values only
                return True
            what = f"`{name}`" if name else "an argument"
            checkify.check(ok, f"ntkd: invalid {what} under jit; call the function eagerly for the full message")
        return True
    with jax.ensure_compile_time_eval():
        return bool(pred(x))


def as_float_array(x, name: str):
    """Convert ``x`` to a floating JAX array; integers and booleans become the default float dtype.

    Complex arrays and half precision (float16, bfloat16) are refused: ntkd computes in float32 or
    float64, and silently dropping an imaginary part or computing kernels in 11-bit mantissas would give
    wrong numbers downstream."""
    if x is None:
        raise ValueError(f"`{name}` is None; pass an array.")
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"`{name}` is complex ({x.dtype}); ntkd computes with real float32/float64 arrays. "
                         f"Pass `{name}.real` if the imaginary part is zero.")
    if x.dtype in (jnp.float16, jnp.bfloat16):
        raise ValueError(f"`{name}` has dtype {x.dtype}; ntkd computes in float32 or float64. Cast it with "
                         ".astype(numpy.float32).")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_nonempty(x, name: str) -> None:
    """Raise for an array without elements (a mean over no samples is undefined)."""
    if jnp.size(x) == 0:
        raise ValueError(f"`{name}` is empty (shape {jnp.shape(x)}); pass at least one sample.")


def valid_positive(v, *, allow_zero: bool = False):
    """Elementwise: finite and > 0 (>= 0 with ``allow_zero``); False for NaN. For ``jnp.where`` masks that
    turn a traced invalid value into NaN."""
    return jnp.isfinite(v) & ((v >= 0) if allow_zero else (v > 0))


def positive_array(value, name: str, *, allow_zero: bool = False, hint: str = ""):
    """``value`` as a float array that may be traced. A concrete value must be finite and > 0 (>= 0 with
    ``allow_zero``) or a ValueError names it; a traced one is not checked, so callers mask their result
    with :func:`valid_positive` (NaN where invalid, never a plausible number)."""
    v = as_float_array(value, name)
    if not all_true(v, lambda a: valid_positive(a, allow_zero=allow_zero).all(), name):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {bound}{hint}; got {value!r}.")
    return v


def check_finite(x, name: str) -> None:
    """Raise if a concrete array contains NaN or inf."""
    if not all_true(x, lambda a: jnp.isfinite(a).all(), name):
        bad = int(np.size(x) - np.isfinite(np.asarray(x)).sum())
        raise ValueError(
            f"`{name}` contains {bad} NaN/inf value(s); clean or impute the data before computing kernels."
        )


def check_inputs_2d(x, name: str):
    """Validate a batch of inputs of shape (n, d); returns it as a float array."""
    x = as_float_array(x, name)
    if x.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (n, d) (a batch of flat feature vectors); got shape {x.shape}. "
            "Reshape with x.reshape(len(x), -1)."
        )
    check_finite(x, name)
    return x


def _static(value, name: str) -> None:
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"`{name}` must be a static Python number: it fixes shapes, step counts or a "
                         "solver's setup at trace time. Under jit, close over it or pass it through "
                         "static_argnames.")


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    _static(value, name)
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite real number; got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be {bound}; got {value!r}.")
    return float(value)


def check_int(value, name: str, *, minimum: int) -> int:
    _static(value, name)
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def checked(fn, *, errors=None):
    """``fn`` under ``jax.experimental.checkify`` with ntkd's argument checks kept under tracing.

    Eagerly ntkd refuses an invalid value with a ValueError; under ``jit``/``vmap`` it cannot, and returns
    NaN instead. ``checked(fn)`` traces ``fn`` with every such check emitted as a checkify check, so
    ``err, out = jax.jit(ntkd.checked(fn))(*args)`` returns an error value; ``err.throw()`` raises
    naming the argument. ``errors``: the checkify error set (default ``checkify.user_checks``; add
    ``checkify.nan_checks`` etc. as needed). Wrap the plain function: a function already traced (and
    cached by ``jit``) outside ``checked`` keeps no checks.
    """
    def traced(*args, **kwargs):
        token = _CHECKIFY.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _CHECKIFY.reset(token)

    return checkify.checkify(traced, errors=checkify.user_checks if errors is None else errors)
