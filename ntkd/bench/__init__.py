"""``ntkd bench``: throughput of ntkd's analytic and empirical kernels side by side with neural-tangents
(layer L5). :mod:`.runner` times ntkd in this process and neural-tangents through :mod:`._nt_worker` in
its own pinned environment (``scripts/nt_env.sh``), when that environment exists."""
from .runner import (EMPIRICAL_GRID, FULL_GRID, QUICK_GRID, empirical_table, find_nt_python, markdown_table,
                     run_bench, run_empirical_bench)

__all__ = ["run_bench", "run_empirical_bench", "markdown_table", "empirical_table", "find_nt_python",
           "FULL_GRID", "QUICK_GRID", "EMPIRICAL_GRID"]
