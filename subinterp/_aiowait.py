"""The event-loop side of the awaitable operations of queues, channels,
select() and the locks (``get_async``, ``recv_async``, ``async for``,
``select_async``, ``acquire_async``, ``async with``...).

Each event loop gets one hub (``_core._AioHub``): a file descriptor (an
eventfd; a pipe where there is none) that the loop watches with
``add_reader``.  An operation first runs at once (no waiting when it can
complete); otherwise its waiter is linked on the queues or locks like a
blocked thread's, and whoever completes it -- a put in another
interpreter, a release -- appends it to the hub's list and writes the
descriptor; the loop's reader callback completes the operations and
resolves their futures.  No thread waits for anybody, nothing polls.
A timeout is the loop's (``call_later``, then the operation is
withdrawn); a cancelled task withdraws its operation, and what completed
meanwhile is not lost (an item received goes back to the head of its
queue; a put, a send or an acquire that completed counts).

The loop's reader callback holds the only strong reference to the hub:
closing the loop (which drops its readers) or collecting it frees the
hub, which then gives up the operations of the loop's tasks as if they
were cancelled -- they can never resume -- without touching the closed
loop's futures: nothing stays registered, and an item or a lock handed
to one of them meanwhile goes back.
"""

from __future__ import annotations

import weakref
from asyncio import get_running_loop

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["wait_op"]


class _Hub:
    """One event loop's hub; the loop's reader callback drains it."""

    __slots__ = ("core", "__weakref__")

    def __init__(self, loop: Any) -> None:
        self.core = _core._AioHub()
        # The reader stays for the loop's life and holds the only strong
        # reference to self: loop.close() drops it (with the selector's
        # map; uvloop cancels its poll handles), and so does collecting
        # the loop.  Nothing here refers to the loop.
        loop.add_reader(self.core.fileno(), self._drain)

    def __del__(self) -> None:
        # The loop let go: no task of it will resume to take an outcome.
        core = getattr(self, "core", None)
        if core is not None:
            core.close()

    def _drain(self) -> None:
        for op in self.core.drain():
            fut = op.future
            if fut is not None and not fut.done():
                fut.set_result(None)


# loop -> weak reference to its _Hub (see _Hub.__init__)
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hub(loop: Any) -> Any:
    ref = _hubs.get(loop)
    hub = ref() if ref is not None else None
    if hub is None:
        hub = _Hub(loop)
        _hubs[loop] = weakref.ref(hub)
    return hub.core


def _expire(op: Any, fut: Any) -> None:
    if not fut.done():
        # withdrawn: result() gives the timeout's outcome; otherwise it
        # completed meanwhile, and that counts
        op.withdraw()
        fut.set_result(None)


async def wait_op(op: Any, timeout: float | None) -> Any:
    """Run one operation (``_core._AioOp``) in the running loop."""
    loop = get_running_loop()
    try:
        if not op.start(_hub(loop)):
            fut = op.future = loop.create_future()
            timer = None
            if timeout is not None:
                timer = loop.call_later(timeout, _expire, op, fut)
            try:
                await fut
            finally:
                if timer is not None:
                    timer.cancel()
                op.future = None
    except BaseException:
        # cancelled, or an exception (Ctrl-C) raised between the start
        # and the result: withdraw, and undo what completed meanwhile (a
        # received item goes back now, in order, not when the exception
        # is freed)
        op.cancel()
        raise
    return op.result()
