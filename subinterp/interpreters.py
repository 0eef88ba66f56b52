"""The standard library's ``concurrent.interpreters`` (PEP 734), on subinterp.

Code written for Python 3.14's module runs on 3.12 and newer with::

    from subinterp import interpreters

The names and their meaning are the standard library's, including
``Queue(id)``, which looks up an existing queue (``subinterp.Queue(n)``
creates one of maxsize n instead).  The differences (a new interpreter
inherits its creator's ``sys.path``, blocking queue operations are woken
by events instead of polling, more objects can cross) are listed in
docs/compatibility.md.
"""

from __future__ import annotations

from . import _core, _queues
from ._core import (
    UNBOUND,
    UNBOUND_ERROR,
    UNBOUND_REMOVE,
    ExecutionFailed,
    Interpreter,
    InterpreterError,
    InterpreterNotFoundError,
    NotShareableError,
    is_shareable,
)
from ._core import _InterpretersQueue as Queue
from . import create as _create
from . import get_current, get_main, list_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ExecutionFailed",
    "Interpreter",
    "InterpreterError",
    "InterpreterNotFoundError",
    "NotShareableError",
    "Queue",
    "QueueEmpty",
    "QueueError",
    "QueueFull",
    "QueueNotFoundError",
    "ItemInterpreterDestroyed",
    "UNBOUND",
    "UNBOUND_ERROR",
    "UNBOUND_REMOVE",
    "create",
    "create_queue",
    "get_current",
    "get_main",
    "is_shareable",
    "list_all",
]

# Exception classes made on first use (their bases live in the queue
# module, which imports threading).
_LAZY_EXCEPTIONS = frozenset(
    {
        "QueueEmpty",
        "QueueError",
        "QueueFull",
        "QueueNotFoundError",
        "ItemInterpreterDestroyed",
    }
)


def create() -> Interpreter:
    """Create an isolated interpreter (own GIL) and return it.

    As with the standard library, one still open at exit gets a
    ``RuntimeWarning`` ("remaining subinterpreters") and is then closed.
    """
    interp = _create()
    _core._warn_if_open_at_exit(interp)
    return interp


def create_queue(maxsize: int = 0, *, unbounditems: Any = UNBOUND) -> Queue:
    """Return a new cross-interpreter queue.

    *maxsize* 0 or less means unbounded (``Queue.maxsize`` reports the
    value given).  *unbounditems* (``UNBOUND``, ``UNBOUND_ERROR`` or
    ``UNBOUND_REMOVE``) is the default of ``Queue.put()``: what ``get()``
    does with an item whose interpreter was destroyed before it was taken.
    Other interpreters reach the queue with ``Queue(queue.id)``, or get it
    passed to them (``prepare_main``, call arguments, other queues).
    """
    return _core._create_interp_queue(maxsize, unbounditems=unbounditems)


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXCEPTIONS:
        return getattr(_queues, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
