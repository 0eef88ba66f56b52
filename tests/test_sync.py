"""Lock, RLock, Event, Semaphore, BoundedSemaphore, Barrier across
interpreters; abandoned locks; Ctrl-C; bad input."""

import pickle
import signal
import sys
import threading
import time
import warnings

import pytest

import queue_helpers
import subinterp
from subinterp import _queues as sq


def run_in_thread(fn, *args):
    def target():
        try:
            t.outcome = ("ok", fn(*args))
        except BaseException as exc:  # reported to the test
            t.outcome = ("err", exc)

    t = threading.Thread(target=target)
    t.outcome = None
    t.start()
    return t


def interrupt_main_later(delay):
    t = threading.Timer(delay, signal.pthread_kill,
                        (threading.main_thread().ident, signal.SIGINT))
    t.start()
    return t


# ---------------------------------------------------------------------------
# Lock


def test_lock_basics():
    lock = sq.Lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(False) is False
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.04
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    with lock as entered:
        assert entered is True and lock.locked()
    assert not lock.locked()
    assert "unlocked" in repr(lock)


def test_lock_released_by_another_thread_wakes_waiter():
    lock = sq.Lock()
    lock.acquire()
    t = threading.Timer(0.05, lock.release)
    t.start()
    assert lock.acquire(timeout=10)
    t.join()
    lock.release()


def test_lock_excludes_across_interpreters():
    lock = sq.Lock()
    holders = sq.Queue()
    interps = [subinterp.create() for _ in range(2)]
    try:
        ts = [it.call_in_thread(queue_helpers.exclusive_sections, lock,
                                holders, 300) for it in interps]
        mine = queue_helpers.exclusive_sections(lock, holders, 300)
        assert mine + sum(t.result(timeout=60) for t in ts) == 0
    finally:
        for it in interps:
            it.close()


def test_lock_handle_crosses_and_pickles(interp):
    lock = sq.Lock()
    assert interp.call(queue_helpers.acquire_and_keep, lock) is True
    assert lock.locked()
    other = pickle.loads(pickle.dumps(lock))
    assert other == lock and hash(other) == hash(lock)
    other.release()                     # any thread may release a Lock
    assert not lock.locked()


def test_lock_fifo_handoff():
    lock = sq.Lock()
    lock.acquire()
    order = []

    def waiter(k):
        with lock:
            order.append(k)

    ts = []
    for k in range(4):
        ts.append(threading.Thread(target=waiter, args=(k,)))
        ts[-1].start()
        time.sleep(0.05)                # queue up in this order
    lock.release()
    for t in ts:
        t.join(10)
    assert order == [0, 1, 2, 3]


# ---------------------------------------------------------------------------
# abandoned locks


def _acquire_in_thread(lock, timeout):
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(
        timeout=timeout)))
    t.start()
    t.join()
    return got[0]


@pytest.mark.parametrize("first", ["interp", "main"])
def test_rlock_levels_of_a_destroyed_interpreter_go_the_others_stay(first):
    """An RLock that its owner thread took in an interpreter and re-entered
    in another: destroying the first drops its levels only, and the lock
    stays held by the thread for the levels the other took (it is not
    handed to another thread)."""
    lock = sq.RLock()
    it = subinterp.create()
    if first == "interp":
        assert it.call(queue_helpers.acquire_and_keep, lock)
        assert lock.acquire(timeout=5)
    else:
        assert lock.acquire(timeout=5)
        assert it.call(queue_helpers.acquire_and_keep, lock)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        it.close()
        assert lock.locked() and lock._is_owned()
        assert _acquire_in_thread(lock, 0.1) is False
        lock.release()                  # main's own level
        assert not lock.locked()
        with pytest.raises(RuntimeError):
            lock.release()
        assert _acquire_in_thread(lock, 5) is True



def test_rlock_reentered_in_many_interpreters_is_free_once_all_close():
    lock = sq.RLock()
    its = [subinterp.create() for _ in range(6)]
    for it in its:
        assert it.call(queue_helpers.acquire_and_keep, lock)
    for it in its[::-1]:
        assert lock.locked()
        it.close()
    assert not lock.locked()
    with pytest.warns(sq.AbandonedLockWarning):
        assert _acquire_in_thread(lock, 5) is True


def test_abandoned_lock_is_released_and_next_acquirer_warned():
    lock = sq.Lock()
    it = subinterp.create()
    assert it.call(queue_helpers.acquire_and_keep, lock)
    assert lock.locked()
    it.close()
    assert not lock.locked()            # released by the close
    with pytest.warns(sq.AbandonedLockWarning, match=r"interpreter \d+"):
        assert lock.acquire(timeout=5)
    lock.release()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lock.acquire(timeout=5)  # told once only
    lock.release()


def test_abandoned_lock_handed_to_blocked_waiter():
    lock = sq.RLock()
    it = subinterp.create()
    assert it.call(queue_helpers.acquire_and_keep, lock)

    def waiter():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ok = lock.acquire(timeout=30)
        return ok, [type(w.message) for w in caught], lock._is_owned()

    t = run_in_thread(waiter)
    time.sleep(0.1)
    assert t.is_alive()
    it.close()
    t.join(30)
    assert t.outcome == ("ok", (True, [sq.AbandonedLockWarning], True))


def test_abandoned_warning_as_error_leaves_lock_free():
    lock = sq.Lock()
    it = subinterp.create()
    it.call(queue_helpers.acquire_and_keep, lock)
    it.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", sq.AbandonedLockWarning)
        with pytest.raises(sq.AbandonedLockWarning):
            lock.acquire()
    assert not lock.locked()
    assert lock.acquire(blocking=False)
    lock.release()


def test_lock_of_live_interpreter_stays_held():
    lock = sq.Lock()
    a, b = subinterp.create(), subinterp.create()
    a.call(queue_helpers.acquire_and_keep, lock)
    b.close()
    assert lock.locked()
    a.close()
    assert not lock.locked()
    with pytest.warns(sq.AbandonedLockWarning):
        lock.acquire()


# ---------------------------------------------------------------------------
# RLock


def test_rlock():
    rlock = sq.RLock()
    assert rlock.acquire() and rlock.acquire()
    assert rlock._is_owned() and rlock.locked()
    t = run_in_thread(rlock.acquire, False)
    t.join()
    assert t.outcome == ("ok", False)
    t = run_in_thread(rlock.release)
    t.join()
    assert isinstance(t.outcome[1], RuntimeError)
    rlock.release()
    assert rlock.locked()
    rlock.release()
    assert not rlock.locked()
    with pytest.raises(RuntimeError):
        rlock.release()


def test_rlock_owned_by_os_thread_across_interpreters(interp):
    rlock = sq.RLock()
    with rlock:
        # the same OS thread, entering another interpreter: re-entrant
        assert interp.call(queue_helpers.rlock_twice, rlock) is True
    assert not rlock.locked()
    t = interp.call_in_thread(queue_helpers.rlock_twice, rlock)
    assert t.result(timeout=30) is True


# ---------------------------------------------------------------------------
# Event


def test_event():
    ev = sq.Event()
    assert not ev.is_set()
    assert ev.wait(0.01) is False
    assert ev.wait(timeout=0) is False
    ev.set()
    assert ev.is_set() and ev.wait() is True
    ev.clear()
    assert not ev.is_set()
    assert "unset" in repr(ev)


def test_event_set_wakes_every_waiter(interp):
    ev = sq.Event()
    threads = [run_in_thread(ev.wait, 30) for _ in range(3)]
    sub = interp.call_in_thread(queue_helpers.event_wait, ev, 30)
    time.sleep(0.1)
    assert all(t.is_alive() for t in threads)
    ev.set()
    for t in threads:
        t.join(30)
        assert t.outcome == ("ok", True)
    assert sub.result(timeout=30) is True


# ---------------------------------------------------------------------------
# Semaphore and BoundedSemaphore


def test_semaphore():
    sem = sq.Semaphore(2)
    assert sem.acquire() and sem.acquire()
    assert sem.acquire(blocking=False) is False
    assert sem.acquire(timeout=0.02) is False
    sem.release()
    assert sem.acquire(timeout=0)
    sem.release(2)
    with sem:
        with sem:
            assert sem.acquire(False) is False
    assert "value=2" in repr(sem)


def test_semaphore_release_n_wakes_n(interp):
    sem = sq.Semaphore(0)
    threads = [run_in_thread(sem.acquire, True, 30) for _ in range(3)]
    sub = interp.call_in_thread(queue_helpers.sem_acquire, sem, 30)
    time.sleep(0.1)
    sem.release(3)
    time.sleep(0.1)
    alive = [t for t in threads if t.is_alive()]
    sem.release()
    for t in threads:
        t.join(30)
        assert t.outcome == ("ok", True)
    assert sub.result(timeout=30) is True
    assert len(alive) <= 1
    assert sem.acquire(False) is False


def test_bounded_semaphore():
    sem = sq.BoundedSemaphore(2)
    sem.acquire()
    sem.release()
    with pytest.raises(ValueError):
        sem.release()
    sem.acquire()
    sem.acquire()
    with pytest.raises(ValueError):
        sem.release(3)
    sem.release(2)


MAX = sys.maxsize


def sem_value(sem):
    return int(repr(sem).rsplit("value=", 1)[1].rstrip(">"))


@pytest.mark.parametrize("start,releases", [
    (MAX, [1]),                      # wrapped to -2**63
    (0, [2 ** 62, 2 ** 62]),         # wrapped negative
    (MAX - 5, [3, 3]),
    (1, [MAX]),
])
def test_semaphore_value_never_wraps(start, releases):
    sem = sq.Semaphore(start)
    value = start
    for n in releases:
        if value > MAX - n:
            with pytest.raises(OverflowError):
                sem.release(n)
        else:
            sem.release(n)
            value += n
        assert sem_value(sem) == value    # unchanged by a refused release
    assert sem.acquire(blocking=False)
    assert sem_value(sem) == value - 1


def test_semaphore_release_beyond_ssize_t():
    sem = sq.Semaphore(0)
    with pytest.raises(OverflowError):
        sem.release(2 ** 63)
    with pytest.raises(OverflowError):
        sq.Semaphore(2 ** 63)
    assert sem_value(sem) == 0


def test_bounded_semaphore_at_the_largest_value():
    sem = sq.BoundedSemaphore(MAX)
    with pytest.raises(ValueError):
        sem.release()
    with pytest.raises(ValueError):
        sem.release(MAX)
    assert sem_value(sem) == MAX
    assert sem.acquire(blocking=False)
    sem.release()
    assert sem_value(sem) == MAX


def test_barrier_parties_limits():
    with pytest.raises(ValueError):
        sq.Barrier(0)
    with pytest.raises(OverflowError):
        sq.Barrier(2 ** 63)
    b = sq.Barrier(MAX)
    assert b.parties == MAX and b.n_waiting == 0
    with pytest.raises(sq.BrokenBarrierError):
        b.wait(timeout=0)
    assert b.broken and b.n_waiting == 0


# ---------------------------------------------------------------------------
# Barrier


def test_barrier_across_interpreters():
    b = sq.Barrier(3)
    assert b.parties == 3 and b.n_waiting == 0 and not b.broken
    it = subinterp.create()
    try:
        sub = it.call_in_thread(queue_helpers.barrier_wait, b, 30)
        th = run_in_thread(b.wait, 30)
        mine = b.wait(30)
        th.join(30)
        indexes = {mine, th.outcome[1], sub.result(timeout=30)}
        assert indexes == {0, 1, 2}
        # reusable
        sub = it.call_in_thread(queue_helpers.barrier_wait, b, 30)
        th = run_in_thread(b.wait, 30)
        assert b.wait(30) in (0, 1, 2)
        th.join(30)
        sub.result(timeout=30)
    finally:
        it.close()


def test_barrier_broken_by_a_stopped_party_is_systemexit_in_a_stopped_one():
    # At exit every interpreter of ours is stopped at once.  A party that
    # arrives after another stopped party broke the barrier belongs to the
    # stop as well: SystemExit, not BrokenBarrierError (which a thread of
    # an interpreter at exit reported on stderr now and then).
    b = sq.Barrier(3)
    first, second = subinterp.create(), subinterp.create()
    try:
        subinterp._core._interrupt_waits(first.id)
        subinterp._core._interrupt_waits(second.id)
        with pytest.raises(subinterp.ExecutionFailed, match="SystemExit"):
            first.call(queue_helpers.barrier_wait, b, 30)
        assert b.broken
        with pytest.raises(subinterp.ExecutionFailed, match="SystemExit"):
            second.call(queue_helpers.barrier_wait, b, 30)
        # a party of a live interpreter sees the broken barrier
        with pytest.raises(subinterp.BrokenBarrierError):
            b.wait(30)
    finally:
        first.close()
        second.close()


def test_barrier_timeout_breaks_it():
    b = sq.Barrier(2)
    with pytest.raises(sq.BrokenBarrierError):
        b.wait(0.05)
    assert b.broken
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()
    b.reset()
    assert not b.broken
    t = run_in_thread(b.wait, 30)
    assert b.wait(30) in (0, 1)
    t.join(30)


def test_barrier_default_timeout_abort_and_reset():
    b = sq.Barrier(3, timeout=0.05)
    with pytest.raises(sq.BrokenBarrierError):
        b.wait()
    b.reset()
    b2 = sq.Barrier(3)
    t = run_in_thread(b2.wait)
    time.sleep(0.05)
    assert b2.n_waiting == 1
    b2.abort()
    t.join(10)
    assert isinstance(t.outcome[1], sq.BrokenBarrierError)
    b2.reset()
    t = run_in_thread(b2.wait)
    time.sleep(0.05)
    b2.reset()                         # waiters get BrokenBarrierError
    t.join(10)
    assert isinstance(t.outcome[1], sq.BrokenBarrierError)
    assert not b2.broken


# ---------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_interrupts_every_kind_of_wait():
    lock = sq.Lock()
    lock.acquire()
    sem = sq.Semaphore(0)
    ev = sq.Event()
    barrier = sq.Barrier(2)
    for fn in (lock.acquire, sem.acquire, ev.wait, barrier.wait):
        t = interrupt_main_later(0.1)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            fn()
        assert time.monotonic() - t0 < 5
        t.join()
    # nothing was left half-done
    assert lock.locked()
    lock.release()
    assert lock.acquire(blocking=False)
    sem.release()
    assert sem.acquire(blocking=False)
    assert barrier.broken              # like threading: an exception breaks


# ---------------------------------------------------------------------------
# bad input


def test_bad_arguments():
    with pytest.raises(TypeError):
        sq.Lock(1)
    with pytest.raises(ValueError):
        sq.Semaphore(-1)
    with pytest.raises(TypeError):
        sq.Semaphore("1")
    with pytest.raises(ValueError):
        sq.Barrier(0)
    with pytest.raises(TypeError):
        sq.Barrier(2, action=print)
    with pytest.raises(ValueError):
        sq.Barrier(2, timeout=-1)
    lock = sq.Lock()
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-2)
    assert lock.acquire(timeout=-1)    # threading's "no timeout"
    lock.release()
    sem = sq.Semaphore()
    with pytest.raises(ValueError):
        sem.acquire(False, 1)
    with pytest.raises(ValueError):
        sem.release(0)
    with pytest.raises(ValueError):
        sq.Event().wait(-1)
