"""subinterp.interpreters against the standard library's concurrent.interpreters.

Every test runs against both modules: ``subinterp.interpreters`` on every
version, and ``concurrent.interpreters`` (Python 3.14, PEP 734) where it
exists.  The tests are written from the documented 3.14 behaviour and pass
on both; where subinterp differs on purpose, the test says so with
``if stdlib(mod): ... else: ...`` and docs/compatibility.md explains why.

Code that runs inside other interpreters is source text or builtins: the
standard library's interpreters do not start with this process's
``sys.path``, so they cannot import this file.
"""

import gc
import importlib
import inspect
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
import traceback
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

STDLIB = "concurrent.interpreters"
OURS = "subinterp.interpreters"


@pytest.fixture(params=[OURS, STDLIB], ids=["subinterp", "stdlib"])
def mod(request):
    if request.param == STDLIB and sys.version_info < (3, 14):
        pytest.skip("concurrent.interpreters is new in Python 3.14")
    return importlib.import_module(request.param)


def stdlib(mod):
    return mod.__name__ == STDLIB


def qmod(mod):
    """Where the queue names that concurrent.interpreters does not export
    live (UNBOUND*, QueueError, QueueNotFoundError,
    ItemInterpreterDestroyed): its _queues submodule; subinterp.interpreters
    exports them itself."""
    if stdlib(mod):
        return importlib.import_module("concurrent.interpreters._queues")
    return mod


@pytest.fixture
def interp(mod):
    it = mod.create()
    yield it
    try:
        it.close()
    except mod.InterpreterNotFoundError:
        pass


def closed_interpreter(mod):
    it = mod.create()
    it.close()
    return it


# The standard library's Queue(bad id) leaves a half-made object whose
# __del__ raises (an unraisable exception, which pytest turns into a
# warning); that is its bug, not a difference to assert.
stdlib_del_noise = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)


# ---------------------------------------------------------------------------
# names and exceptions


def test_public_names(mod):
    for name in (
        "get_current", "get_main", "create", "list_all", "is_shareable",
        "Interpreter", "InterpreterError", "InterpreterNotFoundError",
        "ExecutionFailed", "NotShareableError", "create_queue", "Queue",
        "QueueEmpty", "QueueFull",
    ):
        assert hasattr(mod, name), name
    if stdlib(mod):
        assert not hasattr(mod, "UNBOUND")
    else:
        # subinterp.interpreters also exports the queue names the standard
        # library keeps in its private _queues module (compatibility.md)
        assert mod.UNBOUND is importlib.import_module("subinterp").UNBOUND


def test_exception_hierarchy(mod):
    q = qmod(mod)
    assert issubclass(mod.InterpreterError, Exception)
    assert issubclass(mod.InterpreterNotFoundError, mod.InterpreterError)
    assert issubclass(mod.ExecutionFailed, mod.InterpreterError)
    assert issubclass(mod.NotShareableError, TypeError)
    assert issubclass(q.QueueError, RuntimeError)
    assert issubclass(q.QueueNotFoundError, q.QueueError)
    assert issubclass(mod.QueueEmpty, q.QueueError)
    assert issubclass(mod.QueueEmpty, queue.Empty)
    assert issubclass(mod.QueueFull, q.QueueError)
    assert issubclass(mod.QueueFull, queue.Full)
    assert issubclass(q.ItemInterpreterDestroyed, q.QueueError)
    if stdlib(mod):
        assert not issubclass(q.QueueError, mod.InterpreterError)
    else:
        # every error of the package is an InterpreterError too
        assert issubclass(q.QueueError, mod.InterpreterError)


# ---------------------------------------------------------------------------
# interpreters


def test_get_main(mod):
    main = mod.get_main()
    assert main.id == 0
    assert main.whence == "runtime init"
    assert main.is_running() is True
    assert mod.get_main() is main


def test_get_current(mod):
    assert mod.get_current() is mod.get_current()
    assert mod.get_current() is mod.get_main()


def test_get_current_inside(mod, interp):
    assert interp.call(mod.get_current) is interp
    interp.exec(
        f"from {mod.__name__} import get_current, get_main\n"
        "cur = get_current()\n"
        "assert cur is get_current()\n"
        "assert cur.id != 0 and get_main().id == 0\n"
    )


def test_create(mod, interp):
    assert isinstance(interp, mod.Interpreter)
    assert isinstance(interp.id, int) and interp.id > 0
    assert interp.is_running() is False
    if stdlib(mod):
        assert interp.whence == "_interpreters module"
    else:
        assert interp.whence == "subinterp"  # compatibility.md: whence


def test_list_all(mod, interp):
    other = mod.create()
    try:
        found = mod.list_all()
        assert found[0] is mod.get_main()
        ids = [i.id for i in found]
        assert interp.id in ids and other.id in ids
        assert found[ids.index(interp.id)] is interp
        assert found[ids.index(other.id)] is other
        assert all(isinstance(i, mod.Interpreter) for i in found)
    finally:
        other.close()
    assert other.id not in [i.id for i in mod.list_all()]


def test_interpreter_by_id(mod, interp):
    assert mod.Interpreter(interp.id) is interp
    assert mod.Interpreter(0) is mod.get_main()
    # bool is an int, as everywhere in Python
    assert mod.Interpreter(False) is mod.get_main()


@pytest.mark.parametrize(
    "bad, exc",
    [
        ("1", TypeError),
        (1.0, TypeError),
        (None, TypeError),
        (-1, ValueError),
        (2**63, OverflowError),
        (2**64, OverflowError),
        (2**63 - 1, "notfound"),
        (1_000_000, "notfound"),
    ],
)
def test_interpreter_bad_id(mod, bad, exc):
    if exc == "notfound":
        exc = mod.InterpreterNotFoundError
    with pytest.raises(exc):
        mod.Interpreter(bad)


def test_interpreter_closed(mod):
    it = closed_interpreter(mod)
    with pytest.raises(mod.InterpreterNotFoundError):
        mod.Interpreter(it.id)
    for op in (
        it.is_running,
        it.close,
        lambda: it.exec("x = 1"),
        lambda: it.call(pow, 2, 2),
        lambda: it.prepare_main(x=1),
    ):
        with pytest.raises(mod.InterpreterNotFoundError):
            op()
    assert it.id not in [i.id for i in mod.list_all()]


def test_close_main_or_current_refused(mod, interp):
    with pytest.raises(mod.InterpreterError):
        mod.get_main().close()
    with pytest.raises(mod.ExecutionFailed) as info:
        interp.exec(
            f"from {mod.__name__} import get_current\n"
            "get_current().close()\n"
        )
    assert info.value.excinfo.type.__name__ == "InterpreterError"
    assert interp.call(pow, 3, 2) == 9


def test_interpreter_pickle_equality_hash(mod, interp):
    assert pickle.loads(pickle.dumps(interp)) is interp
    assert pickle.loads(pickle.dumps(mod.get_main())) is mod.get_main()
    cls, args = interp.__reduce__()
    assert cls is type(interp) and args == (interp.id,)
    assert hash(interp) == hash(interp.id)
    assert interp == mod.Interpreter(interp.id)
    assert interp != mod.get_main()
    assert (interp == interp.id) is False
    assert {interp: 1, mod.get_main(): 2}[mod.Interpreter(interp.id)] == 1


def test_repr(mod, interp):
    q = mod.create_queue()
    assert repr(q) == f"Queue({q.id})"
    assert repr(interp) == f"Interpreter({interp.id})"


# ---------------------------------------------------------------------------
# interpreters the module did not create


needs_stdlib = pytest.mark.skipif(
    sys.version_info < (3, 14),
    reason="concurrent.interpreters is new in Python 3.14")


@pytest.fixture
def std_interp():
    """An interpreter made by concurrent.interpreters.create(), with this
    process's sys.path (so that subinterp imports there)."""
    std = importlib.import_module(STDLIB)
    it = std.create()
    it.exec(f"import sys\nsys.path[:0] = {sys.path!r}")
    yield it
    try:
        it.close()
    except std.InterpreterNotFoundError:
        pass


@needs_stdlib
def test_interpreter_made_by_the_stdlib(mod, std_interp):
    std = importlib.import_module(STDLIB)
    it = mod.Interpreter(std_interp.id)
    assert it is mod.Interpreter(std_interp.id)
    assert isinstance(it, mod.Interpreter)
    assert it.whence == "_interpreters module"
    found = mod.list_all()
    ids = [i.id for i in found]
    assert found[ids.index(it.id)] is it
    assert ids == sorted(ids)
    assert it.is_running() is False
    # what the standard library allows in the interpreters it created
    it.prepare_main(x=20)
    it.exec("x += 1")
    assert it.call(eval, "x * 2") == 42
    assert std_interp.call(eval, "x") == 21
    with pytest.raises(mod.ExecutionFailed) as info:
        it.exec("raise ValueError('boom')")
    assert info.value.excinfo.type.__name__ == "ValueError"
    assert it.is_running() is False
    it.close()
    with pytest.raises(std.InterpreterNotFoundError):
        std_interp.is_running()
    with pytest.raises(mod.InterpreterNotFoundError):
        it.is_running()
    with pytest.raises(mod.InterpreterNotFoundError):
        mod.Interpreter(it.id)
    assert it.id not in [i.id for i in mod.list_all()]


@needs_stdlib
def test_interpreter_made_by_the_stdlib_from_inside(mod, std_interp):
    std_interp.exec(
        f"from {mod.__name__} import get_current, InterpreterError\n"
        "cur = get_current()\n"
        "assert cur.whence == '_interpreters module', cur.whence\n"
        "assert cur.is_running() is True\n"
        "try:\n"
        "    cur.close()\n"
        "except InterpreterError as exc:\n"
        "    msg = str(exc)\n"
        "assert msg == 'cannot destroy the current interpreter', msg\n"
    )


C_API_WHENCE = [
    ("WHENCE_CAPI", "C-API"),
    ("WHENCE_LEGACY_CAPI", "legacy C-API"),
    ("WHENCE_XI", "cross-interpreter C-API"),
]


@pytest.fixture(params=C_API_WHENCE, ids=[w for _, w in C_API_WHENCE])
def capi_interp(request):
    """(id, whence) of an interpreter made through the C API (CPython's
    test module), destroyed at the end if still alive."""
    testcapi = pytest.importorskip("_testinternalcapi")
    if not hasattr(testcapi, "create_interpreter"):
        pytest.skip("_testinternalcapi.create_interpreter is new in 3.13")
    low = importlib.import_module("_interpreters")
    const, name = request.param
    iid = testcapi.create_interpreter(whence=getattr(low, const))
    yield iid, name
    try:
        low.destroy(iid)
    except low.InterpreterNotFoundError:
        pass


def test_interpreter_made_by_the_c_api(mod, capi_interp):
    """Listed and looked at; what the standard library refuses to do to an
    interpreter its interpreters module did not create is refused with
    its words."""
    iid, whence = capi_interp
    it = mod.Interpreter(iid)
    assert it is mod.Interpreter(iid)
    assert it.whence == whence
    assert iid in [i.id for i in mod.list_all()]
    assert it.is_running() is False
    for op, words in [
        (it.close, "destroy"),
        (lambda: it.exec("x = 1"), "exec code for"),
        (lambda: it.call(abs, -1), "make a call in"),
        (lambda: it.prepare_main(x=1), "update __main__ for"),
    ]:
        with pytest.raises(mod.InterpreterError) as info:
            op()
        assert not isinstance(info.value, mod.InterpreterNotFoundError)
        assert str(info.value) == (
            f"cannot {words} unrecognized interpreter {iid}")
    importlib.import_module("_interpreters").destroy(iid)
    with pytest.raises(mod.InterpreterNotFoundError):
        it.is_running()
    with pytest.raises(mod.InterpreterNotFoundError):
        mod.Interpreter(iid)
    # where it came from is kept, as the standard library keeps it
    assert it.whence == whence


@needs_stdlib
def test_is_running_while_the_stdlib_runs_it(mod, std_interp):
    std = importlib.import_module(STDLIB)
    started = std.create_queue()
    release = std.create_queue()
    std_interp.prepare_main(a=started.id, b=release.id)
    t = std_interp.call_in_thread(
        exec,
        "from concurrent.interpreters import Queue\n"
        "Queue(a).put(1)\n"
        "Queue(b).get(timeout=60)\n",
    )
    it = mod.Interpreter(std_interp.id)
    try:
        started.get(timeout=30)
        assert it.is_running() is True
        with pytest.raises(mod.InterpreterError) as info:
            it.close()
        assert not isinstance(info.value, mod.InterpreterNotFoundError)
        with pytest.raises(mod.InterpreterError) as info:
            it.exec("x = 1")
        assert not isinstance(info.value, mod.InterpreterNotFoundError)
    finally:
        release.put(None)
        t.join()
    assert it.is_running() is False


@needs_stdlib
def test_stdlib_sees_the_module_running_its_interpreter(mod, std_interp):
    """Code the module runs in an interpreter of the standard library is
    seen by it: is_running() is true and its close() refuses (it would
    destroy the interpreter under the running call)."""
    std = importlib.import_module(STDLIB)
    started = mod.create_queue()
    release = mod.create_queue()
    it = mod.Interpreter(std_interp.id)
    it.prepare_main(a=started.id, b=release.id)
    t = it.call_in_thread(
        exec,
        f"from {mod.__name__} import Queue\n"
        "Queue(a).put(1)\n"
        "Queue(b).get(timeout=60)\n",
    )
    try:
        started.get(timeout=30)
        assert std_interp.is_running() is True
        with pytest.raises(std.InterpreterError) as info:
            std_interp.close()
        assert not isinstance(info.value, std.InterpreterNotFoundError)
    finally:
        release.put(None)
        t.join()
    assert std_interp.is_running() is False


@needs_stdlib
def test_interpreter_kept_alive_like_the_stdlib_keeps_it(mod):
    """An Interpreter object for an interpreter of
    concurrent.interpreters.create() keeps it alive, as the standard
    library's own objects do; the last one gone destroys it."""
    std = importlib.import_module(STDLIB)
    made = std.create()
    iid = made.id
    held = mod.Interpreter(iid)
    del made
    gc.collect()
    assert held.is_running() is False
    del held
    gc.collect()
    with pytest.raises(mod.InterpreterNotFoundError):
        mod.Interpreter(iid)


DESTROYED_WHILE_HELD = """
import gc
from concurrent import interpreters as std
import {mod} as mod

it = std.create()
held = mod.Interpreter(it.id)
assert held.whence == "_interpreters module"
it.close()
for op in (held.is_running, held.close, lambda: held.exec("x = 1"),
           lambda: held.call(abs, -1), lambda: held.prepare_main(x=1)):
    try:
        op()
    except mod.InterpreterNotFoundError:
        pass
    else:
        raise AssertionError(op)
assert held.whence == "_interpreters module"
assert held.id not in [i.id for i in mod.list_all()]
try:
    mod.Interpreter(held.id)
except mod.InterpreterNotFoundError:
    pass
else:
    raise AssertionError("found")
del it, held
gc.collect()
# a new interpreter (often at the freed one's address) is not the old one
again = std.create()
assert mod.Interpreter(again.id).whence == "_interpreters module"
again.close()
print("ok")
"""


@needs_stdlib
def test_interpreter_destroyed_by_the_stdlib_while_held(mod):
    """Every operation on it raises InterpreterNotFoundError; nothing
    touches the freed interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
    )
    res = subprocess.run(
        [sys.executable, "-c", DESTROYED_WHILE_HELD.format(mod=mod.__name__)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ok\n"
    assert res.stderr == ""


@needs_stdlib
def test_stdlib_sees_interpreters_of_the_module(mod, interp):
    """The other direction: the standard library lists the module's
    interpreters; to it an interpreter of subinterp is one made through
    the C API, which it does not close."""
    std = importlib.import_module(STDLIB)
    seen = std.Interpreter(interp.id)
    assert interp.id in [i.id for i in std.list_all()]
    if stdlib(mod):
        assert seen is interp
    else:
        assert seen.whence == "C-API"
        with pytest.raises(std.InterpreterError):
            seen.close()
        assert interp.call(abs, -3) == 3


def test_exec(mod, interp):
    interp.exec("x = 20")
    interp.exec("x += 1")
    interp.exec(compile("y = x * 2", "<code>", "exec"))
    assert interp.call(eval, "y") == 42


def test_exec_failure(mod, interp):
    with pytest.raises(mod.ExecutionFailed) as info:
        interp.exec("def f():\n    raise ValueError('boom')\nf()\n")
    exc = info.value
    assert exc.excinfo.type.__name__ == "ValueError"
    assert exc.excinfo.type.__module__ == "builtins"
    assert exc.excinfo.msg == "boom"
    assert exc.excinfo.formatted == "ValueError: boom"
    assert exc.excinfo.errdisplay == (
        "Traceback (most recent call last):\n"
        '  File "<script>", line 3, in <module>\n'
        '  File "<script>", line 2, in f\n'
        "ValueError: boom")
    assert exc.args == ("ValueError: boom",)
    assert str(exc) == (
        "ValueError: boom\n\nUncaught in the interpreter:\n\n"
        + exc.excinfo.errdisplay)
    # the interpreter is still usable
    interp.exec("z = 1")


def test_exec_bad_input(mod, interp):
    with pytest.raises(TypeError):
        interp.exec(5)


SYNTAX_ERRORS = [
    "x = (",
    "def f(:\n  pass",
    "  x = 1",
    "x = 1\ny = 2 +\n",
    "return 5",
    "nonlocal x",
    "x = '\\N{foo}'",
    "print 'hi'",
    "from __future__ import braces",
    "def f():\n    x = 1\n   y = 2\n",
    "'\0'",
    b"x = (",
]


@pytest.mark.parametrize("source", SYNTAX_ERRORS)
def test_exec_syntax_error(mod, interp, source):
    """Source text is compiled by the call, as compile(source, "<script>",
    "exec") would: the SyntaxError (not an ExecutionFailed) is raised in
    the caller, with the same attributes and display."""
    with pytest.raises(SyntaxError) as info:
        interp.exec(source)
    err = info.value
    assert not isinstance(err, mod.ExecutionFailed)
    with pytest.raises(SyntaxError) as expected:
        compile(source, "<script>", "exec", dont_inherit=True)
    want = expected.value
    assert type(err) is type(want)
    assert err.args == want.args
    for attr in ("msg", "filename", "lineno", "offset", "text",
                 "end_lineno", "end_offset"):
        assert getattr(err, attr) == getattr(want, attr), attr
    assert (traceback.format_exception_only(err)
            == traceback.format_exception_only(want))
    interp.exec("still_usable = True")


def test_exec_source_like_compile(mod, interp):
    # str: a coding cookie does not apply; bytes-like: it does
    interp.exec("# -*- coding: latin-1 -*-\nx = '\xe9'\n")
    interp.exec("# -*- coding: latin-1 -*-\ny = '\xe9'\n".encode("latin-1"))
    interp.exec(bytearray(b"z = 1"))
    assert interp.call(eval, "(x, y, z)") == ("\xe9", "\xe9", 1)
    # the code's file name, and its compile-time warnings in the caller
    interp.exec("import sys\nname = sys._getframe().f_code.co_filename")
    assert interp.call(eval, "name") == "<script>"
    with pytest.warns(SyntaxWarning):
        interp.exec("w = '\\d'")


def test_call(mod, interp):
    assert interp.call(pow, 2, 10) == 1024
    assert interp.call(int, "101", base=2) == 5
    assert interp.call(divmod, 7, 2) == (3, 1)
    with pytest.raises(mod.ExecutionFailed) as info:
        interp.call(int, "x")
    assert info.value.excinfo.type.__name__ == "ValueError"
    assert "invalid literal" in info.value.excinfo.msg


def test_call_runs_at_top_level_of_main(mod, interp):
    interp.call(exec, "answer = 42")
    interp.exec("assert answer == 42")


def test_call_in_thread(mod, interp):
    q = mod.create_queue()
    interp.prepare_main(qid=q.id)
    t = interp.call_in_thread(
        exec,
        f"from {mod.__name__} import Queue\n"
        "Queue(qid).put(sum(range(10)))\n",
    )
    assert isinstance(t, threading.Thread)
    t.join()
    assert q.get(timeout=30) == 45


def test_is_running_while_it_runs(mod, interp):
    started = mod.create_queue()
    release = mod.create_queue()
    interp.prepare_main(a=started.id, b=release.id)
    t = interp.call_in_thread(
        exec,
        f"from {mod.__name__} import Queue\n"
        "Queue(a).put(1)\n"
        "Queue(b).get(timeout=60)\n",
    )
    try:
        started.get(timeout=30)
        assert interp.is_running() is True
    finally:
        release.put(None)
        t.join()
    assert interp.is_running() is False


# ---------------------------------------------------------------------------
# prepare_main


def test_prepare_main_forms(mod, interp):
    interp.prepare_main({"a": 1}, b=2)
    interp.prepare_main((("c", 3), ("d", 4)))
    interp.prepare_main([("e", 5)])
    interp.prepare_main(None, f=6)
    interp.prepare_main(g="seven")
    assert interp.call(eval, "(a, b, c, d, e, f, g)") == (
        1, 2, 3, 4, 5, 6, "seven"
    )


@pytest.mark.parametrize(
    "args",
    [(), ({},), (None,), ((),)],
    ids=["nothing", "empty dict", "None", "empty tuple"],
)
def test_prepare_main_empty(mod, interp, args):
    with pytest.raises(ValueError):
        interp.prepare_main(*args)


def test_prepare_main_bad_input(mod, interp):
    with pytest.raises(TypeError):
        interp.prepare_main(42)
    with pytest.raises(TypeError):
        interp.prepare_main({1: 2})


def test_prepare_main_not_shareable(mod, interp):
    with pytest.raises(mod.NotShareableError):
        interp.prepare_main(a=1, lock=threading.Lock())
    # refused at the call: nothing was bound
    with pytest.raises(mod.ExecutionFailed):
        interp.exec("a")


# ---------------------------------------------------------------------------
# is_shareable


def test_is_shareable(mod):
    for obj in (None, True, 1, 2**100, 1.5, "s", b"b", (1, "a", (None,)),
                mod.create_queue(), memoryview(b"x")):
        assert mod.is_shareable(obj) is True, obj
    assert mod.is_shareable(threading.Lock()) is False
    more = [[1, 2], {"a": 1}, object(), mod.get_main()]
    if stdlib(mod):
        assert [mod.is_shareable(o) for o in more] == [False] * 4
    else:
        # subinterp shares more (compatibility.md): containers, picklable
        # objects, interpreters
        assert [mod.is_shareable(o) for o in more] == [True] * 4


# ---------------------------------------------------------------------------
# queues


def test_create_queue(mod):
    q = mod.create_queue()
    assert isinstance(q, mod.Queue)
    assert isinstance(q.id, int)
    assert q.maxsize == 0
    assert q.empty() and not q.full() and q.qsize() == 0
    q.put(1)
    q.put_nowait("two")
    q.put((3,), block=False)
    assert q.qsize() == 3 and not q.empty()
    assert [q.get(), q.get_nowait(), q.get(block=False)] == [1, "two", (3,)]
    assert q.empty()


@pytest.mark.parametrize("maxsize", [-1, -5, 0])
def test_create_queue_unbounded(mod, maxsize):
    q = mod.create_queue(maxsize)
    assert q.maxsize == maxsize
    for i in range(100):
        q.put_nowait(i)
    assert not q.full() and q.qsize() == 100


@pytest.mark.parametrize(
    "bad, exc",
    [(1.5, TypeError), ("x", TypeError), (None, TypeError),
     (2**64, OverflowError)],
)
def test_create_queue_bad_maxsize(mod, bad, exc):
    with pytest.raises(exc):
        mod.create_queue(bad)


def test_bounded_queue(mod):
    q = mod.create_queue(2)
    assert q.maxsize == 2
    q.put(1)
    q.put(2)
    assert q.full()
    with pytest.raises(mod.QueueFull):
        q.put_nowait(3)
    with pytest.raises(mod.QueueFull):
        q.put(3, timeout=0.01)
    with pytest.raises(mod.QueueFull):
        q.put(3, block=False)
    assert q.get() == 1
    q.put(3)
    assert [q.get(), q.get()] == [2, 3]


def test_get_timeout(mod):
    q = mod.create_queue()
    with pytest.raises(mod.QueueEmpty):
        q.get_nowait()
    with pytest.raises(mod.QueueEmpty):
        q.get(timeout=0.01)
    with pytest.raises(mod.QueueEmpty):
        q.get(block=False)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    # QueueEmpty is queue.Empty: code written for queue.Queue keeps working
    with pytest.raises(queue.Empty):
        q.get(timeout=0)


def test_queue_by_id(mod):
    q = mod.create_queue()
    assert mod.Queue(q.id) is q
    assert mod.Queue(q.id) == q and hash(q) == hash(q.id)
    assert mod.create_queue() != q
    assert (q == q.id) is False


@stdlib_del_noise
@pytest.mark.parametrize(
    "bad, exc",
    [("1", TypeError), (1.0, TypeError), (None, TypeError), (-1, ValueError),
     (2**64, OverflowError), (1_000_000, "notfound")],
)
def test_queue_bad_id(mod, bad, exc):
    if exc == "notfound":
        exc = qmod(mod).QueueNotFoundError
    with pytest.raises(exc):
        mod.Queue(bad)


def test_queue_not_a_constructor_of_new_queues(mod):
    # Queue(id) looks up; it never makes a queue of maxsize id
    q = mod.create_queue()
    with pytest.raises(TypeError):
        mod.Queue(q.id, 1)
    with pytest.raises(TypeError):
        mod.Queue()


def test_freed_queue_not_found(mod):
    q = mod.create_queue()
    qid = q.id
    del q
    gc.collect()
    with pytest.raises(qmod(mod).QueueNotFoundError):
        mod.Queue(qid)


def test_queue_reached_by_id_in_other_interpreter(mod, interp):
    """The consumer does Queue(qid).get(): it must get what the main
    interpreter put, not wait forever on a queue of its own."""
    q = mod.create_queue()
    back = mod.create_queue()
    interp.prepare_main(qid=q.id, back_id=back.id)
    t = interp.call_in_thread(
        exec,
        f"from {mod.__name__} import Queue\n"
        "q = Queue(qid)\n"
        "assert q.id == qid and q is Queue(qid)\n"
        "Queue(back_id).put(q.get(timeout=30) * 2)\n",
    )
    q.put(21)
    t.join()
    assert back.get(timeout=30) == 42


def test_queue_through_queue_is_the_same_object(mod):
    q1, q2 = mod.create_queue(), mod.create_queue()
    q1.put(q2)
    assert q1.get() is q2
    it = mod.get_main()
    q1.put(it)
    assert q1.get() is it


def test_queue_through_queue_in_other_interpreter(mod, interp):
    q1, q2 = mod.create_queue(), mod.create_queue()
    interp.prepare_main(qid=q1.id)
    q1.put(q2)
    interp.exec(
        f"from {mod.__name__} import Queue\n"
        "got = Queue(qid).get(timeout=30)\n"
        "assert type(got) is Queue, type(got)\n"
        "got.put(('hello', got.id))\n"
        "Queue(qid).put(got)\n"
    )
    assert q2.get(timeout=30) == ("hello", q2.id)
    assert q1.get(timeout=30) is q2


def test_queue_pickle_equality_hash(mod):
    q = mod.create_queue()
    assert pickle.loads(pickle.dumps(q)) is q
    cls, args = q.__reduce__()
    assert cls is mod.Queue and args == (q.id,)
    other = mod.create_queue()
    assert len({q, other, mod.Queue(q.id)}) == 2
    assert {q: 1}[mod.Queue(q.id)] == 1


def test_unbound_constants(mod):
    q = qmod(mod)
    consts = (q.UNBOUND, q.UNBOUND_ERROR, q.UNBOUND_REMOVE)
    assert len({id(c) for c in consts}) == 3
    assert mod.create_queue().unbounditems is q.UNBOUND
    for c in consts:
        assert mod.create_queue(unbounditems=c).unbounditems is c
        mod.create_queue().put(1, unbounditems=c)
    with pytest.raises(NotImplementedError):
        mod.create_queue(unbounditems=5)
    with pytest.raises(NotImplementedError):
        mod.create_queue().put(1, unbounditems=5)
    if not stdlib(mod):
        # also a ValueError, as subinterp's other bad arguments
        with pytest.raises(ValueError):
            mod.create_queue(unbounditems=5)


def test_unbound_items(mod):
    """Items whose interpreter was destroyed before they were taken."""
    qm = qmod(mod)
    q = mod.create_queue()
    it = mod.create()
    it.prepare_main(qid=q.id)
    it.exec(
        f"from {mod.__name__} import Queue\n"
        f"import {qm.__name__} as Q\n"
        "q = Queue(qid)\n"
        "q.put('a')\n"
        "q.put('b', unbounditems=Q.UNBOUND_ERROR)\n"
        "q.put('c', unbounditems=Q.UNBOUND_REMOVE)\n"
        "q.put('d')\n"
    )
    assert q.qsize() == 4
    it.close()
    assert q.qsize() == 3
    assert q.get_nowait() is qm.UNBOUND
    with pytest.raises(qm.ItemInterpreterDestroyed):
        q.get_nowait()
    assert q.get_nowait() is qm.UNBOUND
    with pytest.raises(mod.QueueEmpty):
        q.get_nowait()


# ---------------------------------------------------------------------------
# a program written for the standard library's API

PIPELINE = os.path.join(HERE, "pep734_pipeline.py")

PIPELINE_OUTPUT = """\
the 3
dog 2
brown 1
fox 1
jumps 1
lazy 1
over 1
quick 1
sleeps 1
count failed: ValueError: bad word: 'boom'
None
True
"""


def test_pipeline_program(mod):
    """tests/pep734_pipeline.py, unchanged, on either module: two
    interpreters joined by queues they reach by id, one stage in a thread
    (call_in_thread), an exception crossing back."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
    )
    res = subprocess.run(
        [sys.executable, PIPELINE, mod.__name__],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert res.stdout == PIPELINE_OUTPUT


# ---------------------------------------------------------------------------
# ExecutionFailed as the standard library shows it


def run_python(args, stdin=None, timeout=120):
    """Run this Python with *args*, the repository on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [sys.executable, *args], input=stdin, capture_output=True,
        text=True, timeout=timeout, env=env,
    )


def shown(text):
    """Traceback text without the frames of either implementation's own
    Python files (the standard library raises ExecutionFailed from Python
    code, subinterp from C) and with the class's module left out."""
    text = re.sub(
        r'  File "[^"]*/(?:concurrent/interpreters|subinterp)/[^"]*", '
        r"line \d+, in \S+\n(?:    .*\n)*",
        "", text)
    return re.sub(r"^(?:concurrent\.interpreters|subinterp)\.ExecutionFailed",
                  "ExecutionFailed", text, flags=re.M)


EXCEPTION_CASES = [
    # source, excinfo.formatted, the last line of excinfo.errdisplay
    ("raise KeyError('k')", "KeyError: 'k'", "KeyError: 'k'"),
    ("raise ValueError", "ValueError: ", "ValueError"),
    ("raise SystemExit(3)", "SystemExit: 3", "SystemExit: 3"),
    ("class MyErr(Exception): pass\nraise MyErr('x', 2)",
     "MyErr: ('x', 2)", "MyErr: ('x', 2)"),
    ("import json\njson.loads('{')",
     "json.decoder.JSONDecodeError: Expecting property name enclosed in "
     "double quotes: line 1 column 2 (char 1)",
     "json.decoder.JSONDecodeError: Expecting property name enclosed in "
     "double quotes: line 1 column 2 (char 1)"),
    ("e = ValueError('noted')\ne.add_note('a note')\nraise e",
     "ValueError: noted", "a note"),
    ("try:\n    1/0\nexcept Exception as e:\n    raise ValueError('v') from e",
     "ValueError: v", "ValueError: v"),
    ("raise ExceptionGroup('g', [ValueError(1), TypeError(2)])",
     "ExceptionGroup: g (2 sub-exceptions)",
     "    +------------------------------------"),
]


@pytest.mark.parametrize("source, formatted, last", EXCEPTION_CASES)
def test_execution_failed_excinfo(mod, interp, source, formatted, last):
    with pytest.raises(mod.ExecutionFailed) as info:
        interp.exec(source)
    exc = info.value
    excinfo = exc.excinfo
    assert excinfo.formatted == formatted
    assert exc.args == (formatted,)
    assert excinfo.formatted.endswith(excinfo.msg)
    assert excinfo.errdisplay.splitlines()[-1] == last
    assert not excinfo.errdisplay.endswith("\n")
    assert str(exc) == (formatted + "\n\nUncaught in the interpreter:\n\n"
                        + excinfo.errdisplay)
    if "from e" in source:
        assert ("The above exception was the direct cause of the following "
                "exception:") in excinfo.errdisplay
    assert exc.__cause__ is None and exc.__context__ is None


def test_execution_failed_of_call(mod, interp):
    # a builtin raising: no frame to show, the exception line only
    with pytest.raises(mod.ExecutionFailed) as info:
        interp.call(int, "x")
    text = "ValueError: invalid literal for int() with base 10: 'x'"
    assert info.value.excinfo.formatted == text
    assert info.value.excinfo.errdisplay == text
    assert str(info.value) == (text + "\n\nUncaught in the interpreter:\n\n"
                               + text)


def test_execution_failed_without_errdisplay(mod):
    # str() falls back to the plain text when excinfo has no traceback
    exc = mod.ExecutionFailed.__new__(mod.ExecutionFailed)
    exc.args = ("ValueError: x",)
    exc.excinfo = types.SimpleNamespace(formatted="ValueError: x")
    assert str(exc) == "ValueError: x"


UNCAUGHT = """\
import importlib, sys
mod = importlib.import_module(sys.argv[1])
it = mod.create()
it.exec("def f():\\n    raise ValueError('boom')\\n")
try:
    if sys.argv[2] == "exec":
        it.exec("f()")
    elif sys.argv[2] == "call":
        it.call(int, "x")
    else:
        t = it.call_in_thread(eval, "f()")
        t.join()
finally:
    it.close()
"""

UNCAUGHT_TAIL = {
    "exec": """\
ExecutionFailed: ValueError: boom

Uncaught in the interpreter:

Traceback (most recent call last):
  File "<script>", line 1, in <module>
  File "<script>", line 2, in f
ValueError: boom
""",
    "call": """\
ExecutionFailed: ValueError: invalid literal for int() with base 10: 'x'

Uncaught in the interpreter:

ValueError: invalid literal for int() with base 10: 'x'
""",
    "call_in_thread": """\
ExecutionFailed: ValueError: boom

Uncaught in the interpreter:

Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "<script>", line 2, in f
ValueError: boom
""",
}


@pytest.mark.parametrize("how", ["exec", "call", "call_in_thread"])
def test_uncaught_execution_failed_display(mod, tmp_path, how):
    """What Python prints for an ExecutionFailed nobody catches (in the
    main thread: sys.excepthook; in call_in_thread's thread:
    threading.excepthook): the caller's traceback, then the exception
    with the other interpreter's traceback, as the standard library."""
    script = tmp_path / "uncaught.py"
    script.write_text(UNCAUGHT)
    res = run_python([str(script), mod.__name__, how])
    err = shown(res.stderr)
    if how == "call_in_thread":
        assert res.returncode == 0, res.stderr
        assert re.match(r"Exception in thread Thread-\d+ \(_call\):\n"
                        r"Traceback \(most recent call last\):\n", err), err
        assert err.endswith(UNCAUGHT_TAIL[how]), err
        # the frames of threading then of the thread's target, _call
        local = res.stderr.split("ExecutionFailed: ")[0]
        frames = re.findall(r'^  File "[^"]*", line \d+, in (\S+)$',
                            local, flags=re.M)
        assert frames == ["_bootstrap_inner", "run", "_call"], res.stderr
    else:
        assert res.returncode == 1, res.stderr
        assert err.startswith("Traceback (most recent call last):\n"
                              f'  File "{script}", line '), err
        assert err.endswith(UNCAUGHT_TAIL[how]), err
    # the class's module is where each defines it
    owner = "concurrent.interpreters" if stdlib(mod) else "subinterp"
    assert f"{owner}.ExecutionFailed: " in res.stderr


def test_call_in_thread_exception_reaches_excepthook(mod, interp,
                                                     monkeypatch):
    calls = []
    monkeypatch.setattr(threading, "excepthook", calls.append)
    t = interp.call_in_thread(int, "x")
    t.join()
    [args] = calls
    assert args.exc_type is mod.ExecutionFailed
    assert isinstance(args.exc_value, mod.ExecutionFailed)
    assert args.exc_value.excinfo.type.__name__ == "ValueError"
    assert args.exc_traceback is args.exc_value.__traceback__
    assert [f.name for f in traceback.extract_tb(args.exc_traceback)] == [
        "_bootstrap_inner", "run", "_call"]
    assert args.thread is t
    assert re.fullmatch(r"Thread-\d+ \(_call\)", t.name)
    assert t.daemon is False
    # a call that succeeds reaches no hook
    t = interp.call_in_thread(pow, 2, 3)
    t.join()
    assert len(calls) == 1


# ---------------------------------------------------------------------------
# interpreters left open at exit

EXIT_WARNING = ("<sys>:0: RuntimeWarning: remaining subinterpreters; "
                "close them with Interpreter.close()\n")

EXIT_BODY = {
    "open": "a = mod.create()\na.exec('x = 1')\nprint('made')\n",
    "two open": "a = mod.create()\nb = mod.create()\nprint('made')\n",
    "closed": "a = mod.create()\na.close()\nprint('made')\n",
    "dropped": "import gc\na = mod.create()\ndel a\n_ = gc.collect()\n"
               "print('made')\n",
    "sys.exit": "import sys\na = mod.create()\nprint('made')\nsys.exit(2)\n",
    "uncaught": "a = mod.create()\nprint('made')\n"
                "a.exec('raise ValueError(1)')\n",
    "thread": "a = mod.create()\nt = a.call_in_thread(exec, "
              "'import time; time.sleep(0.2)')\nprint('made')\n",
}


def exit_run(modname, body, how, tmp_path, flags=()):
    code = f"import {modname} as mod\n" + body
    if how == "script":
        path = tmp_path / "at_exit.py"
        path.write_text(code)
        return run_python([*flags, str(path)])
    if how == "-c":
        return run_python([*flags, "-c", code])
    if how == "stdin":
        return run_python([*flags, "-"], stdin=code)
    # the interactive interpreter reading piped input
    return run_python([*flags, "-i"], stdin=code)


@pytest.mark.parametrize("how", ["script", "-c", "stdin", "-i"])
@pytest.mark.parametrize("case", list(EXIT_BODY))
def test_interpreters_open_at_exit(mod, tmp_path, how, case):
    """An interpreter still open at exit: the standard library's
    finalization warns, then ends it; subinterp's exit handler does the
    same for the interpreters subinterp.interpreters made (not for one
    closed, or dropped, or made by subinterp.create())."""
    if how == "-i" and case in ("sys.exit", "uncaught"):
        body = EXIT_BODY[case].replace("sys.exit(2)", "raise SystemExit(2)")
    else:
        body = EXIT_BODY[case]
    res = exit_run(mod.__name__, body, how, tmp_path)
    warned = case not in ("closed", "dropped")
    code = {"sys.exit": 2, "uncaught": 1}.get(case, 0)
    if how == "-i" and case == "uncaught":
        code = 0    # the interactive interpreter goes on after it
    assert res.returncode == code, res.stderr
    assert res.stdout.replace(">>> ", "").strip() == "made", res.stdout
    assert res.stderr.endswith(EXIT_WARNING) is warned, res.stderr
    assert res.stderr.count("RuntimeWarning") == int(warned), res.stderr
    if case == "uncaught":
        assert "ValueError: 1" in res.stderr
    if how == "-i" and case != "sys.exit":
        # the prompts and the newline the interactive interpreter writes
        # at the end of its input come before the warning
        before = res.stderr[:len(res.stderr) - len(EXIT_WARNING) * warned]
        assert before.endswith("\n"), res.stderr
    if sys.version_info >= (3, 14):
        other = OURS if stdlib(mod) else STDLIB
        twin = exit_run(other, body, how, tmp_path)
        assert (twin.returncode, twin.stdout) == (res.returncode, res.stdout)
        assert shown(twin.stderr) == shown(res.stderr)


@pytest.mark.parametrize("flag, warned", [
    ("ignore::RuntimeWarning", False),
    ("error::RuntimeWarning", True),
])
def test_warning_at_exit_follows_the_filters(tmp_path, flag, warned):
    """-W filters apply to the warning.  As an error it is reported and
    exit goes on (the interpreters are closed, the exit status is 0); the
    standard library's finalization leaves that error set instead (exit
    status 120 on 3.14), which is not copied."""
    res = exit_run(OURS, EXIT_BODY["open"], "script", tmp_path,
                   flags=("-W", flag))
    assert res.returncode == 0, res.stderr
    assert res.stdout == "made\n"
    if warned:
        assert res.stderr.splitlines()[-1] == EXIT_WARNING[len("<sys>:0: "):-1]
    else:
        assert res.stderr == ""


def test_no_warning_at_exit_for_the_richer_api(tmp_path):
    """subinterp.create() documents that open interpreters are closed at
    exit: no warning for those."""
    res = exit_run("subinterp", EXIT_BODY["open"], "script", tmp_path)
    assert res.returncode == 0, res.stderr
    assert (res.stdout, res.stderr) == ("made\n", "")


# ---------------------------------------------------------------------------
# concurrent.futures.InterpreterPoolExecutor

FUTURES_STDLIB = "concurrent.futures"
FUTURES_OURS = "subinterp.futures"


@pytest.fixture(params=[FUTURES_OURS, FUTURES_STDLIB],
                ids=["subinterp", "stdlib"])
def futmod(request):
    if request.param == FUTURES_STDLIB and sys.version_info < (3, 14):
        pytest.skip("InterpreterPoolExecutor is new in Python 3.14")
    return importlib.import_module(request.param)


EXECUTOR_PROGRAM = os.path.join(HERE, "pep734_executor.py")

EXECUTOR_OUTPUT = """\
49
1024
[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
[1, 4, 3]
[0, 1, 4, 9, 16]
[0, 1, 4, 9, 16, 25, 36]
[0, 1, 4, 9, 16] 0
[0, 1, 4, 9, 16]
[9]
ValueError ('bad 3',) ExecutionFailed
ValueError bad 3 ValueError: bad 3
['ValueError: bad 3', '', 'Uncaught in the interpreter:']
True
map: bad 1
custom: {custom}
('positional', 1)
[('keyword', 2), ('keyword', 3)]
broken result True
broken submit True
b'x' [True, True, True, True]
after shutdown: cannot schedule new futures after shutdown
0 max_workers must be greater than 0
-1 max_workers must be greater than 0
25
done
"""


def test_executor_program(futmod):
    """tests/pep734_executor.py, unchanged, on either executor: submit,
    map (timeout, chunksize, buffersize), wait, as_completed, a task's
    exception and its ExecutionFailed cause, the positional and keyword
    signature with initializer and initargs, a failing initializer,
    shutdown(wait, cancel_futures=True), all with functions and classes of
    the main script."""
    res = run_python([EXECUTOR_PROGRAM, futmod.__name__])
    assert res.returncode == 0, res.stderr
    if futmod.__name__ == FUTURES_STDLIB:
        # An exception class of the main script cannot cross back there
        # (it is made in a "<fake __main__>" module the caller does not
        # have): ExecutionFailed, and a traceback printed.  subinterp
        # imports the main script in the worker under the spawn rule, so
        # the exception arrives as itself.
        custom = "ExecutionFailed"
        assert "exception is not shareable" in res.stderr
        # the failing initializer is logged by concurrent.futures
        assert "Exception in initializer:" in res.stderr
    else:
        custom = "CustomError"
        assert res.stderr == ""
    assert res.stdout == EXECUTOR_OUTPUT.format(custom=custom)


def test_executor_signature(futmod):
    Executor = futmod.InterpreterPoolExecutor
    sig = inspect.signature(Executor)
    assert list(sig.parameters) == [
        "max_workers", "thread_name_prefix", "initializer", "initargs"]
    assert [p.default for p in sig.parameters.values()] == [
        None, "", None, ()]
    with pytest.raises(TypeError):
        Executor(1, mp_context=None)
    for bad in (0, -1, -0.5):
        with pytest.raises(ValueError, match="max_workers must be greater "
                                             "than 0"):
            Executor(bad)
    with pytest.raises(TypeError):
        Executor("2")
    # what ThreadPoolExecutor compares with its thread count
    for n in (True, 1.5, 2):
        with Executor(n) as ex:
            assert ex.submit(pow, 2, 3).result() == 8
    with Executor(1) as ex:
        with pytest.raises(TypeError):
            ex.map(pow, [1], [2], buffersize=1.0)
        with pytest.raises(ValueError):
            ex.map(pow, [1], [2], buffersize=0)
        assert list(ex.map(pow, [1, 2], [2, 2], buffersize=1)) == [1, 4]
        assert ex.submit(pow, 3, 2).result() == 9
    ex.shutdown(wait=True, cancel_futures=False)
    ex.shutdown(False)
    with pytest.raises(RuntimeError):
        ex.submit(pow, 1, 1)
    from concurrent.futures import BrokenExecutor
    from concurrent.futures.thread import BrokenThreadPool
    if futmod.__name__ == FUTURES_STDLIB:
        from concurrent.futures.interpreter import BrokenInterpreterPool
        assert issubclass(BrokenInterpreterPool, BrokenThreadPool)
    else:
        # not a BrokenThreadPool: concurrent.futures.thread cannot be
        # imported once exit began, and subinterp's pool module may be
        # (compatibility.md)
        from subinterp.futures import BrokenInterpreterPool
        assert not issubclass(BrokenInterpreterPool, BrokenThreadPool)
    assert issubclass(BrokenInterpreterPool, BrokenExecutor)


def test_executor_task_exception_cause(futmod):
    with futmod.InterpreterPoolExecutor(1) as ex:
        exc = ex.submit(int, "x").exception()
    assert type(exc) is ValueError
    cause = exc.__cause__
    excinfo_mod = STDLIB if futmod.__name__ == FUTURES_STDLIB else OURS
    assert isinstance(cause, importlib.import_module(excinfo_mod)
                      .ExecutionFailed)
    assert cause.excinfo.formatted == (
        "ValueError: invalid literal for int() with base 10: 'x'")
    assert str(cause).startswith(cause.excinfo.formatted
                                 + "\n\nUncaught in the interpreter:\n\n")


def test_executor_refuses_at_submit(futmod):
    """What cannot cross is refused by submit() in subinterp (the call
    site), by the Future in the standard library (when a worker takes
    the task); the exception is NotShareableError in both."""
    nshare = importlib.import_module(
        STDLIB if futmod.__name__ == FUTURES_STDLIB else OURS
    ).NotShareableError
    with futmod.InterpreterPoolExecutor(1) as ex:
        if futmod.__name__ == FUTURES_STDLIB:
            fut = ex.submit(id, threading.Lock())
            with pytest.raises(nshare):
                fut.result()
        else:
            with pytest.raises(nshare):
                ex.submit(id, threading.Lock())
        assert ex.submit(pow, 2, 2).result() == 4


# ---------------------------------------------------------------------------
# queues of one module handed to the other (3.14+)


@needs_stdlib
def test_our_queue_through_the_stdlib_call(std_interp):
    """The standard library's call() pickles what it cannot share: a
    subinterp.interpreters.Queue arrives as Queue(id), the same queue,
    and comes back as the object that was sent."""
    from subinterp import interpreters as ours

    q = ours.create_queue()
    std_interp.call(q.put, "from the stdlib's interpreter")
    assert q.get(timeout=30) == "from the stdlib's interpreter"
    back = std_interp.call(tuple, [q])
    assert back[0] is q
    assert std_interp.call(repr, q) == repr(q)


@needs_stdlib
def test_our_queue_through_the_stdlib_prepare_main(std_interp):
    """prepare_main() of the standard library takes only what its own
    registry of shareable types knows (no pickle), and the public C API
    offers no way into that registry: it refuses the queue, and the
    queue's id is the way (PEP 734's own pattern)."""
    std = importlib.import_module(STDLIB)
    from subinterp import interpreters as ours

    q = ours.create_queue()
    with pytest.raises(std.NotShareableError):
        std_interp.prepare_main(q=q)
    std_interp.prepare_main(qid=q.id)
    std_interp.exec(
        "from subinterp.interpreters import Queue\n"
        "Queue(qid).put(('same queue', Queue(qid).id))\n"
    )
    assert q.get(timeout=30) == ("same queue", q.id)


@needs_stdlib
def test_stdlib_queue_handed_to_subinterp():
    std = importlib.import_module(STDLIB)
    from subinterp import interpreters as ours

    sq = std.create_queue()
    it = ours.create()
    try:
        it.prepare_main(q=sq)
        it.exec("q.put('through prepare_main')")
        assert sq.get(timeout=30) == "through prepare_main"
        assert it.call(repr, sq) == repr(sq)
        it.call(sq.put, "through call")
        assert sq.get(timeout=30) == "through call"
    finally:
        it.close()


@needs_stdlib
def test_stdlib_queue_put_on_our_queue_outlives_the_sender():
    """A queue of the standard library put on a subinterp queue is still
    there when the item is taken after the sender dropped it, as with the
    standard library's own queues (it lived only by its Queue objects:
    get() raised QueueNotFoundError)."""
    std = importlib.import_module(STDLIB)
    from subinterp import interpreters as ours

    carrier = ours.create_queue()
    carrier.put(std.create_queue())
    gc.collect()
    got = carrier.get(timeout=30)
    got.put(1)
    assert got.get(timeout=30) == 1
    # through another interpreter, which drops its own object at once
    it = ours.create()
    try:
        it.prepare_main(cid=carrier.id)
        it.exec(
            "from concurrent.interpreters import create_queue\n"
            "from subinterp.interpreters import Queue\n"
            "Queue(cid).put(create_queue())\n"
            "import gc; gc.collect()\n"
        )
        got = carrier.get(timeout=30)
        got.put(2)
        assert got.get(timeout=30) == 2
    finally:
        it.close()
