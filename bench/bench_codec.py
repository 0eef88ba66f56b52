"""Benchmarks of the subinterp codec against pickle (protocol 5) and marshal.

Every alternative is measured in the same run and the table shows ratios,
so the figures mean something on any machine.  Run from the repository
root after building in place::

    python bench/bench_codec.py             # table
    python bench/bench_codec.py --json      # machine-readable
    python bench/bench_codec.py --quick     # fewer repeats
    python bench/bench_codec.py --no-echo   # skip the interpreter echo

Payloads (the issue's performance targets):

  dicts       1000 dicts of ~1 KB: 32 short str keys -> short str values
  dicts_apart the same, each dict with its own (equal) key strings
  json        a ~1 MB JSON document as an API returns it (a page of user
              records with nested addresses, orders, items), from
              json.loads
  json_irregular  ~1 MB of random nesting: dicts of random keys, lists
              (a worst case for the codec's dict-shape cache)
  ints        list(range(1_000_000))
  ints256     1,000,000 ints below 256 (CPython caches those objects)
  mv64M       memoryview of 64 MiB (zero-copy: O(1))
  mv1K        memoryview of 1 KiB (the O(1) reference)
  bytes64M    64 MiB bytes (compared with one memcpy: bytes(bytearray))

"codec" is what a crossing costs: encode into a message and decode it
(subinterp._core._roundtrip).  "dumps+loads" adds the copy into a bytes
object.  The echo section sends each payload to another interpreter and
back (subinterp Interpreter.call(echo, x)); the stdlib's
concurrent.interpreters (3.14+) and a ProcessPoolExecutor do the same.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import pickle
import random
import statistics
import sys
import time

# The in-place build of this checkout, unless PYTHONPATH (or an install)
# provides subinterp.
try:
    import subinterp  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from subinterp import _core  # noqa: E402


def echo(x):
    return x


# ---------------------------------------------------------------- payloads


def make_dicts():
    # ~1 KB of text per dict, as in the issue: 32 keys of 6 characters,
    # values of 24
    keys = [f"key_{i:02d}" for i in range(32)]
    return [
        {k: f"value-{j:05d}-{i:02d}-abcdefghijk" for i, k in enumerate(keys)}
        for j in range(1000)
    ]


def make_dicts_apart():
    # the same records, but every dict builds its own key strings (as
    # f-strings, parsers and csv readers do): equal keys, distinct objects
    return [
        {f"key_{i:02d}": f"value-{j:05d}-{i:02d}-abcdefghijk" for i in range(32)}
        for j in range(1000)
    ]


def _words(rnd, n):
    return [
        "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 12)))
        for _ in range(n)
    ]


def make_json(target=1_000_000):
    """An API-style document (a page of user records with nested
    addresses and orders), ~1 MB as JSON, as json.loads returns it."""
    rnd = random.Random(42)
    words = _words(rnd, 500)
    statuses = ["new", "paid", "shipped", "delivered", "returned"]

    def order(i):
        return {
            "id": rnd.randint(10**6, 10**7),
            "status": rnd.choice(statuses),
            "total": round(rnd.random() * 500, 2),
            "paid": rnd.random() < 0.8,
            "note": None if rnd.random() < 0.7 else " ".join(rnd.sample(words, 5)),
            "items": [
                {"sku": f"SKU-{rnd.randint(0, 99999):05d}", "qty": rnd.randint(1, 5),
                 "price": round(rnd.random() * 100, 2)}
                for _ in range(rnd.randint(1, 4))
            ],
        }

    def user(i):
        return {
            "id": i,
            "login": rnd.choice(words) + str(i),
            "name": " ".join(rnd.sample(words, 2)).title(),
            "email": f"{rnd.choice(words)}{i}@example.com",
            "active": rnd.random() < 0.9,
            "score": rnd.random() * 100,
            "tags": rnd.sample(words, rnd.randint(0, 4)),
            "address": {
                "street": f"{rnd.randint(1, 999)} {rnd.choice(words).title()} St",
                "city": rnd.choice(words).title(),
                "zip": f"{rnd.randint(0, 99999):05d}",
                "geo": {"lat": rnd.uniform(-90, 90), "lng": rnd.uniform(-180, 180)},
            },
            "orders": [order(j) for j in range(rnd.randint(0, 5))],
        }

    doc = {"page": 1, "per_page": 0, "users": []}
    size = 0
    while size < target:
        batch = [user(len(doc["users"]) + k) for k in range(100)]
        doc["users"].extend(batch)
        size += len(json.dumps(batch))
    doc["per_page"] = len(doc["users"])
    # through json, so keys are shared the way json.loads shares them
    return json.loads(json.dumps(doc))


def make_json_irregular(target=1_000_000):
    """A ~1 MB document of random shapes: few dicts have the same keys."""
    rnd = random.Random(42)
    words = _words(rnd, 500)

    def value(depth):
        r = rnd.random()
        if depth > 3 or r < 0.35:
            return rnd.choice(
                [
                    rnd.randint(-1000, 100000),
                    rnd.random() * 1000,
                    rnd.choice(words),
                    " ".join(rnd.sample(words, 4)),
                    True,
                    False,
                    None,
                ]
            )
        if r < 0.7:
            return {rnd.choice(words): value(depth + 1) for _ in range(rnd.randint(2, 8))}
        return [value(depth + 1) for _ in range(rnd.randint(2, 10))]

    doc = []
    while len(json.dumps(doc)) < target:
        doc.extend(value(0) for _ in range(200))
    return json.loads(json.dumps(doc))


PAYLOADS = {
    "dicts": make_dicts,
    "dicts_apart": make_dicts_apart,
    "json": make_json,
    "json_irregular": make_json_irregular,
    "ints": lambda: list(range(1_000_000)),
    "ints256": lambda: [i % 256 for i in range(1_000_000)],
    "mv64M": lambda: memoryview(bytes(64 << 20)),
    "mv1K": lambda: memoryview(bytes(1024)),
    "bytes64M": lambda: os.urandom(64 << 20),
}


# ---------------------------------------------------------------- timing


def best_of(fn, repeat, number=1):
    """Median of the best half of `repeat` samples, per call, in seconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    samples.sort()
    return statistics.median(samples[: max(1, len(samples) // 2)])


def codec_table(names, repeat):
    rows = []
    for name in names:
        obj = PAYLOADS[name]()
        row = {"payload": name}
        big = name.endswith("M")
        number = 1 if big or name.startswith(("ints", "json")) else 3
        rep = max(3, repeat // (3 if big else 1))
        row["codec"] = best_of(lambda: _core._roundtrip(obj), rep, number)
        if not name.startswith("mv"):
            p = pickle.dumps(obj, 5)
            row["pickle"] = best_of(lambda: pickle.loads(pickle.dumps(obj, 5)), rep, number)
            row["pickle_dumps"] = best_of(lambda: pickle.dumps(obj, 5), rep, number)
            row["pickle_loads"] = best_of(lambda: pickle.loads(p), rep, number)
            try:
                m = marshal.dumps(obj)
            except ValueError:
                row["marshal"] = None
            else:
                row["marshal"] = best_of(lambda: marshal.loads(marshal.dumps(obj)), rep, number)
            d = _core.dumps(obj)
            row["dumps_loads"] = best_of(lambda: _core.loads(_core.dumps(obj)), rep, number)
            row["dumps"] = best_of(lambda: _core.dumps(obj), rep, number)
            row["loads"] = best_of(lambda: _core.loads(d), rep, number)
            row["size"] = len(d)
            row["pickle_size"] = len(p)
        if name == "bytes64M":
            ba = bytearray(obj)
            row["memcpy"] = best_of(lambda: bytes(ba), rep, number)
        if name == "ints":
            # the floor: allocating the result alone
            row["floor"] = best_of(lambda: list(range(1_000_000)), rep, number)
        rows.append(row)
        del obj
    return rows


# ---------------------------------------------------------------- echo


def echo_table(names, repeat):
    rows = []
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver (the default from 3.14 on): forking a process that has
    # interpreters running is not safe
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
    pool.submit(echo, None).result()

    import subinterp

    interp = subinterp.create()
    stdlib = None
    try:
        from concurrent import interpreters as stdlib_interps  # 3.14+

        stdlib = stdlib_interps.create()
    except ImportError:
        pass
    try:
        for name in names:
            obj = PAYLOADS[name]()
            big = name.endswith("M")
            rep = max(3, repeat // (3 if big else 1))
            row = {"payload": name}
            row["subinterp"] = best_of(lambda: interp.call(echo, obj), rep)
            if stdlib is not None:
                try:
                    stdlib.call(echo, obj)
                except Exception as exc:  # noqa: BLE001
                    row["stdlib"] = None
                    row["stdlib_error"] = f"{type(exc).__name__}: {exc}"[:80]
                else:
                    row["stdlib"] = best_of(lambda: stdlib.call(echo, obj), rep)
            if not name.startswith("mv"):
                row["process"] = best_of(lambda: pool.submit(echo, obj).result(), rep)
            rows.append(row)
            del obj
    finally:
        pool.shutdown()
        interp.close()
        if stdlib is not None:
            stdlib.close()
    return rows


# ---------------------------------------------------------------- output


def fmt_t(t):
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    return f"{t * 1e3:.2f} ms"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def print_codec(rows):
    print(f"codec (Python {sys.version.split()[0]}): encode+decode, best-half median")
    hdr = ("payload", "codec", "pickle", "vs pickle", "marshal", "vs marshal",
           "dumps+loads", "vs pickle")
    print("%-9s %11s %11s %9s %11s %10s %12s %9s" % hdr)
    for r in rows:
        print(
            "%-9s %11s %11s %9s %11s %10s %12s %9s"
            % (
                r["payload"],
                fmt_t(r["codec"]),
                fmt_t(r.get("pickle")),
                ratio(r.get("pickle"), r["codec"]),
                fmt_t(r.get("marshal")),
                ratio(r.get("marshal"), r["codec"]),
                fmt_t(r.get("dumps_loads")),
                ratio(r.get("pickle"), r.get("dumps_loads")),
            )
        )
    for r in rows:
        if "memcpy" in r:
            print(
                f"bytes64M: codec {fmt_t(r['codec'])} vs one memcpy "
                f"{fmt_t(r['memcpy'])}: {r['codec'] / r['memcpy']:.2f}x of memcpy"
            )
    for r in rows:
        if "floor" in r:
            print(
                f"ints: list(range(10**6)) alone takes {fmt_t(r['floor'])}; "
                f"pickle can be beaten by at most "
                f"{r['pickle'] / r['floor']:.2f}x on this payload"
            )
    mv = {r["payload"]: r["codec"] for r in rows if r["payload"].startswith("mv")}
    if len(mv) == 2:
        print(
            f"memoryview: 64 MiB {fmt_t(mv['mv64M'])}, 1 KiB {fmt_t(mv['mv1K'])} "
            f"({mv['mv64M'] / mv['mv1K']:.2f}x)"
        )
    print("sizes (bytes): " + ", ".join(
        f"{r['payload']} {r['size']} (pickle {r['pickle_size']})" for r in rows if "size" in r))


def print_echo(rows):
    print()
    print("echo through Interpreter.call(echo, payload), round trip")
    print("%-9s %11s %11s %9s %11s %9s" % ("payload", "subinterp", "stdlib", "vs stdlib",
                                         "process", "vs proc"))
    for r in rows:
        print(
            "%-9s %11s %11s %9s %11s %9s"
            % (
                r["payload"],
                fmt_t(r["subinterp"]),
                fmt_t(r.get("stdlib")),
                ratio(r.get("stdlib"), r["subinterp"]),
                fmt_t(r.get("process")),
                ratio(r.get("process"), r["subinterp"]),
            )
        )
        if r.get("stdlib_error"):
            print(f"          stdlib: {r['stdlib_error']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--no-echo", action="store_true", help="skip the echo section")
    ap.add_argument("payloads", nargs="*", default=list(PAYLOADS), help="payloads")
    args = ap.parse_args()
    repeat = 5 if args.quick else 15
    result = {"python": sys.version.split()[0], "codec": codec_table(args.payloads, repeat)}
    if not args.no_echo:
        result["echo"] = echo_table(args.payloads, repeat)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    print_codec(result["codec"])
    if "echo" in result:
        print_echo(result["echo"])


if __name__ == "__main__":
    main()
