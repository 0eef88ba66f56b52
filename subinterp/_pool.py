"""subinterp.Pool: a concurrent.futures executor on warm interpreters.

The C core (``_core.PoolCore``) owns the workers, the task queue and the
results; this module adapts it to ``concurrent.futures``: a real ``Future``
per task, ``map`` with automatic chunking, ``shutdown``, and shutdown at
exit with ``ThreadPoolExecutor``'s rules.  docs/design.md ("Pool") has the
design.
"""

from __future__ import annotations

import collections
import itertools
import os
import sys
import threading
import time
import weakref
from concurrent.futures import BrokenExecutor, Executor, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError

from . import _core
from ._chunk import run_chunk
from ._coroutines import is_coroutine_function as _is_coroutine_function
from ._coroutines import check_supported, run_coroutine

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Iterator

__all__ = [
    "BrokenInterpreterPool", "Pool", "default_pool", "map", "run", "submit",
]


class BrokenInterpreterPool(BrokenExecutor):
    """The pool cannot run tasks: its initializer failed, or a worker could
    not create its interpreter."""


def _cpu_count() -> int:
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        n = count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count()
    return n or 1


def _deliver(fut: Future, outcome: tuple) -> None:
    kind, value = outcome
    if kind == _core.OUTCOME_CANCELLED:
        # A worker met a task cancelled by Future.cancel(), or shutdown
        # (cancel_futures=True) dropped it.  concurrent.futures counts a
        # cancelled Future as done for wait() and as_completed() only once
        # it is *notified*: ThreadPoolExecutor's worker calls
        # set_running_or_notify_cancel() when it meets the item, which
        # wakes their waiters.  (Its shutdown(cancel_futures=True) never
        # does, so wait() on those hangs there; not here.)
        Future.cancel(fut)
        fut.set_running_or_notify_cancel()
        return
    if not fut.set_running_or_notify_cancel():
        return
    if kind == _core.OUTCOME_RESULT:
        fut.set_result(value)
    elif kind == _core.OUTCOME_EXCEPTION:
        fut.set_exception(value)
    else:
        fut.set_exception(BrokenInterpreterPool(value))



def _deliver_guarded(fut: Future, outcome: tuple) -> None:
    """_deliver, in a thread that completes pool futures: the pool's
    collector, or one waiting in result(), which delivers its own future.
    concurrent.futures logs a done-callback's Exception, but a SystemExit
    or KeyboardInterrupt from one (or a Future its user set meanwhile)
    would escape: in the collector it would end the thread, and the
    futures of its batch would never complete.  The outcome is set by
    then; the error is logged as concurrent.futures logs, and the thread
    goes on.  A KeyboardInterrupt in the main thread propagates: it may
    be the user's Ctrl-C, and the future is done already."""
    try:
        _deliver(fut, outcome)
    except BaseException as exc:
        if (isinstance(exc, KeyboardInterrupt)
                and threading.current_thread() is threading.main_thread()):
            raise
        import logging

        logging.getLogger("concurrent.futures").exception(
            "exception delivering the outcome of %r", fut)

class _PoolFuture(Future):
    """A concurrent.futures.Future whose result() waits in C: a short spin,
    then a futex, woken by the worker itself."""

    __slots__ = ("_pool_core", "_token")
    _pool_core: Any  # the pool's _core.PoolCore
    _token: object  # the task, for the core

    def result(self, timeout: float | None = None) -> Any:
        if not self.done():
            self._wait_fast(timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.done():
            self._wait_fast(timeout)
        return super().exception(timeout)

    def _wait_fast(self, timeout: float | None) -> None:
        # a timeout already past (map()'s deadline) is no wait, as in
        # concurrent.futures: TimeoutError, not the core's ValueError
        if timeout is not None and timeout < 0:
            timeout = 0
        try:
            outcome = self._pool_core.wait(self._token, timeout)
        except TimeoutError:
            raise FuturesTimeoutError() from None
        if outcome is not None:
            _deliver_guarded(self, outcome)

    def cancel(self) -> bool:
        if self.done():
            return super().cancel()
        if not self._pool_core.cancel(self._token):
            return False  # running or finished
        return super().cancel()


def _task_call(fn: Callable[..., Any], args: tuple,
               kwargs: dict) -> tuple:
    """(fn, args, kwargs or None, coro) as the pool core runs them: an
    ``async def`` function becomes run_coroutine(fn, args, kwargs), with
    coro true.  Refuses new work once exit began."""
    if _exiting:
        raise RuntimeError(_AT_EXIT)
    if _is_coroutine_function(fn):
        check_supported()
        return run_coroutine, (fn, args, kwargs or None), None, True
    return fn, args, kwargs or None, False


class _LoopInbox:
    """Completions of pool tasks awaited in one event loop (Pool.run).

    The pool's collector thread posts each task's outcome here; the first
    one after the loop last drained the inbox wakes the loop once
    (``call_soon_threadsafe``: the loop's own wake-up descriptor), and the
    loop hands every outcome posted meanwhile to its asyncio future.  A
    burst of completions thus costs one wake-up, and no
    ``concurrent.futures.Future`` is made for a task awaited this way."""

    __slots__ = ("loop", "_items", "_lock", "__weakref__")

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._items: list = []
        self._lock = threading.Lock()

    def post(self, afut: Any, outcome: tuple) -> None:
        # the collector thread
        with self._lock:
            first = not self._items
            self._items.append((afut, outcome))
        if first:
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:
                pass  # the loop is closed: nobody awaits any more

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        for afut, (kind, value) in items:
            if afut.done():  # cancelled meanwhile
                continue
            if kind == _core.OUTCOME_RESULT:
                afut.set_result(value)
            elif kind == _core.OUTCOME_EXCEPTION:
                afut.set_exception(value)
            elif kind == _core.OUTCOME_CANCELLED:
                afut.cancel()
            else:
                afut.set_exception(BrokenInterpreterPool(value))


class _Awaited:
    """What the pool core holds for a task of Pool.run: where its outcome
    goes (the core hands it back with the outcome, as it does a Future)."""

    __slots__ = ("inbox", "afut")

    def __init__(self, inbox: _LoopInbox, afut: Any) -> None:
        self.inbox = inbox
        self.afut = afut


_inboxes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _loop_inbox() -> _LoopInbox:
    import asyncio

    loop = asyncio.get_running_loop()
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes[loop] = _LoopInbox(loop)
    return inbox


# Every pool not yet joined, by its core, with its collector thread.  The
# cores are held here, not the Pools: a Pool dropped without shutdown() is
# collected, which shuts its core down (see Pool.__init__), and its queued
# tasks still finish before exit, as ThreadPoolExecutor's do.
_live: dict[Any, threading.Thread] = {}
_live_lock = threading.Lock()
_exiting = False  # _live_lock
_AT_EXIT = "cannot schedule new futures after interpreter shutdown"


def _join(core: Any, collector: threading.Thread, closing: bool = False) -> None:
    core.join(None, closing)
    # Closing: threading joins the collector itself right after its exit
    # hooks.  Thread.join() would call current_thread(), which in a pool
    # worker's thread makes a _DummyThread whose clean-up comes too late
    # in a closing interpreter (an "Exception ignored" on 3.13).
    if not closing and collector is not threading.current_thread():
        collector.join()
    with _live_lock:
        _live.pop(core, None)


def _python_exit() -> None:
    # ThreadPoolExecutor's rule: at exit, queued and running tasks finish,
    # then the workers stop.  threading runs this hook of each interpreter
    # before it joins that interpreter's threads: at the process's exit
    # for the main one, in Py_EndInterpreter for the others (close(), a
    # pool worker replacing or closing its interpreter), which must not
    # end while a worker holds a thread state there.
    global _exiting
    with _live_lock:
        _exiting = True
        items = list(_live.items())
    for core, _ in items:
        core.shutdown(False)
    for core, collector in items:
        _join(core, collector, closing=True)


try:
    threading._register_atexit(_python_exit)  # type: ignore[attr-defined]
except RuntimeError:
    # imported once exit began ("can't register atexit after shutdown"):
    # pools could not be joined any more, so none can be made
    _exiting = True


class Pool(Executor):
    """An executor whose workers are native threads that each own an
    interpreter (with its own GIL), started and kept warm.

    ``submit`` returns a real ``concurrent.futures.Future``; ``map`` chunks
    its input automatically.  Callables and arguments cross with the codec
    (by reference, or by value), so an unshareable one raises
    ``NotShareableError`` from ``submit``.  An exception raised by a task is
    re-raised by ``Future.result()`` as itself when it can cross, with the
    remote traceback as its ``__cause__`` (a ``RemoteTraceback``), else as
    ``ExecutionFailed``.

    max_workers: number of workers (default: the usable CPUs).
    initializer, initargs: called in each new worker interpreter; if it
        raises, the pool is broken (``BrokenInterpreterPool``).
    config: the interpreters' config, as for ``subinterp.create``.
    max_tasks_per_worker: replace a worker's interpreter after that many
        tasks.
    thread_name_prefix: prefix of the workers' OS thread names.
    max_concurrency: how many ``async def`` tasks a worker runs at once
        on its event loop (default 1: one at a time).  While its loop has
        room, the worker takes further tasks; a plain function taken
        meanwhile runs as usual, blocking the worker's loop while it runs.

    ``os.fork()`` waits for the running tasks and the workers close their
    interpreters (CPython cannot fork with subinterpreters alive), making
    new ones when tasks come; in the child, inherited pools are broken and
    new ones work.
    """

    # The __cause__ of a task's exception re-raised here: "traceback" (a
    # RemoteTraceback, as ProcessPoolExecutor) or "execution_failed" (an
    # ExecutionFailed, as the standard library's InterpreterPoolExecutor).
    _remote_cause = "traceback"

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple = (),
        config: Any = "isolated",
        max_tasks_per_worker: int | None = None,
        thread_name_prefix: str = "",
        max_concurrency: int = 1,
    ) -> None:
        if max_workers is None:
            max_workers = _cpu_count()
        if not isinstance(max_workers, int) or isinstance(max_workers, bool):
            raise TypeError("max_workers must be an int")
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_worker is not None:
            if not isinstance(max_tasks_per_worker, int):
                raise TypeError("max_tasks_per_worker must be an int")
            if max_tasks_per_worker <= 0:
                raise ValueError("max_tasks_per_worker must be >= 1")
        if (not isinstance(max_concurrency, int)
                or isinstance(max_concurrency, bool)):
            raise TypeError("max_concurrency must be an int")
        if max_concurrency <= 0:
            raise ValueError("max_concurrency must be >= 1")
        self._max_workers = max_workers
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        # Checked and registered under the lock _python_exit takes: a pool
        # made once exit began would never be joined, and its interpreters
        # never closed.
        with _live_lock:
            if _exiting:
                raise RuntimeError(_AT_EXIT)
            self._core = _core.PoolCore(
                max_workers,
                BrokenInterpreterPool,
                config,
                initializer,
                tuple(initargs),
                max_tasks_per_worker,
                thread_name_prefix or "subinterp-",
                self._remote_cause,
                max_concurrency,
            )
            self._collector = threading.Thread(
                target=self._collect,
                args=(self._core,),
                name=f"{thread_name_prefix or 'subinterp'}-collector",
                # not a daemon: isolated interpreters allow none (so pools
                # work in them and in pool workers), and the exit hook above
                # shuts every pool down before threading joins this thread
                daemon=False,
            )
            self._collector.start()
            # after our own thread: no worker wants our GIL yet
            self._core.start()
            _live[self._core] = self._collector
        # dropped without shutdown(): stop taking tasks, finish the queued
        # ones and let the workers go
        self._finalizer = weakref.finalize(self, self._core.shutdown, False)
        self._finalizer.atexit = False

    @staticmethod
    def _collect(core: Any) -> None:
        # Completes the Futures nobody waits for in result(), in batches.
        while True:
            batch = core.collect()
            if batch is None:
                return
            for fut, outcome in batch:
                if type(fut) is _Awaited:
                    fut.inbox.post(fut.afut, outcome)
                else:
                    _deliver_guarded(fut, outcome)

    @property
    def max_workers(self) -> int:
        """The number of workers."""
        return self._max_workers

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> Future:
        """Schedule ``fn(*args, **kwargs)`` and return its Future.

        An ``async def`` function runs to completion on the event loop
        that the worker keeps for the life of its interpreter (beside up
        to max_concurrency - 1 others); the Future
        gets what the coroutine returns (Python 3.13+: ``RuntimeError`` on
        3.12, where CPython cannot run an event loop in a
        subinterpreter)."""
        fn, args, kwargs, coro = _task_call(fn, args, kwargs)
        fut = _PoolFuture()
        fut._pool_core = self._core
        fut._token = self._core.submit(fut, fn, args, kwargs, coro)
        return fut

    async def run(self, fn: Callable[..., Any], /, *args: Any,
                  **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in a worker and await its result
        in the running event loop (``async def`` functions as in
        ``submit``).

        The wait costs no thread: the task's completion reaches the loop
        through the loop's own wake-up descriptor
        (``call_soon_threadsafe``).  Cancelling the awaiting task cancels
        the work if no worker has started it; once started, it runs to
        its end in the worker and its result is dropped."""
        fn, args, kwargs, coro = _task_call(fn, args, kwargs)
        inbox = _loop_inbox()
        afut = inbox.loop.create_future()
        task = _Awaited(inbox, afut)
        token = self._core.submit(task, fn, args, kwargs, coro)
        core = self._core
        afut.add_done_callback(
            lambda af: core.cancel(token) if af.cancelled() else None)
        return await afut

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """Like ``map(fn, *iterables)``, in the workers; results in order.

        Input is consumed lazily (a bounded number of chunks is in flight).
        With ``chunksize=None`` the chunk size is chosen from the input's
        length when it has one (about four chunks per worker, at most
        4096 items), else 256.  *buffersize* (as in Python 3.14's
        ``Executor.map``) bounds the items submitted whose results have
        not been yielded yet.
        """
        if buffersize is not None:
            if not isinstance(buffersize, int):
                raise TypeError("buffersize must be an integer or None")
            if buffersize < 1:
                raise ValueError("buffersize must be None or > 0")
        if timeout is not None:
            end_time = timeout + time.monotonic()
        if chunksize is None:
            chunksize = self._auto_chunksize(iterables)
        elif not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be an int >= 1")
        chunksize = min(chunksize, sys.maxsize)     # islice's bound
        args_iter = zip(*iterables)
        window = max(2 * self._max_workers, 4)
        if buffersize is not None:
            chunksize = min(chunksize, buffersize)
            window = max(1, buffersize // chunksize)
        pending: collections.deque[Future] = collections.deque()

        def submit_next() -> None:
            chunk = list(itertools.islice(args_iter, chunksize))
            if not chunk:
                return
            if chunksize == 1:
                pending.append(self.submit(fn, *chunk[0]))
            else:
                pending.append(self.submit(run_chunk, fn, chunk))

        # the first chunks go now, like Executor.map: errors surface here
        for _ in range(window):
            submit_next()

        def results() -> Iterator[Any]:
            try:
                while pending:
                    fut = pending.popleft()
                    if timeout is None:
                        value = fut.result()
                    else:
                        value = fut.result(end_time - time.monotonic())
                    submit_next()
                    if chunksize == 1:
                        yield value
                    else:
                        yield from value
            finally:
                for fut in pending:
                    fut.cancel()

        return results()

    def _auto_chunksize(self, iterables: tuple) -> int:
        try:
            n = min(len(it) for it in iterables)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 256
        return max(1, min(4096, n // (4 * self._max_workers)))

    def shutdown(self, wait: bool = True, *,
                 cancel_futures: bool = False) -> None:
        """Stop taking tasks; with wait, return once every worker (and the
        collector) has finished.  cancel_futures cancels what is queued."""
        with self._shutdown_lock:
            self._shutdown = True
            self._core.shutdown(cancel_futures)
        if wait:
            _join(self._core, self._collector)

    def _terminate(self) -> None:
        # multiprocessing's Pool.terminate() (subinterp.multiprocessing):
        # shutdown(cancel_futures=True), the running tasks stopped
        # (SystemExit raised in them), then the join.
        with self._shutdown_lock:
            self._shutdown = True
            self._core.terminate()
        _join(self._core, self._collector)

    def stats(self) -> dict:
        """Counters of the pool (workers alive, ready, idle; tasks
        outstanding), for monitoring and tests."""
        return self._core.stats()


_default_pool: Pool | None = None
_default_lock = threading.Lock()


def default_pool() -> Pool:
    """The process-wide pool behind ``subinterp.map`` and
    ``subinterp.submit``: made on first use, with one worker per usable
    CPU, and shut down at exit."""
    global _default_pool
    pool = _default_pool
    if pool is not None and not pool._shutdown:
        return pool
    with _default_lock:
        if _default_pool is None or _default_pool._shutdown:
            if _exiting:
                raise RuntimeError(_AT_EXIT)
            _default_pool = Pool()
        return _default_pool


def _after_fork_in_child() -> None:
    # The pools of the parent are broken here (their workers are threads
    # of the parent; the C core fails their Futures): forget them, so that
    # the default pool is made anew on first use and exit has nothing to
    # join.  Locks another thread held at the fork are made anew too.
    global _default_pool, _default_lock, _live_lock
    _default_pool = None
    _default_lock = threading.Lock()
    _live_lock = threading.Lock()
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
    """``default_pool().submit(fn, *args, **kwargs)``."""
    return default_pool().submit(fn, *args, **kwargs)


async def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``await default_pool().run(fn, *args, **kwargs)``."""
    return await default_pool().run(fn, *args, **kwargs)


def map(  # noqa: A001 - the executor's name
    fn: Callable[..., Any],
    *iterables: Iterable[Any],
    timeout: float | None = None,
    chunksize: int | None = None,
) -> Iterator[Any]:
    """``default_pool().map(fn, *iterables, ...)``."""
    return default_pool().map(fn, *iterables, timeout=timeout,
                              chunksize=chunksize)
