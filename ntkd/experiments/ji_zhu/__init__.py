"""The study of Ji & Zhu (2020) (:mod:`ntkd.theories.transfer_risk`): :mod:`.sweep` (TOML grids through the
engine), :mod:`.teachers` (the sweep tasks' teachers), :mod:`.finite_runs` (finite-width comparisons and
Fig. S6) and :mod:`.figures` (the figure catalogue behind ``ntkd reproduce ji-zhu-*``)."""
