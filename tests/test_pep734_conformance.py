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
import os
import pickle
import queue
import subprocess
import sys
import threading

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
    if stdlib(mod):
        assert repr(interp) == f"Interpreter({interp.id})"
    else:
        # a known gap (compatibility.md)
        assert repr(interp) == f"<subinterp.Interpreter {interp.id} idle>"


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
    assert "in f" in exc.excinfo.errdisplay
    assert exc.excinfo.errdisplay.rstrip().endswith("ValueError: boom")
    assert exc.excinfo.formatted.rstrip().endswith("ValueError: boom")
    if stdlib(mod):
        assert exc.excinfo.formatted == "ValueError: boom"
    else:
        # the whole traceback, like errdisplay (compatibility.md)
        assert exc.excinfo.formatted == exc.excinfo.errdisplay
    assert str(exc).splitlines()[0] == "ValueError: boom"
    if stdlib(mod):
        assert "Uncaught in the interpreter" in str(exc)
    else:
        assert str(exc) == "ValueError: boom"  # compatibility.md
    # the interpreter is still usable
    interp.exec("z = 1")


def test_exec_bad_input(mod, interp):
    with pytest.raises(TypeError):
        interp.exec(5)


def test_exec_syntax_error(mod, interp):
    if stdlib(mod):
        with pytest.raises(SyntaxError):
            interp.exec("x = (")
    else:
        # compiled in the target interpreter (compatibility.md)
        with pytest.raises(mod.ExecutionFailed) as info:
            interp.exec("x = (")
        assert info.value.excinfo.type.__name__ == "SyntaxError"


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
    if stdlib(mod):
        exc = NotImplementedError
    else:
        exc = ValueError  # compatibility.md
    with pytest.raises(exc):
        mod.create_queue(unbounditems=5)
    with pytest.raises(exc):
        mod.create_queue().put(1, unbounditems=5)


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
