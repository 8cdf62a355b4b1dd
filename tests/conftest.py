"""Test configuration.

float64 is enabled for the whole session so that float64 references can be computed in JAX; every
float32 test builds its arrays with an explicit float32 dtype (ntkd keeps the input dtype), so both
precisions are exercised. ``test_float32_default_mode`` checks the x64-disabled default separately.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def rtol_for(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
