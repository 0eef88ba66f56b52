"""subinterp.asyncio_executor: a pool as asyncio's default executor."""

import asyncio
import concurrent.futures as cf
import contextvars
import os
import threading
import time

import pytest
from script_helpers import by_value_off  # noqa: F401 (fixture)

import subinterp

var = contextvars.ContextVar("var", default="unset")


def interp_id(x=None):
    return subinterp.get_current().id


def add(a, b):
    return a + b


def fail(text):
    raise ValueError(text)


def wait_for_file(path, timeout=60.0):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.001)
    return True


@pytest.fixture
def pool():
    p = subinterp.Pool(2)
    yield p
    p.shutdown(wait=True, cancel_futures=True)


def test_asyncio_refuses_a_pool_as_default_executor(pool):
    # Why the adapter exists: every supported version refuses anything but
    # a ThreadPoolExecutor here.
    async def main():
        with pytest.raises(TypeError, match="ThreadPoolExecutor"):
            asyncio.get_running_loop().set_default_executor(pool)

    asyncio.run(main())


def test_run_in_executor_none_runs_in_the_pools_interpreters(pool):
    async def main():
        loop = asyncio.get_running_loop()
        ex = subinterp.asyncio_executor(pool)
        assert isinstance(ex, cf.ThreadPoolExecutor)
        loop.set_default_executor(ex)
        ids = await asyncio.gather(
            *(loop.run_in_executor(None, interp_id, i) for i in range(20)))
        total = await loop.run_in_executor(None, add, 40, 2)
        with pytest.raises(ValueError, match="from a worker"):
            await loop.run_in_executor(None, fail, "from a worker")
        return ids, total

    ids, total = asyncio.run(main())
    assert total == 42
    assert 0 not in ids and 1 <= len(set(ids)) <= 2
    # asyncio.run() shut the default executor down, not the pool
    assert pool.submit(add, 1, 2).result() == 3


def test_calls_that_cannot_cross_run_in_threads(pool, by_value_off):
    # asyncio.to_thread() wraps the call in Context.run (a context of this
    # thread), loop.getaddrinfo() in debug mode passes a bound method of
    # the loop: asyncio's default executor runs both in threads, and so
    # does this one.
    y = 5

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(subinterp.asyncio_executor(pool))
        var.set("set here")
        in_thread = await asyncio.to_thread(lambda: (var.get(), interp_id()))
        closure = await loop.run_in_executor(None, lambda: y + interp_id())
        addrs = await loop.getaddrinfo("127.0.0.1", 80)
        lock = threading.Lock()
        locked = await loop.run_in_executor(None, lock.acquire)
        return in_thread, closure, addrs, locked

    for debug in (False, True):
        in_thread, closure, addrs, locked = asyncio.run(main(), debug=debug)
        assert in_thread == ("set here", 0)
        assert closure == 5
        assert addrs and addrs[0][4][0] == "127.0.0.1"
        assert locked is True


def test_closure_crosses_by_value_when_allowed(pool):
    # with functions by value on (the default when cloudpickle is
    # installed), a closure runs in a worker like any other call
    pytest.importorskip("cloudpickle")
    y = 5

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(subinterp.asyncio_executor(pool))
        return await loop.run_in_executor(None, lambda: (y, interp_id()))

    value, where = asyncio.run(main())
    assert value == 5 and where != 0


def test_default_pool_when_none_given():
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(subinterp.asyncio_executor())
        return await loop.run_in_executor(None, interp_id)

    assert asyncio.run(main()) != 0
    assert not subinterp.default_pool()._shutdown


def test_shutdown_waits_for_its_calls_and_refuses_new_ones(pool, tmp_path):
    flag = str(tmp_path / "flag")
    ex = subinterp.asyncio_executor(pool)
    fut = ex.submit(wait_for_file, flag)
    other = pool.submit(wait_for_file, flag)  # not through the adapter
    threading.Timer(0.1, lambda: open(flag, "w").close()).start()
    ex.shutdown(wait=True)
    assert fut.done() and fut.result() is True
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(add, 1, 2)
    assert other.result(timeout=60) is True
    assert pool.submit(add, 1, 2).result() == 3


def touch_then_wait(started, path):
    open(started, "w").close()
    return wait_for_file(path)


def test_shutdown_cancel_futures(tmp_path):
    started = str(tmp_path / "started")
    flag = str(tmp_path / "flag")
    with subinterp.Pool(1) as pool:
        ex = subinterp.asyncio_executor(pool)
        running = ex.submit(touch_then_wait, started, flag)
        queued = ex.submit(add, 1, 2)
        assert wait_for_file(started)
        threading.Timer(0.1, lambda: open(flag, "w").close()).start()
        ex.shutdown(wait=True, cancel_futures=True)
        assert running.result() is True
        assert queued.cancelled()
