"""Kaplun, Malach, Nakkiran & Shalev-Shwartz (2022) study: synthetic sampler-distillation figures
(:mod:`.figures`, ``ntkd reproduce malach-*``) and the CIFAR-10 -> CIFAR-5m script (:mod:`.cifar`)."""
