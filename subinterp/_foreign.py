"""Interpreters subinterp did not create, as the standard library sees them.

The C core knows the interpreters it created; for every other one (made by
``concurrent.interpreters``, ``_interpreters``, or an embedder through the
C API) it asks the standard library's low-level module, imported on first
use: ``_interpreters`` (3.13+) or ``_xxsubinterpreters`` (3.12).  It looks
interpreters up by id under CPython's own lock, and it is the only place
that knows whence an interpreter came, whether its main thread is running,
and how to destroy or enter one the standard library created.

Every function takes an interpreter id and raises the exceptions of this
interpreter's ``subinterp._core`` with the standard library's messages:
``InterpreterNotFoundError`` for an id that is gone, ``InterpreterError``
for what the standard library refuses.

The rule is the standard library's (``concurrent.interpreters``): code
runs, and ``close()`` works, only in interpreters its interpreters module
created (whence ``"_interpreters module"``); the others can be listed and
looked at.  3.12 cannot tell whence an interpreter came ("unknown"), so
there every foreign interpreter is only looked at.
"""

from __future__ import annotations

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn

_low: Any
try:
    import _interpreters as _low  # 3.13+
except ImportError:
    try:
        import _xxsubinterpreters as _low  # 3.12
    except ImportError:
        # a build without it: nothing but subinterp's own is known
        _low = None

_HAS_WHENCE = hasattr(_low, "whence")

if _HAS_WHENCE:
    # the strings of concurrent.interpreters.Interpreter.whence
    _WHENCE = {
        _low.WHENCE_UNKNOWN: "unknown",
        _low.WHENCE_RUNTIME: "runtime init",
        _low.WHENCE_LEGACY_CAPI: "legacy C-API",
        _low.WHENCE_CAPI: "C-API",
        _low.WHENCE_XI: "cross-interpreter C-API",
        _low.WHENCE_STDLIB: "_interpreters module",
    }
    _NOT_FOUND: tuple[type[BaseException], ...] = (
        _low.InterpreterNotFoundError,
    )
    _REFUSED: tuple[type[BaseException], ...] = (_low.InterpreterError,)
else:
    # 3.12 raises RuntimeError for both
    _NOT_FOUND = ()
    _REFUSED = (RuntimeError,)

# What runs inside the target when code is run there: the job waits in a
# thread-local slot of the C core (this thread enters the target itself),
# and an expression statement binds no name in its __main__.
_RUN_PENDING = "__import__('subinterp._core')._core._run_pending()"


def _raise(exc: BaseException) -> NoReturn:
    """Raise *exc* of the low-level module as this interpreter's
    subinterp exception with the same message."""
    msg = str(exc)
    if isinstance(exc, _NOT_FOUND) or (
        not _NOT_FOUND and msg.startswith("unrecognized interpreter ID")
    ):
        raise _core.InterpreterNotFoundError(msg) from None
    raise _core.InterpreterError(msg) from None


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except _REFUSED + _NOT_FOUND as exc:
        _raise(exc)


def ids() -> list[tuple[int, str]]:
    """(id, whence) of every interpreter of the process that is ready,
    oldest first."""
    if _HAS_WHENCE:
        return [(i, _WHENCE.get(w, "unknown"))
                for i, w in _low.list_all(require_ready=True)]
    if _low is None:
        return []
    return [(int(i), "runtime init" if int(i) == 0 else "unknown")
            for i in _low.list_all()]


def whence(id: int) -> str | None:
    """Where the interpreter came from, or None when it does not exist."""
    try:
        if _HAS_WHENCE:
            return _WHENCE.get(_low.whence(id), "unknown")
        if _low is None:
            return None
        _low.is_running(id)  # 3.12: the lookup raises for a missing id
        return "unknown"
    except _REFUSED + _NOT_FOUND as exc:
        try:
            _raise(exc)
        except _core.InterpreterNotFoundError:
            return None


def is_running(id: int) -> bool:
    """Whether the interpreter's main thread runs code (the standard
    library's own notion: its exec() or call() under way)."""
    if _low is None:
        _refuse("look at", id)
    return bool(_call(_low.is_running, id))


def close(id: int) -> None:
    """Destroy the interpreter, if the standard library's interpreters
    module created it (as ``concurrent.interpreters`` allows)."""
    if _HAS_WHENCE:
        _call(_low.destroy, id, restrict=True)
        return
    _refuse("destroy", id)


def run(id: int, what: str) -> None:
    """Enter the interpreter in this thread, as the standard library does
    (marking it running, refusing one that already runs), and run the job
    the C core left for this thread there.  *what* names the operation
    in the standard library's refusal ("exec code for", "make a call in",
    "update __main__ for")."""
    w = whence(id)
    if w != "_interpreters module":
        _refuse(what, id)
    excinfo = _call(_low.exec, id, _RUN_PENDING, restrict=True)
    if excinfo is not None:
        # the job did not start: subinterp cannot be imported there
        raise _core.InterpreterError(
            f"cannot run code in interpreter {id}: "
            f"{excinfo.type.__name__}: {excinfo.msg} (subinterp must be "
            "importable there: add its directory to that interpreter's "
            "sys.path)"
        )


def hold(id: int) -> None:
    """Keep an interpreter the standard library created alive while an
    Interpreter object of subinterp refers to it, as the standard
    library's own Interpreter objects do (its reference count)."""
    if _HAS_WHENCE:
        _call(_low.incref, id)


def release(id: int) -> None:
    """Give back what hold() took; the standard library destroys an
    interpreter of ``concurrent.interpreters.create()`` with its last
    reference.  Never raises."""
    try:
        _low.decref(id)
    except Exception:
        pass


def _refuse(what: str, id: int) -> NoReturn:
    if whence(id) is None:
        raise _core.InterpreterNotFoundError(
            f"unrecognized interpreter ID {id}")
    raise _core.InterpreterError(
        f"cannot {what} unrecognized interpreter {id}")
