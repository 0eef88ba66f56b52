"""Pool overhead and throughput, against the other executors.

Measures, in one run of one Python, for subinterp.Pool, ThreadPoolExecutor,
ProcessPoolExecutor and (3.14+) the standard library's
InterpreterPoolExecutor, each with 2 workers (ProcessPoolExecutor with the
forkserver start method, the default from 3.14 on, and on Linux also with
fork, the default before):

* serial ``submit(noop).result()`` latency,
* ``map(noop, range(N))`` throughput (default chunking of each executor;
  ProcessPoolExecutor with its default chunksize=1, as people call it),
* echo of 1000 dicts of ~1 KB (32 short str keys -> short str values),
* the article's CPU benchmark (../ANCHORS: product of start..end over four
  chunks), with the pool built inside each sample, and with subinterp's
  default pool reused.

Usage: python bench/bench_pool.py [--quick] [--json FILE]
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

import subinterp  # noqa: E402
from subinterp._bench import workloads  # noqa: E402

WORKERS = 2


def noop(x=None):
    return x


def echo(x):
    return x


def make_payload():
    return [
        {f"key{j:02d}": f"value-{i}-{j:02d}-xxxxxxxxxx" for j in range(32)}
        for i in range(1000)
    ]


def executors():
    """(name, factory) of every executor available here."""
    out = [
        ("subinterp.Pool", lambda: subinterp.Pool(WORKERS)),
        ("ThreadPoolExecutor", lambda: cf.ThreadPoolExecutor(WORKERS)),
    ]
    ctx = None
    if sys.platform == "linux":
        ctx = multiprocessing.get_context("forkserver")
    out.append(
        ("ProcessPoolExecutor",
         lambda: cf.ProcessPoolExecutor(WORKERS, mp_context=ctx))
    )
    if sys.platform == "linux":
        # the default start method on Linux before 3.14: the cheapest start
        fork = multiprocessing.get_context("fork")
        out.append(
            ("ProcessPoolExecutor (fork)",
             lambda: cf.ProcessPoolExecutor(WORKERS, mp_context=fork))
        )
    std = getattr(cf, "InterpreterPoolExecutor", None)
    if std is not None:
        out.append(("stdlib InterpreterPoolExecutor", lambda: std(WORKERS)))
    return out


timed = workloads.median_time


def bench_serial(ex, n):
    for _ in range(max(100, n // 10)):
        ex.submit(noop).result()

    def run():
        for _ in range(n):
            ex.submit(noop).result()

    return run


def bench_map(ex, n):
    list(ex.map(noop, range(1000)))

    def run():
        for _ in ex.map(noop, range(n)):
            pass

    return run


def bench_echo(ex):
    payload = make_payload()
    ex.submit(echo, payload).result()

    def run():
        assert len(ex.submit(echo, payload).result()) == 1000

    return run


def cpu_fresh(factory):
    def run():
        with factory() as ex:
            list(ex.map(workloads.cpu_worker, *zip(*workloads.CPU_WORKLOADS)))

    return run


def cpu_sequential():
    for start, end in workloads.CPU_WORKLOADS:
        workloads.cpu_worker(start, end)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 5
    n_serial = 2000 if args.quick else 10000
    n_map = 50_000 if args.quick else 200_000

    results = {}
    for name, factory in executors():
        row = {}
        ex = factory()
        try:
            n = n_serial if "Thread" in name or "subinterp" in name else n_serial // 10
            row["serial submit().result() us"] = (
                timed(bench_serial(ex, n), repeat) / n * 1e6
            )
            m = n_map if "Process" not in name and "stdlib" not in name else n_map // 10
            row["map(noop) tasks/s"] = m / timed(bench_map(ex, m), repeat)
            row["echo 1000 dicts ms"] = timed(bench_echo(ex), repeat) * 1e3
        except Exception as exc:  # a failing executor is reported, not fatal
            row["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            ex.shutdown(wait=True)
        row["article CPU, pool per sample ms"] = (
            timed(cpu_fresh(factory), repeat) * 1e3
        )
        results[name] = row
        print(f"  measured {name}", file=sys.stderr)

    seq = timed(cpu_sequential, repeat) * 1e3
    subinterp.default_pool()  # warm, as a script that uses it twice
    list(subinterp.map(workloads.cpu_worker, *zip(*workloads.CPU_WORKLOADS)))
    reused = timed(
        lambda: list(
            subinterp.map(workloads.cpu_worker, *zip(*workloads.CPU_WORKLOADS))
        ),
        repeat,
    ) * 1e3

    print(f"Python {sys.version.split()[0]}, {WORKERS} workers, median of "
          f"{repeat} runs")
    metrics = [
        "serial submit().result() us",
        "map(noop) tasks/s",
        "echo 1000 dicts ms",
        "article CPU, pool per sample ms",
    ]
    names = list(results)
    width = max(len(n) for n in names) + 2
    print(f"{'':{width}}" + "".join(f"{m:>34}" for m in metrics))
    ours = results["subinterp.Pool"]
    for name in names:
        row = results[name]
        cells = []
        for m in metrics:
            v = row.get(m)
            if v is None:
                cells.append(f"{'-':>34}")
                continue
            if name == "subinterp.Pool":
                cells.append(f"{v:>34.1f}")
            else:
                higher_better = m.endswith("/s")
                ratio = (ours[m] / v) if higher_better else (v / ours[m])
                cells.append(f"{v:>23.1f} ({ratio:>5.1f}x)")
        print(f"{name:{width}}" + "".join(cells))
        if "error" in row:
            print(f"{'':{width}}error: {row['error']}")
    print("(x = how many times subinterp.Pool is better on that measure)")
    print(f"article CPU: sequential {seq:.1f} ms; subinterp default pool "
          f"reused {reused:.1f} ms ({seq / reused:.2f}x sequential)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "python": sys.version,
                    "workers": WORKERS,
                    "executors": results,
                    "article_cpu_sequential_ms": seq,
                    "article_cpu_default_pool_ms": reused,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
