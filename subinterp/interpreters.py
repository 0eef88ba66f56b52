"""The standard library's ``concurrent.interpreters`` (PEP 734), on subinterp.

Code written for Python 3.14's module runs on 3.12 and newer with::

    from subinterp import interpreters

The names and their meaning are the standard library's; the differences
(a new interpreter inherits its creator's ``sys.path``, blocking queue
operations are woken by events instead of polling) are listed in
docs/api.md.
"""

from __future__ import annotations

from . import _queues
from ._core import (
    ExecutionFailed,
    Interpreter,
    InterpreterError,
    InterpreterNotFoundError,
    NotShareableError,
    Queue,
    create_queue,
    is_shareable,
)
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
    "create",
    "create_queue",
    "get_current",
    "get_main",
    "is_shareable",
    "list_all",
]


def create() -> Interpreter:
    """Create an isolated interpreter (own GIL) and return it."""
    return _create()


def __getattr__(name: str) -> Any:
    if name in ("QueueEmpty", "QueueError", "QueueFull"):
        return getattr(_queues, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
