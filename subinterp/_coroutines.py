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
