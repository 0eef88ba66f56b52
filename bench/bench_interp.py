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

With ``--breakdown`` it measures instead where the time and memory of an
interpreter go (docs/benchmarks.md, "Where the time and memory go"):
CPython's own start-up (``site``: interpreters made in a child process
run with ``-S``; each start-up import, from ``-X importtime``),
subinterp's create and close against the standard library's, and its
``subinterp._core`` import on first use; the resident memory of each (RSS
per interpreter, 20 kept alive, fresh processes), and that of a second
copy of the modules ``encodings`` and ``site`` load (what their objects
take).

Usage: python bench/bench_interp.py [--quick] [--breakdown] [--json FILE]
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


# --- breakdown -------------------------------------------------------

LOW_IMPORT = """
try:
    import _interpreters as low
except ImportError:
    import _xxsubinterpreters as low
run_string = getattr(low, "exec", None) or low.run_string
"""

# Times (s) of the steps, in a child process (so that -S can be given).
STEPS_SCRIPT = LOW_IMPORT + """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
import subinterp
OUT = {out!r}
IMPORT_CORE = (
    "import sys, time\\n"
    "sys.path[:0] = [%r]\\n"
    "t0 = time.perf_counter()\\n"
    "import subinterp._core\\n"
    "open(%r, 'w').write(repr(time.perf_counter() - t0))\\n"
    % ({root!r}, OUT))
res = {{k: [] for k in ("stdlib create", "stdlib destroy", "subinterp create",
                        "subinterp close", "import subinterp._core")}}
for _ in range({rounds}):
    for _ in range(5):
        t0 = time.perf_counter(); i = low.create()
        t1 = time.perf_counter(); low.destroy(i)
        t2 = time.perf_counter()
        res["stdlib create"].append(t1 - t0)
        res["stdlib destroy"].append(t2 - t1)
    for _ in range(5):
        t0 = time.perf_counter(); i = subinterp.create()
        t1 = time.perf_counter(); i.close()
        t2 = time.perf_counter()
        res["subinterp create"].append(t1 - t0)
        res["subinterp close"].append(t2 - t1)
    for _ in range(3):
        i = low.create()
        run_string(i, IMPORT_CORE)
        low.destroy(i)
        with open(OUT) as f:
            res["import subinterp._core"].append(float(f.read()))
print(json.dumps({{k: statistics.median(v) for k, v in res.items()}}))
"""

# One interpreter made under -X importtime, then _core imported there.
IMPORTTIME_SCRIPT = LOW_IMPORT + """
import sys
sys.stderr.write("@@ create\\n"); sys.stderr.flush()
i = low.create()
run_string(i, "import sys; sys.path[:0] = [%r]; "
           "sys.stderr.write('@@ core\\\\n'); import subinterp._core"
           % {root!r})
low.destroy(i)
"""


def child(args, script):
    return subprocess.run([sys.executable, *args, "-c", script],
                          capture_output=True, text=True, check=True)


def breakdown_times(rounds):
    import tempfile

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dt")
        for flags in ((), ("-S",)):
            proc = child(flags, STEPS_SCRIPT.format(root=ROOT, out=out,
                                                    rounds=rounds))
            res[flags] = json.loads(proc.stdout.strip().splitlines()[-1])
    # start-up imports: median of five runs of -X importtime
    imports = {}
    for _ in range(5):
        err = child(("-X", "importtime"),
                    IMPORTTIME_SCRIPT.format(root=ROOT)).stderr
        part = None
        for line in err.splitlines():
            if line.startswith("@@ "):
                part = line[3:]
                continue
            fields = line.split("|")
            if part is None or len(fields) != 3 or \
                    not fields[1].strip().isdigit():
                continue
            name = fields[2].rstrip()
            if not name.startswith("  "):  # top level: cumulative time
                key = (part, name.strip())
                imports.setdefault(key, []).append(int(fields[1]) / 1e6)
    return res, {k: statistics.median(v) for k, v in imports.items()}


BREAKDOWN_MEM_SCRIPT = LOW_IMPORT + """
import gc, sys
sys.path.insert(0, {root!r})
import subinterp
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
COPY = '''
import importlib.util, sys
copies = sys.__dict__.setdefault('_copies', [])
for name in %r:
    spec = importlib.util.find_spec(name)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    copies.append(m)
'''
kind = {kind!r}
def make():
    if kind.startswith("ours"):
        i = subinterp.create()
        if kind == "ours+exec":
            i.exec("pass")
        return i
    i = low.create()
    if kind.startswith("copy "):
        run_string(i, "import importlib.util")
        names = kind.split()[1].split(",")
        if names != ["none"]:
            run_string(i, COPY % (names,))
    return i
keep = [make()]
gc.collect()
before = rss()
keep += [make() for _ in range({n})]
gc.collect()
print((rss() - before) / {n})
"""

COPY_SETS = {
    "encodings": "encodings,encodings.aliases,encodings.utf_8,codecs",
    "site": "site,os,stat,posixpath,genericpath,_collections_abc,"
            "_sitebuiltins",
}


def breakdown_memory(reps=3, n=20):
    def rss(kind, flags=()):
        vals = [float(child(flags, BREAKDOWN_MEM_SCRIPT.format(
            root=ROOT, kind=kind, n=n)).stdout.split()[-1])
            for _ in range(reps)]
        return statistics.median(vals) / 2**20

    res = {
        "stdlib": rss("std"),
        "stdlib, python -S": rss("std", ("-S",)),
        "subinterp": rss("ours"),
        "subinterp, after a first exec": rss("ours+exec"),
        "stdlib + import importlib.util": rss("copy none"),
    }
    for label, names in COPY_SETS.items():
        res[f"the same + a 2nd copy of {label}'s modules"] = rss(
            "copy " + names)
    return res


def breakdown(repeat):
    times, imports = breakdown_times(repeat)
    plain, nosite = times[()], times[("-S",)]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
          f"average {os.getloadavg()[0]:.2f}; medians")
    print("\ntime (ms)                              python  python -S")
    for key in plain:
        print(f"  {key:36} {plain[key] * 1e3:7.3f}  {nosite[key] * 1e3:9.3f}")
    print("\nimports inside a new interpreter (-X importtime, cumulative "
          "ms, inflated by the timing itself)")
    for (part, name), dt in sorted(imports.items(),
                                   key=lambda kv: (kv[0][0], -kv[1])):
        what = "at creation" if part == "create" else "first use"
        print(f"  {what:12} {name:36} {dt * 1e3:7.3f}")
    mem = breakdown_memory()
    print("\nRSS per interpreter (MiB)")
    for key, val in mem.items():
        print(f"  {key:60} {val:6.3f}")
    return {"times_s": {"python": plain, "python -S": nosite},
            "imports_s": {f"{p}: {n}": v for (p, n), v in imports.items()},
            "rss_mib": mem}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    parser.add_argument("--breakdown", action="store_true",
                        help="where the time and memory go, step by step")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
    if args.breakdown:
        res = breakdown(repeat)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"python": sys.version, "breakdown": res}, f,
                          indent=2)
        return res
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
