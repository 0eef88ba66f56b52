"""asyncio: awaiting pool work from an event loop (Pool.run,
subinterp.run) and coroutine functions as pool tasks."""

import asyncio
import sys
import threading

import aio_helpers as H
import pytest
from script_helpers import run_script

import subinterp


# CPython 3.12 aborts at exit once an event loop ran in a subinterpreter
# (gh-112140): coroutine tasks are refused there.
needs_loop_in_subinterpreter = pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="CPython 3.12 aborts at exit once an event loop ran in a "
           "subinterpreter (gh-112140)")


@pytest.fixture
def pool():
    p = subinterp.Pool(2)
    yield p
    p.shutdown()


def test_run_awaits_the_result(pool):
    async def main():
        return await pool.run(pow, 2, 10), await pool.run(divmod, 7, 2)

    assert asyncio.run(main()) == (1024, (3, 1))


def test_run_raises_the_task_exception(pool):
    async def main():
        return await pool.run(int, "not a number")

    with pytest.raises(ValueError, match="not a number"):
        asyncio.run(main())


def test_module_level_run_uses_the_default_pool():
    async def main():
        return await subinterp.run(abs, -5)

    assert asyncio.run(main()) == 5


def test_many_pending_awaits_cost_no_threads(pool):
    # The completions reach the loop through its own wake-up descriptor:
    # 2,000 awaits at once add no thread to the process.
    before = threading.active_count()
    seen = []

    async def main():
        async def one(i):
            r = await pool.run(abs, -i)
            seen.append(threading.active_count())
            return r

        return await asyncio.gather(*(one(i) for i in range(2000)))

    assert asyncio.run(main()) == list(range(2000))
    assert max(seen) <= before


def test_cancel_before_start_cancels_the_work():
    p = subinterp.Pool(1)
    try:
        release = subinterp.Event()
        started = subinterp.Queue()
        marks = subinterp.Queue()

        async def main():
            busy = asyncio.ensure_future(p.run(H.block_until, release,
                                               started))
            assert await asyncio.to_thread(started.get, timeout=30) == \
                "started"
            # the only worker is busy: this one waits in the pool's queue
            queued = asyncio.ensure_future(p.run(H.mark, marks, "ran"))
            await asyncio.sleep(0.05)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            release.set()
            assert await busy == "released"
            # the worker is free again, and the cancelled task never ran
            assert await p.run(H.mark, marks, "after") == "after"

        asyncio.run(main())
        assert marks.get_nowait() == "after"
        with pytest.raises(subinterp.QueueEmpty):
            marks.get_nowait()
    finally:
        p.shutdown()


def test_cancel_after_start_drops_the_result_and_keeps_the_worker():
    p = subinterp.Pool(1)
    try:
        release = subinterp.Event()
        started = subinterp.Queue()

        async def main():
            task = asyncio.ensure_future(p.run(H.block_until, release,
                                               started))
            assert await asyncio.to_thread(started.get, timeout=30) == \
                "started"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()
            # the same, only worker runs the next task
            return await p.run(pow, 3, 3)

        assert asyncio.run(main()) == 27
    finally:
        p.shutdown()


@needs_loop_in_subinterpreter
def test_coroutine_function_task(pool):
    assert pool.submit(H.add_later, 2, 3, delay=0.01).result(30) == 5

    async def main():
        return await pool.run(H.add_later, 4, 5)

    assert asyncio.run(main()) == 9


@needs_loop_in_subinterpreter
def test_coroutine_method_task(pool):
    assert pool.submit(H.Holder().method, 21).result(30) == 42


@needs_loop_in_subinterpreter
def test_coroutine_exception(pool):
    with pytest.raises(ValueError, match="boom"):
        pool.submit(H.fail_later, "boom").result(30)


@needs_loop_in_subinterpreter
def test_worker_keeps_one_loop_for_its_life():
    with subinterp.Pool(1) as p:
        first = p.submit(H.loop_identity).result(30)
        second = p.submit(H.loop_identity).result(30)
    assert first == second
    assert first[1] != subinterp.get_current().id


@needs_loop_in_subinterpreter
def test_worker_loop_is_closed_when_the_worker_ends():
    # Workers replaced after each task, and the pool shut down: every
    # interpreter that kept a loop ends, and closes it there (a loop left
    # unclosed gives a ResourceWarning).
    res = run_script(
        """
        import subinterp, aio_helpers as H
        with subinterp.Pool(1, max_tasks_per_worker=1) as p:
            a = p.submit(H.loop_identity).result(30)
            b = p.submit(H.loop_identity).result(30)
        with subinterp.Pool(1) as p:
            p.submit(H.loop_identity).result(30)
        assert a[1] != b[1]
        print("ok")
        """,
        # (not dev mode: on 3.12.1 its allocator checks report CPython's
        # own misuse when a subinterpreter imports _asyncio)
        env={"PYTHONWARNINGS": "always::ResourceWarning"},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ok\n"
    assert "unclosed" not in res.stderr, res.stderr
    assert "Warning" not in res.stderr, res.stderr


@needs_loop_in_subinterpreter
def test_run_inside_a_subinterpreter_event_loop():
    # An interpreter running its own event loop awaits work of a pool it
    # made there.
    i = subinterp.create()
    try:
        i.exec(
            "import asyncio, subinterp\n"
            "async def main():\n"
            "    with subinterp.Pool(1) as p:\n"
            "        return await p.run(sum, range(10))\n"
            "result = asyncio.run(main())\n"
        )
        assert i.call(eval, "result") == 45
    finally:
        i.close()


@pytest.mark.skipif(sys.version_info >= (3, 13),
                    reason="the refusal is for 3.12 only")
def test_coroutine_tasks_refused_on_312(pool):
    with pytest.raises(RuntimeError, match="3.13"):
        pool.submit(H.add_later, 1, 2)


def test_shutdown_cancelling_queued_tasks_cancels_their_awaits():
    p = subinterp.Pool(1)
    release = subinterp.Event()
    started = subinterp.Queue()

    async def main():
        busy = asyncio.ensure_future(p.run(H.block_until, release, started))
        assert await asyncio.to_thread(started.get, timeout=30) == "started"
        queued = asyncio.ensure_future(p.run(abs, -1))
        await asyncio.sleep(0.05)
        p.shutdown(wait=False, cancel_futures=True)
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert await busy == "released"

    try:
        asyncio.run(main())
    finally:
        release.set()
        p.shutdown()


def test_broken_pool_reaches_the_await():

    p = subinterp.Pool(1, initializer=H.fail_init)

    async def main():
        return await p.run(abs, -1)

    try:
        with pytest.raises(subinterp.BrokenInterpreterPool):
            asyncio.run(main())
    finally:
        p.shutdown()


def test_loop_closed_with_pending_awaits_cleans_up():
    # asyncio.run() cancels what is still pending when main returns; the
    # outcomes that arrive later find the loop closed and are dropped
    # without a warning, and the pool carries on.
    res = run_script(
        """
        import asyncio, subinterp, aio_helpers as H
        p = subinterp.Pool(1)
        release = subinterp.Event()
        started = subinterp.Queue()

        async def main():
            asyncio.ensure_future(p.run(H.block_until, release, started))
            for i in range(100):
                asyncio.ensure_future(p.run(abs, -i))
            await asyncio.to_thread(started.get, timeout=30)

        asyncio.run(main())
        release.set()
        assert p.submit(pow, 2, 5).result(30) == 32
        p.shutdown()
        print("ok")
        """,
        env={"PYTHONWARNINGS": "always"},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ok\n"
    assert res.stderr == "", res.stderr


def test_run_under_uvloop(pool):
    uvloop = pytest.importorskip(
        "uvloop", reason="uvloop is not installed for this Python")
    marks = subinterp.Queue()

    async def main():
        assert type(asyncio.get_running_loop()).__module__.startswith(
            "uvloop")
        results = await asyncio.gather(*(pool.run(abs, -i)
                                         for i in range(500)))
        assert results == list(range(500))
        with pytest.raises(ValueError):
            await pool.run(int, "x")
        return await pool.run(H.mark, marks, "ran")

    assert asyncio.run(main(), loop_factory=uvloop.new_event_loop) == "ran"
    assert marks.get_nowait() == "ran"
