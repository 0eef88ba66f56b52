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


# ---------------------------------------------------------------------------
# max_concurrency: coroutine tasks side by side in a worker


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError),
                                      (1.5, TypeError), (True, TypeError),
                                      ("2", TypeError)])
def test_max_concurrency_is_validated(bad, exc):
    with pytest.raises(exc, match="max_concurrency"):
        subinterp.Pool(1, max_concurrency=bad)


@needs_loop_in_subinterpreter
def test_one_worker_runs_coroutines_at_once():
    # all 10 must be running together to pass the rendezvous
    with subinterp.Pool(1, max_concurrency=10) as p:
        futs = [p.submit(H.rendezvous, 10, i) for i in range(10)]
        got = [f.result(120) for f in futs]
    assert [v for v, _, _ in got] == list(range(10))
    assert {peak for _, peak, _ in got} == {10}
    assert len({interp for _, _, interp in got}) == 1


@needs_loop_in_subinterpreter
def test_max_concurrency_bounds_the_coroutines_at_once():
    with subinterp.Pool(1, max_concurrency=3) as p:
        futs = [p.submit(H.rendezvous, 3, i) for i in range(9)]
        got = [f.result(120) for f in futs]
    assert [v for v, _, _ in got] == list(range(9))
    assert max(peak for _, peak, _ in got) == 3


@needs_loop_in_subinterpreter
def test_concurrent_results_exceptions_and_run():
    with subinterp.Pool(2, max_concurrency=4) as p:
        ok = [p.submit(H.add_later, i, 10, 0.01) for i in range(8)]
        bad = [p.submit(H.fail_later, f"no {i}") for i in range(4)]
        assert [f.result(30) for f in ok] == [i + 10 for i in range(8)]
        for i, f in enumerate(bad):
            with pytest.raises(ValueError, match=f"no {i}"):
                f.result(30)

        async def main():
            return await asyncio.gather(
                *[p.run(H.add_later, i, 1, 0.01) for i in range(10)])

        assert asyncio.run(main()) == list(range(1, 11))


@needs_loop_in_subinterpreter
def test_plain_task_runs_while_coroutines_wait():
    with subinterp.Pool(1, max_concurrency=2) as p, H.Gate() as gate:
        waiting = p.submit(H.wait_gate, gate.fd)
        # the only worker serves its loop: the plain task runs there
        assert p.submit(pow, 2, 5).result(30) == 32
        # as on a worker without a running loop
        assert p.submit(H.run_own_loop, 41).result(30) == 42
        assert not waiting.done()
        gate.open()
        assert waiting.result(30) == "opened"


@needs_loop_in_subinterpreter
def test_cancel_of_a_queued_task_while_coroutines_run():
    marks = subinterp.Queue()
    with subinterp.Pool(1, max_concurrency=2) as p, H.Gate() as gate:
        a = p.submit(H.wait_gate, gate.fd)
        b = p.submit(H.wait_gate, gate.fd)
        queued = p.submit(H.mark, marks, "ran")
        assert queued.cancel()
        last = p.submit(H.mark, marks, "last")
        gate.open()
        assert a.result(30) == b.result(30) == "opened"
        assert last.result(30) == "last"
        # (read while the worker that put it lives)
        assert marks.get(timeout=0) == "last"
        assert marks.empty()
    assert queued.cancelled()


@needs_loop_in_subinterpreter
@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_lets_running_coroutines_finish(wait):
    gate = H.Gate()
    p = subinterp.Pool(1, max_concurrency=3)
    try:
        futs = [p.submit(H.wait_gate, gate.fd) for _ in range(3)]
        queued = p.submit(H.add_later, 1, 2)
        if not wait:
            p.shutdown(wait=False)
            gate.open()
        else:
            threading.Timer(0.1, gate.open).start()
            p.shutdown(wait=True)
        assert [f.result(30) for f in futs] == ["opened"] * 3
        assert queued.result(30) == 3
    finally:
        gate.open()
        p.shutdown()


@needs_loop_in_subinterpreter
def test_shutdown_cancel_futures_keeps_running_coroutines():
    gate = H.Gate()
    p = subinterp.Pool(1, max_concurrency=2)
    try:
        started = subinterp.Queue()
        futs = [p.submit(H.wait_gate, gate.fd, started) for _ in range(2)]
        queued = [p.submit(H.add_later, i, 1) for i in range(3)]
        # the two coroutines occupy the worker: the rest is queued
        for _ in range(2):
            assert started.get(timeout=60) == "started"
        p.shutdown(wait=False, cancel_futures=True)
        gate.open()
    finally:
        gate.open()
        p.shutdown()
    assert [f.result(0) for f in futs] == ["opened"] * 2
    assert all(f.cancelled() for f in queued)


@needs_loop_in_subinterpreter
def test_max_tasks_per_worker_counts_coroutines():
    # three tasks per interpreter, all three running together: the worker
    # is replaced once its running coroutines ended
    with subinterp.Pool(1, max_concurrency=3, max_tasks_per_worker=3) as p:
        futs = [p.submit(H.rendezvous, 3, i) for i in range(6)]
        got = [f.result(120) for f in futs]
    assert [v for v, _, _ in got] == list(range(6))
    first = {interp for _, _, interp in got[:3]}
    second = {interp for _, _, interp in got[3:]}
    assert len(first) == len(second) == 1
    assert first != second
    assert {peak for _, peak, _ in got} == {3}


@needs_loop_in_subinterpreter
def test_terminate_stops_running_coroutines():
    p = subinterp.Pool(1, max_concurrency=3)
    started = subinterp.Queue()
    running = [p.submit(H.sleep_forever, started) for _ in range(3)]
    queued = p.submit(H.add_later, 1, 2)
    for _ in range(3):
        assert started.get(timeout=60) == "started"
    p._terminate()   # returns: the coroutines were stopped
    for f in running:
        assert f.done()
        assert isinstance(f.exception(0), SystemExit)
    assert queued.cancelled()
    assert p.stats()["alive"] == 0


@needs_loop_in_subinterpreter
def test_fork_waits_for_running_coroutines():
    res = run_script(
        """
        import os, subinterp, aio_helpers as H
        gate = H.Gate()
        p = subinterp.Pool(1, max_concurrency=3)
        futs = [p.submit(H.wait_gate, gate.fd) for _ in range(3)]
        import threading
        threading.Timer(0.2, gate.open).start()
        pid = os.fork()   # waits for the running coroutines
        if pid == 0:
            try:
                p.submit(abs, -1).result(10)
            except subinterp.BrokenInterpreterPool:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        print([f.result(30) for f in futs])
        print([f.result(30) for f in
               [p.submit(H.rendezvous, 3, i) for i in range(3)]][0][0])
        p.shutdown()
        """,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["0", "['opened', 'opened', 'opened']",
                                       "0"], res.stdout + res.stderr
