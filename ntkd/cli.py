"""The ``ntkd`` command line: ``sweep``, ``reproduce``, ``merge``, ``plot``, ``export``, ``finite-width``,
``bench`` and ``demo`` (layer L5: every command imports its layer only when it runs)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  ntkd reproduce ji-zhu --quick --out results/ji-zhu   every Ji & Zhu figure, small sizes (CPU, minutes)
  ntkd reproduce ji-zhu-fig2 --out results/fig2         one figure at full size (resumable)
  ntkd sweep my_sweep.toml --out results/my_sweep        a ρ × T × t × n × seed grid from a TOML config
  ntkd plot results/fig2                                 redraw figures and summary.md from stored results
  ntkd sweep my_sweep.toml --out s/$I --shard $I/4       one of 4 array jobs (I = 0..3), then:
  ntkd merge results/my_sweep s/0 s/1 s/2 s/3            join the shards' stores (refuses mixed configs)
  ntkd sweep my_sweep.toml --out s --distributed         one process per host (jax.distributed from the
                                                         launcher's environment): writes s/shard-I-of-N
  ntkd export results/my_sweep --csv out.csv             the results store as CSV
  ntkd demo --out results/demo                           kernel + predictor demo
  ntkd bench --quick --out results/bench                 kernel throughput vs neural-tangents (if .nt-env exists)
  ntkd bench --empirical --out results/bench             empirical NTKs of finite MLPs vs neural-tangents

A sweep config (TOML; every key is optional except [grid] rho, T, n):
  name = "risk-vs-n"
  [task]      kind = "kernel_teacher"  modes = 20  stop_time = [100.0, inf]  reduction = 0.3
  [student]   depth = 3
  [grid]      rho = [1.0, 0.9, 0.5]  T = [10.0]  t = [inf]  n = [16, 64, 256]  seeds = 4
  [eval]      n_test = 2048  n_ref = 1024
Killed or interrupted runs resume: rerun the same command with the same --out.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ntkd", description="Knowledge distillation in the NTK regime.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="run (or resume) a sweep from a TOML config",
                        description="Run or resume a sweep; rows go to OUT/results.sqlite as blocks finish.")
    sw.add_argument("config", type=Path, help="TOML sweep configuration")
    sw.add_argument("--out", type=Path, required=True, help="output folder (rerun with it to resume)")
    sw.add_argument("--quiet", action="store_true", help="no progress lines")
    _scale_args(sw)
    rp = sub.add_parser("reproduce", help="reproduce a paper's figures (today: Ji & Zhu 2020)")
    rp.add_argument("name", help="ji-zhu (all) or ji-zhu-fig1, -fig2, -fig3, -fig4, -fig5, -figS6, -figS7")
    rp.add_argument("--quick", action="store_true", help="small sizes: all figures in minutes on 2 CPU cores")
    rp.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME[-quick])")
    rp.add_argument("--quiet", action="store_true", help="no progress lines")
    rp.add_argument("--protocol", choices=("paper", "kernel"), default=None,
                    help="ji-zhu only: 'paper' (finite network teachers, students with the z0 of an initialized "
                         "network, the paper's grids; the default) or 'kernel' (kernel-limit teachers, z0 = 0)")
    _scale_args(rp)
    mg = sub.add_parser("merge", help="join the stores of a sharded sweep or reproduction into one folder",
                        description="Merge every results.sqlite under the SHARD folders (at the same relative "
                                    "paths) into OUT, deduplicating whole blocks; refuses stores of another "
                                    "configuration or schema. Then `ntkd plot` the merged folder(s).")
    mg.add_argument("out", type=Path, help="merged output folder")
    mg.add_argument("shards", type=Path, nargs="+", help="the shards' --out folders")
    fw = sub.add_parser("finite-width", help="finite-width networks vs the kernel limit, from a TOML config",
                        description="Train NTK-parameterized MLPs (and their linearizations) with optax on the KD "
                                    "loss and compare with the kernel limit: comparison = ntk_convergence, "
                                    "student_vs_kernel, width_gap or weight_change (Fig. S6). Schema: "
                                    "ntkd.experiments.ji_zhu.finite_runs; examples in scripts/configs/. Resumable.")
    fw.add_argument("config", type=Path, help="TOML finite-width configuration")
    fw.add_argument("--out", type=Path, required=True, help="output folder (rerun with it to resume)")
    fw.add_argument("--quiet", action="store_true", help="no progress lines")
    pl = sub.add_parser("plot", help="redraw the figures and summary.md of a reproduction or sweep folder")
    pl.add_argument("dir", type=Path)
    ex = sub.add_parser("export", help="export a sweep's results store")
    ex.add_argument("dir", type=Path)
    ex.add_argument("--csv", type=Path, required=True, help="CSV file to write")
    bn = sub.add_parser("bench", help="analytic kernel throughput, side by side with neural-tangents",
                        description="Time the analytic NNGP + NTK (ntkd, the bare Gram matmul, and neural-tangents "
                                    "0.6.5 in its pinned environment when present: bash scripts/nt_env.sh) over a "
                                    "grid of n, depth, d, dtype and activation. Writes OUT/bench.jsonl (resumable), "
                                    "bench.json and bench.md.")
    bn.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder (rerun to resume)")
    bn.add_argument("--quick", action="store_true", help="a small grid (n 1000, 2000; depth 1, 3; d 2, 100; ReLU)")
    bn.add_argument("--n", type=int, nargs="+", help="sizes (default 1000 4000 8000)")
    bn.add_argument("--depth", type=int, nargs="+", help="hidden layers (default 1 3 5 10)")
    bn.add_argument("--d", type=int, nargs="+", help="input dimensions (default 2 100 784)")
    bn.add_argument("--dtype", nargs="+", help="float32 and/or float64 (default both)")
    bn.add_argument("--activation", nargs="+", help="relu and/or erf (default both)")
    bn.add_argument("--repeats", type=int, default=3, help="timed calls per case (median reported)")
    bn.add_argument("--get", choices=("pair", "ntk"), default="pair",
                    help="time the NNGP + NTK pair (default) or the NTK alone, in both libraries")
    bn.add_argument("--nt-python", default=None,
                    help="python of the neural-tangents environment ('none' to skip; default: look for .nt-env)")
    bn.add_argument("--empirical", action="store_true",
                    help="time empirical NTKs of finite ReLU MLPs instead (ntkd jacobian/ntvp vs neural-tangents "
                         "empirical_ntk_fn on the same parameters); --n and --depth apply, --width sets widths")
    bn.add_argument("--width", type=int, nargs="+", help="hidden widths for --empirical (default 256 512)")
    bn.add_argument("--quiet", action="store_true", help="no progress lines")
    demo = sub.add_parser("demo", help="kernel + predictor demo on a synthetic 2-D task")
    demo.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder")
    demo.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    parser.add_argument("--compile-cache", metavar="DIR", default=None,
                        help="JAX's persistent compilation cache: a rerun or resumed run compiles nothing it "
                             "compiled before (default: $NTKD_COMPILE_CACHE, else ~/.cache/ntkd/jax)")
    parser.add_argument("--no-compile-cache", action="store_true", help="no persistent compilation cache")
    args = parser.parse_args(argv)
    if not args.no_compile_cache and args.command != "bench":  # benchmarks time cold compiles
        _use_compile_cache(args.compile_cache)
    try:
        return _dispatch(args, parser)
    except KeyboardInterrupt:
        print("\ninterrupted: finished blocks are saved; rerun the same command to resume.", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"ntkd {args.command}: error: {e}", file=sys.stderr)
        return 2


def _scale_args(p) -> None:
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="compute only shard I of N (whole units, a deterministic partition) into --out; "
                        "join the N folders with `ntkd merge`")
    p.add_argument("--distributed", action="store_true",
                   help="one process of a jax.distributed job (initialized from the environment SLURM or a "
                        "launcher sets, or --coordinator/--num-processes/--process-id): shard = process "
                        "index / count, written to OUT/shard-I-of-N")
    p.add_argument("--coordinator", default=None, help="host:port of process 0 (implies --distributed)")
    p.add_argument("--num-processes", type=int, default=None, help="processes of the job")
    p.add_argument("--process-id", type=int, default=None, help="this process's index")


def _shard_and_out(args, out: Path):
    """The shard ``(i, N)`` of this run and its output folder: --shard, or the jax.distributed process."""
    from .experiments.engine import parse_shard

    shard = parse_shard(args.shard)
    if args.distributed or args.coordinator or args.num_processes is not None or args.process_id is not None:
        if shard is not None:
            raise ValueError("give --shard or --distributed, not both")
        import jax

        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
        shard = (jax.process_index(), jax.process_count())
        out = out / f"shard-{shard[0]}-of-{shard[1]}"
    return shard, out


def _merge(out: Path, shards) -> list:
    """``ntkd merge``: every results.sqlite under each shard folder, joined at its relative path under
    ``out``; the folders' JSON files (config.json, figure.json) are copied when missing. Returns the
    merged store paths."""
    import shutil

    from .experiments.store import ResultsStore, merge_stores

    groups = {}
    for d in shards:
        if not d.is_dir():
            raise FileNotFoundError(f"no shard folder {d}")
        found = sorted(d.rglob("results.sqlite"))
        if not found:
            raise ValueError(f"{d} holds no results.sqlite")
        for f in found:
            groups.setdefault(f.relative_to(d), []).append(f)
    merged = []
    for rel, files in sorted(groups.items()):
        target = out / rel
        stats = merge_stores(target, files)
        for f in files:
            for js in f.parent.glob("*.json"):
                if not (target.parent / js.name).exists():
                    shutil.copyfile(js, target.parent / js.name)
        with ResultsStore(target, read_only=True) as st:
            st.to_csv(target.parent / "results.csv")
            print(f"{target}: +{stats['blocks']} blocks ({stats['rows']} rows), {stats['skipped']} duplicate "
                  f"blocks skipped; {st.count()} rows")
        merged.append(target)
    return merged


def _use_compile_cache(directory) -> None:
    """Point JAX's persistent compilation cache at ``directory`` (or $NTKD_COMPILE_CACHE, else
    ~/.cache/ntkd/jax), caching every program; a cache the process already configured is kept."""
    import os

    import jax

    if jax.config.jax_compilation_cache_dir and directory is None:
        return
    path = Path(directory or os.environ.get("NTKD_COMPILE_CACHE") or Path.home() / ".cache" / "ntkd" / "jax")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _dispatch(args, parser) -> int:
    if args.command == "sweep":
        from .experiments.ji_zhu.sweep import load_config, run_sweep
        from .experiments.store import ResultsStore

        cfg = load_config(args.config)  # validated before any computation
        shard, args.out = _shard_and_out(args, args.out)
        path = run_sweep(cfg, args.out, progress=None if args.quiet else sys.stderr, shard=shard)
        with ResultsStore(path, read_only=True) as st:
            st.to_csv(args.out / "results.csv")
            print(f"{st.count()} rows in {path} (and results.csv)")
        if shard is not None:
            print(f"shard {shard[0]}/{shard[1]} done; join the shards with `ntkd merge OUT SHARD_DIRS...`")
            return 0
        from .experiments.reproduce import plot

        try:
            plot(args.out)
            print(f"wrote {args.out / 'sweep.png'} and {args.out / 'summary.md'}")
        except ImportError:
            print("(install matplotlib for plots: pip install 'ntkd[plot]')")
    elif args.command == "reproduce":
        from .experiments.reproduce import reproduce

        out = args.out or Path("results") / (args.name + ("-quick" if args.quick else ""))
        shard, out = _shard_and_out(args, out)
        if shard is not None:
            return _reproduce_shard(args, out, shard)
        summaries = reproduce(args.name, out, quick=args.quick, protocol=args.protocol,
                              progress=None if args.quiet else sys.stderr)
        for k in summaries:
            print((out / k / "summary.md").read_text() if (out / k / "summary.md").exists() else k)
        print(f"figures and summaries under {out}")
    elif args.command == "finite-width":
        from .experiments.ji_zhu.finite_runs import load_finite_config, run_finite

        cfg = load_finite_config(args.config)  # validated before any computation
        run_finite(cfg, args.out, progress=None if args.quiet else sys.stderr)
        print((args.out / "summary.md").read_text())
        print(f"results under {args.out}")
    elif args.command == "merge":
        merged = _merge(args.out, args.shards)
        print(f"merged {len(merged)} store(s) into {args.out}; draw them with `ntkd plot` on the figure or "
              "sweep folder")
    elif args.command == "plot":
        from .experiments.reproduce import plot

        plot(args.dir)
        print(f"redrew {args.dir} (summary.md)")
    elif args.command == "export":
        from .experiments.store import ResultsStore

        with ResultsStore(args.dir / "results.sqlite", read_only=True) as st:
            st.to_csv(args.csv)
            print(f"{st.count()} rows -> {args.csv}")
    elif args.command == "bench":
        from .bench.runner import FULL_GRID, QUICK_GRID, run_bench, markdown_table

        say = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
        if args.empirical:
            from .bench.runner import EMPIRICAL_GRID, empirical_table, run_empirical_bench

            rows = run_empirical_bench(args.out, n=args.n or ((128,) if args.quick else EMPIRICAL_GRID["n"]),
                                       width=args.width or ((128,) if args.quick else EMPIRICAL_GRID["width"]),
                                       depth=args.depth or EMPIRICAL_GRID["depth"], repeats=args.repeats,
                                       nt_python=args.nt_python, progress=say)
            print(empirical_table(rows))
            print(f"wrote {args.out / 'empirical.json'} and {args.out / 'empirical.md'}")
            return 0
        grid = dict(QUICK_GRID if args.quick else FULL_GRID)
        for k in grid:
            if getattr(args, k) is not None:
                grid[k] = tuple(getattr(args, k))
        rows = run_bench(args.out, repeats=args.repeats, get=args.get, nt_python=args.nt_python, progress=say,
                         **grid)
        print(markdown_table(rows))
        print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    elif args.command == "demo":
        from .experiments.demo import run_demo

        r = run_demo(args.out, args.quick)
        print(f"analytic NTK (L=3) on {r['n_train']} + {r['n_test']} points: {r['kernel_seconds']:.2f} s")
        print(f"test MSE: target variance {r['target_variance']:.4f} -> converged {r['test_mse_converged']:.4g}")
        for w, g in r["empirical_ntk_relative_gap_by_width"].items():
            print(f"  width {w:>5}: |E[empirical NTK] - analytic| / |analytic| = {g:.4f}")
        print(f"wrote {args.out / 'demo.json'} and {args.out / 'demo.png'}")
    return 0


def _reproduce_shard(args, out: Path, shard) -> int:
    """``ntkd reproduce NAME --shard I/N``: this shard's part of the sweep figures of NAME into
    ``out/<figure>/<part>`` (the folders ``reproduce`` writes), without plotting; ``ntkd merge`` joins the
    shards and ``ntkd plot OUT/<figure>`` draws. Figures that are not sweeps are refused."""
    import json

    if not args.name.startswith("ji-zhu"):
        raise ValueError(f"--shard runs the sweep figures of ji-zhu; got {args.name!r}")
    from .experiments.ji_zhu.figures import DEFAULT_PROTOCOL, FIGURES, figure_configs
    from .experiments.ji_zhu.sweep import SweepConfig, run_sweep

    protocol = args.protocol or DEFAULT_PROTOCOL

    key = args.name.removeprefix("ji-zhu").lstrip("-")
    sweeps = [f for f in FIGURES if f not in ("fig1", "figS6", "figS7")]
    names = sweeps if key == "" else [key]
    if any(k not in sweeps for k in names):
        raise ValueError(f"--shard applies to the sweep figures ({', '.join('ji-zhu-' + f for f in sweeps)}); "
                         f"run {args.name} without it")
    for k in names:
        d = out / k
        d.mkdir(parents=True, exist_ok=True)
        (d / "figure.json").write_text(json.dumps({"paper": "ji-zhu", "figure": k, "quick": args.quick,
                                                   "protocol": protocol}))
        for part, raw in figure_configs(k, args.quick, protocol).items():
            run_sweep(SweepConfig.from_dict(raw), d / part, progress=None if args.quiet else sys.stderr,
                      shard=shard)
    print(f"shard {shard[0]}/{shard[1]} of {args.name} done in {out}; join the shards with `ntkd merge`, "
          "then `ntkd plot MERGED/<figure>`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
