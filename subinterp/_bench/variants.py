"""The ways of running the workloads that the benchmark compares.

Each variant runs one *sample*: all chunks of a workload, to completion.
Variants that build a pool build it inside the sample, as the article did,
except "subinterp, default pool", which measures the process-wide pool that
``subinterp.map`` reuses (it is started by the warm-up sample).

Every variant uses the same number of workers (``--workers``, default: the
usable CPUs) and hands out one chunk per task.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


def usable_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "process_cpu_count"):  # 3.13+
        return os.process_cpu_count() or 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _columns(argsets: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return list(zip(*argsets))


class Unavailable(Exception):
    """The variant cannot run on this Python; the message says why."""


class Variant:
    key = ""
    label = ""
    tasks: tuple[str, ...] = ("cpu", "io")  # the benchmarks it runs in

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def describe(self) -> str:
        """The label shown in the report (may depend on the running Python)."""
        return self.label

    def check(self) -> None:
        """Raise Unavailable when the variant cannot run here."""

    def sample(self, fn: Callable[..., Any], argsets: list[tuple[Any, ...]]) -> dict | None:
        """Run every chunk to completion.  May return a dict of extra
        figures, which the runner adds to the sample's report."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the variant keeps between samples."""


class Sequential(Variant):
    key = "sequential"
    label = "Sequential"

    def sample(self, fn, argsets):
        # Each chunk's time too: the report derives from them how much
        # handing these unequal chunks out to W workers can gain at best.
        chunks = []
        for args in argsets:
            t0 = time.perf_counter()
            fn(*args)
            chunks.append(time.perf_counter() - t0)
        return {"chunks_s": chunks}


class Threads(Variant):
    key = "threads"
    label = "Threading (ThreadPoolExecutor)"

    def describe(self):
        return "Threading (ThreadPoolExecutor)"

    def sample(self, fn, argsets):
        with concurrent.futures.ThreadPoolExecutor(self.workers) as ex:
            list(ex.map(fn, *_columns(argsets)))


class Processes(Variant):
    key = "processes"
    label = "Multiprocessing (ProcessPoolExecutor)"

    def describe(self):
        import multiprocessing

        return f"Multiprocessing (ProcessPoolExecutor, {multiprocessing.get_start_method()})"

    def sample(self, fn, argsets):
        with concurrent.futures.ProcessPoolExecutor(self.workers) as ex:
            list(ex.map(fn, *_columns(argsets)))


def stdlib_interpreter_pool() -> tuple[str, type]:
    """(what, class) of the standard library's InterpreterPoolExecutor: the
    real one on 3.14+, the interpreters-pep-734 backport on 3.12/3.13."""
    try:
        from concurrent.futures import InterpreterPoolExecutor  # 3.14+

        return "stdlib InterpreterPoolExecutor", InterpreterPoolExecutor
    except ImportError:
        pass
    try:
        from interpreters_backport.concurrent.futures import (
            InterpreterPoolExecutor,
        )
    except ImportError as exc:
        pip = "interpreters-pep-734"
        if sys.version_info < (3, 13):
            pip += " interpreters-3-12"
        why = "" if getattr(exc, "name", None) == "interpreters_backport" else f" ({exc})"
        raise Unavailable(
            "needs Python 3.14+ or the backport: pip install " + pip + why
        ) from None
    return "InterpreterPoolExecutor (backport)", InterpreterPoolExecutor


class StdlibInterpreters(Variant):
    key = "stdlib-interpreters"
    label = "stdlib InterpreterPoolExecutor"

    def check(self):
        self._what, self._cls = stdlib_interpreter_pool()

    def describe(self):
        return getattr(self, "_what", self.label)

    def sample(self, fn, argsets):
        with self._cls(self.workers) as ex:
            list(ex.map(fn, *_columns(argsets)))


# --------------------------------------------------------------------------
# subinterp


class SubinterpPool(Variant):
    key = "subinterp-pool"
    label = "subinterp.Pool, new per sample"

    def sample(self, fn, argsets):
        import subinterp

        # chunksize=1: one chunk per task, as the other executors hand out
        # (the chunks differ in cost: automatic batching would unbalance)
        with subinterp.Pool(self.workers) as pool:
            list(pool.map(fn, *_columns(argsets), chunksize=1))


class SubinterpDefault(Variant):
    key = "subinterp-default"
    label = "subinterp default pool, reused"

    def describe(self):
        # The default pool's size is subinterp's choice: the usable CPUs.
        n = usable_cpus()
        size = "" if n == self.workers else f", {n} workers"
        return f"subinterp default pool, reused{size}"

    def sample(self, fn, argsets):
        import subinterp

        list(subinterp.map(fn, *_columns(argsets), chunksize=1))


class SubinterpAsync(Variant):
    """The IO benchmark's GETs as coroutines: every GET of every chunk is
    one ``async def`` task (asyncio streams, HTTP/1.0), on a pool of 2
    workers that each run up to 10 at once on their event loop."""

    key = "subinterp-async"
    label = "subinterp.Pool async, 2 workers x max_concurrency=10"
    tasks = ("io",)
    WORKERS = 2
    CONCURRENCY = 10

    def check(self):
        if sys.version_info < (3, 13):
            raise Unavailable(
                "coroutine tasks need Python 3.13+: on 3.12 an event loop "
                "run in a subinterpreter makes the process abort at exit "
                "(CPython gh-112140)")

    def sample(self, fn, argsets):
        import subinterp

        from .workloads import io_get_async

        # fn is the blocking io_worker: this variant makes the same GETs
        # (start..end of each chunk, same server) one coroutine each
        gets = [(i, port) for start, end, port, *_ in argsets
                for i in range(start, end + 1)]
        with subinterp.Pool(self.WORKERS,
                            max_concurrency=self.CONCURRENCY) as pool:
            futs = [pool.submit(io_get_async, i, port) for i, port in gets]
            for f in futs:
                f.result()


# --------------------------------------------------------------------------
# the machine's calibration


def _calibration_worker(conn, start: int, end: int) -> None:
    """A calibration process: one cpu_worker(start, end) per message."""
    from .workloads import cpu_worker

    try:
        while conn.recv():
            cpu_worker(start, end)
            conn.send(True)
    except (EOFError, KeyboardInterrupt):
        pass


class Calibration(Variant):
    """Not a variant of the comparison: what the machine can give at the
    moment.  One sample runs the same fixed piece of CPU work
    (``CALIBRATION_CHUNK``) once in one process, then once in each of W
    processes at the same time.  The processes are started before the
    first sample and kept, and nothing of subinterp runs: on an idle
    machine with W free CPUs the two times are equal, and
    W * single / parallel (the parallelism) is W.  Other programs, a
    hypervisor's other guests or a CPU slowed down show in both figures,
    in the same rounds as the variants' samples."""

    key = "calibration"
    label = "calibration"
    tasks = ("cpu",)

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._procs: list[Any] = []
        self._conns: list[Any] = []

    def _start(self) -> None:
        import multiprocessing

        from .workloads import CALIBRATION_CHUNK

        for _ in range(self.workers):
            mine, theirs = multiprocessing.Pipe()
            p = multiprocessing.Process(
                target=_calibration_worker, args=(theirs, *CALIBRATION_CHUNK),
                daemon=True)
            p.start()
            theirs.close()
            self._procs.append(p)
            self._conns.append(mine)

    def _run(self, conns: list[Any]) -> float:
        t0 = time.perf_counter()
        for c in conns:
            c.send(True)
        for c in conns:
            c.recv()
        return time.perf_counter() - t0

    def sample(self, fn, argsets):
        if not self._procs:
            self._start()
        single = self._run(self._conns[:1])
        parallel = self._run(self._conns)
        return {"single_s": single, "parallel_s": parallel}

    def close(self):
        for c in self._conns:
            try:
                c.send(False)
                c.close()
            except OSError:
                pass
        for p in self._procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        self._procs, self._conns = [], []


VARIANTS: list[type[Variant]] = [
    Sequential,
    Threads,
    Processes,
    StdlibInterpreters,
    SubinterpPool,
    SubinterpDefault,
    SubinterpAsync,
]
KEYS = [v.key for v in VARIANTS]
BY_KEY = {v.key: v for v in VARIANTS}
# What a runner process can run: the variants and the calibration.
RUNNABLE = {**BY_KEY, Calibration.key: Calibration}
