"""Theories of knowledge distillation, one subpackage per paper (layer L2).

Each subpackage is named for what it computes and cites its paper; it imports only :mod:`ntkd._core`,
:mod:`ntkd.kernels`, :mod:`ntkd.predict` and :mod:`ntkd.losses`, never another theory (what two theories
share moves down to those modules; ``tests/test_layout.py`` checks it).

* :mod:`ntkd.theories.transfer_risk`: Ji & Zhu (2020), knowledge distillation in wide networks: effective
  logits, the converged student, transfer risk and its bound, data inefficiency, imperfect teachers.
* :mod:`ntkd.theories.crossfit`: Dao, Kamath et al. (2021), knowledge distillation as semiparametric
  inference: cross-fitted teachers, orthogonal and γ-corrected losses.
"""
