"""Studies: configurations, the results store, the paper-neutral engine, plotting and the reproductions
(layer L4).

* :mod:`.config`: the one TOML dialect (typed tables, every error naming its key);
* :mod:`.store`: :class:`~.store.ResultsStore`, whose schema (coordinates, metrics, labels) the study
  declares and the store records;
* :mod:`.engine`: units of blocks, memory-bounded chunks, device sharding, resume and progress;
* :mod:`.plotting`: what every study's figures share;
* :mod:`.reproduce`: the registry behind ``ntkd reproduce <paper>-<figure>``;
* one package per paper's study: :mod:`.ji_zhu` (sweeps, teachers, finite-width runs, figures).
"""
