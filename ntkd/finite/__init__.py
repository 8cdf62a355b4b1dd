"""Finite-width networks with exactly the conventions of :func:`ntkd.mlp_kernel_fn`, trained with optax on
a distillation loss, and compared with the kernel limit (layer L3; imports flax and optax, which
``import ntkd`` alone does not).

* :mod:`.models`: :class:`NTKMLP` (Flax NNX) and :func:`mlp` (a pure ``init_fn``/``apply_fn`` pair);
* :mod:`.train`: :func:`train_kd` (the loss is a parameter; default Ji & Zhu's Eq. 2), online samplers;
* :mod:`.classifier`: :func:`train_classifier`, the multi-class trainer on soft or hard targets (any loss);
* :mod:`.interpolate`: :func:`train_to_interpolation` (train to zero training error or a step cap);
* :mod:`.teachers`: network teachers trained with online batches and early-stopping checkpoints;
* :mod:`.checkpoint`: resumable training checkpoints;
* :mod:`.compare`: empirical vs analytic NTK, trained students vs Eq. 4, the gap against width.
"""
from ..kernels import activation_fn
from .classifier import ClassifierLog, softmax_cross_entropy, train_classifier
from .compare import loglog_slope, ntk_convergence, student_vs_kernel, width_gap
from .interpolate import Interpolation, train_to_interpolation
from .models import NTKMLP, mlp
from .teachers import TeacherRun, network_teacher, train_teacher
from .train import TrainLog, geometric_steps, online_sampler, train_kd

__all__ = ["NTKMLP", "activation_fn", "mlp", "TrainLog", "train_kd", "geometric_steps", "online_sampler",
           "ClassifierLog", "softmax_cross_entropy", "train_classifier",
           "Interpolation", "train_to_interpolation", "train_teacher", "TeacherRun", "network_teacher",
           "ntk_convergence", "student_vs_kernel",
           "width_gap", "loglog_slope"]
