"""The results store of a study: one SQLite file (standard library, no server) per output directory.

A study declares its schema (:class:`Schema`): the coordinates of a row (typed columns), its metrics
(REAL, NaN stored as NULL) and any text labels; the schema is recorded in the store's ``meta``, so a
store is read back without knowing the study that wrote it. Tables:

* ``meta(key, value)``: the schema, the study's configuration (canonical JSON), its hash and the ntkd
  version that started the run. A directory holds the results of one configuration; reopening it with
  another is refused, so rows of two grids never mix.
* ``results``: one row per grid point: ``block``, the coordinates, the metrics, the labels, the full
  configuration of the point as JSON, the ntkd version and the time it was written;
  ``UNIQUE(block, coordinates)`` makes a duplicate impossible.
* ``blocks(block, n_rows, done_at)``: the blocks already finished. Blocks' rows and their entries here
  are written in one transaction per executed chunk, so a run killed at any moment (SIGKILL included)
  leaves either all of a block or none of it, and a restart skips exactly the finished blocks.
* ``curves(key, payload)``: per-configuration side results that are not grid points, as JSON.

Export: :meth:`ResultsStore.to_csv`, :meth:`ResultsStore.to_pandas` (pandas only if installed),
:meth:`ResultsStore.rows` (a list of dicts, no dependency).
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple, Optional

__all__ = ["ResultsStore", "Schema"]

_TYPES = ("TEXT", "INTEGER", "REAL")


class Schema(NamedTuple):
    """The columns of a study's rows: ``coords`` ((name, SQL type) pairs, in order; SQLite names are
    case-blind, so no two may differ only in case), ``metrics`` (REAL) and ``labels`` (TEXT)."""

    coords: tuple
    metrics: tuple
    labels: tuple = ()

    def to_json(self) -> str:
        return json.dumps({"coords": [list(c) for c in self.coords], "metrics": list(self.metrics),
                           "labels": list(self.labels)})

    @classmethod
    def from_json(cls, text: str) -> "Schema":
        d = json.loads(text)
        return cls(tuple(tuple(c) for c in d["coords"]), tuple(d["metrics"]), tuple(d["labels"]))

    def check(self) -> "Schema":
        names = [c for c, _ in self.coords] + list(self.metrics) + list(self.labels)
        if len({n.lower() for n in names}) != len(names) or any(t not in _TYPES for _, t in self.coords):
            raise ValueError(f"a store schema needs distinct column names and types in {_TYPES}; got {self}")
        return self

    def ddl(self) -> str:
        cols = ", ".join([f"{c} {t} NOT NULL" for c, t in self.coords] + [f"{m} REAL" for m in self.metrics]
                         + [f"{lab} TEXT NOT NULL" for lab in self.labels])
        return f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (block TEXT PRIMARY KEY, n_rows INTEGER NOT NULL, done_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS curves (key TEXT PRIMARY KEY, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    block TEXT NOT NULL,
    {cols},
    config TEXT NOT NULL, version TEXT NOT NULL, written_at REAL NOT NULL,
    UNIQUE (block, {", ".join(c for c, _ in self.coords)})
);
"""


#: The schema of stores written before schemas were recorded (Ji & Zhu sweeps), for reading them back.
LEGACY_SCHEMA = Schema(
    (("variant", "TEXT"), ("depth", "INTEGER"), ("n", "INTEGER"), ("seed", "INTEGER"), ("rho", "REAL"),
     ("T", "REAL"), ("time", "REAL")),
    ("risk", "error", "w_norm", "alpha", "alpha_eq9", "bound", "oracle_norm", "cos_g", "hle", "teacher_error"),
    ("factor",))


def _writer_lock(path: Path):
    """An exclusive lock on ``path.lock`` for the one writer of a store (released when the returned file
    is closed, or by the OS when the process dies, SIGKILL included). A second writer is refused before
    it computes anything, with the holder's pid."""
    fh = open(path.with_name(path.name + ".lock"), "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise ValueError(f"another run holds the store {path} (pid {holder}); wait for it to finish, or use "
                         "another output folder.") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


class ResultsStore:
    """A study's SQLite store at ``path``. Writers pass the study's :class:`Schema` (the store is created
    if missing; an existing store must hold the same schema) and hold ``path.lock`` while open, so a
    second writer is refused at once; readers (``read_only=True``) take the schema recorded in the
    store and need no lock. Use as a context manager or call :meth:`close`."""

    def __init__(self, path, schema: Optional[Schema] = None, *, read_only: bool = False):
        self.path = Path(path)
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no results store at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            stored = self.get_meta("schema")
            self.schema = Schema.from_json(stored) if stored else LEGACY_SCHEMA
            return
        if schema is None:
            raise ValueError("a writable ResultsStore needs the study's `schema`")
        self.schema = schema.check()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _writer_lock(self.path)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")  # a killed writer leaves the last commit intact
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema.ddl())
        self._db.commit()

    # -- context manager ---------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._db.close()
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()  # releases the lock
            self._lock = None

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
                    ("started_at", repr(time.time())), ("schema", self.schema.to_json())])
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
        coords = tuple(c for c, _ in self.schema.coords)
        metrics, labels = self.schema.metrics, self.schema.labels
        cols = ("block",) + coords + metrics + labels + ("config", "version", "written_at")
        sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        now = time.time()
        total = 0
        with self._db:  # one transaction
            for block, rows in blocks.items():
                values = [(block,) + tuple(r[c] for c in coords) + tuple(_real(r.get(m)) for m in metrics)
                          + tuple(r[lab] for lab in labels) + (json.dumps(r["config"], sort_keys=True), version, now)
                          for r in rows]
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
