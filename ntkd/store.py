"""The results store of a sweep: one SQLite file (standard library, no server) per output directory.

Tables:

* ``meta(key, value)``: the sweep configuration (canonical JSON), its hash and the ntkd version that
  started the run. A directory holds the results of one configuration; reopening it with another is
  refused, so rows of two grids never mix.
* ``results``: one row per grid point, with the point's coordinates as columns (``variant, depth, n,
  seed, rho, T, time``; ``time`` is the training time t), every metric as a column, the full configuration of the point as JSON, the ntkd
  version and the time it was written. A block is one (variant, depth, n, seed)
  unit, whatever chunking executed it; ``UNIQUE(block, rho, T, time)`` makes a duplicate impossible.
* ``blocks(block, n_rows, done_at)``: the blocks already finished. Blocks' rows and their entries here
  are written in one transaction per executed chunk, so a run killed at any moment (SIGKILL included) leaves either all of
  a block or none of it, and a restart skips exactly the finished blocks.
* ``curves(key, payload)``: per-configuration side results that are not grid points (the accumulative
  angle distribution p(β) of a (variant, depth, ρ, T), oracle norms), as JSON.

Export: :meth:`ResultsStore.to_csv`, :meth:`ResultsStore.to_pandas` (pandas only if installed),
:meth:`ResultsStore.rows` (a list of dicts, no dependency).
"""
from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["ResultsStore", "METRICS", "COORDS"]

COORDS = ("variant", "depth", "n", "seed", "rho", "T", "time")  # SQLite names are case-blind: t -> time
METRICS = (
    "risk",            # transfer risk P_x[z_t f̂ < 0] on the test set (§3.1)
    "error",           # test error against the ground-truth labels 1{z_g > 0}
    "w_norm",          # ‖Δŵ_n‖ = sqrt(Δzᵀ Θ_n⁻¹ Δz) at time t (Eq. 4, 10)
    "alpha",           # ᾱ(Δŵ_n, Δw_*) in radians, Δw_* the min-norm oracle on the reference set
    "alpha_eq9",       # arccos(‖Δŵ_n‖ / ‖Δw_*‖) (Eq. 9)
    "bound",           # Theorem 1: p(π/2 - ᾱ_n) with p(β) from the test set (Eq. 6-8)
    "oracle_norm",     # ‖Δw_*‖ estimated on the reference set (§3.4)
    "cos_g",           # cos of the angle between Δŵ_n and the ground-truth oracle P_Φ Δw_g (Eq. 11)
    "hle",             # ⟨δŵ_h, Δŵ_c⟩, the Eq. 12 bracket (Theorem 2); depends on T, not on ρ
    "teacher_error",   # the teacher's test error against the ground truth
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (block TEXT PRIMARY KEY, n_rows INTEGER NOT NULL, done_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS curves (key TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    block TEXT NOT NULL,
    variant TEXT NOT NULL, depth INTEGER NOT NULL, n INTEGER NOT NULL, seed INTEGER NOT NULL,
    rho REAL NOT NULL, T REAL NOT NULL, time REAL NOT NULL,
    {", ".join(f"{m} REAL" for m in METRICS)},
    factor TEXT NOT NULL,
    config TEXT NOT NULL, version TEXT NOT NULL, written_at REAL NOT NULL,
    UNIQUE (block, rho, T, time)
);
"""


class ResultsStore:
    """A sweep's SQLite store at ``path`` (created if missing). Use as a context manager or call
    :meth:`close`."""

    def __init__(self, path, *, read_only: bool = False):
        self.path = Path(path)
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no results store at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")  # a killed writer leaves the last commit intact
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    # -- context manager ---------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._db.close()

    # -- meta ----------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Optional[str]:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def claim(self, config_json: str, config_hash: str, version: str) -> bool:
        """Bind this store to one configuration. Returns True when resuming the same configuration,
        False when the store was new; raises ValueError when it holds another configuration."""
        old = self.get_meta("config_hash")
        if old is None:
            with self._db:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("config", config_json), ("config_hash", config_hash), ("version", version),
                    ("started_at", repr(time.time()))])
            return False
        if old != config_hash:
            raise ValueError(f"{self.path} holds the results of a different sweep configuration "
                             f"(hash {old[:12]}, this one {config_hash[:12]}); use another --out "
                             "directory, or delete the store to start over.")
        return True

    # -- blocks ------------------------------------------------------------------------------------------
    def done_blocks(self) -> set:
        return {r[0] for r in self._db.execute("SELECT block FROM blocks")}

    def write_blocks(self, blocks: dict, version: str) -> int:
        """Write the rows of several blocks (``{block: [row dict, ...]}``) and mark them done, in one
        transaction: all of them or nothing. Returns the number of rows written."""
        cols = ("block",) + COORDS + METRICS + ("factor", "config", "version", "written_at")
        sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        now = time.time()
        total = 0
        with self._db:  # one transaction
            for block, rows in blocks.items():
                values = [(block,) + tuple(r[c] for c in COORDS) + tuple(_real(r.get(m)) for m in METRICS)
                          + (r["factor"], json.dumps(r["config"], sort_keys=True), version, now) for r in rows]
                self._db.executemany(sql, values)
                self._db.execute("INSERT INTO blocks VALUES (?, ?, ?)", (block, len(values), now))
                total += len(values)
        return total

    # -- curves ------------------------------------------------------------------------------------------
    def put_curve(self, key: str, payload: dict) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO curves VALUES (?, ?)", (key, json.dumps(payload)))

    def get_curve(self, key: str) -> Optional[dict]:
        row = self._db.execute("SELECT payload FROM curves WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def curves(self) -> dict:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, payload FROM curves ORDER BY key")}

    # -- reading and export ------------------------------------------------------------------------------
    def columns(self) -> list:
        return [r[1] for r in self._db.execute("PRAGMA table_info(results)")]

    def rows(self, where: str = "", params: tuple = ()) -> list:
        """All result rows (``where`` is an optional SQL condition) as dicts, ordered by id."""
        cur = self._db.execute(f"SELECT * FROM results {'WHERE ' + where if where else ''} ORDER BY id",
                               params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def to_csv(self, path) -> Path:
        path = Path(path)
        cur = self._db.execute("SELECT * FROM results ORDER BY id")
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([c[0] for c in cur.description])
            w.writerows(cur)
        return path

    def to_pandas(self):
        """The results as a pandas DataFrame (pandas is optional: ImportError names it if missing)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("to_pandas needs pandas (`pip install pandas`); to_csv and rows() do not.") from e
        return pd.read_sql_query("SELECT * FROM results ORDER BY id", self._db)


def _real(v):
    if v is None:
        return None
    v = float(v)
    return None if v != v else v  # NaN is stored as NULL
