"""The paper-neutral study engine and results store, driven by a toy study that is no paper's: the
store records the study's schema, reads it back without the study, resumes exactly the unfinished
blocks, and cuts units into memory-bounded chunks that are multiples of the device count."""
import json
import sqlite3
import threading
import time

import pytest

from ntkd.experiments.engine import Unit, chunk_size, once, run_units
from ntkd.experiments.store import LEGACY_SCHEMA, ResultsStore, Schema

SCHEMA = Schema((("shape", "TEXT"), ("k", "INTEGER"), ("x", "REAL")), ("area", "ratio"), ("method",))


def _units(calls):
    def unit(shape):
        def compute(store, items):
            calls.append((shape, list(items)))
            return {f"{shape}|k={k}": [{"shape": shape, "k": k, "x": x, "area": k * x, "ratio": float("nan") if k == 0 else x / k,
                                        "method": "toy", "config": {"shape": shape, "k": k}} for x in (0.5, 2.0)]
                    for k in items}
        return Unit(shape, [(f"{shape}|k={k}", k) for k in range(5)], compute, block_bytes=2**30, block_work=1.0)
    return [unit("square"), unit("disc")]


def test_a_toy_study_runs_resumes_and_reads_back_without_the_study(tmp_path):
    path = tmp_path / "results.sqlite"
    calls = []
    kw = dict(config_json=json.dumps({"toy": 1}), config_hash="h1", version="test", name="toy", memory_gib=2.0,
              progress=None)
    stats = run_units(path, SCHEMA, _units(calls), max_blocks=4, **kw)
    assert stats["blocks"] == 4 and [len(items) for _, items in calls] == [2, 2]  # chunks of 2 blocks (2 GiB)
    calls.clear()
    stats = run_units(path, SCHEMA, _units(calls), **kw)
    assert stats["blocks"] == 6  # exactly the unfinished ones
    assert calls == [("square", [4]), ("disc", [0, 1]), ("disc", [2, 3]), ("disc", [4])]
    with ResultsStore(path, read_only=True) as st:
        assert st.schema == SCHEMA
        rows = st.rows()
        assert len(rows) == 20 and st.count() == 20
        assert {r["shape"] for r in rows} == {"square", "disc"}
        nan_row = [r for r in rows if r["k"] == 0][0]
        assert nan_row["ratio"] is None  # NaN is stored as NULL
        assert [c for c in st.columns()][:8] == ["id", "block", "shape", "k", "x", "area", "ratio", "method"]
    with pytest.raises(ValueError, match="different sweep configuration"):
        run_units(path, SCHEMA, _units([]), **{**kw, "config_hash": "h2"})


def test_once_runs_its_function_one_time_and_a_second_caller_waits_for_it():
    calls, seen = [], []
    gate = threading.Event()

    def slow():
        calls.append(threading.current_thread().name)
        gate.wait(5)
    run = once(slow)
    th = threading.Thread(target=run, name="first")
    th.start()
    while not calls:
        time.sleep(0.001)
    waiter = threading.Thread(target=lambda: (run(), seen.append(gate.is_set())))
    waiter.start()
    time.sleep(0.05)
    assert seen == []  # still waiting for the first call
    gate.set()
    th.join(), waiter.join()
    assert calls == ["first"] and seen == [True]
    run()
    assert calls == ["first"]
    bad = once(lambda: 1 / 0)
    bad(), bad()  # a failing prepare is swallowed (the real call raises)


@pytest.mark.parametrize("precompile", [True, False])
def test_prepares_run_once_each_in_order_in_a_background_thread(tmp_path, precompile):
    """Units that share a prepare share one call; each unit's compute finds its prepare done (it calls
    it first, waiting for one in flight); without ``precompile`` the computes alone run them."""
    log = []
    started = {"shared": threading.Event(), "own": threading.Event()}

    def prep(name):
        def body():
            started[name].set()
            time.sleep(0.01)
            log.append((name, threading.current_thread().name))
        return once(body)

    shared, own = prep("shared"), prep("own")

    def unit(label, p):
        def compute(store, items):
            if precompile:  # deterministic: the background thread has begun this prepare; p() waits for it
                assert started["own" if label == "c" else "shared"].wait(10)
            p()
            log.append(("compute " + label, threading.current_thread().name))
            return {f"{label}|k={k}": [{"shape": label, "k": k, "x": 1.0, "area": 1.0, "ratio": 1.0,
                                        "method": "toy", "config": {}}] for k in items}
        return Unit(label, [(f"{label}|k={k}", k) for k in range(2)], compute, prepare=p)

    units = [unit("a", shared), unit("b", shared), unit("c", own)]
    stats = run_units(tmp_path / "r.sqlite", SCHEMA, units, config_json="{}", config_hash="h", version="test",
                      name="toy", progress=None, precompile=precompile)
    assert stats["blocks"] == 6
    preps = [entry for entry in log if not entry[0].startswith("compute")]
    assert [name for name, _ in preps] == ["shared", "own"]
    main = threading.current_thread().name
    assert {t for name, t in log if name.startswith("compute")} == {main}
    assert log.index(preps[0]) < log.index(("compute a", main)) and log.index(preps[1]) < log.index(("compute c", main))
    if precompile:
        assert {t for _, t in preps} == {"ntkd-precompile_0"}
    else:
        assert {t for _, t in preps} == {main}
    assert threading.active_count() == 1 or all(not t.name.startswith("ntkd-precompile")
                                                 for t in threading.enumerate())  # the thread is joined


def test_a_store_written_before_schemas_reads_with_the_legacy_schema(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore(path, LEGACY_SCHEMA) as st:
        st.claim("{}", "h", "old")
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM meta WHERE key = 'schema'")
    db.close()
    with ResultsStore(path, read_only=True) as st:
        assert st.schema == LEGACY_SCHEMA


def test_schema_refuses_clashing_names_and_unknown_types():
    with pytest.raises(ValueError, match="distinct column names"):
        Schema((("t", "REAL"), ("T", "REAL")), ()).check()
    with pytest.raises(ValueError, match="distinct column names"):
        Schema((("a", "FLOAT"),), ()).check()
    with pytest.raises(ValueError, match="schema"):
        ResultsStore("unused.sqlite")


@pytest.mark.parametrize("block_bytes, gib, fixed, n_dev, want", [
    (2**30, 4.0, 0, 1, 4), (2**30, 4.0, 0, 3, 3), (2**30, 0.1, 0, 1, 1), (2**30, 0.1, 0, 4, 4),
    (2**20, 1.0, 0, 8, 1024), (2**30, 4.0, 5, 2, 4), (2**30, 4.0, 1, 2, 2),
])
def test_chunks_fit_the_memory_and_are_multiples_of_the_devices(block_bytes, gib, fixed, n_dev, want):
    assert chunk_size(block_bytes, gib, fixed, n_dev) == want


def test_a_second_writer_is_refused_before_computing(tmp_path):
    """Two runs on one output folder: the second gets "another run holds the store (pid ...)" before any
    unit computes; readers are not blocked, and the lock goes with the first writer."""
    path = tmp_path / "results.sqlite"
    calls = []
    kw = dict(config_json="{}", config_hash="h", version="test", name="toy", progress=None)
    with ResultsStore(path, SCHEMA) as first:
        first.claim("{}", "h", "test")
        with pytest.raises(ValueError, match=r"another run holds the store .* \(pid \d+\)"):
            run_units(path, SCHEMA, _units(calls), **kw)
        assert calls == []
        with ResultsStore(path, read_only=True) as reader:
            assert reader.count() == 0
    assert run_units(path, SCHEMA, _units(calls), **kw)["blocks"] == 10


def _finished_store(tmp_path):
    path = tmp_path / "results.sqlite"
    run_units(path, SCHEMA, _units([]), config_json="{}", config_hash="h1", version="test", name="toy",
              progress=None)
    return path


@pytest.mark.parametrize("content, what", [
    (b"not a database at all, just text" * 40, "corrupt or truncated"),
    ("truncate", "corrupt or truncated"),
    ("foreign", "not an ntkd results store"),
])
def test_a_corrupt_truncated_or_foreign_store_is_refused_with_what_to_do(tmp_path, content, what):
    path = _finished_store(tmp_path)
    if content == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\0" * 50 + data[150:len(data) // 2])
    elif content == "foreign":
        path.unlink()
        db = sqlite3.connect(path)
        with db:
            db.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
        db.close()
    else:
        path.write_bytes(content)
    for open_store in (lambda: ResultsStore(path, read_only=True), lambda: ResultsStore(path, SCHEMA)):
        with pytest.raises(ValueError, match=what) as e:
            open_store()
        assert str(path) in str(e.value)
    if content == "foreign":  # the foreign database was left as it was
        db = sqlite3.connect(path)
        assert {r[0] for r in db.execute("SELECT name FROM sqlite_master")} == {"photos"}
        db.close()


def test_an_unwritable_folder_is_named_and_a_finished_store_still_exports(tmp_path, monkeypatch):
    import ntkd.experiments.store as store_mod

    path = _finished_store(tmp_path)

    def denied(*a, **k):  # the lock file cannot be created: a read-only folder (tests may run as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_mod, "open", denied, raising=False)
    with pytest.raises(ValueError, match="read-only folder.*ntkd export"):
        ResultsStore(path, SCHEMA)
    monkeypatch.undo()
    real_connect = sqlite3.connect
    uris = []

    class NoSharedMemory:  # what mode=ro gives where SQLite cannot create the WAL's shared-memory file
        def execute(self, *a, **k):
            raise sqlite3.OperationalError("unable to open database file")

        def close(self):
            pass

    def ro_folder(database, *a, **k):
        uris.append(str(database))
        return real_connect(database, *a, **k) if "immutable=1" in str(database) else NoSharedMemory()

    monkeypatch.setattr(store_mod.sqlite3, "connect", ro_folder)
    with ResultsStore(path, read_only=True) as st:
        out = st.to_csv(tmp_path / "rows.csv")
    assert len(uris) == 2 and "immutable=1" in uris[1]
    assert len(out.read_text().strip().splitlines()) == 1 + 20
