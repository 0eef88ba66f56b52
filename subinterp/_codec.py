"""Python helpers of the C codec (``src/codec*.c``), imported on first use.

The codec encodes most objects itself; this module holds the parts that
are Python by nature: the pickler it falls back to for every other object
(pickle protocol 5 with out-of-band buffers), the matching unpickler, and
finding the module of the main script in an interpreter that did not run
it (the codec itself looks functions up in it, as it does in any module).
"""

from __future__ import annotations

import io
import pickle
import sys

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Pickler(pickle.Pickler):
    # Functions of the main script, functions sent as code, handles and
    # zero-copy buffers inside pickled objects go the way the native
    # encoder sends them; everything else is plain pickle.
    reducer_override = staticmethod(_core._reducer_override)


def new_pickler(oob: bool = True) -> tuple[pickle.Pickler, io.BytesIO, list[Any]]:
    """A pickler for one message: (pickler, its stream, the list that
    collects its out-of-band buffers).  *oob* False: no out-of-band
    buffers, and no keyword arguments (see gh-119213 in codec.c)."""
    stream = io.BytesIO()
    buffers: list[Any] = []
    if oob:
        return (
            _Pickler(stream, protocol=5, buffer_callback=buffers.append),
            stream,
            buffers,
        )
    return _Pickler(stream, 5), stream, buffers


def new_unpickler(data: bytes, buffers: list[Any] | None) -> pickle.Unpickler:
    """An unpickler for the pickle stream of one message.  The decoder
    appends each pickle's out-of-band buffers to *buffers* before it loads
    that pickle (the unpickler's iterator over the list sees them)."""
    if buffers is None:
        return pickle.Unpickler(io.BytesIO(data))
    return pickle.Unpickler(io.BytesIO(data), buffers=buffers)


def by_value_available() -> bool:
    """Can this interpreter send functions by value (is cloudpickle
    importable)?  The codec asks once per interpreter, the first time a
    function can cross neither by reference nor as code."""
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


class ByValue:
    """The reductions of one message's functions and classes sent by value.

    The codec's pickler asks ``reduce`` for each function or class that
    can cross neither by reference nor as code, and, once a message holds
    one, ``reduce_other`` for every object it would otherwise pickle the
    plain way: what such a function holds (its code, cells, the modules it
    uses, ...) needs cloudpickle's reductions too.  Everything else in the
    reductions goes through the codec's pickler, so handles and zero-copy
    buffers inside closures cross as they do anywhere.  One per message,
    so that functions sharing globals share them in the receiver too (as
    within one ``cloudpickle.dumps``)."""

    __slots__ = ("_pickler", "_dispatch")

    def __init__(self) -> None:
        import cloudpickle

        # never dumps: only its reducer_override (and the globals_ref of
        # the functions it reduced) are used
        self._pickler = cloudpickle.Pickler(io.BytesIO(), 5)
        self._dispatch = cloudpickle.Pickler.dispatch_table

    def reduce(self, obj: Any) -> Any:
        return self._pickler.reducer_override(obj)

    def reduce_other(self, obj: Any) -> Any:
        reducer = self._dispatch.get(type(obj))
        return NotImplemented if reducer is None else reducer(obj)


_guarded: dict[str, bool] = {}


def _is_main_guard(node: Any) -> bool:
    import ast

    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [
        s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"
    ]
    return len(names) == 1 and len(consts) == 1


def main_guarded(path: str) -> bool:
    """Does the script at *path* keep its top-level code under
    ``if __name__ == "__main__":``?  Importing it in another interpreter
    would otherwise run that code again (cached per path)."""
    res = _guarded.get(path)
    if res is None:
        import ast

        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), path)
        except (OSError, SyntaxError, ValueError):
            res = False
        else:
            res = any(_is_main_guard(node) for node in tree.body)
        _guarded[path] = res
    return res


def main_module(path: str | None, spec: str | None) -> Any:
    """The module of the main script (file *path*, or module *spec* when
    it was run with ``-m``) in this interpreter, importing the script if it
    has not been yet.  The codec looks the object up in it
    (``codec_resolve_main`` in ``src/codec_ref.c``)."""
    for name in ("__main__", "__mp_main__"):
        mod = sys.modules.get(name)
        if mod is None:
            continue
        if spec is not None:
            mspec = getattr(mod, "__spec__", None)
            if mspec is not None and getattr(mspec, "name", None) == spec:
                return mod
        elif path is not None and getattr(mod, "__file__", None) == path:
            return mod
    if spec is not None:
        # `python -m pkg.mod`: import it under its own name, where its
        # `if __name__ == "__main__":` block does not run.
        import importlib

        return importlib.import_module(spec)
    if path is None:
        raise LookupError("no script to import")
    # `python script.py`: like multiprocessing's spawn start method, run
    # the script under the name __mp_main__, so its
    # `if __name__ == "__main__":` block does not run.
    import importlib.util

    mspec = importlib.util.spec_from_file_location("__mp_main__", path)
    if mspec is None or mspec.loader is None:
        raise ImportError(f"cannot import the main script {path!r}")
    mod = importlib.util.module_from_spec(mspec)
    sys.modules["__mp_main__"] = mod
    try:
        mspec.loader.exec_module(mod)
    except BaseException:
        del sys.modules["__mp_main__"]
        raise
    return mod
