"""``kernel_matrix(..., out="device")`` over several ``jax.distributed`` processes: each process computes
the row stripes of its own devices, and together they hold the one-process result bitwise.

* in one process: a symmetric kernel's row stripe (every tile computed, the exact diagonal from the tile
  offsets, no mirroring) equals those rows of the mirrored one-process result;
* two local CPU processes of one ``jax.distributed`` job, two host devices each: the global array's rows
  split over the 4 devices; every process's shards equal the one-process rows (the NNGP + NTK pair of a
  symmetric kernel, and a cross kernel); a generic symmetric kernel_fn is refused with the fix.
"""
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ntkd
from ntkd.kernels import tiled

KF = ntkd.mlp_kernel_fn(2)
X = np.random.default_rng(0).normal(size=(24, 3))
X2 = np.random.default_rng(1).normal(size=(17, 3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_symmetric_row_stripe_equals_those_rows_of_the_mirrored_result(dtype):
    x = X.astype(dtype)
    full = ntkd.kernel_matrix(KF, x, get=("nngp", "ntk"), block_size=5)
    for r0, r1 in ((0, 6), (6, 12), (18, 24)):
        stripe = tiled._kernel_matrix(KF, x[r0:r1], x, get=("nngp", "ntk"), block_size=5, devices=None,
                                      out="device", progress=None, row0=r0)
        for a, b in zip(stripe, full):
            np.testing.assert_array_equal(np.asarray(a), b[r0:r1])


CHILD = textwrap.dedent("""
    import sys
    import jax
    jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import ntkd
    x = np.random.default_rng(0).normal(size=(24, 3))
    x2 = np.random.default_rng(1).normal(size=(17, 3))
    kf = ntkd.mlp_kernel_fn(2)
    out = {}
    pair = ntkd.kernel_matrix(kf, x, get=("nngp", "ntk"), block_size=5, out="device")
    cross = ntkd.kernel_matrix(kf, x, x2, get="ntk", block_size=5, out="device")
    for name, arr in (("nngp", pair.nngp), ("ntk", pair.ntk), ("cross", cross)):
        assert arr.shape == (24, 24 if name != "cross" else 17) and len(arr.sharding.device_set) == 4
        for sh in arr.addressable_shards:
            out[f"{name}_{sh.index[0].start}"] = np.asarray(sh.data)
    try:
        ntkd.kernel_matrix(lambda a, b, get: kf(a, b, get), x, out="device")
    except ValueError as e:
        out["refused"] = np.array("pass x2=x1" in str(e))
    np.savez(sys.argv[3], **out)
""")


def test_two_jax_distributed_processes_hold_the_one_process_kernel(tmp_path):
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, f"localhost:{port}", str(i), str(tmp_path / f"p{i}.npz")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    full = ntkd.kernel_matrix(KF, X, get=("nngp", "ntk"), block_size=5)
    ref = {"nngp": full.nngp, "ntk": full.ntk, "cross": ntkd.kernel_matrix(KF, X, X2, get="ntk", block_size=5)}
    seen = {name: [] for name in ref}
    for i in range(2):
        got = np.load(tmp_path / f"p{i}.npz")
        assert bool(got["refused"])
        starts = sorted({int(k.split("_")[1]) for k in got.files if k != "refused"})
        assert starts == ([0, 6] if i == 0 else [12, 18])  # 4 stripes of 6 rows, two per process
        for name in ref:
            for r0 in starts:
                np.testing.assert_array_equal(got[f"{name}_{r0}"], ref[name][r0:r0 + 6])
                seen[name].append(r0)
    assert all(sorted(v) == [0, 6, 12, 18] for v in seen.values())
