"""Coroutine functions as pool tasks: each worker interpreter keeps one
event loop for its whole life and runs ``async def`` tasks on it.

Imported by the pool in the submitting interpreter (the test) and in the
workers (``run_coroutine``, which crosses by reference); asyncio is
imported in a worker only when it runs its first coroutine.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["check_supported", "is_coroutine_function", "run_coroutine"]

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect

# This interpreter's loop for coroutine tasks (modules are per
# interpreter, so this is one loop per worker interpreter).
_loop = None
# asyncio's, once serve() ran: how a plain task taken by the serving
# loop runs as on a worker without a running loop and task
_set_running_loop: Any = None
_enter_task: Any = None
_leave_task: Any = None


def is_coroutine_function(fn: Any) -> bool:
    """Whether calling *fn* gives a coroutine: an ``async def`` function
    or a bound method of one (what ``inspect.iscoroutinefunction`` says
    for them, without importing inspect on every submit)."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


def check_supported() -> None:
    """Refuse coroutine tasks where CPython cannot run an event loop in a
    subinterpreter: on 3.12 the process then aborts at exit ("free():
    invalid pointer", CPython gh-112140); 3.13+ are fine."""
    import sys

    if sys.version_info < (3, 13):
        raise RuntimeError(
            "coroutine functions as pool tasks need Python 3.13 or newer: "
            "on 3.12 an event loop run in a subinterpreter makes the "
            "process abort at exit (CPython gh-112140)")


def _worker_loop() -> Any:
    global _loop
    if _loop is None or _loop.is_closed():
        import asyncio
        import atexit

        _loop = asyncio.new_event_loop()
        # closed when the interpreter ends (its atexit callbacks run then)
        atexit.register(_loop.close)
    return _loop


def run_coroutine(fn: Callable[..., Any], args: tuple,
                  kwargs: dict | None) -> Any:
    """Run ``fn(*args, **kwargs)`` to completion on this interpreter's
    event loop and return its result (in a pool worker)."""
    return _worker_loop().run_until_complete(fn(*args, **(kwargs or {})))


def serve(handle: Any, first: tuple, limit: int) -> None:
    """Run coroutine tasks side by side on this worker's event loop, up to
    *limit* at once, taking more from the pool while there is room (in a
    pool worker with max_concurrency > 1; the C core calls it with the
    first task, see worker_serve in src/pool.c).

    Returns when no coroutine runs and nothing is queued (the worker then
    waits for the pool as usual), or once the worker takes no more tasks
    and every coroutine it started has ended.  Meanwhile the loop waits
    for the pool through its hub, like every awaitable operation: no
    thread, no polling."""
    import asyncio

    global _set_running_loop, _enter_task, _leave_task
    from asyncio.events import _set_running_loop
    from asyncio.tasks import _enter_task, _leave_task

    loop = _worker_loop()
    state = _Serving(handle, loop, limit)
    try:
        loop.run_until_complete(state.main(first))
    except BaseException:
        # stopped (terminate's SystemExit): the coroutines still running
        # are cancelled; the C core fails their tasks with this exception
        state.abandoned = True
        pending = [t for t in (*state.running, state.news, state.stop,
                               state.main_task) if t is not None]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(
                asyncio.gather(*pending, return_exceptions=True))
        raise


class _Serving:
    def __init__(self, handle: Any, loop: Any, limit: int) -> None:
        from . import _core
        from ._aiowait import wait_op

        self.handle = handle
        self.loop = loop
        self.limit = limit
        self.take = _core._pool_worker_take
        self.finish = _core._pool_worker_finish
        self.wait = _core._pool_worker_wait
        self.wait_op = wait_op
        self.running: set = set()
        self.abandoned = False
        self.woken: Any = None      # an asyncio.Event: look again
        self.news: Any = None       # the pending news wait, a task
        self.stop: Any = None       # the stop wait, a task
        self.main_task: Any = None

    def poke(self, *_: Any) -> None:
        # level-triggered: a poke while serve() is not waiting (it may be
        # dropping a wait) is seen at its next wait
        self.woken.set()

    def start(self, item: tuple) -> None:
        token, (_, (fn, args, kwargs), _) = item
        task = self.loop.create_task(self.run(token, fn, args, kwargs))
        self.running.add(task)
        task.add_done_callback(self.ended)

    def ended(self, task: Any) -> None:
        self.running.discard(task)
        self.poke()

    def await_pool(self, news: bool) -> Any:
        task = self.loop.create_task(
            self.wait_op(self.wait(self.handle, news), None))
        task.add_done_callback(self.poke)
        return task

    async def run(self, token: Any, fn: Callable[..., Any], args: tuple,
                  kwargs: dict | None) -> None:
        try:
            result = await fn(*args, **(kwargs or {}))
        except BaseException as exc:
            if not self.abandoned:
                self.finish(self.handle, token, exc, None)
            if not isinstance(exc, Exception):
                # SystemExit, KeyboardInterrupt: stop the loop
                import asyncio

                if not isinstance(exc, asyncio.CancelledError):
                    raise
        else:
            if not self.abandoned:
                self.finish(self.handle, token, None, result)

    async def drop(self, task: Any) -> None:
        # the wait withdrawn (a wake-up the news wait got meanwhile goes
        # to another worker), before the loop stops
        import asyncio

        task.cancel()
        await asyncio.wait((task,))

    async def drop_news(self) -> None:
        news, self.news = self.news, None
        await self.drop(news)

    async def main(self, first: tuple) -> None:
        import asyncio
        from asyncio import current_task

        self.main_task = current_task()
        self.woken = asyncio.Event()
        self.start(first)
        self.stop = self.await_pool(False)
        try:
            await self.serve()
        finally:
            if self.news is not None:
                await self.drop_news()
            await self.drop(self.stop)

    async def serve(self) -> None:
        taking = True
        while True:
            self.woken.clear()      # what happens from here on is seen
            got: Any = True
            while taking and len(self.running) < self.limit:
                # a plain task taken runs in there: as on a worker without
                # a running loop or task (it may asyncio.run() its own)
                _leave_task(self.loop, self.main_task)
                _set_running_loop(None)
                try:
                    got = self.take(self.handle)
                finally:
                    _set_running_loop(self.loop)
                    _enter_task(self.loop, self.main_task)
                if got is None:         # nothing queued
                    break
                if got is False:        # no more tasks for this worker
                    taking = False
                elif got is not True:   # True: ran a plain function
                    self.start(got)
            if not self.running and (not taking or got is None):
                return
            if taking and got is None:
                # room, and nothing queued: wait for the pool too
                if self.news is None:
                    self.news = self.await_pool(True)
            elif self.news is not None:
                await self.drop_news()
            if self.stop.done():
                self.stop.result()      # SystemExit: the worker stops
            await self.woken.wait()
            if self.news is not None and self.news.done():
                news, self.news = self.news, None
                news.result()
