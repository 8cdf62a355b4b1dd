"""Saglietti & Zdeborová (2022) study: finite-N simulations (:mod:`.simulate`) and the figure catalogue
(:mod:`.figures`, ``ntkd reproduce saglietti-<fig>``)."""
