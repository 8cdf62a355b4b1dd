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

Shards: :func:`merge_stores` joins the stores of one configuration written by several processes or
array jobs (``ntkd sweep ... --shard i/N``, ``ntkd merge``).

Export: :meth:`ResultsStore.to_csv`, :meth:`ResultsStore.to_pandas` (pandas only if installed),
:meth:`ResultsStore.rows` (a list of dicts, no dependency).
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple, Optional

from .._core.io import write_text_atomic

__all__ = ["ResultsStore", "Schema", "merge_stores", "refuse_other_config"]

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


def _connect_read_only(path: Path):
    """A read-only connection. A store in a folder the reader cannot write (where SQLite cannot create the
    shared-memory file of write-ahead logging) is opened as immutable instead."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT name FROM sqlite_master").fetchall()
        return db
    except sqlite3.OperationalError:
        db.close()
        return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.DatabaseError:  # not a database: _check_ntkd_store says so
        return db


def _check_ntkd_store(db, path: Path) -> None:
    """Refuse, with a message that says what to do, a file that is not an SQLite database (corrupt or
    truncated) or a database that is not an ntkd results store (no ``meta`` table)."""
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" in tables:
            db.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.DatabaseError as e:
        db.close()
        raise ValueError(f"{path} is not a readable ntkd results store ({e}); it is corrupt or truncated. Move it "
                         "aside (the run then starts afresh) or choose another output folder.") from None
    if tables and "meta" not in tables:
        db.close()
        raise ValueError(f"{path} is an SQLite database but not an ntkd results store (tables: "
                         f"{', '.join(sorted(tables))}); choose another output folder.")


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
            self._db = _connect_read_only(self.path)
            _check_ntkd_store(self._db, self.path)
            stored = self.get_meta("schema")
            self.schema = Schema.from_json(stored) if stored else LEGACY_SCHEMA
            return
        if schema is None:
            raise ValueError("a writable ResultsStore needs the study's `schema`")
        self.schema = schema.check()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _writer_lock(self.path)
        except PermissionError as e:
            raise ValueError(f"cannot write the results store {self.path}: {e.strerror.lower()} (a read-only "
                             "folder?). Choose a writable output folder; reading a finished store (ntkd export) "
                             "works read-only.") from None
        self._db = sqlite3.connect(self.path)
        if self.path.stat().st_size:
            _check_ntkd_store(self._db, self.path)
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
            raise ValueError(other_config_message(self.path, self.get_meta("config"), config_json, old, config_hash))
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
        """Write every row to ``path`` (atomically: a killed export leaves no half file)."""
        cur = self._db.execute("SELECT * FROM results ORDER BY id")
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([c[0] for c in cur.description])
        w.writerows(cur)
        return write_text_atomic(path, buf.getvalue(), newline="")

    def to_pandas(self):
        """The results as a pandas DataFrame (pandas is optional: ImportError names it if missing)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("to_pandas needs pandas (`pip install pandas`); to_csv and rows() do not.") from e
        return pd.read_sql_query("SELECT * FROM results ORDER BY id", self._db)


def _flat(d, prefix=""):
    out = {}
    for k, v in (d.items() if isinstance(d, dict) else []):
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def other_config_message(path, stored_json, config_json, stored_hash, config_hash) -> str:
    """The refusal of a store bound to another configuration, naming the keys that differ."""
    try:
        a, b = _flat(json.loads(stored_json or "{}")), _flat(json.loads(config_json))
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    except ValueError:
        keys = []
    which = f" (keys that differ: {', '.join(keys)})" if keys else ""
    return (f"{path} holds the results of a different sweep configuration{which}; hash {stored_hash[:12]}, this "
            f"one {config_hash[:12]}. Use another --out directory, or delete the store to start over.")


def refuse_other_config(path, config_json: str, config_hash: str) -> None:
    """Before a run writes anything: raise (as :meth:`ResultsStore.claim` would) when the store at
    ``path`` exists and holds another configuration. Reads only."""
    path = Path(path)
    if not path.exists():
        return
    with ResultsStore(path, read_only=True) as st:
        old = st.get_meta("config_hash")
        if old is not None and old != config_hash:
            raise ValueError(other_config_message(path, st.get_meta("config"), config_json, old, config_hash))


def _real(v):
    if v is None:
        return None
    v = float(v)
    return None if v != v else v  # NaN is stored as NULL


def merge_stores(target, sources) -> dict:
    """Join the results stores ``sources`` (paths of ``results.sqlite`` files of one configuration, e.g.
    the shards of a sweep) into the store at ``target`` (created if missing, or an existing store of the
    same configuration: merging again adds nothing).

    Refuses (ValueError naming the file) stores of another configuration hash or schema than the first
    source (or than ``target``). Blocks are the unit of deduplication: a block already in ``target``, or
    in an earlier source, is skipped whole; each copied block brings all its rows and its ``blocks``
    entry in one transaction per source. Curves are copied by key; the same key with another payload is
    refused. Rows keep their stored values, configuration JSON, version and time. Returns
    ``{"blocks": new blocks, "rows": new rows, "skipped": duplicate blocks}``.
    """
    sources = [Path(p) for p in sources]
    if not sources:
        raise ValueError("merge needs at least one source store")
    first = None
    opened = []
    try:
        for src in sources:
            st = ResultsStore(src, read_only=True)
            opened.append(st)
            meta = (st.get_meta("config_hash"), st.schema.to_json())
            if meta[0] is None:
                raise ValueError(f"{src} holds no configuration (an empty or foreign store)")
            if first is None:
                first = (meta, st.get_meta("config"), st.get_meta("version"))
            elif meta != first[0]:
                what = "configuration" if meta[0] != first[0][0] else "schema"
                raise ValueError(f"{src} holds another {what} than {sources[0]} (config hash {meta[0][:12]} vs "
                                 f"{first[0][0][:12]}); merge only the shards of one run.")
        (cfg_hash, schema_json), cfg_json, version = first
        schema = Schema.from_json(schema_json)
        stats = {"blocks": 0, "rows": 0, "skipped": 0}
        with ResultsStore(target, schema) as out:
            if out.get_meta("schema") not in (None, schema_json):
                raise ValueError(f"{target} holds another schema than the sources")
            out.claim(cfg_json, cfg_hash, version)  # refuses a target of another configuration
            done = out.done_blocks()
            have = out.curves()
            cols = [c for c in out.columns() if c != "id"]
            sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for src, st in zip(sources, opened):
                for key, payload in st.curves().items():
                    if key in have and have[key] != payload:
                        raise ValueError(f"{src}: curve {key!r} differs from the one already merged")
                    if key not in have:
                        out.put_curve(key, payload)
                        have[key] = payload
                blocks = st._db.execute("SELECT block, n_rows, done_at FROM blocks ORDER BY block").fetchall()
                new = [b for b in blocks if b[0] not in done]
                stats["skipped"] += len(blocks) - len(new)
                with out._db:  # one transaction per source
                    for block, n_rows, done_at in new:
                        rows = st._db.execute(f"SELECT {', '.join(cols)} FROM results WHERE block = ? ORDER BY id",
                                              (block,)).fetchall()
                        if len(rows) != n_rows:
                            raise ValueError(f"{src}: block {block!r} has {len(rows)} rows, its entry says {n_rows}")
                        out._db.executemany(sql, rows)
                        out._db.execute("INSERT INTO blocks VALUES (?, ?, ?)", (block, n_rows, done_at))
                        done.add(block)
                        stats["rows"] += n_rows
                stats["blocks"] += len(new)
        return stats
    finally:
        for st in opened:
            st.close()
