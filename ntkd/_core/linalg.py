"""Matrix products at full float32 precision on every backend.

JAX leaves the precision of a float32 ``matmul``/``einsum`` to the backend by default, and on NVIDIA
GPUs since Ampere that default is TensorFloat-32 (10-bit mantissa), about 1e-4 off in float32 where
``Precision.HIGHEST`` is float32-accurate (benchmarks/README.md, "Kernels on a GPU"). ntkd's float32 results
are meant to be float32-accurate wherever they
run, so every product of arrays in ntkd goes through :func:`mm` or :func:`einsum` here, which ask for
``Precision.HIGHEST`` (true float32; float64 is unaffected). tests/test_precision.py checks the source
and the traced programs for products without it.
"""
import functools

import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST


def mm(a, b):
    """``a @ b`` (``jnp.matmul`` semantics) at ``Precision.HIGHEST``."""
    return jnp.matmul(a, b, precision=HIGHEST)


def einsum(spec, *operands):
    """``jnp.einsum(spec, *operands)`` at ``Precision.HIGHEST``."""
    return jnp.einsum(spec, *operands, precision=HIGHEST)


def with_float64(fn):
    """``fn`` run with float64 enabled in a scope (``jax.enable_x64``), leaving the process's setting as
    it was: for studies whose kernel systems need float64, without flipping global configuration."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapped
