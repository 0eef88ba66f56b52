"""subinterp.Pool: a concurrent.futures executor on warm interpreters."""

import asyncio
import concurrent.futures as cf
import gc
import itertools
import mmap
import os
import signal
import sys
import threading
import time
import warnings

import pytest
from script_helpers import by_value_off  # noqa: F401 (fixture)
from script_helpers import run_script

import subinterp
from subinterp import BrokenInterpreterPool, NotShareableError, Pool
from subinterp.futures import InterpreterPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# task functions (resolved by reference in the workers)

_initialized = []


def interp_id():
    return subinterp.get_current().id


def add(a, b=0):
    return a + b


def fail(kind, text="boom"):
    raise {"value": ValueError, "key": KeyError, "exit": SystemExit,
           "kbd": KeyboardInterrupt}[kind](text)


class Unpicklable(Exception):
    def __init__(self, lock):
        super().__init__("has a lock")
        self.lock = lock

    def __reduce__(self):
        raise TypeError("no")


def fail_unpicklable():
    raise Unpicklable(threading.Lock())


class TwoArgs(Exception):
    """Its __init__ does not take its own args (("1-2",)) back."""

    def __init__(self, a, b):
        super().__init__(f"{a}-{b}")


class ReduceFails(Exception):
    def __reduce__(self):
        raise RuntimeError("reduce says no")


class StrFails(Exception):
    def __str__(self):
        raise RuntimeError("str says no")


def fail_with(kind):
    if kind == "init":
        raise TwoArgs(1, 2)
    if kind == "reduce":
        raise ReduceFails("cannot reduce")
    raise StrFails("cannot str")


def init_worker(value):
    _initialized.append(value)


def initialized():
    return list(_initialized)


def init_fails():
    raise RuntimeError("initializer says no")


def sleep_return(seconds, value=None):
    time.sleep(seconds)
    return value


def touch_then_sleep(path, seconds, value):
    open(path, "w").close()
    time.sleep(seconds)
    return value


def wait_for_file(path, timeout=60.0):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


def spin_pingpong(path, me, rounds, deadline):
    """Take turns with another worker through a shared file mapping,
    spinning in pure Python with a 100 s switch interval: finishes only if
    the two workers run at the same time."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        with open(path, "r+b") as f:
            m = mmap.mmap(f.fileno(), 8)
            try:
                end = time.monotonic() + deadline
                for i in range(rounds):
                    v = (i % 250) + 1
                    if me == 0:
                        m[0] = v
                        while m[1] != v:
                            if time.monotonic() > end:
                                return False
                    else:
                        while m[0] != v:
                            if time.monotonic() > end:
                                return False
                        m[1] = v
                return True
            finally:
                m.close()
    finally:
        sys.setswitchinterval(old)


def nested_pools(n):
    """Inside a pool worker (or any interpreter): a Pool used and shut
    down, the default pool, and a Pool left alive, which the
    interpreter's close must shut down and join."""
    with Pool(2) as p:
        total = sum(p.map(add, range(n), chunksize=1))
    left = Pool(1)
    left.submit(sleep_return, 0.05)
    return total + sum(subinterp.map(add, range(n)))


def queue_get(q):
    return q.get()


def wait_result_and_get(release, q, ready):
    """In an interpreter: a thread waits in Future.result() of a task that
    blocks until `release` gets an item, and this one in q.get(); returns
    how each wait ended."""
    pool = Pool(1)
    fut = pool.submit(queue_get, release)
    outcome = {}

    def wait_result():
        try:
            fut.result()
            outcome["result"] = "returned"
        except SystemExit:
            outcome["result"] = "SystemExit"

    t = threading.Thread(target=wait_result)
    t.start()
    ready.put("ready")
    try:
        q.get()
        outcome["get"] = "returned"
    except SystemExit:
        outcome["get"] = "SystemExit"
    t.join()
    return outcome


def close_own_interpreter():
    subinterp.get_current().close()


# ---------------------------------------------------------------------------


@pytest.fixture
def pool():
    p = Pool(2)
    yield p
    p.shutdown(wait=True, cancel_futures=True)


def test_submit_returns_real_future(pool):
    fut = pool.submit(add, 1, b=2)
    assert isinstance(fut, cf.Future)
    assert fut.result(timeout=30) == 3
    assert fut.done() and not fut.cancelled()


def test_workers_are_interpreters(pool):
    ids = {pool.submit(interp_id).result() for _ in range(50)}
    assert 0 not in ids
    assert 1 <= len(ids) <= 2


def test_two_workers_run_in_parallel(pool, tmp_path):
    path = tmp_path / "shared"
    path.write_bytes(b"\0" * 8)
    a = pool.submit(spin_pingpong, str(path), 0, 200, 60.0)
    b = pool.submit(spin_pingpong, str(path), 1, 200, 60.0)
    assert a.result() is True
    assert b.result() is True


def test_exceptions_keep_their_type_and_remote_traceback(pool):
    with pytest.raises(ValueError, match="boom") as info:
        pool.submit(fail, "value").result()
    cause = info.value.__cause__
    assert isinstance(cause, subinterp.RemoteTraceback)
    assert "Traceback" in str(cause) and "in fail" in str(cause)
    with pytest.raises(KeyError):
        pool.submit(fail, "key").result()
    assert isinstance(pool.submit(fail, "key").exception(), KeyError)


def test_unpicklable_exception_becomes_execution_failed(pool):
    with pytest.raises(subinterp.ExecutionFailed) as info:
        pool.submit(fail_unpicklable).result()
    assert info.value.excinfo.type.__name__ == "Unpicklable"
    assert "has a lock" in str(info.value)


@pytest.mark.parametrize("kind,name,text,note", [
    ("init", "TwoArgs", "1-2", "could not be rebuilt in this interpreter "
     "(TypeError: TwoArgs.__init__() missing 1 required positional "
     "argument: 'b')"),
    ("reduce", "ReduceFails", "cannot reduce",
     "could not be sent from the other interpreter (NotShareableError: "),
])
def test_exception_that_cannot_be_rebuilt_keeps_name_text_traceback(
        pool, kind, name, text, note):
    # Rebuilding TwoArgs("1-2") called TwoArgs.__init__ with one argument:
    # the caller got that TypeError, with no trace of the original.
    with pytest.raises(subinterp.ExecutionFailed) as info:
        pool.submit(fail_with, kind).result()
    exc = info.value
    assert exc.excinfo.type.__name__ == name
    assert exc.excinfo.type.__module__ == __name__
    assert exc.excinfo.msg == text
    assert exc.excinfo.formatted == f"{__name__}.{name}: {text}"
    # the traceback is in the ExecutionFailed's own text (no separate
    # RemoteTraceback cause that would show it twice)
    assert str(exc).startswith(f"{__name__}.{name}: {text}\n\nUncaught in "
                               "the interpreter:\n\nTraceback")
    assert "in fail_with" in str(exc)
    assert exc.__cause__ is None
    assert any(note in n for n in exc.__notes__), exc.__notes__
    if kind == "reduce":
        assert "reduce says no" in exc.__notes__[0]


def test_exception_whose_str_fails_crosses_as_itself(pool):
    with pytest.raises(StrFails) as info:
        pool.submit(fail_with, "str").result()
    cause = info.value.__cause__
    assert isinstance(cause, subinterp.RemoteTraceback)
    assert "in fail_with" in str(cause)
    assert "<exception str() failed>" in str(cause)


@pytest.mark.parametrize("kind,name,text", [
    ("init", "TwoArgs", "1-2"),
    ("reduce", "ReduceFails", "cannot reduce"),
    ("str", "StrFails", "<exception str() failed>"),
])
def test_call_exception_that_cannot_be_rebuilt(kind, name, text):
    with subinterp.create() as interp:
        with pytest.raises(subinterp.ExecutionFailed) as info:
            interp.call(fail_with, kind)
    excinfo = info.value.excinfo
    assert (excinfo.type.__name__, excinfo.msg) == (name, text)
    assert "in fail_with" in excinfo.errdisplay


def test_system_exit_and_keyboard_interrupt_fail_only_the_task(pool):
    with pytest.raises(SystemExit):
        pool.submit(fail, "exit").result()
    with pytest.raises(KeyboardInterrupt):
        pool.submit(fail, "kbd").result()
    assert pool.stats()["alive"] == 2
    assert pool.submit(add, 2, 2).result() == 4


def test_task_cannot_close_its_interpreter(pool):
    with pytest.raises(subinterp.InterpreterError):
        pool.submit(close_own_interpreter).result()
    assert pool.submit(add, 1).result() == 1


def test_unshareable_raises_from_submit(pool, by_value_off):
    y = 1
    with pytest.raises(NotShareableError):
        pool.submit(lambda: y)
    with pytest.raises(NotShareableError):
        pool.submit(add, threading.Lock())
    with pytest.raises(TypeError):
        pool.submit(42)
    assert pool.stats()["outstanding"] == 0


def test_result_that_cannot_cross(pool):
    with pytest.raises(NotShareableError):
        pool.submit(threading.Lock).result()


def test_map_in_order(pool):
    assert list(pool.map(add, range(10))) == list(range(10))
    assert list(pool.map(add, range(5), range(10, 20))) == [10, 12, 14, 16, 18]
    for chunksize in (1, 3, 1000):
        assert list(pool.map(add, range(100), chunksize=chunksize)) == list(
            range(100)
        )
    assert list(pool.map(add, [])) == []
    with pytest.raises(ValueError):
        pool.map(add, range(3), chunksize=0)


def test_map_consumes_input_lazily(pool):
    consumed = itertools.count()

    def gen():
        for i in range(10**9):
            next(consumed)
            yield i

    it = pool.map(add, gen(), chunksize=10)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert next(consumed) < 200


def test_map_exception_and_timeout(pool):
    it = pool.map(fail, ["value"])
    with pytest.raises(ValueError):
        next(it)
    it = pool.map(sleep_return, [5.0], timeout=0.05)
    with pytest.raises(cf.TimeoutError):
        next(it)


def test_callbacks_wait_and_as_completed(pool):
    got = []
    done = threading.Event()
    fut = pool.submit(add, 40, 2)
    fut.add_done_callback(lambda f: (got.append(f.result()), done.set()))
    assert done.wait(30)
    assert got == [42]
    futs = [pool.submit(add, i) for i in range(200)]
    assert sorted(f.result() for f in cf.as_completed(futs, timeout=60)) == list(
        range(200)
    )
    futs = [pool.submit(add, i) for i in range(20)]
    done_set, not_done = cf.wait(futs, timeout=60)
    assert len(done_set) == 20 and not not_done


def test_asyncio_run_in_executor(pool):
    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(
            *(loop.run_in_executor(pool, add, i, 1) for i in range(10))
        )

    assert asyncio.run(main()) == list(range(1, 11))


def test_result_timeout(pool):
    fut = pool.submit(sleep_return, 0.3, "late")
    with pytest.raises(cf.TimeoutError):
        fut.result(timeout=0.01)
    assert fut.result(timeout=30) == "late"


@pytest.mark.parametrize("timeout", [0, 1e-9, -1])
def test_timeout_already_past_is_a_timeout_error(pool, timeout):
    """As concurrent.futures: a result() timeout that is zero or already
    past (map()'s deadline, negative by the time a later result is
    waited for) raises TimeoutError, not ValueError."""
    fut = pool.submit(sleep_return, 0.3, "late")
    with pytest.raises(cf.TimeoutError):
        fut.result(timeout=timeout)
    with pytest.raises(cf.TimeoutError):
        list(pool.map(sleep_return, [0.05] * 10, timeout=timeout))
    assert fut.result(timeout=30) == "late"



@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_done_callback_raising_base_exception_leaves_no_future_pending(
        caplog, exc):
    with Pool(2) as pool:
        pool.submit(add, 0).result()
        # both workers busy while the callbacks are added to queued tasks
        busy = [pool.submit(sleep_return, 0.5) for _ in range(2)]
        futs = [pool.submit(add, i) for i in range(500)]

        def cb(f):
            if threading.current_thread() is not threading.main_thread():
                raise exc("from a done-callback")

        for f in futs[::50]:
            f.add_done_callback(cb)
        assert not any(f.done() for f in futs[::50])
        done, not_done = cf.wait(futs + busy, timeout=60)
        assert not not_done
        assert [f.result() for f in futs] == list(range(500))
        user_set = pool.submit(sleep_return, 0.2, "late")
        user_set.set_result("early")      # the user completes it first
        assert pool.submit(add, 7).result(timeout=60) == 7
    assert "from a done-callback" in caplog.text


def test_map_huge_chunksize(pool):
    assert list(pool.map(add, range(5), chunksize=10**20)) == list(range(5))


def test_cancel_queued_task():
    with Pool(1) as pool:
        flag = os.path.join(HERE, f".flag-{os.getpid()}")
        try:
            blocker = pool.submit(wait_for_file, flag)
            queued = pool.submit(add, 1)
            assert queued.cancel()
            assert queued.cancelled()
            with pytest.raises(cf.CancelledError):
                queued.result()
            open(flag, "w").close()
            assert blocker.result(timeout=60) is True
            assert not blocker.cancel()
        finally:
            if os.path.exists(flag):
                os.remove(flag)


# Cancelled Futures and concurrent.futures' waiters: each scenario runs on
# a ThreadPoolExecutor and on a Pool, and must give the same outcome.


def _executors():
    return [cf.ThreadPoolExecutor(1), Pool(1)]


def _start_one_task(ex, path, value, seconds=0.3):
    """Submit a task that is surely running (not queued) when this
    returns, so that the next submissions stay queued."""
    fut = ex.submit(touch_then_sleep, path, seconds, value)
    assert wait_for_file(path)
    return fut


def test_wait_returns_with_cancelled_future(tmp_path):
    outcomes = []
    for i, ex in enumerate(_executors()):
        with ex:
            a = _start_one_task(ex, str(tmp_path / f"a{i}"), "a")
            b = ex.submit(add, 1)
            cancelled = b.cancel()
            done, not_done = cf.wait([a, b], timeout=30)
            outcomes.append((cancelled, done == {a, b}, not_done,
                             a.result(), b.cancelled()))
    assert outcomes[0] == (True, True, set(), "a", True)
    assert outcomes[1] == outcomes[0]


def test_wait_first_completed_with_cancelled_future(tmp_path):
    outcomes = []
    for i, ex in enumerate(_executors()):
        with ex:
            a = _start_one_task(ex, str(tmp_path / f"a{i}"), "a")
            b = ex.submit(add, 1)
            c = ex.submit(add, 2)
            assert b.cancel()
            done, not_done = cf.wait([b, c], timeout=30,
                                     return_when=cf.FIRST_COMPLETED)
            outcomes.append((b in done, a.result(timeout=30),
                             c.result(timeout=30)))
    assert outcomes[0] == (True, "a", 2)
    assert outcomes[1] == outcomes[0]


def test_as_completed_yields_cancelled_future(tmp_path):
    outcomes = []
    for i, ex in enumerate(_executors()):
        with ex:
            a = _start_one_task(ex, str(tmp_path / f"a{i}"), "a")
            b = ex.submit(add, 1)
            c = ex.submit(add, 2)
            assert c.cancel()
            try:
                got = list(cf.as_completed([a, b, c], timeout=30))
            except cf.TimeoutError:
                got = []
            outcomes.append((len(got), set(got) == {a, b, c},
                             [f.cancelled() for f in (a, b, c)]))
    assert outcomes[0] == (3, True, [False, False, True])
    assert outcomes[1] == outcomes[0]


def test_map_with_cancelled_futures(tmp_path):
    # shutdown(cancel_futures=True) while map() is consumed: the running
    # call's result comes, then CancelledError.  Closing a map early
    # cancels the rest, and shutdown(wait=True) still returns.
    outcomes = []
    for i, ex in enumerate(_executors()):
        paths = [str(tmp_path / f"m{i}-{k}") for k in range(4)]
        it = ex.map(touch_then_sleep, paths, [0.3] * 4, range(4))
        assert wait_for_file(paths[0])
        ex.shutdown(wait=False, cancel_futures=True)
        got = []
        try:
            got.extend(it)
        except cf.CancelledError:
            got.append("cancelled")
        ex.shutdown(wait=True)
        outcomes.append(got)
    assert outcomes[0] == [0, "cancelled"]
    assert outcomes[1] == outcomes[0]
    outcomes = []
    for ex in _executors():
        with ex:
            it = ex.map(sleep_return, [0.2] * 4, range(4))
            first = next(it)
            it.close()  # cancels the calls not yet running
            late = ex.submit(add, 5)
            done, not_done = cf.wait([late], timeout=30)
            outcomes.append((first, not_done, late.result()))
    assert outcomes[0] == (0, set(), 5)
    assert outcomes[1] == outcomes[0]


def test_wait_after_shutdown_cancel_futures(tmp_path):
    # ThreadPoolExecutor cancels the queued Futures without notifying
    # them, so wait() would not return for them there; a Pool's are done
    # for wait() and as_completed() like any other cancelled Future.
    # What is cancelled and what runs is the same on both.
    outcomes = []
    for i, ex in enumerate(_executors()):
        first = _start_one_task(ex, str(tmp_path / f"s{i}"), "first")
        rest = [ex.submit(add, k) for k in range(5)]
        ex.shutdown(wait=True, cancel_futures=True)
        outcomes.append((first.result(), [f.cancelled() for f in rest]))
        if i == 1:
            done, not_done = cf.wait([first] + rest, timeout=30)
            assert not not_done
            assert len(list(cf.as_completed(rest, timeout=30))) == 5
    assert outcomes[0] == ("first", [True] * 5)
    assert outcomes[1] == outcomes[0]


def test_shutdown(pool):
    futs = [pool.submit(sleep_return, 0.01, i) for i in range(10)]
    pool.shutdown(wait=True)
    assert [f.result() for f in futs] == list(range(10))
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(add, 1)
    assert pool.stats()["alive"] == 0
    pool.shutdown()  # again: nothing


def test_shutdown_cancel_futures(tmp_path):
    pool = Pool(1)
    started = str(tmp_path / "started")
    first = pool.submit(touch_then_sleep, started, 0.2, "first")
    assert wait_for_file(started)
    rest = [pool.submit(add, i) for i in range(20)]
    pool.shutdown(wait=True, cancel_futures=True)
    assert first.result() == "first"
    assert any(f.cancelled() for f in rest)
    for f in rest:
        assert f.done()
        if f.cancelled():
            with pytest.raises(cf.CancelledError):
                f.result()


def test_shutdown_cancel_futures_before_workers_start():
    pool = Pool(1)
    futs = [pool.submit(add, i) for i in range(20)]
    pool.shutdown(wait=True, cancel_futures=True)
    for i, f in enumerate(futs):
        assert f.cancelled() or f.result() == i


def test_initializer_runs_in_each_worker():
    with Pool(2, initializer=init_worker, initargs=(7,)) as pool:
        for f in [pool.submit(initialized) for _ in range(20)]:
            assert f.result() == [7]


def test_failing_initializer_breaks_pool():
    pool = Pool(2, initializer=init_fails)
    try:
        fut = pool.submit(add, 1)
        with pytest.raises(BrokenInterpreterPool, match="initializer"):
            fut.result(timeout=60)
        assert issubclass(BrokenInterpreterPool, cf.BrokenExecutor)
        deadline = time.monotonic() + 60
        while pool.stats()["broken"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(BrokenInterpreterPool):
            pool.submit(add, 1)
    finally:
        pool.shutdown()


def test_max_tasks_per_worker_replaces_interpreter():
    with Pool(1, max_tasks_per_worker=2) as pool:
        ids = [pool.submit(interp_id).result() for _ in range(6)]
    assert len(set(ids)) == 3
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5]


def test_workers_see_caller_sys_path(tmp_path):
    (tmp_path / "pool_probe_mod.py").write_text("def f():\n    return 'ok'\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import pool_probe_mod

        with Pool(1) as pool:
            assert pool.submit(pool_probe_mod.f).result() == "ok"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pool_probe_mod", None)


def test_bad_arguments():
    with pytest.raises(ValueError):
        Pool(0)
    with pytest.raises(TypeError):
        Pool("2")
    with pytest.raises(TypeError):
        Pool(1, initializer=42)
    with pytest.raises(ValueError):
        Pool(1, max_tasks_per_worker=0)
    with pytest.raises(ValueError):
        Pool(1, config="nonsense")


def test_default_pool_and_module_functions():
    assert subinterp.submit(add, 1, 2).result() == 3
    assert list(subinterp.map(add, range(5))) == list(range(5))
    assert subinterp.default_pool() is subinterp.default_pool()


def test_interpreter_pool_executor_signature():
    with InterpreterPoolExecutor(2, "named-", init_worker, (3,)) as ex:
        assert ex.submit(initialized).result() == [3]
        assert isinstance(ex, cf.Executor)


def test_no_leaks_on_success_and_error_paths(pool):
    def cycle(n):
        for _ in range(n):
            pool.submit(add, "x" * 50, "y").result()
            try:
                pool.submit(fail, "value").result()
            except ValueError:
                pass
        list(pool.map(add, range(100)))

    # A leak grows in every round; a cache or a lazy import only once.
    growth = []
    cycle(200)
    for _ in range(4):
        gc.collect()
        blocks = sys.getallocatedblocks()
        cycle(300)
        gc.collect()
        growth.append(sys.getallocatedblocks() - blocks)
    assert min(growth) < 300, growth


# --- signals, exit, fork ------------------------------------------------------


def test_ctrl_c_interrupts_result_promptly(pool):
    fut = pool.submit(sleep_return, 3.0, "done")
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fut.result()
    elapsed = time.monotonic() - t0
    timer.join()
    assert elapsed < 2.0, elapsed  # the task itself takes 3 s
    # the Future still completes (through the collector)
    assert fut.result(timeout=30) == "done"


def test_stopping_an_interpreter_wakes_result_like_get():
    # What exit and close() do to an interpreter that runs code in another
    # thread (wait_interrupt_interp): every wait of ours there ends with
    # SystemExit, Future.result() of a pool made there like Queue.get().
    release, q, ready = (subinterp.create_queue() for _ in range(3))
    it = subinterp.create()
    try:
        t = it.call_in_thread(wait_result_and_get, release, q, ready)
        assert ready.get(timeout=30) == "ready"
        time.sleep(0.2)  # both parked by now (or they stop at once later)
        subinterp._core._interrupt_waits(it.id)
        assert t.result(timeout=30) == {"result": "SystemExit",
                                        "get": "SystemExit"}
    finally:
        release.put(None)  # the task ends; close() joins the pool
        it.close()
    assert q.empty()


def test_pools_inside_interpreters_and_pool_workers():
    expected = 2 * sum(range(10))
    it = subinterp.create()
    try:
        assert it.call(nested_pools, 10) == expected
    finally:
        it.close()  # shuts down and joins the Pool left alive there
    with Pool(2) as pool:
        assert pool.submit(nested_pools, 10).result(timeout=60) == expected
        assert list(pool.map(nested_pools, [3, 4])) == [6, 12]


def test_exit_with_pools_alive_inside_interpreters():
    res = run_script(
        """
        import subinterp, test_pool
        it = subinterp.create()
        it.exec("import subinterp, test_pool; "
                "p = subinterp.Pool(2); "
                "futs = [p.submit(test_pool.sleep_return, 0.05, i) "
                "for i in range(4)]")
        pool = subinterp.Pool(1)
        fut = pool.submit(test_pool.nested_pools, 5)
        print(fut.result(timeout=60))
        print("bye")
        """,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "20\nbye\n"
    assert res.stderr == ""


def test_exit_with_queued_and_running_tasks():
    res = run_script(
        """
        import subinterp, test_pool
        pool = subinterp.Pool(2)
        futs = [pool.submit(test_pool.sleep_return, 0.05, i) for i in range(8)]
        futs[0].add_done_callback(lambda f: print("first", f.result()))
        print("bye")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "bye" in res.stdout and "first 0" in res.stdout
    assert res.stderr == ""


def test_pool_dropped_without_shutdown():
    # The Pool object is collected with tasks queued: they still finish,
    # the workers go, and nothing is stopped by force at exit.
    res = run_script(
        """
        import gc, subinterp, test_pool

        def start():
            pool = subinterp.Pool(2)
            return [pool.submit(test_pool.sleep_return, 0.02, i)
                    for i in range(6)]

        futs = start()
        gc.collect()
        print([f.result(timeout=30) for f in futs])
        other = subinterp.create()
        late = start()
        gc.collect()
        print("bye")
        """
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "[0, 1, 2, 3, 4, 5]\nbye\n"
    assert res.stderr == ""


def test_exit_with_default_pool_in_use():
    res = run_script(
        """
        import subinterp, test_pool
        print(sum(subinterp.map(test_pool.add, range(1000))))
        subinterp.submit(test_pool.sleep_return, 0.1)
        """
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "499500\n"


FORK_SCRIPT = """
import os, sys, time, warnings
import multiprocessing, concurrent.futures as cf
import subinterp, test_pool
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads

pool = subinterp.Pool(1, initializer=test_pool.init_worker, initargs=(7,))
assert pool.submit(test_pool.initialized).result() == [7]
assert sum(subinterp.map(test_pool.add, range(10))) == 45
running = pool.submit(test_pool.sleep_return, 0.3, "ran")
queued = pool.submit(test_pool.add, 40, 2)
time.sleep(0.1)             # the first task is running
pid = os.fork()             # waits for it, then forks
if pid == 0:
    code = 1
    try:
        assert running.result(timeout=5) == "ran"
        try:
            queued.result(timeout=5)
        except subinterp.BrokenInterpreterPool as exc:
            assert "forked" in str(exc), exc
        else:
            raise AssertionError("the parent's queued task ran in the child")
        try:
            pool.submit(test_pool.add, 1)
        except subinterp.BrokenInterpreterPool:
            pass
        else:
            raise AssertionError("the parent's pool took a task")
        pool.shutdown()
        with subinterp.Pool(2) as fresh:
            assert fresh.submit(test_pool.add, 2, 3).result() == 5
        assert sum(subinterp.map(test_pool.add, range(100))) == 4950
        it = subinterp.create()
        assert it.call(test_pool.add, 1, 1) == 2
        code = 0
    finally:
        sys.stdout.flush()
        if code:
            os._exit(code)
    sys.exit(0)             # a normal exit, with pools to shut down
print("running", running.result(timeout=30), "queued", queued.result(timeout=30))
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
# the parent's pools go on, with their initializer run again
assert pool.submit(test_pool.initialized).result() == [7]
assert sum(subinterp.map(test_pool.add, range(10))) == 45
# multiprocessing's fork start method, with pools alive
ctx = multiprocessing.get_context("fork")
with cf.ProcessPoolExecutor(2, mp_context=ctx) as procs:
    print("procs", sum(procs.map(test_pool.add, range(10))))
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print("stats", pool.stats()["alive"], pool.stats()["pausing"])
pool.shutdown()
print("bye")
"""


def test_fork_with_live_pools():
    res = run_script(FORK_SCRIPT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == (
        "running ran queued 42\nchild 0\nprocs 45\nstats 1 0\nbye\n"
    ), res.stderr
    assert res.stderr == ""


FORK_DONE_LIST_SCRIPT = """
import gc, os, sys, threading, time, warnings
import subinterp, test_pool
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads

pool = subinterp.Pool(1)
running = pool.submit(test_pool.sleep_return, 0.3, "ran")
queued = [pool.submit(test_pool.add, i, 1) for i in range(4)]
# a thread of the parent waits in result() for the last one
waiter = threading.Thread(target=queued[-1].result)
waiter.start()
time.sleep(0.1)             # the first task is running
pid = os.fork()             # waits for it, then forks
if pid == 0:
    code = 1
    try:
        # The parent's queued tasks wait failed on the done list (with
        # nobody waiting on them: the parent's waiting thread is not
        # here); each is finalized and its Future dropped while the others
        # are still listed, and the pool (whose checks walk the list) goes
        # on.
        while queued:
            fut = queued.pop(0)
            assert isinstance(fut.exception(timeout=5),
                              subinterp.BrokenInterpreterPool)
            del fut
            gc.collect()
            assert pool._core.stats()["broken"] == 1
        code = 0
    finally:
        sys.stdout.flush()
        os._exit(code)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
print([f.result(timeout=30) for f in queued])
waiter.join()
pool.shutdown()
"""


def test_forked_child_finalizes_listed_tasks_one_by_one():
    # In a forked child the parent's queued tasks are moved to the done
    # list; the list holds a reference to each, as it does for the tasks
    # the workers hand on, so a task finalized and dropped there is not
    # freed while still listed (a use after free under ASan otherwise).
    res = run_script(FORK_DONE_LIST_SCRIPT)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "child 0\n[1, 2, 3, 4]\n", res.stderr


def test_fork_from_two_threads_at_once():
    # Each fork pauses every pool; the workers go on once both are through.
    res = run_script(
        """
        import os, threading, warnings, subinterp, test_pool
        warnings.simplefilter("ignore", DeprecationWarning)
        pool = subinterp.Pool(2)
        assert pool.submit(test_pool.add, 1).result() == 1
        running = pool.submit(test_pool.sleep_return, 0.2, "ran")
        barrier = threading.Barrier(2)
        codes = []

        def fork():
            barrier.wait()
            pid = os.fork()
            if pid == 0:
                with subinterp.Pool(1) as p:
                    os._exit(0 if p.submit(test_pool.add, 2).result() == 2
                             else 1)
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

        threads = [threading.Thread(target=fork) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(codes, running.result(timeout=30),
              pool.submit(test_pool.add, 3).result(timeout=30),
              pool.stats()["pausing"])
        pool.shutdown()
        """
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "[0, 0] ran 3 0\n", res.stderr
    assert res.stderr == ""


def test_ctrl_c_while_fork_waits_for_a_task():
    # os.fork() waits for the running task; Ctrl-C stops the wait
    # promptly: the fork goes ahead (a hook cannot stop it), its child
    # exits at once, and the parent gets the KeyboardInterrupt.
    res = run_script(
        """
        import os, signal, threading, time, warnings, subinterp, test_pool
        warnings.simplefilter("ignore", DeprecationWarning)
        pool = subinterp.Pool(1)
        busy = pool.submit(test_pool.sleep_return, 3, "done")
        time.sleep(0.3)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                pid = os.fork()
            if pid == 0:
                os._exit(0)     # never reached
            time.sleep(10)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0 < 2)
        print("child", os.waitstatus_to_exitcode(os.wait()[1]))
        print(busy.result(timeout=30), pool.submit(test_pool.add, 4).result())
        pool.shutdown()
        """
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "interrupted True\nchild 70\ndone 4\n", res.stderr


def test_fork_hooks_pause_pools_and_warn_of_interpreters():
    # The os.register_at_fork hooks, called without a fork: the pool's
    # worker closes its interpreter and parks, and comes back after.
    from subinterp import _core

    with Pool(1, initializer=init_worker, initargs=(3,)) as p:
        first = p.submit(interp_id).result()
        try:
            # (interpreters other tests left alive make it warn)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                _core._pools_fork_before()
            st = p.stats()
            assert st["pausing"] == 1 and st["parked"] == 1
            queued = p.submit(add, 1, 2)
            time.sleep(0.05)
            assert not queued.done()
        finally:
            _core._pools_fork_after_parent()
        assert queued.result(timeout=30) == 3
        assert p.submit(interp_id).result() != first
        assert p.submit(initialized).result() == [3]
        assert p.stats()["parked"] == 0

    it = subinterp.create()
    try:
        with pytest.warns(RuntimeWarning, match=r"\d+ subinterpreter"):
            _core._fork_warn()
    finally:
        it.close()


def test_after_a_fork_workers_make_interpreters_on_demand():
    from subinterp import _core

    with Pool(2) as p:
        assert list(p.map(add, range(10))) == list(range(10))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                _core._pools_fork_before()
        finally:
            _core._pools_fork_after_parent()
        time.sleep(0.05)
        # nothing to do: no interpreter made, and another fork finds the
        # workers parked already
        assert p.stats()["parked"] == 2
        assert p.submit(add, 2).result() == 2
        assert p.stats()["parked"] <= 1
        assert sum(p.map(add, range(1000))) == 499500
        f = p.submit(sleep_return, 0.05, "late")
        g = p.submit(sleep_return, 0.05, "later")
        assert (f.result(), g.result()) == ("late", "later")
        assert p.stats()["parked"] == 0


def test_fork_after_shutdown_can_make_new_pool():
    res = run_script(
        """
        import os, subinterp, test_pool
        with subinterp.Pool(1) as pool:
            assert pool.submit(test_pool.add, 1).result() == 1
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with subinterp.Pool(1) as pool:
                    assert pool.submit(test_pool.add, 2).result() == 2
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "0\n", res.stderr
