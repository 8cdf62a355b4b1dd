"""Dao, Kamath, Syrgkanis & Mackey (2021) study: synthetic and tabular cross-fitting and loss-correction
runs, and the ``kamath-*`` figure catalogue (:mod:`.figures`)."""
