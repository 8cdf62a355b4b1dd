"""Theories of knowledge distillation, one subpackage per paper (layer L2).

Each subpackage is named for what it computes and cites its paper; it imports only :mod:`ntkd._core`,
:mod:`ntkd.kernels`, :mod:`ntkd.predict` and :mod:`ntkd.losses`, never another theory (what two theories
share moves down to those modules; ``tests/test_layout.py`` checks it).

* :mod:`ntkd.theories.transfer_risk`: Ji & Zhu (2020), knowledge distillation in wide networks: effective
  logits, the converged student, transfer risk and its bound, data inefficiency, imperfect teachers.
* :mod:`ntkd.theories.crossfit`: Dao, Kamath et al. (2021), knowledge distillation as semiparametric
  inference: cross-fitted teachers, orthogonal and γ-corrected losses.
* :mod:`ntkd.theories.bias_variance`: Menon et al. (2020), distillation as risk estimation: one-hot,
  distilled, Bayes-distilled and mixed risks, their bias–variance, the optimal mixing weight, the
  empirical-Bernstein bound, tasks with exact p*, the teacher zoo.
* :mod:`ntkd.theories.samplers`: Kaplun, Malach, Nakkiran & Shalev-Shwartz (2022), samplers as teachers:
  tasks with exact D(y|x), k-NN and kernel-machine teachers, students, sampler metrics and bounds.
* :mod:`ntkd.theories.solvable_model`: Saglietti & Zdeborová (2022), replica learning curves of a sparse
  KD student on a Gaussian mixture (teacher, BO-proxy teacher, student fixed points; the paper's soft
  fraction χ is ``rho``, its cluster fraction ρ is ``p_plus``).
"""
