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


@pytest.mark.skipif(sys.version_info < (3, 14),
                    reason="concurrent.interpreters is new in Python 3.14")
def test_interpreters_made_by_the_stdlib_are_unknown():
    """A known gap (compatibility.md): subinterp finds only the
    interpreters it knows."""
    from concurrent import interpreters as std

    from subinterp import interpreters as ours

    it = std.create()
    try:
        with pytest.raises(ours.InterpreterNotFoundError):
            ours.Interpreter(it.id)
        assert it.id not in [i.id for i in ours.list_all()]
    finally:
        it.close()


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
