"""Layer L0, private to ntkd and importing nothing of it: argument checks (:mod:`.checks`), products at
``Precision.HIGHEST`` (:mod:`.linalg`), PSD solves in an eigenbasis (:mod:`.spectral`), small statistics
(:mod:`.stats`) and progress with an honest ETA (:mod:`.progress`)."""
