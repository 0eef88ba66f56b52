"""Queues and channels: subinterp against the alternatives, in one run.

    python bench/bench_queue.py [--quick] [--repeat N]

Prints, for each measurement, subinterp's figure and each alternative's
with the ratio subinterp / alternative (higher is better for rates):

  ping-pong   main interpreter <-> one interpreter running in another
              thread, one small int each way (round trips/s); against
              queue.Queue between two threads, multiprocessing Pipe and
              Queue between two processes, and the stdlib's
              concurrent.interpreters queues (3.14+, which poll every
              10 ms when they block).
  PxC         2x2 and 4x4: P producer and C consumer interpreters, each
              in its own thread, small ints through one queue of maxsize
              1024 (items/s): one put()/get() per item, and separately
              put_many()/get_many() of 256 at a time; against queue.Queue
              with P+C threads, multiprocessing.Queue with P+C processes
              and (3.14+) concurrent.interpreters with P+C interpreters,
              all one item per call (they have no batch operations).
  select      one item sent on a random one of 8 channels, received by a
              select() over all 8 in another interpreter and answered on a
              reply channel: latency per round trip (us), next to the same
              round trip over one channel without select.

Each figure is the median of --repeat runs (default 3).  The machine has
2 cores: nothing else heavy should run meanwhile.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue as stdlib_queue
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import subinterp  # noqa: E402
from subinterp import _queues as sq  # noqa: E402

# ---------------------------------------------------------------------------
# workers (run in other interpreters, threads or processes; by reference
# through this module's name, `bench_queue`)


def echo(src, dst, n):
    for _ in range(n):
        dst.put(src.get())


def echo_pipe(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def produce(q, n):
    for i in range(n):
        q.put(i)


def consume(q, n):
    total = 0
    for _ in range(n):
        total += q.get()
    return total


def select_echo(recvs, reply, n):
    for _ in range(n):
        _, item = sq.select(recvs)
        reply.send(item)


def channel_echo(recv, reply, n):
    for _ in range(n):
        reply.send(recv.recv())


# ---------------------------------------------------------------------------
# measurements (each returns a rate or a latency)


def pingpong_subinterp(n):
    a, b = sq.Queue(), sq.Queue()
    it = subinterp.create()
    try:
        import bench_queue as me
        t = it.call_in_thread(me.echo, a, b, n + 100)
        for i in range(100):            # warm up
            a.put(i)
            b.get()
        t0 = time.perf_counter()
        for i in range(n):
            a.put(i)
            b.get()
        dt = time.perf_counter() - t0
        t.result()
    finally:
        it.close()
    return n / dt


def pingpong_threads(n):
    a, b = stdlib_queue.Queue(), stdlib_queue.Queue()
    t = threading.Thread(target=echo, args=(a, b, n))
    t.start()
    t0 = time.perf_counter()
    for i in range(n):
        a.put(i)
        b.get()
    dt = time.perf_counter() - t0
    t.join()
    return n / dt


def pingpong_mp_pipe(n):
    import bench_queue as me
    parent, child = multiprocessing.Pipe()
    p = multiprocessing.Process(target=me.echo_pipe, args=(child, n + 100))
    p.start()
    for i in range(100):
        parent.send(i)
        parent.recv()
    t0 = time.perf_counter()
    for i in range(n):
        parent.send(i)
        parent.recv()
    dt = time.perf_counter() - t0
    p.join()
    return n / dt


def pingpong_mp_queue(n):
    import bench_queue as me
    a, b = multiprocessing.Queue(), multiprocessing.Queue()
    p = multiprocessing.Process(target=me.echo, args=(a, b, n + 100))
    p.start()
    for i in range(100):
        a.put(i)
        b.get()
    t0 = time.perf_counter()
    for i in range(n):
        a.put(i)
        b.get()
    dt = time.perf_counter() - t0
    p.join()
    return n / dt


def stdlib_interp_with_path():
    from concurrent import interpreters
    it = interpreters.create()
    it.exec(f"import sys; sys.path[:0] = [{ROOT!r}, {HERE!r}]")
    return it


def pingpong_stdlib(n):
    from concurrent import interpreters
    import bench_queue as me
    a, b = interpreters.create_queue(), interpreters.create_queue()
    it = stdlib_interp_with_path()
    try:
        t = it.call_in_thread(me.echo, a, b, n)
        t0 = time.perf_counter()
        for i in range(n):
            a.put(i)
            b.get()
        dt = time.perf_counter() - t0
        t.join()
    finally:
        it.close()
    return n / dt


# P producers x C consumers: each producer puts n // P items, each
# consumer takes n // C (n a multiple of P * C); one bounded queue.

PXC_MAXSIZE = 1024
BATCH = 256


def produce_batched(q, n, batch):
    for start in range(0, n, batch):
        q.put_many(range(start, min(n, start + batch)))


def consume_batched(q, n, batch):
    total = 0
    left = n
    while left:
        items = q.get_many(min(batch, left))
        left -= len(items)
        total += sum(items)
    return total


def pxc_jobs(p, c, n, batch):
    """(function, args) for each worker: p producers then c consumers."""
    import bench_queue as me
    if batch:
        return ([(me.produce_batched, (n // p, batch))] * p +
                [(me.consume_batched, (n // c, batch))] * c)
    return [(me.produce, (n // p,))] * p + [(me.consume, (n // c,))] * c


def noop():
    pass


def pxc_subinterp(p, c, n, batch=0):
    import bench_queue as me
    q = sq.Queue(PXC_MAXSIZE)
    its = [subinterp.create() for _ in range(p + c)]
    try:
        for it in its:          # the import of this module, not timed
            it.call(me.noop)
        t0 = time.perf_counter()
        ts = [it.call_in_thread(fn, q, *args)
              for it, (fn, args) in zip(its, pxc_jobs(p, c, n, batch))]
        for t in ts:
            t.result()
        dt = time.perf_counter() - t0
    finally:
        for it in its:
            it.close()
    return n / dt


def pxc_threads(p, c, n):
    q = stdlib_queue.Queue(PXC_MAXSIZE)
    ts = [threading.Thread(target=fn, args=(q, *args))
          for fn, args in pxc_jobs(p, c, n, 0)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.perf_counter() - t0)


def pxc_mp_queue(p, c, n):
    q = multiprocessing.Queue(PXC_MAXSIZE)
    ps = [multiprocessing.Process(target=fn, args=(q, *args))
          for fn, args in pxc_jobs(p, c, n, 0)]
    t0 = time.perf_counter()
    for proc in ps:
        proc.start()
    for proc in ps:
        proc.join()
    return n / (time.perf_counter() - t0)


def pxc_stdlib(p, c, n):
    from concurrent import interpreters
    q = interpreters.create_queue(PXC_MAXSIZE)
    its = [stdlib_interp_with_path() for _ in range(p + c)]
    try:
        for it in its:          # the import of this module, not timed
            it.exec("import bench_queue")
        t0 = time.perf_counter()
        ts = [it.call_in_thread(fn, q, *args)
              for it, (fn, args) in zip(its, pxc_jobs(p, c, n, 0))]
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
    finally:
        for it in its:
            it.close()
    return n / dt


def pxc_counts(p, c, n):
    """n rounded down to a multiple of p * c (at least one item each)."""
    return max(p * c, n - n % (p * c))


def select8_latency_us(n):
    import random

    import bench_queue as me
    chans = [sq.create_channel() for _ in range(8)]
    reply_r, reply_s = sq.create_channel()
    it = subinterp.create()
    try:
        t = it.call_in_thread(me.select_echo, [r for r, _ in chans],
                              reply_s, n)
        order = [random.randrange(8) for _ in range(n)]
        t0 = time.perf_counter()
        for i in order:
            chans[i][1].send(i)
            reply_r.recv()
        dt = time.perf_counter() - t0
        t.result()
    finally:
        it.close()
    return dt / n * 1e6


def channel1_latency_us(n):
    import bench_queue as me
    r, s = sq.create_channel()
    reply_r, reply_s = sq.create_channel()
    it = subinterp.create()
    try:
        t = it.call_in_thread(me.channel_echo, r, reply_s, n)
        t0 = time.perf_counter()
        for i in range(n):
            s.send(i)
            reply_r.recv()
        dt = time.perf_counter() - t0
        t.result()
    finally:
        it.close()
    return dt / n * 1e6


# ---------------------------------------------------------------------------


PXC_SHAPES = ((2, 2), (4, 4))


def median_of(fn, n, repeat):
    return statistics.median(fn(n) for _ in range(repeat))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer items")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scale = 0.1 if args.quick else 1.0
    r = args.repeat
    have_stdlib = sys.version_info >= (3, 14)

    def n(x):
        return max(100, int(x * scale))

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"median of {r}")

    print("\nping-pong, round trips/s (higher is better)")
    ours = median_of(pingpong_subinterp, n(200_000), r)
    print(f"  {'subinterp.Queue, main <-> interpreter':44s} {ours:12,.0f}")
    rows = [("queue.Queue, thread <-> thread", pingpong_threads, n(50_000)),
            ("multiprocessing.Pipe, process <-> process", pingpong_mp_pipe,
             n(50_000)),
            ("multiprocessing.Queue, process <-> process",
             pingpong_mp_queue, n(20_000))]
    if have_stdlib:
        rows.append(("concurrent.interpreters queue", pingpong_stdlib, 100))
    for name, fn, count in rows:
        v = median_of(fn, count, r)
        print(f"  {name:44s} {v:12,.0f}   subinterp is {ours / v:7.1f}x")

    for p, c in PXC_SHAPES:
        w = p + c
        print(f"\n{p} producers x {c} consumers, small ints, one queue of "
              f"maxsize {PXC_MAXSIZE}, items/s")
        single = median_of(lambda k: pxc_subinterp(p, c, k),
                           pxc_counts(p, c, n(400_000)), r)
        batched = median_of(lambda k: pxc_subinterp(p, c, k, BATCH),
                            pxc_counts(p, c, n(2_000_000)), r)
        print(f"  {f'subinterp.Queue put/get, {w} interpreters':44s} "
              f"{single:12,.0f}")
        print(f"  {f'subinterp.Queue put_many/get_many({BATCH})':44s} "
              f"{batched:12,.0f}")
        rows = [(f"queue.Queue, {w} threads", pxc_threads, n(200_000)),
                (f"multiprocessing.Queue, {w} processes", pxc_mp_queue,
                 n(50_000))]
        if have_stdlib:
            rows.append((f"concurrent.interpreters queue, {w} interpreters",
                         pxc_stdlib, n(20_000)))
        for name, fn, count in rows:
            v = median_of(lambda k: fn(p, c, k), pxc_counts(p, c, count), r)
            print(f"  {name:44s} {v:12,.0f}   subinterp is "
                  f"{single / v:6.1f}x, batched {batched / v:6.1f}x")

    print("\nselect over 8 channels, one item on a random channel, "
          "round trip in us (lower is better)")
    sel = median_of(select8_latency_us, n(50_000), r)
    one = median_of(channel1_latency_us, n(50_000), r)
    print(f"  {'select() over 8 rendezvous channels':44s} {sel:12.2f}")
    print(f"  {'recv() on 1 rendezvous channel':44s} {one:12.2f}   "
          f"select costs {sel / one:5.2f}x")


if __name__ == "__main__":
    main()
