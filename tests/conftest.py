"""Test configuration.

float64 is enabled for the whole session so that float64 references can be computed in JAX; every
float32 test builds its arrays with an explicit float32 dtype (ntkd keeps the input dtype), so both
precisions are exercised. ``test_float32_default_mode`` checks the x64-disabled default separately.

Compilation dominates the suite's time, so the run shares one JAX persistent compilation cache (a
temporary directory made by the first process, removed at its end) between its pytest-xdist workers and
the subprocesses that tests start: a program compiled once in the run is not compiled again.
"""
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # the controller (or a plain run) makes the run's cache
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="ntkd-test-jax-cache-")
    os.environ["NTKD_TEST_CACHE_OWNER"] = str(os.getpid())
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

DTYPES = [np.float32, np.float64]


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("NTKD_TEST_CACHE_OWNER") == str(os.getpid()):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def rtol_for(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
