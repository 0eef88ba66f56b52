"""Interpreter life cycle and call latency, against the standard library.

Measures, in one run of one Python:

* create + close of one interpreter,
* resident memory per idle interpreter (20 kept alive, in a fresh process),
* create + a first ``exec("pass")`` + close (the first use imports
  ``subinterp._core`` in a subinterp interpreter),
* ``Pool(N)`` until its N workers each ran a task, N = 2 and 4, against
  one create + first exec (the workers create their interpreters in
  parallel: on 3.13+ about the time of one when there are N free cores),
* ``Interpreter.call(abs, -3)`` from the calling thread,

for subinterp and for the standard library's ``concurrent.interpreters``
(Python 3.14+).  On 3.12 and 3.13, where the standard library has no public
module, the private ``_interpreters`` / ``_xxsubinterpreters`` module that
the backports use stands in, marked as such.

Usage: python bench/bench_interp.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import subinterp  # noqa: E402


def stdlib_flavour():
    """(label, module) of the standard library's interpreters, or None."""
    try:
        from concurrent import interpreters

        return "stdlib concurrent.interpreters", interpreters
    except ImportError:
        pass
    for name in ("_xxsubinterpreters", "_interpreters"):
        try:
            return f"stdlib private {name}", __import__(name)
        except ImportError:
            pass
    return None


def per_op(fn, number, repeat):
    """Median seconds per call of fn over `repeat` runs of `number` calls."""
    samples = []
    fn()
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples), samples


def per_op_pair(fn_a, fn_b, number, repeat):
    """per_op of fn_a and fn_b (None: fn_a only), their runs interleaved
    so that a change in the machine's load hits both alike."""
    if fn_b is None:
        return per_op(fn_a, number, repeat)[0], None
    a, b = [], []
    fn_a()
    fn_b()
    for _ in range(repeat):
        a.append(per_op(fn_a, number, 1)[0])
        b.append(per_op(fn_b, number, 1)[0])
    return statistics.median(a), statistics.median(b)


def create_close_ours():
    subinterp.create().close()


def make_create_close_stdlib(mod):
    if hasattr(mod, "Interpreter"):  # concurrent.interpreters
        return lambda: mod.create().close()
    return lambda: mod.destroy(mod.create())


def create_exec_close_ours():
    interp = subinterp.create()
    interp.exec("pass")
    interp.close()


def make_create_exec_close_stdlib(mod):
    if hasattr(mod, "Interpreter"):  # concurrent.interpreters
        def run():
            interp = mod.create()
            interp.exec("pass")
            interp.close()
        return run
    run_string = getattr(mod, "exec", None) or mod.run_string

    def run():
        interp = mod.create()
        run_string(interp, "pass")
        mod.destroy(interp)
    return run


def one_ready():
    """Seconds from create() until a first exec() there returned (close
    not counted): what a worker does before it is ready."""
    t0 = time.perf_counter()
    interp = subinterp.create()
    interp.exec("pass")
    dt = time.perf_counter() - t0
    interp.close()
    return dt


def pool_ready(n):
    """Seconds from Pool(n) until each of its n workers ran a task (each
    task waits at a Barrier of n parties, so no worker runs two)."""
    barrier = subinterp.Barrier(n)
    t0 = time.perf_counter()
    pool = subinterp.Pool(n)
    futures = [pool.submit(exec, "b.wait()", {"b": barrier})
               for _ in range(n)]
    for f in futures:
        f.result()
    dt = time.perf_counter() - t0
    pool.shutdown()
    return dt


def make_call_stdlib(mod):
    if hasattr(mod, "Interpreter"):
        interp = mod.create()
        return (lambda: interp.call(abs, -3)), interp.close
    return None, None


RSS_SCRIPT = """
import sys, gc
sys.path.insert(0, {root!r})
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
kind = {kind!r}
if kind == 'ours':
    import subinterp
    make = subinterp.create
else:
    try:
        from concurrent import interpreters as mod
        make = mod.create
    except ImportError:
        try:
            import _xxsubinterpreters as mod  # 3.12's own
        except ImportError:
            import _interpreters as mod
        make = mod.create
keep = [make()]          # warm up: first one loads shared things
gc.collect()
before = rss()
keep += [make() for _ in range({n})]
gc.collect()
print((rss() - before) / {n})
"""


def rss_per_interp(kind, n=20):
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT.format(root=ROOT, kind=kind, n=n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
    std = stdlib_flavour()
    rows = []

    # create + close
    ours, theirs = per_op_pair(
        create_close_ours,
        make_create_close_stdlib(std[1]) if std else None, 10, 2 * repeat)
    row = {"what": "create + close one interpreter", "unit": "ms",
           "subinterp": ours * 1e3}
    if std:
        row[std[0]] = theirs * 1e3
    rows.append(row)

    # memory (fresh processes, alternated; median of three each)
    mem = {"ours": [], "std": []}
    for _ in range(3):
        for kind in mem:
            if kind == "ours" or std:
                mem[kind].append(rss_per_interp(kind))
    row = {"what": "RSS per idle interpreter", "unit": "MiB",
           "subinterp": statistics.median(mem["ours"]) / 2**20}
    if std:
        row[std[0]] = statistics.median(mem["std"]) / 2**20
    rows.append(row)

    # create + first use (+ close)
    ours, theirs = per_op_pair(
        create_exec_close_ours,
        make_create_exec_close_stdlib(std[1]) if std else None, 10,
        2 * repeat)
    row = {"what": "create + exec('pass') + close", "unit": "ms",
           "subinterp": ours * 1e3}
    if std:
        row[std[0]] = theirs * 1e3
    rows.append(row)

    # pool start: n workers ready, interleaved
    samples = {1: [], 2: [], 4: []}
    pool_ready(2)
    for _ in range(3 * repeat):
        samples[1].append(one_ready())
        for n in (2, 4):
            samples[n].append(pool_ready(n))
    one = statistics.median(samples[1])
    rows.append({"what": "create + first exec (ready)", "unit": "ms",
                 "subinterp": one * 1e3})
    for n in (2, 4):
        ready = statistics.median(samples[n])
        rows.append({"what": f"Pool({n}) ready", "unit": "ms",
                     "subinterp": ready * 1e3,
                     "note": f"{ready / one:.2f}x one create + first exec"})

    # call latency
    interp = subinterp.create()
    ours, _ = per_op(lambda: interp.call(abs, -3), 20000, repeat)
    interp.close()
    row = {"what": "Interpreter.call(abs, -3)", "unit": "us",
           "subinterp": ours * 1e6}
    if std:
        fn, close = make_call_stdlib(std[1])
        if fn is not None:
            theirs, _ = per_op(fn, 2000, repeat)
            close()
            row[std[0]] = theirs * 1e6
    rows.append(row)

    print(f"Python {sys.version.split()[0]}, median of {repeat} runs, "
          f"{os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}")
    label = std[0] if std else None
    header = f"{'measurement':34} {'subinterp':>12}"
    if label:
        header += f" {label:>34} {'ratio':>8}"
    print(header)
    for row in rows:
        line = f"{row['what']:34} {row['subinterp']:>9.2f} {row['unit']:<3}"
        if label and label in row:
            ratio = row[label] / row["subinterp"]
            line += f" {row[label]:>30.2f} {row['unit']:<3} {ratio:>7.2f}x"
        if "note" in row:
            line += f"  ({row['note']})"
        print(line)
    print("(ratio = stdlib / subinterp: above 1 means subinterp is faster "
          "or smaller)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
