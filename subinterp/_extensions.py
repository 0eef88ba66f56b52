"""Explain an extension module that cannot be loaded in this interpreter.

An interpreter with its own GIL (``config="isolated"``, the default) loads
only extension modules that declare support for it; CPython refuses the
others with ``ImportError: module X does not support loading in
subinterpreters``.  Some modules refuse by themselves, in any interpreter
but the first to load them (PyO3, numpy, Cython).  Either way the message
does not say what to do.

The C core calls ``explain_import_error`` with the ``ImportError`` that
ends an ``exec``, ``call``, ``call_in_thread``, pool task or pool
initializer in the interpreter that ran it (so only on that error path:
nothing here runs on a successful call).  It returns an
``ImportError`` whose message names the module, says why, and lists the
options, with the original exception as its ``__cause__``; or None when
the error is of another kind.  docs/extensions.md lists which popular
modules load where.
"""

from __future__ import annotations

import importlib.util
import linecache
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

DOC = "docs/extensions.md in subinterp's documentation"

# CPython's refusal (single-phase init, or multi-phase init without
# Py_MOD_PER_INTERPRETER_GIL_SUPPORTED, in an interpreter with its own
# GIL, i.e. with check_multi_interp_extensions on).
_REFUSED = re.compile(r"module (\S+) does not support loading in subinterpreters")
# Modules that load in one interpreter per process: (their message, what
# they are); a group "name" is the module.
_ONCE = (
    (re.compile(r"PyO3 modules"), "a PyO3 (Rust) extension module"),
    (re.compile(r"cannot load module more than once per process"),
     "an extension module"),
    (re.compile(r"module '(?P<name>[\w.]+)' can only be loaded once per "
                r"process"), "an extension module"),
    (re.compile(r"Interpreter change detected"), "a Cython extension module"),
)
# 3.13+ loads a single-phase module imported in a legacy interpreter in the
# main interpreter first; when that fails, 3.14+ raises this and prints the
# cause to stderr (3.13 passes the cause on).
_MAIN_FIRST = "failed to import from subinterpreter due to exception"
_IMPORT = re.compile(
    r"^\s*(?:from\s+(\.*[\w.]*)\s+import\s+\(?\s*(\w+)|import\s+([\w.]+))")

_REFUSED_OPTIONS = (
    "Options:\n"
    '- config="legacy" (subinterp.create(config="legacy"), '
    'subinterp.Pool(config="legacy")) loads such modules, but its '
    "interpreters share the main GIL: their Python code does not run in "
    "parallel, and modules that load once per process still fail in every "
    "interpreter after the first;\n"
    "- import the module in the main interpreter only, and send plain data "
    "to the workers;\n"
    "- or use processes (concurrent.futures.ProcessPoolExecutor).\n"
    f"Which popular modules load where: {DOC}."
)
_ONCE_OPTIONS = (
    "Options: use the module in one interpreter only (e.g. the main one, "
    "sending plain data to the workers), or use processes "
    "(concurrent.futures.ProcessPoolExecutor).\n"
    f"Which popular modules load where: {DOC}."
)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and len(out) < 20 and all(e is not exc for e in out):
        out.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return out


def _imported_by(tb: TracebackType | None) -> tuple[str | None, str | None]:
    """(the module the innermost import statement of tb names, the module
    that ran it), each None when unknown."""
    if tb is None:
        return None, None
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    importer = frame.f_globals.get("__name__")
    try:
        if frame.f_code is importlib.import_module.__code__:
            # importlib.import_module(name, package)
            loc = frame.f_locals
            return importlib.util.resolve_name(
                loc["name"], loc.get("package")), None
        line = linecache.getline(frame.f_code.co_filename, tb.tb_lineno)
        m = _IMPORT.match(line)
        if m is None:
            return None, importer
        if m.group(3):
            return m.group(3), importer
        base, name = m.group(1), m.group(2)
        if base.startswith("."):
            base = importlib.util.resolve_name(
                base, frame.f_globals.get("__package__") or "")
        # "from . import b": the submodule b.  "from a import b": the
        # submodule a.b if a is loaded (a failed import removes it), else
        # a itself.
        if m.group(1).strip(".") == "" or base in sys.modules:
            return f"{base}.{name}", importer
        return base, importer
    except Exception:
        return None, importer


def _diagnose(exc: BaseException) -> tuple[str | None, str] | None:
    """(module name, message) when exc itself says that an extension
    module cannot load in this interpreter, else None."""
    text = str(exc)
    m = _REFUSED.search(text)
    if m is not None:
        name = m.group(1)
        return name, (
            f"cannot import {name} in this interpreter: it is an extension "
            "module without support for interpreters with their own GIL "
            "(single-phase init, or multi-phase init not declared "
            "isolated), and CPython refuses to load it in one "
            '(config="isolated", subinterp\'s default).\n'
            + _REFUSED_OPTIONS
        )
    for pattern, kind in _ONCE:
        m = pattern.search(text)
        if m is not None:
            name = m.groupdict().get("name")
            subject, found = _subject(exc, name)
            return found, (
                f"cannot import {subject} in this interpreter: it is {kind} "
                "that loads in only one interpreter per process, and "
                "another interpreter loaded it first (since 3.13, CPython "
                "loads a single-phase module that a legacy interpreter "
                "imports in the main interpreter first, so the module "
                "refused may also be one that it imports).\n"
                + _ONCE_OPTIONS
            )
    if _MAIN_FIRST in text:
        subject, found = _subject(exc, None)
        return found, (
            f"cannot import {subject} in this interpreter: CPython loads a "
            "single-phase extension module for a legacy interpreter in the "
            "main interpreter first, and that failed (the error is printed "
            "on stderr), typically because the module imports another one "
            "that loads in only one interpreter per process (numpy, say) "
            "and this interpreter loaded that first.\n"
            + _ONCE_OPTIONS
        )
    return None


def _subject(exc: BaseException, name: str | None) -> tuple[str, str | None]:
    """(how to name the module in a message, its name or None)."""
    importer = None
    if name is None:
        name, importer = _imported_by(exc.__traceback__)
    if name is not None:
        return name, name
    if importer not in (None, "__main__"):
        return f"an extension module imported by {importer}", None
    return "an extension module", None


def explain_import_error(exc: BaseException) -> ImportError | None:
    """An ImportError explaining exc (an ImportError raised in this
    interpreter), or None when neither exc nor an exception it chains to
    (its cause or context) says that an extension module cannot load in
    this interpreter."""
    for link in _chain(exc):
        if DOC in str(link):
            return None  # explained already (in another interpreter)
        found = _diagnose(link)
        if found is not None:
            name, text = found
            new = ImportError(text, name=name,
                              path=getattr(link, "path", None))
            new.__cause__ = exc
            return new.with_traceback(exc.__traceback__)
    return None
