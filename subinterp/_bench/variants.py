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
import queue
import sys
import threading

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

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def describe(self) -> str:
        """The label shown in the report (may depend on the running Python)."""
        return self.label

    def check(self) -> None:
        """Raise Unavailable when the variant cannot run here."""

    def sample(self, fn: Callable[..., Any], argsets: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the variant keeps between samples."""


class Sequential(Variant):
    key = "sequential"
    label = "Sequential"

    def sample(self, fn, argsets):
        for args in argsets:
            fn(*args)


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


class FallbackPool(concurrent.futures.Executor):
    """TEMPORARY stand-in for ``subinterp.Pool`` while it does not exist.

    N threads, each creating and owning one interpreter, take tasks from one
    ``queue.SimpleQueue`` and run them with ``Interpreter.call``.  Rows
    measured with it are labelled "(fallback, no subinterp.Pool yet)"; the
    benchmark uses the real ``subinterp.Pool`` whenever the package has it.
    """

    def __init__(self, max_workers: int) -> None:
        import subinterp

        self._subinterp = subinterp
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Barrier(max_workers + 1)
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"fallback-pool-{i}")
            for i in range(max_workers)
        ]
        for t in self._threads:
            t.start()
        self._ready.wait()  # all interpreters created, in parallel
        if self._errors:
            self.shutdown()
            raise self._errors[0]

    def _work(self) -> None:
        try:
            interp = self._subinterp.create()
        except BaseException as exc:
            self._errors.append(exc)
            self._ready.wait()
            return
        self._ready.wait()
        try:
            while True:
                item = self._tasks.get()
                if item is None:
                    return
                fut, fn, args, kwargs = item
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    fut.set_result(interp.call(fn, *args, **kwargs))
                except BaseException as exc:
                    fut.set_exception(exc)
        finally:
            interp.close()

    def submit(self, fn, /, *args, **kwargs):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._tasks.put((fut, fn, args, kwargs))
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        if wait:
            for t in self._threads:
                t.join()


def _has_pool() -> bool:
    import subinterp

    return hasattr(subinterp, "Pool")


def _fallback_note() -> str:
    return "" if _has_pool() else " (fallback, no subinterp.Pool yet)"


class SubinterpPool(Variant):
    key = "subinterp-pool"
    label = "subinterp.Pool, new per sample"

    def describe(self):
        return "subinterp.Pool, new per sample" + _fallback_note()

    def sample(self, fn, argsets):
        import subinterp

        if _has_pool():
            with subinterp.Pool(self.workers) as pool:
                list(pool.map(fn, *_columns(argsets), chunksize=1))
        else:
            with FallbackPool(self.workers) as pool:
                list(pool.map(fn, *_columns(argsets)))


class SubinterpDefault(Variant):
    key = "subinterp-default"
    label = "subinterp default pool, reused"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._fallback: FallbackPool | None = None

    def describe(self):
        # The default pool's size is subinterp's choice: the usable CPUs.
        n = usable_cpus()
        size = "" if n == self.workers else f", {n} workers"
        return f"subinterp default pool, reused{size}" + _fallback_note()

    def sample(self, fn, argsets):
        import subinterp

        if hasattr(subinterp, "map"):
            list(subinterp.map(fn, *_columns(argsets), chunksize=1))
            return
        if self._fallback is None:
            self._fallback = FallbackPool(usable_cpus())
        list(self._fallback.map(fn, *_columns(argsets)))

    def close(self):
        if self._fallback is not None:
            self._fallback.shutdown()
            self._fallback = None


VARIANTS: list[type[Variant]] = [
    Sequential,
    Threads,
    Processes,
    StdlibInterpreters,
    SubinterpPool,
    SubinterpDefault,
]
KEYS = [v.key for v in VARIANTS]
BY_KEY = {v.key: v for v in VARIANTS}
