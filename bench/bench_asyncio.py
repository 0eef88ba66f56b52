"""asyncio: awaiting work of 2 workers from an event loop.

Measures, in one run of one Python, N concurrent awaits of a no-op task
(all gathered at once) through:

* ``await subinterp.Pool.run(noop)``,
* ``loop.run_in_executor(subinterp.Pool, noop)``,
* ``loop.run_in_executor`` with ``ThreadPoolExecutor``,
  ``ProcessPoolExecutor`` (fork and forkserver on Linux), and the standard
  library's ``InterpreterPoolExecutor`` where present (3.14+),

each with 2 workers, as tasks per second and as a ratio to
``Pool.run``.

Then a ping-pong between two event loops (round trips per second): two
interpreters, each running its own loop in its own thread, through
``Queue.get_async``/``put_async`` (on 3.12, where an event loop in a
subinterpreter aborts the process at exit, gh-112140: the main
interpreter's loop against a worker thread's loop, both through the same
queues), against two threads with ``asyncio.Queue`` and
``call_soon_threadsafe``.  The benchmark command's IO variant with the
GETs as coroutines on 2 workers is ``python -m subinterp bench``'s
``subinterp-async`` row.

Usage: python bench/bench_asyncio.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import json
import multiprocessing
import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import subinterp  # noqa: E402
from subinterp._bench import workloads  # noqa: E402

WORKERS = 2
OURS = "subinterp Pool.run"


def noop(x=None):
    return x


def executors():
    """(name, factory, how): how is "run" (Pool.run) or "executor"
    (loop.run_in_executor)."""
    out = [
        (OURS, lambda: subinterp.Pool(WORKERS), "run"),
        ("run_in_executor(subinterp Pool)", lambda: subinterp.Pool(WORKERS),
         "executor"),
        ("run_in_executor(ThreadPoolExecutor)",
         lambda: cf.ThreadPoolExecutor(WORKERS), "executor"),
    ]
    if sys.platform == "linux":
        for method in ("forkserver", "fork"):
            ctx = multiprocessing.get_context(method)
            out.append((f"run_in_executor(ProcessPoolExecutor, {method})",
                        lambda ctx=ctx: cf.ProcessPoolExecutor(
                            WORKERS, mp_context=ctx), "executor"))
    else:
        out.append(("run_in_executor(ProcessPoolExecutor)",
                    lambda: cf.ProcessPoolExecutor(WORKERS), "executor"))
    stdlib = getattr(cf, "InterpreterPoolExecutor", None)
    if stdlib is not None:
        out.append(("run_in_executor(stdlib InterpreterPoolExecutor)",
                    lambda: stdlib(WORKERS), "executor"))
    return out


def gather_run(executor, how, n):
    async def main():
        if how == "run":
            awaits = [executor.run(noop, i) for i in range(n)]
        else:
            loop = asyncio.get_running_loop()
            awaits = [loop.run_in_executor(executor, noop, i)
                      for i in range(n)]
        results = await asyncio.gather(*awaits)
        assert len(results) == n

    def run():
        asyncio.run(main())

    run()  # warm the workers
    return run


def pingpong_subinterp(n):
    """Round trips/s between two loops through subinterp queues; and a
    description of where the loops run."""
    q1, q2 = subinterp.Queue(), subinterp.Queue()
    if sys.version_info >= (3, 13):
        a, b = subinterp.create(), subinterp.create()
        try:
            tb = b.call_in_thread(workloads.aio_ping, q1, q2, n, True)
            ta = a.call_in_thread(workloads.aio_ping, q2, q1, n, False)
            elapsed = ta.result()
            tb.result()
        finally:
            a.close()
            b.close()
        where = "two interpreters, a loop each"
    else:
        import threading
        server = threading.Thread(target=workloads.aio_ping,
                                  args=(q1, q2, n, True))
        server.start()
        elapsed = workloads.aio_ping(q2, q1, n, False)
        server.join()
        where = "main interpreter's loop and a thread's loop (3.12)"
    return n / elapsed, where


def pingpong_threads(n):
    """Round trips/s between two threads' loops: asyncio.Queue fed with
    call_soon_threadsafe."""
    import threading
    import time

    ready = threading.Event()
    sides = {}

    def serve():
        async def main():
            sides["server"] = (asyncio.get_running_loop(), asyncio.Queue())
            ready.set()
            inbox = sides["server"][1]
            client_loop, client_q = sides["client"]
            for _ in range(n):
                x = await inbox.get()
                client_loop.call_soon_threadsafe(client_q.put_nowait, x)
        asyncio.run(main())

    async def client():
        sides["client"] = (asyncio.get_running_loop(), asyncio.Queue())
        inbox = sides["client"][1]
        server = threading.Thread(target=serve)
        server.start()
        await asyncio.to_thread(ready.wait)
        loop, q = sides["server"]
        t0 = time.perf_counter()
        for i in range(n):
            loop.call_soon_threadsafe(q.put_nowait, i)
            await inbox.get()
        elapsed = time.perf_counter() - t0
        await asyncio.to_thread(server.join)
        return elapsed

    return n / asyncio.run(client())


def median_of(fn, repeat):
    import statistics
    return statistics.median(fn() for _ in range(repeat))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
    repeat = 3 if args.quick else 5
    n = 2000 if args.quick else 10000

    results = {}
    for name, factory, how in executors():
        executor = factory()
        try:
            # a process round trip per task: fewer of them
            count = n // 10 if "Process" in name else n
            t = workloads.median_time(gather_run(executor, how, count), repeat)
            results[name] = count / t
        except Exception as exc:  # a failing executor is reported
            results[name] = f"{type(exc).__name__}: {exc}"
        finally:
            executor.shutdown()
        print(f"  measured {name}", file=sys.stderr)

    print(f"Python {sys.version.split()[0]}, {WORKERS} workers, {n} "
          f"concurrent awaits of a no-op task, median of {repeat} runs")
    width = max(len(name) for name in results) + 2
    ours = results[OURS]
    print(f"{'':{width}}{'tasks/s':>12}{'Pool.run is':>14}")
    for name, value in results.items():
        if isinstance(value, str):
            print(f"{name:{width}}{value}")
            continue
        ratio = ours / value if isinstance(ours, float) else float("nan")
        print(f"{name:{width}}{value:>12,.0f}{ratio:>13.1f}x")

    rounds = 2000 if args.quick else 10000
    where = pingpong_subinterp(100)[1]  # warm up
    ours_pp = median_of(lambda: pingpong_subinterp(rounds)[0], repeat)
    theirs_pp = median_of(lambda: pingpong_threads(rounds), repeat)
    print(f"\nping-pong between two event loops, {rounds} round trips, "
          f"median of {repeat} runs")
    print(f"  get_async/put_async ({where}): {ours_pp:,.0f} round trips/s")
    print(f"  asyncio.Queue + call_soon_threadsafe (two threads): "
          f"{theirs_pp:,.0f} round trips/s ({ours_pp / theirs_pp:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "n": n,
                       "tasks_per_s": results,
                       "pingpong_round_trips_per_s": {
                           "subinterp get_async/put_async": ours_pp,
                           "where": where,
                           "asyncio.Queue + call_soon_threadsafe":
                               theirs_pp}}, f, indent=2)


if __name__ == "__main__":
    main()
