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
    select_async,
    share,
)

# No `from __future__ import annotations` here, nor typing: each costs an
# import in every interpreter that uses subinterp (names only the type
# checker knows are quoted).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._aio import asyncio_executor
    from ._pool import (BrokenInterpreterPool, Pool, default_pool, map, run,
                        submit)
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
    "set_functions_by_value",
    "share",
    # queues, channels, select, locks
    "UNBOUND",
    "UNBOUND_ERROR",
    "UNBOUND_REMOVE",
    "UnboundItemsError",
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
    "select_async",
    # pool
    "BrokenInterpreterPool",
    "Pool",
    "default_pool",
    "map",
    "run",
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
    "run": "_pool",
    "submit": "_pool",
    "asyncio_executor": "_aio",
    # exception classes made on first use (queue.Empty's module imports
    # threading)
    **dict.fromkeys(_queues.LAZY_NAMES, "_queues"),
}

__version__ = "0.1.0"


def create(*, config: "Any" = "isolated", **fields: "Any") -> Interpreter:
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


def __getattr__(name: str) -> "Any":
    modname = _LAZY.get(name)
    if modname is None:
        raise AttributeError(f"module 'subinterp' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"subinterp.{modname}"), name)
    globals()[name] = value
    return value


def list_all() -> list[Interpreter]:
    """Every interpreter of the process, oldest first: the main one, the
    ones subinterp created and those made by the standard library or the
    C API."""
    return _core.list_all()


def get_current() -> Interpreter:
    """The interpreter running this code."""
    return _core.get_current()


def get_main() -> Interpreter:
    """The main interpreter."""
    return _core.get_main()


def set_functions_by_value(enabled: bool) -> bool:
    """Send functions that cannot cross by reference by value, through
    cloudpickle (``True``, the default when cloudpickle is installed), or
    refuse them with ``NotShareableError`` (``False``).  Returns the
    previous setting.

    Functions of importable modules always cross by reference, and
    functions without closure or globals as their code; this decides for
    the rest: closures, lambdas and nested functions that use globals,
    functions of ``python -c``, of standard input, of an interactive
    session or of a script without an ``if __name__ == "__main__":``
    block (and the classes such code defines).  The setting is
    process-wide; the environment variable
    ``SUBINTERP_FUNCTIONS_BY_VALUE=0`` makes ``False`` the initial value.
    """
    return _core._set_functions_by_value(enabled)
