"""Queue: FIFO across interpreters, blocking without polling, unbound
items, Ctrl-C, bad input, lifetimes."""

import asyncio
import gc
import os
import pickle
import queue as stdlib_queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import queue_helpers
import subinterp
from subinterp import _queues as sq
from script_helpers import run_script

HERE = os.path.dirname(os.path.abspath(__file__))


def interrupt_main_later(delay, how="thread"):
    """SIGINT for the main thread after `delay` seconds: sent to the main
    thread itself, or to the process (the kernel picks the main thread)."""

    def fire():
        time.sleep(delay)
        if how == "thread":
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=fire)
    t.start()
    return t


# ---------------------------------------------------------------------------
# basics


def test_fifo_order_and_sizes():
    q = sq.Queue()
    assert q.empty() and not q.full() and q.qsize() == 0
    for i in range(10):
        q.put(i)
    assert q.qsize() == 10 and not q.empty()
    assert [q.get() for _ in range(10)] == list(range(10))
    assert q.empty()


def test_create_queue_and_attributes():
    q = sq.create_queue(3, unbounditems=sq.UNBOUND_ERROR)
    assert q.maxsize == 3
    assert q.unbounditems is sq.UNBOUND_ERROR
    assert isinstance(q.id, int)
    assert sq.Queue().unbounditems is sq.UNBOUND
    assert repr(q) == f"subinterp.Queue(id={q.id}, maxsize=3)"


def test_values_are_copies():
    q = sq.Queue()
    value = {"a": [1, 2, (3, "x")], "b": b"bytes", "c": None, "d": 1.5}
    q.put(value)
    got = q.get()
    assert got == value and got is not value


def test_bounded_full_and_nowait():
    q = sq.Queue(2)
    q.put_nowait(1)
    q.put(2, block=False)
    assert q.full()
    with pytest.raises(sq.QueueFull):
        q.put_nowait(3)
    with pytest.raises(sq.QueueFull):
        q.put(3, block=False)
    assert q.get_nowait() == 1
    q.put_nowait(3)
    assert [q.get(), q.get()] == [2, 3]
    with pytest.raises(sq.QueueEmpty):
        q.get_nowait()
    with pytest.raises(sq.QueueEmpty):
        q.get(block=False)


def test_timeouts():
    q = sq.Queue(1)
    t0 = time.monotonic()
    with pytest.raises(sq.QueueEmpty):
        q.get(timeout=0.05)
    assert 0.04 <= time.monotonic() - t0 < 5
    q.put(1)
    t0 = time.monotonic()
    with pytest.raises(sq.QueueFull):
        q.put(2, timeout=0.05)
    assert 0.04 <= time.monotonic() - t0 < 5
    with pytest.raises(sq.QueueFull):
        q.put(2, timeout=0)
    assert q.get(timeout=0) == 1


def test_exception_hierarchy():
    assert issubclass(sq.QueueEmpty, stdlib_queue.Empty)
    assert issubclass(sq.QueueFull, stdlib_queue.Full)
    for exc in (sq.QueueEmpty, sq.QueueFull, sq.ItemInterpreterDestroyed,
                sq.QueueNotFoundError):
        assert issubclass(exc, sq.QueueError)
    assert issubclass(sq.QueueError, subinterp.InterpreterError)
    q = sq.Queue()
    with pytest.raises(stdlib_queue.Empty):
        q.get_nowait()


def test_public_names():
    if not hasattr(subinterp, "Queue"):
        pytest.skip("subinterp/__init__.py does not re-export queues yet")
    assert subinterp.Queue is sq.Queue
    assert subinterp.QueueEmpty is sq.QueueEmpty
    assert subinterp.UNBOUND is sq.UNBOUND


def test_blocking_get_woken_by_thread():
    q = sq.Queue()
    t = threading.Timer(0.05, q.put, ("late",))
    t.start()
    assert q.get(timeout=10) == "late"
    t.join()


def test_blocking_put_woken_by_get():
    q = sq.Queue(1)
    q.put(1)
    t = threading.Timer(0.05, q.get)
    t.start()
    q.put(2, timeout=10)
    t.join()
    assert q.get_nowait() == 2


def test_many_threads_no_item_lost():
    q = sq.Queue(4)
    n_prod, n_items = 3, 2000
    results = []
    lock = threading.Lock()

    def producer(k):
        for i in range(n_items):
            q.put((k, i))

    def consumer():
        got = []
        while True:
            item = q.get()
            if item is None:
                break
            got.append(item)
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=producer, args=(k,))
               for k in range(n_prod)]
    consumers = [threading.Thread(target=consumer) for _ in range(2)]
    for t in threads + consumers:
        t.start()
    for t in threads:
        t.join()
    for _ in consumers:
        q.put(None)
    for t in consumers:
        t.join()
    assert sorted(results) == sorted(
        (k, i) for k in range(n_prod) for i in range(n_items))
    # per producer, FIFO order is kept
    for k in range(n_prod):
        seen = [i for (kk, i) in results if kk == k]
        assert sorted(seen) == list(range(n_items))


# ---------------------------------------------------------------------------
# across interpreters


def test_handle_crosses_and_is_the_same_queue(interp):
    q = sq.Queue()
    assert interp.call(queue_helpers.queue_id, q) == q.id
    assert interp.call(queue_helpers.same_queue, q, q)
    interp.prepare_main(q=q)
    interp.exec("q.put(('from', 'sub'))")
    assert q.get_nowait() == ("from", "sub")
    back = interp.call(queue_helpers.roundtrip, q)
    # back in this interpreter it is the very object that was sent (one
    # object per queue and type here, as in the standard library)
    assert back is q and hash(back) == hash(q)


def test_queue_inside_queue(interp):
    outer, inner = sq.Queue(), sq.Queue()
    outer.put(inner)
    got = outer.get()
    assert got is inner
    got.put(5)
    assert inner.get_nowait() == 5


def test_get_blocks_until_other_interpreter_puts(interp):
    q = sq.Queue()
    t = interp.call_in_thread(queue_helpers.produce, q, 0, 100)
    assert [q.get(timeout=30) for _ in range(100)] == list(range(100))
    t.result(timeout=30)


def test_ping_pong(interp):
    a, b = sq.Queue(), sq.Queue()
    n = 2000
    t = interp.call_in_thread(queue_helpers.echo, a, b, n)
    for i in range(n):
        a.put(i)
        assert b.get(timeout=30) == i
    t.result(timeout=30)


def test_two_producers_two_consumers():
    q = sq.Queue(16)
    out = sq.Queue()
    interps = [subinterp.create() for _ in range(4)]
    try:
        n = 500
        ts = [interps[0].call_in_thread(queue_helpers.produce, q, 0, n),
              interps[1].call_in_thread(queue_helpers.produce, q, n, n)]
        cs = [interps[2].call_in_thread(queue_helpers.consume, q, n),
              interps[3].call_in_thread(queue_helpers.consume, q, n)]
        for t in ts:
            t.result(timeout=60)
        total = sum(c.result(timeout=60) for c in cs)
        assert total == sum(range(2 * n))
        assert q.empty()
    finally:
        for it in interps:
            it.close()
    del out


# ---------------------------------------------------------------------------
# the two faces of a queue: subinterp.Queue and subinterp.interpreters.Queue


def test_queue_constructor_creates_interpreters_queue_looks_up():
    from subinterp import interpreters

    q = sq.Queue(5)                 # a new queue of maxsize 5
    assert q.maxsize == 5 and q.id != 5
    with pytest.raises(ValueError):
        sq.Queue(-1)
    iq = interpreters.create_queue(-1)
    assert iq.maxsize == -1 and not iq.full()
    assert interpreters.Queue(iq.id) is iq
    with pytest.raises(sq.QueueNotFoundError):
        interpreters.Queue(1_000_000)
    assert repr(iq) == f"Queue({iq.id})"


def test_two_faces_of_one_queue():
    from subinterp import interpreters

    iq = interpreters.create_queue()
    same = [h for h in sq.list_all_queues() if h.id == iq.id]
    assert len(same) == 1
    rich = same[0]
    assert type(rich) is sq.Queue and type(iq) is interpreters.Queue
    # the standard library's face is a subinterp.Queue with another
    # constructor, not the other way round
    assert isinstance(iq, sq.Queue) and not isinstance(rich, interpreters.Queue)
    assert rich.id == iq.id and rich != iq
    rich.put(1)
    assert iq.get_nowait() == 1
    # select takes either face
    iq.put(2)
    assert subinterp.select([iq], timeout=0) == (iq, 2)


def test_queue_cannot_be_subclassed():
    class MyQueue(sq.Queue):
        pass

    with pytest.raises(TypeError, match="cannot be subclassed"):
        MyQueue()


def test_face_kept_across_interpreters(interp):
    from subinterp import interpreters

    iq = interpreters.create_queue()
    rich = sq.Queue()
    types = interp.call(queue_helpers.type_names, [iq, rich])
    assert types == ["subinterp.interpreters.Queue", "subinterp.Queue"]
    assert interp.call(queue_helpers.roundtrip, iq) is iq


def test_handles_table_keeps_nothing_alive():
    from subinterp import interpreters

    iq = interpreters.create_queue()
    qid = iq.id
    rich = sq.Queue()
    rid = rich.id
    del iq, rich
    gc.collect()
    with pytest.raises(sq.QueueNotFoundError):
        interpreters.Queue(qid)
    assert rid not in [h.id for h in sq.list_all_queues()]


# ---------------------------------------------------------------------------
# pickling by id


def test_pickle_by_id():
    q = sq.Queue()
    data = pickle.dumps(q)
    r = pickle.loads(data)
    assert r is q
    del r
    r = pickle.loads(data)
    r.put(1)
    assert q.get_nowait() == 1


def test_pickle_of_freed_queue():
    q = sq.Queue()
    data = pickle.dumps(q)
    del q
    gc.collect()
    with pytest.raises(sq.QueueNotFoundError):
        pickle.loads(data)


def test_list_all_queues():
    q = sq.Queue()
    assert q in sq.list_all_queues()


@pytest.mark.skipif(sys.version_info < (3, 14),
                    reason="concurrent.interpreters is new in 3.14")
def test_stdlib_interpreter_call_passes_queue():
    from concurrent import interpreters

    q = sq.Queue()
    it = interpreters.create()
    try:
        # the queue crosses by pickle (by id) as an argument...
        it.call(queue_helpers.put_stateless, q, 1)
        # stdlib prepare_main takes natively shareable objects only (that
        # registry is private API): pass the pickle, which refers by id
        it.prepare_main(qdata=pickle.dumps(q))
        it.exec("import pickle; pickle.loads(qdata).put(2)")
    finally:
        it.close()
    assert [q.get_nowait() for _ in range(2)] == [1, 2]


# ---------------------------------------------------------------------------
# unbound items


@pytest.mark.parametrize("default", [None, "UNBOUND", "UNBOUND_ERROR",
                                     "UNBOUND_REMOVE"])
def test_unbound_items_queue_default(default):
    if default is None:
        q = sq.Queue()
        default = "UNBOUND"
    else:
        q = sq.Queue(unbounditems=getattr(sq, default))
    q.put("main's")
    it = subinterp.create()
    it.call(queue_helpers.put_all, q, [1, 2])
    q.put("main's again")
    it.close()
    assert q.get_nowait() == "main's"
    if default == "UNBOUND":
        assert q.qsize() == 3
        assert q.get_nowait() is sq.UNBOUND
        assert q.get_nowait() is sq.UNBOUND
    elif default == "UNBOUND_ERROR":
        assert q.qsize() == 3
        for _ in range(2):
            with pytest.raises(sq.ItemInterpreterDestroyed):
                q.get_nowait()
    else:
        assert q.qsize() == 1
    assert q.get_nowait() == "main's again"
    assert q.empty()


def test_unbound_per_put_override():
    q = sq.Queue(unbounditems=sq.UNBOUND_REMOVE)
    it = subinterp.create()
    it.call(queue_helpers.put_all, q, [1], "UNBOUND_ERROR")
    it.call(queue_helpers.put_all, q, [2], "UNBOUND")
    it.call(queue_helpers.put_all, q, [3])            # queue default
    it.close()
    assert q.qsize() == 2
    with pytest.raises(sq.ItemInterpreterDestroyed):
        q.get_nowait()
    assert q.get_nowait() is sq.UNBOUND
    assert q.empty()


def test_unbound_remove_makes_room_for_blocked_put():
    q = sq.Queue(1, unbounditems=sq.UNBOUND_REMOVE)
    it = subinterp.create()
    it.call(queue_helpers.put_all, q, ["x"])
    t = threading.Thread(target=q.put, args=("main",))
    t.start()
    time.sleep(0.05)
    it.close()              # removes "x": the blocked put goes through
    t.join(10)
    assert not t.is_alive()
    assert q.get_nowait() == "main"


def test_unbound_sentinels_repr_and_pickle():
    assert repr(sq.UNBOUND) == "subinterp.UNBOUND"
    assert pickle.loads(pickle.dumps(sq.UNBOUND_ERROR)) is sq.UNBOUND_ERROR


def test_items_of_live_interpreters_stay():
    q = sq.Queue(unbounditems=sq.UNBOUND_REMOVE)
    a, b = subinterp.create(), subinterp.create()
    a.call(queue_helpers.put_all, q, ["a"])
    b.call(queue_helpers.put_all, q, ["b"])
    b.close()
    assert q.get_nowait() == "a"
    assert q.empty()
    a.close()


# ---------------------------------------------------------------------------
# Ctrl-C


@pytest.mark.parametrize("how", ["thread", "process"])
def test_ctrl_c_interrupts_blocked_get(how):
    q = sq.Queue()
    t = interrupt_main_later(0.2, how)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        q.get()
    elapsed = time.monotonic() - t0
    t.join()
    assert elapsed < 5
    # nothing was lost: the queue still works and holds what comes later
    q.put(1)
    assert q.get_nowait() == 1


def test_ctrl_c_interrupts_get_with_timeout_and_blocked_put():
    q = sq.Queue(1)
    t = interrupt_main_later(0.2)
    with pytest.raises(KeyboardInterrupt):
        q.get(timeout=60)
    t.join()
    q.put(0)
    t = interrupt_main_later(0.2)
    with pytest.raises(KeyboardInterrupt):
        q.put(1)
    t.join()
    assert q.get_nowait() == 0
    assert q.empty()


def test_ctrl_c_latency_is_short():
    q = sq.Queue()
    lat = []
    for _ in range(3):
        sent = []

        def fire():
            time.sleep(0.1)
            sent.append(time.monotonic())
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        t = threading.Thread(target=fire)
        t.start()
        with pytest.raises(KeyboardInterrupt):
            q.get()
        lat.append(time.monotonic() - sent[0])
        t.join()
    # the issue asks for 100 ms; allow slack for a loaded machine
    assert min(lat) < 0.1, lat


def test_non_raising_signal_handler_keeps_waiting():
    q = sq.Queue()
    calls = []
    old = signal.signal(signal.SIGUSR1, lambda *a: calls.append(1))
    try:
        def fire():
            time.sleep(0.05)
            signal.pthread_kill(threading.main_thread().ident,
                                signal.SIGUSR1)
            time.sleep(0.1)
            q.put("after the signal")

        t = threading.Thread(target=fire)
        t.start()
        assert q.get(timeout=30) == "after the signal"
        t.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert calls == [1]


def test_ctrl_c_racing_with_puts_loses_nothing():
    """Items and SIGINTs arrive together; every item is received exactly
    once.  The handler raises only while the main loop is inside a C-level
    receive loop (list.extend over islice over iter(q.get, ...)), so an
    interrupt raised by the eval loop between bytecodes cannot drop a
    value that get() had already returned: what is left is get() itself."""
    import itertools

    q = sq.Queue()
    n = 300
    armed = [False]
    interrupts = [0]

    def handler(signum, frame):
        if armed[0]:
            raise KeyboardInterrupt

    def producer():
        main = threading.main_thread().ident
        for i in range(n):
            q.put(i)
            if i % 3 == 0:
                signal.pthread_kill(main, signal.SIGINT)
            time.sleep(0.0005)

    old = signal.signal(signal.SIGINT, handler)
    try:
        got = []
        t = threading.Thread(target=producer)
        t.start()
        while len(got) < n:
            try:
                armed[0] = True
                got.extend(itertools.islice(iter(q.get, None),
                                            n - len(got)))
                armed[0] = False
            except KeyboardInterrupt:
                armed[0] = False
                interrupts[0] += 1
        t.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert got == list(range(n))
    assert q.empty()
    assert interrupts[0] > 0



_RECEIVES = {
    "get": lambda q, r: q.get(),
    "get_timeout": lambda q, r: q.get(timeout=30),
    "get_nowait": lambda q, r: q.get_nowait(),
    "get_many": lambda q, r: q.get_many(10),
    "select": lambda q, r: subinterp.select([q])[1],
    "recv": lambda q, r: r.recv(),
    "recv_nowait": lambda q, r: r.recv_nowait(),
    "get_async": lambda q, r: asyncio.run(q.get_async()),
}


@pytest.mark.parametrize("exc", ["KeyboardInterrupt", "SystemExit"])
@pytest.mark.parametrize("how", list(_RECEIVES))
def test_interrupt_while_an_item_is_decoded_keeps_it(how, exc):
    """A KeyboardInterrupt (a signal handler that raised while an object's
    reconstructor ran) or SystemExit that interrupts the decoding of a
    received item: the item goes back to the head, order kept, as when
    the handler raises after the decoding."""
    recv, send = sq.create_channel(maxsize=2)
    q = sq.Queue()
    key = f"{how}-{exc}"
    first = queue_helpers.RaisesOnceWhenDecoded(key, exc, "first")
    for put in (q.put, send.send_nowait):
        put(first)
        put("second")
    receive = _RECEIVES[how]
    with pytest.raises({"KeyboardInterrupt": KeyboardInterrupt,
                        "SystemExit": SystemExit}[exc]):
        receive(q, recv)
    src = (lambda: recv.recv_nowait()) if how.startswith("recv") else (
        lambda: q.get_nowait())
    assert src() == "first"
    assert src() == "second"



@pytest.mark.parametrize("how", ["for", "async for"])
def test_reconstructor_raising_stopiteration_does_not_end_iteration(how):
    """A StopIteration (or StopAsyncIteration) from a reconstructor would
    end `for x in recv` as if the channel were closed and drained: it
    becomes a RuntimeError (as PEP 479 does in generators)."""
    exc = "StopIteration" if how == "for" else "StopAsyncIteration"
    recv, send = sq.create_channel(maxsize=10)
    for x in [1, queue_helpers.RaisesOnceWhenDecoded(how, exc, 0), 3]:
        send.send_nowait(x)
    got = []

    async def drain():
        async for x in recv:
            got.append(x)

    with pytest.raises(RuntimeError, match=f"decoding the item raised {exc}"):
        if how == "for":
            for x in recv:
                got.append(x)
        else:
            asyncio.run(drain())
    assert got == [1]
    assert recv.recv_nowait() == 3      # consumed, as any decoding error


def test_interrupt_between_an_async_receive_and_its_result_keeps_order():
    """A KeyboardInterrupt raised right after an async get completed at
    once (before its result was taken): the item goes back at once, in
    order, not when the exception is freed."""
    q = sq.Queue()
    q.put("first")
    q.put("second")

    def prof(frame, event, arg):
        if event == "c_return" and getattr(arg, "__name__", "") == "start":
            sys.setprofile(None)
            raise KeyboardInterrupt

    async def main():
        sys.setprofile(prof)
        try:
            return await q.get_async()
        finally:
            sys.setprofile(None)

    with pytest.raises(KeyboardInterrupt) as info:
        asyncio.run(main())
    assert q.get_nowait() == "first"
    assert q.get_nowait() == "second"
    del info


def test_decoding_error_consumes_the_item():
    """An item that fails to decode with an ordinary exception is consumed
    (it would otherwise stay at the head for good); the next one follows."""
    q = sq.Queue()
    q.put(queue_helpers.RaisesOnceWhenDecoded("consumed", "ValueError", 0))
    q.put("next")
    with pytest.raises(ValueError, match="while decoding"):
        q.get()
    assert q.get_nowait() == "next"
    assert q.empty()


class Interrupted(Exception):
    pass


def test_signal_pending_when_item_handed_over_keeps_item():
    """A signal that is pending when get() is handed its item: the handler's
    exception comes from get() itself and the item stays in the queue
    (without that, the eval loop would raise right after get() returned and
    the caller's `x = q.get()` would drop the item)."""
    q = sq.Queue()
    go = threading.Event()

    def helper():
        go.wait()
        time.sleep(0.1)                  # main is blocked in get() by now
        # to this thread: its C handler trips the flag before pthread_kill
        # returns (a process-directed signal could land on any thread and
        # be handled only after the hand-off, which no C code can see)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        q.put("precious")

    def handler(signum, frame):
        raise Interrupted

    old = signal.signal(signal.SIGUSR1, handler)
    t = threading.Thread(target=helper)
    t.start()                            # before the mask: it can take it
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        go.set()
        with pytest.raises(Interrupted):
            x = q.get(timeout=30)
            del x
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR1, old)
        t.join()
    assert q.get_nowait() == "precious"


# The consumer of the signal tests below.  SIGALRM fires at ~5 kHz; while
# `armed`, its handler raises, at any bytecode the eval loop runs handlers
# at (a call returning is one).  Every statement that can see it is inside
# the try, and `armed` is false where a raise would escape it.
SIGNAL_SCRIPT = """
import signal, sys, threading
import subinterp, queue_helpers

N = 50_000


class Alarm(Exception):
    pass


armed = False


def handler(signum, frame):
    if armed:
        raise Alarm


signal.signal(signal.SIGALRM, handler)
got = []
sent = []
finished = threading.Event()


def drain(receive):
    global armed
    while True:
        try:
            if finished.is_set():
                x = receive(False)  # what is left, unarmed
                if x is None:
                    break
            else:
                armed = True
                x = receive(True)
                armed = False
            if type(x) is list:
                got.extend(x)
            elif x is not None:
                got.append(x)
        except Alarm:
            armed = False


if mode == "get":
    q = subinterp.create_queue()
    it = subinterp.create()
    t = it.call_in_thread(queue_helpers.produce, q, 0, N)
    threading.Thread(target=lambda: (t.result(), finished.set())).start()

    def receive(block):
        try:
            return q.get(timeout=0.5) if block else q.get_nowait()
        except subinterp.QueueEmpty:
            return None

    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    drain(receive)
elif mode == "get_many":
    q = subinterp.create_queue()
    it = subinterp.create()
    t = it.call_in_thread(queue_helpers.put_many_chunks, q, 0, N, 10)
    threading.Thread(target=lambda: (t.result(), finished.set())).start()

    def receive(block):
        try:
            if block:
                return q.get_many(7, timeout=0.5)
            return q.get_many(7, block=False)
        except subinterp.QueueEmpty:
            return None

    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    drain(receive)
elif mode == "recv":
    recv, send = subinterp.create_channel(8)

    def produce():
        for i in range(N):
            send.send(i)
        finished.set()

    threading.Thread(target=produce).start()

    def receive(block):
        return recv.recv(timeout=0.5) if block else recv.recv_nowait(None)

    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    drain(receive)
elif mode == "select":
    qs = [subinterp.create_queue(), subinterp.create_queue()]

    def produce():
        for i in range(N):
            qs[i % 2].put(i)
        finished.set()

    threading.Thread(target=produce).start()

    def receive(block):
        res = subinterp.select(qs, timeout=0.5 if block else 0)
        return None if res is None else res[1]

    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    drain(receive)
    got.sort()
elif mode == "put":
    # a bounded queue: puts often wait, and are interrupted there
    q = subinterp.create_queue(maxsize=1)
    it = subinterp.create()
    t = it.call_in_thread(queue_helpers.get_n, q, N, 30)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    i = 0
    while True:
        try:
            if i == N:
                break
            armed = True
            q.put(i, timeout=30)
            armed = False
            i += 1
        except Alarm:
            armed = False  # not put: again
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    got = t.result()
elif mode == "put_many":
    # a bounded queue: the batches wait for room and are interrupted
    # there; what went in before the exception is its count
    q = subinterp.create_queue(maxsize=3)
    it = subinterp.create()
    t = it.call_in_thread(queue_helpers.get_n, q, N, 30)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    i = 0
    while True:
        try:
            if i == N:
                break
            armed = True
            q.put_many(range(i, min(N, i + 10)), timeout=30)
            armed = False
            i = min(N, i + 10)
        except Alarm as e:
            armed = False
            i += getattr(e, "count", 0)  # went in: the rest again
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    got = t.result()
elif mode in ("send", "select-send"):
    # a rendezvous channel: every send waits for the receiver, and is
    # interrupted there or as it returns; one that raised did not send
    recv, send = subinterp.create_channel(0)
    it = subinterp.create()
    t = it.call_in_thread(queue_helpers.recv_all, recv)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    i = 0
    while True:
        try:
            if i == N:
                break
            armed = True
            if mode == "send":
                send.send(i, timeout=30)
            else:
                subinterp.select([(send, i)], timeout=30)
            armed = False
            i += 1
        except Alarm:
            armed = False  # not sent: again
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    send.close()
    got = t.result()
signal.setitimer(signal.ITIMER_REAL, 0, 0)
missing = sorted(set(range(N)) - set(got))
print(len(got), got == list(range(N)), missing[:5])
"""


@pytest.mark.parametrize(
    "mode", ["get", "get_many", "recv", "select", "put", "put_many",
             "send", "select-send"])
def test_raising_signal_handler_never_loses_or_doubles_items(mode):
    """A handler that raises while items move (queue get and get_many,
    channel recv, select, a put or put_many that waits on a full queue, a
    send or a select send on a rendezvous channel): every item is
    delivered exactly once and in order -- one taken is put back at the
    head when the handler raises, a put or send that raised did not put
    or send, a put_many that raised put `count` objects."""
    res = run_script(f"mode = {mode!r}\n" + SIGNAL_SCRIPT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "50000 True []\n", res.stdout


# the stopped call's ExecutionFailed is uncaught in call_in_thread's thread
# too (threading.excepthook), as with the standard library
@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_interrupt_waits_stops_blocked_interpreter():
    """What the exit handler and pools use: a thread parked in get() inside
    another interpreter never sees an asynchronous exception, so
    wait_interrupt_interp() wakes it with SystemExit."""
    q = sq.Queue()
    it = subinterp.create()
    try:
        t = it.call_in_thread(queue_helpers.get_n, q, 1)
        time.sleep(0.2)                 # parked by now
        subinterp._core._interrupt_waits(it.id)
        with pytest.raises(subinterp.ExecutionFailed, match="SystemExit"):
            t.result(timeout=30)
        # later waits there stop at once, until the interpreter is gone
        with pytest.raises(subinterp.ExecutionFailed, match="SystemExit"):
            it.call(queue_helpers.get_n, q, 1, 30)
        q.put("kept")                   # nothing was taken
        assert q.get_nowait() == "kept"
    finally:
        it.close()


# ---------------------------------------------------------------------------
# bad input


def test_bad_arguments():
    with pytest.raises(ValueError):
        sq.Queue(-1)
    with pytest.raises(TypeError):
        sq.Queue("3")
    with pytest.raises(TypeError):
        sq.Queue(1.5)
    with pytest.raises(ValueError):
        sq.Queue(unbounditems="nope")
    with pytest.raises(TypeError):
        sq.create_queue(0, sq.UNBOUND)   # keyword only
    q = sq.Queue()
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    with pytest.raises(ValueError):
        q.put(1, timeout=-0.5)
    with pytest.raises(TypeError):
        q.get(timeout="1")
    with pytest.raises(ValueError):
        q.get(timeout=float("nan"))
    with pytest.raises(ValueError):
        q.put(1, unbounditems=object())
    assert q.empty()


class Unpicklable:
    def __reduce__(self):
        raise TypeError("no pickling for you")


def test_unencodable_item_never_enters():
    q = sq.Queue()
    with pytest.raises(Exception):
        q.put([1, 2, Unpicklable()])
    with pytest.raises(Exception):
        q.put_nowait({"k": (1, Unpicklable())})
    assert q.qsize() == 0
    q.put("fine")
    assert q.get_nowait() == "fine"


def test_not_instantiable_sentinels():
    with pytest.raises(TypeError):
        type(sq.UNBOUND)()


# ---------------------------------------------------------------------------
# lifetimes


def test_freed_when_last_handle_goes(interp):
    q = sq.Queue()
    qid = q.id
    interp.prepare_main(q=q)
    del q
    gc.collect()
    assert qid in subinterp._core._list_queue_ids()   # held by interp
    interp.exec("del q")
    assert qid not in subinterp._core._list_queue_ids()


def test_queue_held_only_by_a_message_stays_alive():
    outer = sq.Queue()
    inner = sq.Queue()
    inner.put("kept")
    iid = inner.id
    outer.put(inner)
    del inner
    gc.collect()
    assert iid in subinterp._core._list_queue_ids()
    assert outer.get().get_nowait() == "kept"
    gc.collect()
    assert iid not in subinterp._core._list_queue_ids()


def queue_ids():
    return subinterp._core._list_queue_ids()


@pytest.mark.parametrize(
    "item", [lambda q: q, lambda q: [q, q, "x"], lambda q: {"me": q}]
)
def test_queue_holding_a_handle_to_itself_is_freed(item):
    q = sq.Queue()
    qid = q.id
    q.put("before")
    q.put(item(q))
    q.put("after")
    del q
    gc.collect()
    assert qid not in queue_ids()
    with pytest.raises(sq.QueueNotFoundError):
        subinterp._core._handle_by_id(qid, 10)


def test_queues_freed_along_a_chain_of_self_holding():
    # q1 holds itself and the only handle to q2, which holds itself
    q1, q2 = sq.Queue(), sq.Queue()
    ids = {q1.id, q2.id}
    q2.put(q2)
    q1.put((q1, q2))
    del q1, q2
    gc.collect()
    assert not ids & set(queue_ids())


def test_queue_holding_itself_still_delivers():
    q = sq.Queue()
    qid = q.id
    q.put(q)
    q.put("x")
    # a handle elsewhere (a message in another queue, another
    # interpreter) keeps it and its items
    outer = sq.Queue()
    outer.put(q)
    del q
    gc.collect()
    assert qid in queue_ids()
    q = outer.get_nowait()
    assert q.get_nowait() == q
    assert q.get_nowait() == "x"
    q.put(q)
    it = subinterp.create()
    try:
        it.prepare_main(q=q)
        del q
        gc.collect()
        assert qid in queue_ids()
        it.exec("assert q.get_nowait() == q\nq.put(q)\nq.put('y')")
        it.exec("del q")
        gc.collect()
        assert qid not in queue_ids()
    finally:
        it.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_with_blocked_waiter_leaves_usable_child():
    code = textwrap.dedent("""
        import os, threading, time, warnings
        from subinterp import _queues as sq
        warnings.simplefilter("ignore", DeprecationWarning)
        q, lock = sq.Queue(), sq.Lock()
        t = threading.Thread(target=q.get)   # blocked while we fork
        t.start()
        time.sleep(0.1)
        pid = os.fork()
        if pid == 0:
            q.put(1)                 # no waiter in the child: buffered
            assert q.get_nowait() == 1
            with lock:
                pass
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        q.put("wake")
        t.join()
        print(os.waitstatus_to_exitcode(status))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120, cwd=os.path.dirname(HERE))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("SUBINTERP_SANITIZER")),
                    reason="ASan keeps freed memory in quarantine")
def test_create_drop_cycles_keep_rss_flat():
    code = textwrap.dedent("""
        import gc, subinterp
        from subinterp import _queues as sq
        def rss():
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * 4096
        def cycle(n):
            for i in range(n):
                q = sq.Queue(2)
                q.put(i)
                q.put((i, 'x' * 10))
                q.get()
                r, s = sq.create_channel(1)
                s.send_nowait(i)
                l = sq.Lock()
                l.acquire()
        cycle(10000)
        gc.collect()
        before = rss()
        cycle(100000)
        gc.collect()
        print(rss() - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=600, cwd=os.path.dirname(HERE))
    assert out.returncode == 0, out.stderr
    growth = int(out.stdout.strip())
    assert growth < 2 * 1024 * 1024, growth
