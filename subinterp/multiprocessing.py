"""``multiprocessing.Pool``'s API on subinterp's interpreter pool.

Porting a program is one import::

    from subinterp.multiprocessing import Pool   # was: from multiprocessing import Pool

    with Pool(4) as pool:
        print(pool.map(work, range(100)))

``Pool`` takes multiprocessing's arguments and offers its methods, results
and states (``apply``, ``map``, ``imap``, ``imap_unordered``, ``starmap``,
their ``_async`` forms with ``AsyncResult``, ``close``, ``terminate``,
``join``); the workers are interpreters of this process, each with its own
GIL, instead of child processes.  Tasks go through ``subinterp.Pool``
(one ``submit`` per task or chunk, chunks run by ``subinterp._chunk``).
docs/multiprocessing.md lists what differs.
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
import time
import warnings
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as _FuturesTimeoutError
from multiprocessing import TimeoutError

from . import _chunk
from ._core import ExecutionFailed
from ._pool import Pool as _Executor
from ._pool import _cpu_count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Iterator

__all__ = [
    "ApplyResult",
    "AsyncResult",
    "IMapIterator",
    "IMapUnorderedIterator",
    "MapResult",
    "Pool",
    "TimeoutError",
]

INIT = "INIT"
RUN = "RUN"
CLOSE = "CLOSE"
TERMINATE = "TERMINATE"

# Tasks of an imap kept queued or running at once, per worker: enough that
# workers do not wait while the collector thread refills the queue, few
# enough that a long (or endless) input is read as results come back.
_IMAP_WINDOW_PER_WORKER = 16

_job_counter = itertools.count()
_latch_lock = threading.Lock()  # ApplyResult._ready and ._latch


def _terminated() -> CancelledError:
    exc = CancelledError("the pool was terminated before this task finished")
    exc._pool_terminated = True  # type: ignore[attr-defined]
    return exc


def _is_terminated(value: Any) -> bool:
    return getattr(value, "_pool_terminated", False) is True


def _maybe_encoding_error(unsent: BaseException) -> BaseException:
    # multiprocessing's own class, as its pool raises it: args and
    # attributes are the reprs of why and of what could not be sent.
    from multiprocessing.pool import MaybeEncodingError

    value, why = unsent.args
    err = MaybeEncodingError.__new__(MaybeEncodingError)
    Exception.__init__(err, why, value)
    err.exc = why
    err.value = value
    err.__cause__ = unsent.__cause__  # the remote traceback
    return err


def _is_system_exit(exc: BaseException) -> bool:
    if isinstance(exc, SystemExit):
        return True
    return (isinstance(exc, ExecutionFailed)
            and exc.excinfo.type.__name__ == "SystemExit")


def _outcome(pool: Pool, fut: Any) -> tuple[bool, Any]:
    """(success, value) of a finished task, as multiprocessing reports it."""
    if fut.cancelled():
        return False, _terminated()
    exc = fut.exception()
    if exc is None:
        return True, fut.result()
    if isinstance(exc, _chunk.UnsentException):
        return False, _maybe_encoding_error(exc)
    if pool._state == TERMINATE and _is_system_exit(exc):
        return False, _terminated()
    return False, exc


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


class Pool:
    """``multiprocessing.Pool`` on interpreters: the same constructor,
    methods, results and states; the workers are native threads of this
    process, each owning an interpreter with its own GIL.

    processes: number of workers (default: the usable CPUs).
    initializer, initargs: ``initializer(*initargs)`` runs in each worker's
        interpreter when it starts; if it raises, the pool is broken and
        tasks fail with ``subinterp.BrokenInterpreterPool`` (a
        multiprocessing pool starts new processes for ever instead).
    maxtasksperchild: a worker replaces its interpreter after that many
        tasks (a chunk of ``map`` is one task, as in multiprocessing).
    context: accepted for compatibility and ignored: there are no child
        processes to start.  Workers import functions by reference, as
        with the ``spawn`` and ``forkserver`` start methods, whatever the
        context says.

    Leaving a ``with`` block calls ``terminate()``, as multiprocessing
    does.
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: Any = None,
    ) -> None:
        # set first: __del__ looks at it if __init__ raises
        self._state = INIT
        if processes is None:
            processes = _cpu_count()
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if (not isinstance(maxtasksperchild, int)
                    or maxtasksperchild <= 0):
                raise ValueError(
                    "maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if context is not None and not hasattr(context, "get_start_method"):
            raise TypeError(
                f"context must be a multiprocessing context or None, not "
                f"{type(context).__name__}")
        self._processes = processes
        self._ctx = context
        # _lock guards _state changes and _cache; _changed is notified
        # when _cache becomes empty (join waits for that)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._cache: dict[int, Any] = {}
        self._executor = _Executor(
            processes,
            initializer=initializer,
            initargs=tuple(initargs),
            max_tasks_per_worker=maxtasksperchild,
        )
        self._state = RUN

    # -- the imap iterators still taking input (join waits for them) -----
    # (The tasks of apply_async and map_async are all submitted at once:
    # the executor's own shutdown waits for those.)

    def _register(self, job: Any) -> None:
        with self._lock:
            self._cache[job._job] = job

    def _unregister(self, job: Any) -> None:
        with self._lock:
            self._cache.pop(job._job, None)
            idle = not self._cache
            if idle:
                self._changed.notify_all()
            closed = idle and self._state == CLOSE
        if closed:
            # closed and nothing left to run: the workers may go (joined
            # by join())
            self._executor.shutdown(wait=False)

    def _check_running(self) -> None:
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The executor's Future for fn(*args), or the exception that kept
        it from being submitted (the task's outcome then, as a task that
        multiprocessing cannot pickle fails at get())."""
        try:
            return self._executor.submit(fn, *args)
        except Exception as exc:
            if self._state == TERMINATE:
                return _terminated()
            return exc

    # -- multiprocessing.Pool's API ---------------------------------------

    def apply(self, func: Callable[..., Any], args: Iterable[Any] = (),
              kwds: dict[str, Any] = {}) -> Any:  # noqa: B006 - mp's
        """``func(*args, **kwds)`` in a worker; its result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: dict[str, Any] = {},  # noqa: B006 - multiprocessing's
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> ApplyResult:
        """``func(*args, **kwds)`` in a worker; an ``AsyncResult``."""
        self._check_running()
        result = ApplyResult(self, callback, error_callback)
        fut = self._submit(_chunk.mp_apply, func, tuple(args), dict(kwds))
        result._start([fut])
        return result

    def map(self, func: Callable[[Any], Any], iterable: Iterable[Any],
            chunksize: int | None = None) -> list[Any]:
        """``list(map(func, iterable))``, in the workers, in chunks."""
        return self._map_async(func, iterable, False, chunksize).get()

    def starmap(self, func: Callable[..., Any],
                iterable: Iterable[Iterable[Any]],
                chunksize: int | None = None) -> list[Any]:
        """``[func(*args) for args in iterable]``, in the workers."""
        return self._map_async(func, iterable, True, chunksize).get()

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[list[Any]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult:
        """``map`` without waiting: a ``MapResult``."""
        return self._map_async(func, iterable, False, chunksize, callback,
                               error_callback)

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[list[Any]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult:
        """``starmap`` without waiting: a ``MapResult``."""
        return self._map_async(func, iterable, True, chunksize, callback,
                               error_callback)

    def _map_async(self, func: Callable[..., Any], iterable: Iterable[Any],
                   star: bool, chunksize: int | None = None,
                   callback: Callable[[list[Any]], object] | None = None,
                   error_callback: Callable[[BaseException], object]
                   | None = None) -> MapResult:
        self._check_running()
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        n = len(iterable)  # type: ignore[arg-type]
        if chunksize is None:
            chunksize, extra = divmod(n, self._processes * 4)
            if extra:
                chunksize += 1
        elif chunksize < 1 and n:
            # (multiprocessing returns [None] * n here)
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        if n == 0:
            chunksize = 0
        result = MapResult(self, chunksize, n, callback, error_callback)
        if n:
            it = iter(iterable)
            futs = []
            while True:
                chunk = tuple(itertools.islice(it, chunksize))
                if not chunk:
                    break
                futs.append(self._submit(_chunk.mp_chunk, func, chunk, star))
            result._start(futs)
        return result

    def imap(self, func: Callable[[Any], Any], iterable: Iterable[Any],
             chunksize: int = 1) -> Iterator[Any]:
        """Like ``map``, results in order as they come; the input is read
        as the workers go (at most a few tasks per worker ahead)."""
        self._check_running()
        if chunksize != 1 and chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize:n}")
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func: Callable[[Any], Any],
                       iterable: Iterable[Any],
                       chunksize: int = 1) -> Iterator[Any]:
        """Like ``imap``, results in the order they are done."""
        self._check_running()
        if chunksize != 1 and chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def _imap(self, cls: type[IMapIterator], func: Callable[[Any], Any],
              iterable: Iterable[Any], chunksize: int) -> Iterator[Any]:
        result = cls(self)
        result._start(func, iter(iterable), chunksize)
        if chunksize == 1:
            return result
        # multiprocessing's shape: a generator over the chunks' lists
        return (item for chunk in result for item in chunk)

    def close(self) -> None:
        """No more tasks; the workers go once the submitted ones are done."""
        with self._lock:
            if self._state != RUN:
                return
            self._state = CLOSE
            idle = not self._cache
        if idle:
            self._executor.shutdown(wait=False)

    def terminate(self) -> None:
        """Stop now: queued tasks are dropped, running ones get SystemExit
        (code blocked in C sees it when it comes back); returns once the
        workers are gone.  Results not finished by then raise
        ``concurrent.futures.CancelledError`` from ``get()`` (a
        multiprocessing pool leaves them unfinished for ever)."""
        with self._lock:
            self._state = TERMINATE
        self._executor._terminate()

    def join(self) -> None:
        """Wait for the workers to exit; after ``close()`` or
        ``terminate()``."""
        if self._state == RUN:
            raise ValueError("Pool is still running")
        if self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        with self._changed:
            while self._cache and self._state == CLOSE:
                self._changed.wait()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    def __reduce__(self) -> Any:
        raise NotImplementedError(
            "pool objects cannot be passed between processes or pickled")

    def __repr__(self) -> str:
        cls = type(self)
        return (f"<{cls.__module__}.{cls.__qualname__} "
                f"state={self._state} pool_size={self._processes}>")

    def __del__(self, _warn: Any = warnings.warn, RUN: str = RUN) -> None:
        if self._state == RUN:
            _warn(f"unclosed running multiprocessing pool {self!r}",
                  ResourceWarning, source=self)


class ApplyResult:
    """The result of ``apply_async``: ``get``, ``wait``, ``ready``,
    ``successful``, as multiprocessing's.  ``callback`` (on success) or
    ``error_callback`` (on failure) is called before ``get`` returns, in
    the thread that completes the task (the pool's collector thread, or
    the one waiting in ``get``); one that raises is logged and the result
    is set all the same."""

    def __init__(self, pool: Pool,
                 callback: Callable[[Any], object] | None,
                 error_callback: Callable[[BaseException], object] | None
                 ) -> None:
        self._pool: Pool | None = pool  # until set: for _outcome
        self._job = next(_job_counter)
        self._callback = callback
        self._error_callback = error_callback
        self._futures: list[Any] = []
        self._success = False
        self._value: Any = None
        # Set once the callbacks ran (_latch_lock); _latch is an Event
        # made only for a thread that must wait for them meanwhile.
        self._ready = False
        self._latch: threading.Event | None = None

    def _start(self, futs: list[Any]) -> None:
        # each Future, or the exception that kept its task from the pool
        self._futures = [f for f in futs if not isinstance(f, BaseException)]
        if len(futs) == 1 and self._futures:
            futs[0].add_done_callback(self._done_one)
            return
        for i, fut in enumerate(futs):
            if isinstance(fut, BaseException):
                self._set(i, (False, fut))
            else:
                fut.add_done_callback(functools.partial(self._done, i))

    def _done(self, i: int, fut: Any) -> None:
        pool = self._pool
        if pool is not None:  # else already set (a chunk failed to submit)
            self._set(i, _outcome(pool, fut))

    def _done_one(self, fut: Any) -> None:
        pool = self._pool
        if pool is not None:
            self._set(0, _outcome(pool, fut))

    def ready(self) -> bool:
        """Whether the result is there."""
        return self._ready

    def successful(self) -> bool:
        """Whether the call returned without raising; ValueError when not
        ready."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the result is there, or timeout seconds."""
        if self._ready:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        # The tasks' own waits: the worker wakes this thread itself (no
        # collector hop), which then runs the callbacks.
        for fut in self._futures:
            try:
                fut.exception(_remaining(deadline))
            except (_FuturesTimeoutError, CancelledError):
                pass
        with _latch_lock:
            if self._ready:
                return
            if self._latch is None:
                # the collector runs the callbacks now
                self._latch = threading.Event()
            latch = self._latch
        latch.wait(_remaining(deadline))

    def get(self, timeout: float | None = None) -> Any:
        """The result, or the task's exception raised; after timeout
        seconds, ``multiprocessing.TimeoutError``."""
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, i: int, obj: tuple[bool, Any]) -> None:
        self._success, self._value = obj
        self._finish()

    def _finish(self) -> None:
        try:
            if not _is_terminated(self._value):
                # (multiprocessing calls none for a terminated task)
                if self._callback and self._success:
                    self._callback(self._value)
                if self._error_callback and not self._success:
                    self._error_callback(self._value)
        finally:
            self._pool = None
            with _latch_lock:
                self._ready = True
                latch = self._latch
            if latch is not None:
                latch.set()


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """The result of ``map_async`` / ``starmap_async``: ready once every
    chunk is done; ``get`` returns the list, or raises the first chunk's
    exception."""

    def __init__(self, pool: Pool, chunksize: int, length: int,
                 callback: Callable[[Any], object] | None,
                 error_callback: Callable[[BaseException], object] | None
                 ) -> None:
        super().__init__(pool, callback, error_callback)
        self._success = True
        self._value = [None] * length
        self._chunksize = chunksize
        self._lock = threading.Lock()
        if chunksize <= 0:
            self._number_left = 0
            # (no callback: multiprocessing calls none for empty input)
            self._ready = True
            self._pool = None
        else:
            self._number_left = length // chunksize + bool(length % chunksize)

    def _set(self, i: int, obj: tuple[bool, Any]) -> None:
        success, result = obj
        with self._lock:
            self._number_left -= 1
            if success and self._success:
                self._value[i * self._chunksize:
                            (i + 1) * self._chunksize] = result
            elif not success and self._success:
                # only the first exception is kept
                self._success = False
                self._value = result
            last = self._number_left == 0
        if last:
            self._finish()


class IMapIterator:
    """The iterator of ``imap``: results in input order;
    ``next(timeout)`` raises ``multiprocessing.TimeoutError`` when the
    next one is not there in time.  A task's exception is raised in its
    place, and iteration can go on after it."""

    def __init__(self, pool: Pool) -> None:
        self._pool: Pool | None = pool
        self._cond = threading.Condition(threading.Lock())
        self._job = next(_job_counter)
        self._items: collections.deque = collections.deque()
        self._index = 0
        self._length: int | None = None
        self._unsorted: dict[int, tuple[bool, Any]] = {}
        # feeding: the input, read by one thread at a time (_feeding),
        # again when a task ends meanwhile (_refeed); _cond guards these
        self._func: Callable[..., Any] | None = None
        self._input: Iterator[Any] | None = None
        self._chunksize = 1
        self._submitted = 0
        self._in_flight = 0
        self._window = 0
        self._feeding = False
        self._refeed = False
        # the input ended (_cond): with an exception, delivered after the
        # results of the tasks submitted before it
        self._ended = False
        self._input_error: tuple[int, BaseException] | None = None
        pool._register(self)

    def __iter__(self) -> IMapIterator:
        return self

    def next(self, timeout: float | None = None) -> Any:
        """The next result; ``multiprocessing.TimeoutError`` after timeout
        seconds."""
        with self._cond:
            try:
                item = self._items.popleft()
            except IndexError:
                if self._index == self._length:
                    raise StopIteration from None
                self._cond.wait(timeout)
                try:
                    item = self._items.popleft()
                except IndexError:
                    if self._index == self._length:
                        raise StopIteration from None
                    raise TimeoutError from None
        success, value = item
        if success:
            return value
        raise value

    __next__ = next

    # -- feeding ------------------------------------------------------------

    def _start(self, func: Callable[..., Any], it: Iterator[Any],
               chunksize: int) -> None:
        assert self._pool is not None
        self._func = func
        self._input = it
        self._chunksize = chunksize
        self._window = _IMAP_WINDOW_PER_WORKER * self._pool._processes
        self._feed()

    def _next_task(self) -> tuple[Callable[..., Any], tuple] | None:
        """The next task's (fn, args), None at the end of the input; an
        exception of the input ends it, in place of the next result."""
        assert self._input is not None
        try:
            if self._chunksize == 1:
                x = next(self._input)
                return _chunk.mp_apply, (self._func, (x,), {})
            chunk = tuple(itertools.islice(self._input, self._chunksize))
            if not chunk:
                return None
            return _chunk.mp_chunk, (self._func, chunk, False)
        except StopIteration:
            return None
        except Exception as exc:
            return _reraise, (exc,)

    def _feed(self) -> None:
        with self._cond:
            if self._feeding:
                self._refeed = True
                return
            self._feeding = True
        try:
            self._feed_while_room()
        except BaseException:
            # Ctrl-C in imap() while it submits the first tasks: the input
            # ends there (the tasks in flight still finish)
            with self._cond:
                self._feeding = False
            self._end_of_input()
            raise

    def _feed_while_room(self) -> None:
        # the one thread feeding (_feeding)
        while True:
            with self._cond:
                room = (self._input is not None
                        and self._in_flight < self._window)
                if not room:
                    if not self._refeed:
                        self._feeding = False
                        return
                    self._refeed = False
                    continue
            pool = self._pool
            task = self._next_task() if pool is not None else None
            if task is None:
                self._end_of_input()
                continue
            fn, args = task
            if fn is _reraise:
                self._end_of_input(args[0])
                continue
            i = self._submitted
            self._submitted += 1
            assert pool is not None
            with self._cond:
                self._in_flight += 1
            try:
                fut = pool._submit(fn, *args)
            except BaseException:  # Ctrl-C: no task, no result i
                with self._cond:
                    self._in_flight -= 1
                self._submitted -= 1
                raise
            if isinstance(fut, BaseException):
                self._task_done(i, fut)
                if not isinstance(fut, (TypeError, ValueError)):
                    # the pool does not take tasks any more (terminated,
                    # broken, exit): no further result comes
                    self._end_of_input()
            else:
                fut.add_done_callback(functools.partial(self._task_done, i))

    def _end_of_input(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._input = None
            self._func = None
            self._ended = True
            if error is not None:
                self._input_error = (self._submitted, error)
        self._finish_input()

    def _finish_input(self) -> None:
        # Once the tasks in flight are done: the input's exception, then
        # the number of results.
        with self._cond:
            if not self._ended or self._in_flight:
                return
            self._ended = False
            error, self._input_error = self._input_error, None
            length = self._submitted + (error is not None)
        if error is not None:
            self._set(error[0], (False, error[1]))
        self._set_length(length)

    def _task_done(self, i: int, fut: Any) -> None:
        pool = self._pool
        if isinstance(fut, BaseException):
            outcome: tuple[bool, Any] = (False, fut)
        else:
            outcome = _outcome(pool, fut) if pool is not None else (
                False, _terminated())
        with self._cond:
            self._in_flight -= 1
        self._set(i, outcome)
        self._finish_input()
        self._feed()

    # -- results ------------------------------------------------------------

    def _set(self, i: int, obj: tuple[bool, Any]) -> None:
        with self._cond:
            if self._index == i:
                self._items.append(obj)
                self._index += 1
                while self._index in self._unsorted:
                    self._items.append(self._unsorted.pop(self._index))
                    self._index += 1
                self._cond.notify()
            else:
                self._unsorted[i] = obj
            done = self._index == self._length
        if done:
            self._done()

    def _set_length(self, length: int) -> None:
        with self._cond:
            self._length = length
            done = self._index == self._length
            if done:
                self._cond.notify()
        if done:
            self._done()

    def _done(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool._unregister(self)


class IMapUnorderedIterator(IMapIterator):
    """The iterator of ``imap_unordered``: results in the order the tasks
    end."""

    def _set(self, i: int, obj: tuple[bool, Any]) -> None:
        with self._cond:
            self._items.append(obj)
            self._index += 1
            self._cond.notify()
            done = self._index == self._length
        if done:
            self._done()


def _reraise(exc: BaseException) -> None:
    # marks an exception of an imap's input (never submitted)
    raise exc
