"""Interpreter life cycle and call latency, against the standard library.

Measures, in one run of one Python:

* create + close of one interpreter,
* resident memory per idle interpreter (20 kept alive, in a fresh process),
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


def create_close_ours():
    subinterp.create().close()


def make_create_close_stdlib(mod):
    if hasattr(mod, "Interpreter"):  # concurrent.interpreters
        return lambda: mod.create().close()
    return lambda: mod.destroy(mod.create())


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
    ours, _ = per_op(create_close_ours, 20, repeat)
    row = {"what": "create + close one interpreter", "unit": "ms",
           "subinterp": ours * 1e3}
    if std:
        theirs, _ = per_op(make_create_close_stdlib(std[1]), 20, repeat)
        row[std[0]] = theirs * 1e3
    rows.append(row)

    # memory
    row = {"what": "RSS per idle interpreter", "unit": "MiB",
           "subinterp": rss_per_interp("ours") / 2**20}
    if std:
        row[std[0]] = rss_per_interp("std") / 2**20
    rows.append(row)

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

    print(f"Python {sys.version.split()[0]}, median of {repeat} runs")
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
        print(line)
    print("(ratio = stdlib / subinterp: above 1 means subinterp is faster "
          "or smaller)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
