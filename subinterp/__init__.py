"""subinterp: run Python code in parallel on interpreters that each own a GIL.

The names follow the standard library's ``concurrent.interpreters``
(Python 3.14, PEP 734) and work on Python 3.12 and newer::

    import subinterp

    interp = subinterp.create()
    interp.call(pow, 2, 10)          # 1024, computed in another interpreter
    t = interp.call_in_thread(sum, range(10**7))
    t.result()                       # ran in parallel with this thread

Differences from the standard library are listed in docs/api.md.
"""

from __future__ import annotations

from . import _core, _queues
from ._core import (
    UNBOUND,
    UNBOUND_ERROR,
    UNBOUND_REMOVE,
    Barrier,
    BoundedSemaphore,
    CorruptMessageError,
    Event,
    ExecutionFailed,
    Interpreter,
    InterpreterError,
    InterpreterNotFoundError,
    Lock,
    NotShareableError,
    Queue,
    RecvChannel,
    RemoteTraceback,
    RLock,
    Semaphore,
    SendChannel,
    SharedBuffer,
    create_channel,
    create_queue,
    dumps,
    is_shareable,
    loads,
    select,
    share,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs an import in every new interpreter
    from typing import Any

    from ._aio import asyncio_executor
    from ._pool import BrokenInterpreterPool, Pool, default_pool, map, submit
    from ._thread import InterpreterThread

__all__ = [
    # interpreters
    "ExecutionFailed",
    "Interpreter",
    "InterpreterError",
    "InterpreterNotFoundError",
    "InterpreterThread",
    "NotShareableError",
    "RemoteTraceback",
    "create",
    "get_current",
    "get_main",
    "list_all",
    # data
    "CorruptMessageError",
    "SharedBuffer",
    "dumps",
    "is_shareable",
    "loads",
    "share",
    # queues, channels, select, locks
    "UNBOUND",
    "UNBOUND_ERROR",
    "UNBOUND_REMOVE",
    "AbandonedLockWarning",
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "ChannelClosedError",
    "ChannelEmptyError",
    "ChannelError",
    "ChannelFullError",
    "ChannelNotFoundError",
    "Event",
    "ItemInterpreterDestroyed",
    "Lock",
    "Queue",
    "QueueEmpty",
    "QueueError",
    "QueueFull",
    "QueueNotFoundError",
    "RLock",
    "RecvChannel",
    "Semaphore",
    "SendChannel",
    "create_channel",
    "create_queue",
    "select",
    # pool
    "BrokenInterpreterPool",
    "Pool",
    "default_pool",
    "map",
    "submit",
    "asyncio_executor",
]

# Imported on first use, not in every new interpreter: the pool needs
# concurrent.futures and threading.
_LAZY = {
    "InterpreterThread": "_thread",
    "Pool": "_pool",
    "BrokenInterpreterPool": "_pool",
    "default_pool": "_pool",
    "map": "_pool",
    "submit": "_pool",
    "asyncio_executor": "_aio",
    # exception classes made on first use (queue.Empty's module imports
    # threading)
    **dict.fromkeys(_queues.LAZY_NAMES, "_queues"),
}

__version__ = "0.1.0"


def create(*, config: Any = "isolated", **fields: Any) -> Interpreter:
    """Create a new interpreter and return an ``Interpreter`` for it.

    *config* is ``"isolated"`` (the default: its own GIL and allocator,
    multi-phase extension modules only, threads allowed, no fork, exec or
    daemon threads), ``"legacy"`` (shares the main GIL, allows everything),
    or a mapping / namespace of ``PyInterpreterConfig`` fields.  The fields
    may also be given as keywords, overriding the preset:
    ``use_main_obmalloc``, ``allow_fork``, ``allow_exec``,
    ``allow_threads``, ``allow_daemon_threads``,
    ``check_multi_interp_extensions`` (bools) and ``gil`` (``"own"``,
    ``"shared"`` or ``"default"``).  Invalid combinations raise
    ``ValueError``.

    The new interpreter starts with this interpreter's ``sys.path``.  It is
    closed by ``Interpreter.close()``, when the last ``Interpreter`` object
    for it goes away, or at exit.
    """
    return _core.create(config, **fields)


def __getattr__(name: str) -> Any:
    modname = _LAZY.get(name)
    if modname is None:
        raise AttributeError(f"module 'subinterp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"subinterp.{modname}"), name)
    globals()[name] = value
    return value


def list_all() -> list[Interpreter]:
    """The main interpreter, the current one and every live one created by
    subinterp, oldest first."""
    return _core.list_all()


def get_current() -> Interpreter:
    """The interpreter running this code."""
    return _core.get_current()


def get_main() -> Interpreter:
    """The main interpreter."""
    return _core.get_main()
