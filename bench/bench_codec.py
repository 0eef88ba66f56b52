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
(subinterp._core._roundtrip); "codec" in the encode-only table encodes
and frees the message (_core._message_size).  "dumps+loads" is
loads(dumps(x)) through a bytes object.  The interpreter section sends
each payload to another interpreter: once (Interpreter.call(sink, x):
one crossing) and there and back (call(echo, x)); the stdlib's
concurrent.interpreters (3.14+) and a ProcessPoolExecutor do the echo.

Method: each payload is built and garbage-collected before any timing;
the contenders' samples alternate (one of each per round, in a new
shuffled order each round), and each figure is the median of the best
half of its samples, so a noisy phase of a shared machine hits all
contenders alike.
"""

from __future__ import annotations

import argparse
import gc
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


def sink(x):
    return None


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


def _summary(samples):
    """Median of the best half of the samples."""
    samples = sorted(samples)
    return statistics.median(samples[: max(1, len(samples) // 2)])


def measure(contenders, repeat, number=1):
    """Time every contender (name -> callable) `repeat` times, per call,
    in seconds: the median of the best half of the samples.

    The samples alternate between contenders (round k times each one
    once), so a slow phase of a shared machine (another process, a
    frequency change) hits all of them alike instead of whichever
    happened to run then.  Each round runs them in a new order (a
    seeded shuffle), so that none always runs right after the same
    other one: what a contender leaves behind (freed memory that the
    allocators keep or give back to the kernel) changes the page faults
    of the next one, for a million ints half of its time.  Rotating the
    order would keep the same neighbours."""
    names = list(contenders)
    samples = {name: [] for name in names}
    rng = random.Random(len(names))
    for _ in range(repeat):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            fn = contenders[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - t0) / number)
    return {name: _summary(s) for name, s in samples.items()}


def build(name):
    obj = PAYLOADS[name]()
    # the payload's garbage (json.loads temporaries) is not collected
    # inside someone else's sample
    gc.collect()
    return obj


def codec_table(names, repeat):
    rows = []
    for name in names:
        obj = build(name)
        row = {"payload": name}
        big = name.endswith("M")
        number = 1 if big or name.startswith(("ints", "json")) else 3
        rep = max(3, repeat // (3 if big else 1))
        c = {
            # a crossing: encode into a message and decode it
            "codec": lambda: _core._roundtrip(obj),
            # encoding alone (the message is freed undecoded)
            "codec_enc": lambda: _core._message_size(obj),
        }
        if not name.startswith("mv"):
            p = pickle.dumps(obj, 5)
            d = _core.dumps(obj)
            c["pickle"] = lambda: pickle.loads(pickle.dumps(obj, 5))
            c["pickle_dumps"] = lambda: pickle.dumps(obj, 5)
            c["pickle_loads"] = lambda: pickle.loads(p)
            c["dumps_loads"] = lambda: _core.loads(_core.dumps(obj))
            c["dumps"] = lambda: _core.dumps(obj)
            c["loads"] = lambda: _core.loads(d)
            try:
                m = marshal.dumps(obj)
            except ValueError:
                row["marshal"] = row["marshal_dumps"] = None
            else:
                c["marshal"] = lambda: marshal.loads(marshal.dumps(obj))
                c["marshal_dumps"] = lambda: marshal.dumps(obj)
                c["marshal_loads"] = lambda: marshal.loads(m)
            row["size"] = len(d)
            row["pickle_size"] = len(p)
        if name == "bytes64M":
            ba = bytearray(obj)
            c["memcpy"] = lambda: bytes(ba)
        if name == "ints":
            # the floor: allocating the result alone
            c["floor"] = lambda: list(range(1_000_000))
        row.update(measure(c, rep, number))
        rows.append(row)
        del obj, c
        gc.collect()
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
            obj = build(name)
            big = name.endswith("M")
            rep = max(3, repeat // (3 if big else 1))
            row = {"payload": name}
            c = {
                "subinterp": lambda: interp.call(echo, obj),
                # one crossing: the payload goes, None comes back
                "subinterp_one": lambda: interp.call(sink, obj),
            }
            if stdlib is not None:
                try:
                    stdlib.call(echo, obj)
                except Exception as exc:  # noqa: BLE001
                    row["stdlib"] = None
                    row["stdlib_error"] = f"{type(exc).__name__}: {exc}"[:80]
                else:
                    c["stdlib"] = lambda: stdlib.call(echo, obj)
            if not name.startswith("mv"):
                c["process"] = lambda: pool.submit(echo, obj).result()
            row.update(measure(c, rep))
            rows.append(row)
            del obj, c
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
    print(f"codec (Python {sys.version.split()[0]}): best-half median of "
          "alternated samples; ratios are the other's time / ours")
    print()
    print("round trip: codec = a crossing (message encoded and decoded), "
          "d+l = loads(dumps(x))")
    hdr = ("payload", "codec", "d+l", "pickle", "marshal",
           "pk/codec", "pk/d+l", "ma/codec", "ma/d+l")
    line = "%-14s %10s %10s %10s %10s %8s %8s %8s %8s"
    print(line % hdr)
    for r in rows:
        print(line % (
            r["payload"], fmt_t(r["codec"]), fmt_t(r.get("dumps_loads")),
            fmt_t(r.get("pickle")), fmt_t(r.get("marshal")),
            ratio(r.get("pickle"), r["codec"]),
            ratio(r.get("pickle"), r.get("dumps_loads")),
            ratio(r.get("marshal"), r["codec"]),
            ratio(r.get("marshal"), r.get("dumps_loads"))))
    print()
    print("encode only: codec = into a message, dumps = into bytes")
    hdr = ("payload", "codec", "dumps", "pickle", "marshal",
           "pk/codec", "pk/dumps", "ma/codec", "ma/dumps")
    print(line % hdr)
    for r in rows:
        print(line % (
            r["payload"], fmt_t(r["codec_enc"]), fmt_t(r.get("dumps")),
            fmt_t(r.get("pickle_dumps")), fmt_t(r.get("marshal_dumps")),
            ratio(r.get("pickle_dumps"), r["codec_enc"]),
            ratio(r.get("pickle_dumps"), r.get("dumps")),
            ratio(r.get("marshal_dumps"), r["codec_enc"]),
            ratio(r.get("marshal_dumps"), r.get("dumps"))))
    print()
    for r in rows:
        if "memcpy" in r:
            print(
                f"bytes64M vs one memcpy ({fmt_t(r['memcpy'])}): codec "
                f"{r['codec'] / r['memcpy']:.2f}x, dumps+loads "
                f"{r['dumps_loads'] / r['memcpy']:.2f}x (dumps "
                f"{r['dumps'] / r['memcpy']:.2f}x, loads "
                f"{r['loads'] / r['memcpy']:.2f}x), pickle "
                f"{r['pickle'] / r['memcpy']:.2f}x"
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
    print("through another interpreter: one = Interpreter.call(sink, payload) "
          "(one crossing), echo = call(echo, payload) (there and back)")
    line = "%-14s %10s %10s %10s %10s %9s %9s"
    print(line % ("payload", "one", "echo", "stdlib", "process",
                  "vs stdlib", "vs proc"))
    for r in rows:
        print(line % (
            r["payload"], fmt_t(r["subinterp_one"]), fmt_t(r["subinterp"]),
            fmt_t(r.get("stdlib")), fmt_t(r.get("process")),
            ratio(r.get("stdlib"), r["subinterp"]),
            ratio(r.get("process"), r["subinterp"])))
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
