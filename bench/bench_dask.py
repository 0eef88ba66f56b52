"""dask graphs on subinterp against dask's own schedulers.

Measures, in one run of one Python, the time of ``dask.compute`` of a
pure-Python CPU-bound graph whose tasks are closures and lambdas, with 2
workers, on:

* ``sync``: dask's single-threaded scheduler (the sequential baseline),
* ``threads``: dask's threaded scheduler (one GIL),
* ``processes``: dask's multiprocessing scheduler as it runs by default
  (a new pool of ``spawn`` processes for each compute),
* ``processes, pool reused``: the same with one ``ProcessPoolExecutor``
  (spawn) passed as ``pool=`` and reused by every compute,
* ``subinterp``: ``subinterp.dask.get`` on one ``subinterp.Pool`` reused by
  every compute.

Two graphs: ``delayed`` (8 independent tasks and a sum), and ``bag`` (a
dask.bag map / filter / sum over 8 partitions; not on 3.12, where dask.bag
cannot be imported in a subinterpreter: see docs/dask.md).

Usage: python bench/bench_dask.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from subinterp._bench import workloads  # noqa: E402

WORKERS = 2
TASKS = 8


def make_delayed_graph(n):
    """TASKS closures of about the same cost (n iterations each)."""
    from dask import delayed

    def make_work(seed):
        def work():
            acc = seed
            for i in range(n):
                acc = (acc * 31 + i) % 1_000_003
            return acc
        return work

    parts = [delayed(make_work(s))() for s in range(TASKS)]
    return delayed(lambda *xs: sum(xs))(*parts)


def make_bag_graph(n):
    import dask.bag as db

    per = n // 1000
    bag = db.from_sequence(range(TASKS * 1000), npartitions=TASKS)
    return (bag.map(lambda x: sum((x * i) % 7 for i in range(per)))
            .filter(lambda v: v % 2 == 0)
            .sum())


def bag_works_in_subinterpreters():
    return sys.version_info >= (3, 13)


def schedulers(subinterp_pool, process_pool):
    """(name, compute(graph)) of every scheduler measured."""
    import dask

    import subinterp.dask

    def with_(**kw):
        return lambda g: dask.compute(g, **kw)[0]

    return [
        ("sync", with_(scheduler="sync")),
        ("threads", with_(scheduler="threads", num_workers=WORKERS)),
        ("processes", with_(scheduler="processes", num_workers=WORKERS)),
        ("processes, pool reused",
         with_(scheduler="processes", pool=process_pool)),
        ("subinterp", with_(scheduler=subinterp.dask.get,
                            pool=subinterp_pool)),
    ]


timed = workloads.median_time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    args = parser.parse_args(argv)
    try:
        import dask  # noqa: F401
    except ImportError:
        print("bench_dask: dask is not installed (pip install subinterp[dask])")
        return
    import subinterp

    repeat = 3 if args.quick else 7
    n = 150_000 if args.quick else 300_000
    graphs = [("delayed", make_delayed_graph(n))]
    if bag_works_in_subinterpreters():
        graphs.append(("bag", make_bag_graph(n)))

    from subinterp._bench.cli import OtherLoad

    # what other programs kept busy meanwhile (our process pools' workers
    # are in our session)
    other = OtherLoad({os.getsid(0)})
    spawn = multiprocessing.get_context("spawn")
    results: dict = {}
    with subinterp.Pool(WORKERS) as pool, \
            cf.ProcessPoolExecutor(WORKERS, mp_context=spawn) as procs:
        for gname, graph in graphs:
            row = results.setdefault(gname, {})
            expected = None
            for name, compute in schedulers(pool, procs):
                try:
                    value = compute(graph)   # warm-up (imports, workers)
                    if expected is None:
                        expected = value
                    elif value != expected:
                        raise AssertionError(f"{value!r} != {expected!r}")
                    row[name] = timed(lambda: compute(graph), repeat) * 1e3
                except Exception as exc:  # reported, not fatal
                    row[name] = f"{type(exc).__name__}: {exc}"
                print(f"  measured {gname} on {name}", file=sys.stderr)
    other_cpus = other.cpus()

    print(f"Python {sys.version.split()[0]}, dask {dask.__version__}, "
          f"{WORKERS} workers, {TASKS} tasks of {n} iterations, median of "
          f"{repeat} runs")
    names = [name for name, _ in schedulers(None, None)]
    width = max(len(nm) for nm in names) + 2
    print(f"{'':{width}}" + "".join(f"{g:>36}" for g, _ in graphs))
    for name in names:
        cells = []
        for gname, _ in graphs:
            row = results[gname]
            v, ours, seq = row.get(name), row.get("subinterp"), row.get("sync")
            if not isinstance(v, float):
                cells.append(f"{'error':>36}")
                continue
            if name == "subinterp" or not isinstance(ours, float):
                cells.append(f"{v:>13.1f} ms" + (
                    f" ({seq / v:4.2f}x sync)" if isinstance(seq, float)
                    else "") + f"{'':>6}")
            else:
                cells.append(f"{v:>13.1f} ms ({v / ours:5.2f}x subinterp)")
        print(f"{name:{width}}" + "".join(cells))
    for gname, row in results.items():
        for name, v in row.items():
            if not isinstance(v, float):
                print(f"{gname} on {name}: {v}")
    print("(Nx subinterp = how many times subinterp is faster; "
          "Nx sync = speed-up over the sequential scheduler)")
    if other_cpus is not None:
        print(f"other programs kept {other_cpus:.2f} CPUs busy meanwhile"
              + (" (a disturbed run: compare ratios with care)"
                 if other_cpus >= 0.15 else ""))
    if not bag_works_in_subinterpreters():
        print("bag: not measured on Python 3.12 (dask.bag cannot be imported "
              "in a subinterpreter there)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "dask": dask.__version__,
                       "workers": WORKERS, "tasks": TASKS, "iterations": n,
                       "other_cpus": other_cpus, "ms": results}, f, indent=2)


if __name__ == "__main__":
    main()
