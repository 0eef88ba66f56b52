"""Queue.put_many() and get_many(): many objects per call, with the
semantics of put() and get() (order, bounded queues, timeouts, unbound
items, Ctrl-C, interpreter stop)."""

import threading
import time

import pytest

import queue_helpers
import subinterp
from subinterp import _queues as sq
from subinterp import interpreters

from test_queue import Unpicklable, interrupt_main_later


# ---------------------------------------------------------------------------
# basics


def test_put_many_then_get_many_keeps_order_and_values():
    q = sq.Queue()
    objs = [1, "two", b"3", (4, [5]), {"six": 6.0}, None, 2**100]
    q.put_many(objs)
    assert q.qsize() == len(objs)
    assert q.get_many(3) == objs[:3]
    assert q.get_many(100) == objs[3:]
    assert q.empty()


def test_put_many_takes_any_iterable_and_mixes_with_put():
    q = sq.Queue()
    q.put("first")
    q.put_many(i * i for i in range(5))
    q.put_many([])
    q.put("last")
    assert q.get() == "first"
    assert q.get_many(5) == [0, 1, 4, 9, 16]
    assert q.get_many(5) == ["last"]


def test_get_many_returns_what_is_there_without_waiting_for_more():
    q = sq.Queue()
    q.put_many([1, 2, 3])
    # block=True with no timeout: returns the three there are
    assert q.get_many(10) == [1, 2, 3]


def test_get_many_beyond_the_first_array():
    q = sq.Queue()
    q.put_many(range(5000))
    assert q.get_many(4000) == list(range(4000))
    assert q.get_many(4000) == list(range(4000, 5000))


def test_get_many_waits_for_the_first_item():
    q = sq.Queue()

    def later():
        time.sleep(0.1)
        q.put_many(["a", "b"])

    t = threading.Thread(target=later)
    t.start()
    got = q.get_many(10, timeout=30)
    t.join()
    got += q.get_many(10, block=False) if len(got) < 2 else []
    assert got == ["a", "b"]


def test_empty_and_timeouts():
    q = sq.Queue()
    with pytest.raises(sq.QueueEmpty):
        q.get_many(5, block=False)
    with pytest.raises(sq.QueueEmpty):
        q.get_many(5, timeout=0.05)
    with pytest.raises(sq.QueueEmpty):
        q.get_many(5, timeout=0)


def test_put_many_on_bounded_queue_times_out_with_count():
    q = sq.Queue(5)
    q.put("x")
    with pytest.raises(sq.QueueFull) as e:
        q.put_many(range(10), timeout=0.05)
    assert e.value.count == 4
    with pytest.raises(sq.QueueFull) as e:
        q.put_many(["late"], block=False)
    assert e.value.count == 0
    assert q.get_many(10) == ["x", 0, 1, 2, 3]
    with pytest.raises(sq.QueueFull) as e:
        q.put_many(range(7), block=False)
    assert e.value.count == 5
    assert q.get_many(10) == [0, 1, 2, 3, 4]


def test_put_many_on_bounded_queue_waits_until_all_are_in():
    q = sq.Queue(3)
    n = 2000
    t = threading.Thread(target=q.put_many, args=(range(n),))
    t.start()
    got = []
    while len(got) < n:
        items = q.get_many(7, timeout=30)
        assert 1 <= len(items) <= 7
        got += items
    t.join()
    assert got == list(range(n))
    assert q.empty()


def test_unencodable_object_puts_nothing():
    q = sq.Queue()
    with pytest.raises(Exception) as e:
        q.put_many([1, 2, Unpicklable(), 4])
    assert not hasattr(e.value, "count")
    assert q.empty()


def test_bad_arguments():
    q = sq.Queue()
    with pytest.raises(ValueError):
        q.get_many(0)
    with pytest.raises(TypeError):
        q.get_many("3")
    with pytest.raises(TypeError):
        q.get_many()
    with pytest.raises(TypeError):
        q.put_many(5)
    with pytest.raises(ValueError):
        q.put_many([1], timeout=-1)
    with pytest.raises(ValueError):
        q.get_many(1, timeout=-1)
    with pytest.raises(ValueError):
        q.put_many([1], unbounditems="no such thing")
    assert q.empty()


def test_interpreters_face_has_them():
    q = interpreters.create_queue(2)
    q.put_many([1, 2])
    assert q.get_many(5) == [1, 2]


def test_dropped_result_puts_items_back_in_order():
    """What the get_many() wrapper relies on: the items go back to the
    head of the queue, in order, when the list never reached the caller."""
    q = sq.Queue()
    q.put_many(range(5))
    objs, taken = q._get_many(3, True, None)
    assert objs == [0, 1, 2]
    del objs, taken
    assert q.get_many(10) == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------
# across interpreters, many producers and consumers


def test_across_interpreters(interp):
    q = sq.Queue(4)
    t = interp.call_in_thread(queue_helpers.put_many_once, q, list(range(50)))
    got = []
    while len(got) < 50:
        got += q.get_many(8, timeout=30)
    t.result(timeout=30)
    assert got == list(range(50))
    q.put_many(["back", "again"])
    assert interp.call(queue_helpers.get_many_once, q, 5) == ["back",
                                                              "again"]


@pytest.mark.parametrize("maxsize", [1, 16, 0])
def test_many_producers_and_consumers_lose_nothing(maxsize):
    """4 producer and 4 consumer interpreters on one queue, batches of
    different sizes, single puts and gets mixed in: every item arrives
    exactly once (count and sum)."""
    q = sq.Queue(maxsize)
    n = 3000
    interps = [subinterp.create() for _ in range(8)]
    try:
        ps = [interps[0].call_in_thread(queue_helpers.put_many_chunks,
                                        q, 0, n, 7),
              interps[1].call_in_thread(queue_helpers.put_many_chunks,
                                        q, n, n, 100),
              interps[2].call_in_thread(queue_helpers.put_many_chunks,
                                        q, 2 * n, n, 1),
              interps[3].call_in_thread(queue_helpers.produce, q, 3 * n, n)]
        cs = [interps[4].call_in_thread(queue_helpers.get_many_total,
                                        q, n, 5),
              interps[5].call_in_thread(queue_helpers.get_many_total,
                                        q, n, 64),
              interps[6].call_in_thread(queue_helpers.get_many_total,
                                        q, n, 1)]
        last = interps[7].call_in_thread(queue_helpers.consume, q, n)
        for t in ps:
            t.result(timeout=120)
        results = [c.result(timeout=120) for c in cs]
        total = sum(r[1] for r in results) + last.result(timeout=120)
        assert [r[0] for r in results] == [n, n, n]
        assert total == sum(range(4 * n))
        assert q.empty()
    finally:
        for it in interps:
            it.close()


# ---------------------------------------------------------------------------
# unbound items


def test_unbound_error_item_ends_the_list_and_raises_next():
    q = sq.Queue(unbounditems=sq.UNBOUND_ERROR)
    it = subinterp.create()
    q.put("before")
    it.call(queue_helpers.put_all, q, ["gone"])
    q.put("after")
    it.close()
    assert q.get_many(10) == ["before"]
    with pytest.raises(sq.ItemInterpreterDestroyed):
        q.get_many(10)
    assert q.get_many(10) == ["after"]


def test_unbound_items_are_replaced():
    q = sq.Queue()
    it = subinterp.create()
    it.call(queue_helpers.put_all, q, ["gone", "too"])
    q.put("kept")
    it.close()
    assert q.get_many(10) == [sq.UNBOUND, sq.UNBOUND, "kept"]


def test_put_many_unbounditems_override():
    q = sq.Queue()
    it = subinterp.create()
    it.call(queue_helpers.put_many_once, q, ["removed", "too"], None,
            "UNBOUND_REMOVE")
    it.call(queue_helpers.put_many_once, q, ["replaced"])
    it.close()
    assert q.get_many(10) == [sq.UNBOUND]


# ---------------------------------------------------------------------------
# Ctrl-C and interpreter stop


def test_ctrl_c_interrupts_blocked_get_many():
    q = sq.Queue()
    t = interrupt_main_later(0.2)
    with pytest.raises(KeyboardInterrupt):
        q.get_many(10)
    t.join()
    q.put_many([1, 2])
    assert q.get_many(10) == [1, 2]


def test_ctrl_c_interrupts_blocked_put_many_with_count():
    q = sq.Queue(3)
    t = interrupt_main_later(0.2)
    with pytest.raises(KeyboardInterrupt) as e:
        q.put_many(range(10))
    t.join()
    assert e.value.count == 3
    assert q.get_many(10) == [0, 1, 2]


# the stopped call's ExecutionFailed is uncaught in call_in_thread's thread
# too (threading.excepthook), as with the standard library
@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_interrupt_waits_stops_blocked_get_many_and_put_many():
    q = sq.Queue(2)
    it = subinterp.create()
    try:
        t = it.call_in_thread(queue_helpers.get_many_once, q, 5)
        time.sleep(0.2)                 # parked by now
        subinterp._core._interrupt_waits(it.id)
        with pytest.raises(subinterp.ExecutionFailed, match="SystemExit"):
            t.result(timeout=30)
        with pytest.raises(subinterp.ExecutionFailed, match="SystemExit"):
            it.call(queue_helpers.put_many_once, q, [1, 2, 3, 4], 30)
        # the stopped put_many put what fitted, nothing was taken
        assert q.get_many(10) == [1, 2]
    finally:
        it.close()
