"""subinterp.multiprocessing.Pool against multiprocessing.Pool.

Measures, in one run of one Python, the same calls on
subinterp.multiprocessing.Pool, multiprocessing.Pool (forkserver, the
default from 3.14 on, and on Linux also fork, the default before) and
multiprocessing.pool.ThreadPool, each with 2 workers:

* serial ``apply(noop)`` latency,
* ``apply_async(noop)`` x N, then every ``get()``,
* ``map(noop, range(N))`` (multiprocessing's default chunk size),
* ``imap(noop, range(N))`` and ``imap_unordered`` with their default
  chunksize=1, as people call them,
* echo of 1000 dicts of ~1 KB (32 short str keys -> short str values)
  through ``apply``,
* the article's CPU benchmark (../ANCHORS: product of start..end over four
  chunks) with ``starmap``, the pool built inside each sample.

Usage: python bench/bench_mp.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.pool
import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import subinterp.multiprocessing  # noqa: E402
from subinterp._bench import workloads  # noqa: E402

WORKERS = 2
OURS = "subinterp.multiprocessing.Pool"


def noop(x=None):
    return x


def echo(x):
    return x


def make_payload():
    return [
        {f"key{j:02d}": f"value-{i}-{j:02d}-xxxxxxxxxx" for j in range(32)}
        for i in range(1000)
    ]


def pools():
    """(name, factory) of every pool available here."""
    out = [(OURS, lambda: subinterp.multiprocessing.Pool(WORKERS))]
    if sys.platform == "linux":
        forkserver = multiprocessing.get_context("forkserver")
        out.append(("multiprocessing.Pool (forkserver)",
                    lambda: forkserver.Pool(WORKERS)))
        fork = multiprocessing.get_context("fork")
        out.append(("multiprocessing.Pool (fork)", lambda: fork.Pool(WORKERS)))
    else:
        out.append(("multiprocessing.Pool", lambda: multiprocessing.Pool(WORKERS)))
    out.append(("multiprocessing.pool.ThreadPool",
                lambda: multiprocessing.pool.ThreadPool(WORKERS)))
    return out


timed = workloads.median_time


def bench_apply(p, n):
    for _ in range(max(50, n // 10)):
        p.apply(noop)

    def run():
        for _ in range(n):
            p.apply(noop)

    return run


def bench_apply_async(p, n):
    def run():
        results = [p.apply_async(noop, (i,)) for i in range(n)]
        for r in results:
            r.get()

    run()
    return run


def bench_map(p, n):
    p.map(noop, range(1000))

    def run():
        assert len(p.map(noop, range(n))) == n

    return run


def bench_imap(p, n, method):
    def run():
        for _ in getattr(p, method)(noop, range(n)):
            pass

    run()
    return run


def bench_echo(p):
    payload = make_payload()
    p.apply(echo, (payload,))

    def run():
        assert len(p.apply(echo, (payload,))) == 1000

    return run


def cpu_fresh(factory):
    def run():
        with factory() as p:
            p.starmap(workloads.cpu_worker, workloads.CPU_WORKLOADS)

    return run


METRICS = [
    ("apply(noop) us", "lower"),
    ("apply_async x N tasks/s", "higher"),
    ("map(noop) items/s", "higher"),
    ("imap(noop) items/s", "higher"),
    ("imap_unordered(noop) items/s", "higher"),
    ("echo 1000 dicts ms", "lower"),
    ("article CPU, pool per sample ms", "lower"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    args = parser.parse_args(argv)
    # a fork in a process with threads (the thread pools' and subinterp's)
    warnings.simplefilter("ignore", DeprecationWarning)
    repeat = 3 if args.quick else 5
    n_serial = 1000 if args.quick else 5000
    n_async = 2000 if args.quick else 10000
    n_map = 50_000 if args.quick else 200_000
    n_imap = 5000 if args.quick else 20000

    results = {}
    for name, factory in pools():
        row = {}
        p = factory()
        try:
            processes = "ThreadPool" not in name and name != OURS
            # fewer tasks where one costs a pipe round trip
            scale = 10 if processes else 1
            n = n_serial // scale
            row["apply(noop) us"] = timed(bench_apply(p, n), repeat) / n * 1e6
            n = n_async // scale
            row["apply_async x N tasks/s"] = n / timed(
                bench_apply_async(p, n), repeat)
            row["map(noop) items/s"] = n_map / timed(bench_map(p, n_map), repeat)
            n = n_imap // scale
            for method in ("imap", "imap_unordered"):
                row[f"{method}(noop) items/s"] = n / timed(
                    bench_imap(p, n, method), repeat)
            row["echo 1000 dicts ms"] = timed(bench_echo(p), repeat) * 1e3
        except Exception as exc:  # a failing pool is reported, not fatal
            row["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            p.terminate()
            p.join()
        row["article CPU, pool per sample ms"] = (
            timed(cpu_fresh(factory), repeat) * 1e3
        )
        results[name] = row
        print(f"  measured {name}", file=sys.stderr)

    print(f"Python {sys.version.split()[0]}, {WORKERS} workers, median of "
          f"{repeat} runs")
    names = list(results)
    width = max(len(n) for n in names) + 2
    col = 31
    print(f"{'':{width}}" + "".join(f"{m:>{col}}" for m, _ in METRICS))
    ours = results[OURS]
    for name in names:
        row = results[name]
        cells = []
        for m, better in METRICS:
            v = row.get(m)
            if v is None or ours.get(m) is None:
                cells.append(f"{'-':>{col}}")
                continue
            if name == OURS:
                cells.append(f"{v:>{col}.1f}")
            else:
                ratio = ours[m] / v if better == "higher" else v / ours[m]
                cells.append(f"{v:>{col - 10}.1f} ({ratio:>6.1f}x)")
        print(f"{name:{width}}" + "".join(cells))
        if "error" in row:
            print(f"{'':{width}}error: {row['error']}")
    print(f"(x = how many times {OURS} is better on that measure)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"python": sys.version, "workers": WORKERS, "pools": results},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
