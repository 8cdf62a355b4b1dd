"""The Menon et al. (2020) study: the statistics of distillation on synthetic tasks with exact p* (and on
scikit-learn's digits, where p* is unknown), built on :mod:`ntkd.theories.bias_variance` and the shared
multi-class trainer :func:`ntkd.finite.train_classifier`; figure catalogue in :mod:`.figures`."""
