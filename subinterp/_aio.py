"""``asyncio_executor(pool)``: a subinterp pool as asyncio's default
executor.

``loop.set_default_executor()`` takes only a ``ThreadPoolExecutor`` (a
``TypeError`` otherwise, on every version from 3.11 on), because asyncio
itself hands the default executor calls that must run in this process:
``asyncio.to_thread()`` wraps its call in ``contextvars.Context.run``, and
``loop.getaddrinfo()`` in debug mode passes a bound method of the loop.
The executor made here is a ``ThreadPoolExecutor`` that runs each call in
the pool's interpreters when the call can cross to them, and in its own
threads otherwise, as asyncio's default executor would.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as _wait

from ._core import NotShareableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from ._pool import Pool

__all__ = ["asyncio_executor"]


class _InterpreterDefaultExecutor(ThreadPoolExecutor):
    """See asyncio_executor()."""

    def __init__(self, pool: Pool) -> None:
        # the threads: asyncio's default executor's (same name prefix)
        super().__init__(thread_name_prefix="asyncio")
        self._interp_pool = pool
        # Futures of the pool submitted here and not done (_shutdown_lock)
        self._pending: set[Future] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> Future:
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError(
                    "cannot schedule new futures after shutdown")
            try:
                fut = self._interp_pool.submit(fn, *args, **kwargs)
            except NotShareableError:
                fut = None
            else:
                self._pending.add(fut)
        if fut is None:
            # cannot cross (a closure, asyncio.to_thread's context, an
            # object of this interpreter): a thread runs it, as the
            # default executor would
            return super().submit(fn, *args, **kwargs)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Future) -> None:
        with self._shutdown_lock:
            self._pending.discard(fut)

    def shutdown(self, wait: bool = True, *,
                 cancel_futures: bool = False) -> None:
        """Stop taking calls; with wait, return once the calls submitted
        here are done.  The pool itself is not shut down: it belongs to
        whoever made it."""
        with self._shutdown_lock:
            pending = list(self._pending)
        if cancel_futures:
            for fut in pending:
                fut.cancel()
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            _wait(pending)


def asyncio_executor(pool: Pool | None = None) -> ThreadPoolExecutor:
    """An executor for ``loop.set_default_executor()`` that runs
    ``loop.run_in_executor(None, fn, *args)`` in the interpreters of
    *pool* (default: ``subinterp.default_pool()``).

    It is a ``ThreadPoolExecutor``, the only kind asyncio accepts as its
    default executor.  Calls that cannot cross to another interpreter
    (``NotShareableError`` when submitted: ``asyncio.to_thread()``, which
    runs its function in a ``contextvars`` context of this thread, a
    closure, a bound method of an object of this interpreter) run in its
    threads instead, where asyncio's own default executor would run them.
    ``shutdown()`` (``asyncio.run()`` calls it at the end) waits for the
    calls submitted through it and leaves *pool* running.
    """
    if pool is None:
        from ._pool import default_pool

        pool = default_pool()
    return _InterpreterDefaultExecutor(pool)

