"""select(): several queues and channel ends at once; exactly one case,
fairness, timeouts, send cases, closing, Ctrl-C, bad input."""

import collections
import signal
import threading
import time

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


def test_receive_case_returns_source_and_item():
    a, b = sq.Queue(), sq.Queue()
    b.put("x")
    assert sq.select([a, b]) == (b, "x")
    assert b.empty()


def test_send_case():
    q = sq.Queue(1)
    src, item = sq.select([(q, 5)])
    assert src is q and item is None
    assert q.get_nowait() == 5
    q.put(0)
    assert sq.select([(q, 6)], timeout=0) is None    # full
    assert q.qsize() == 1


def test_exactly_one_case_fires():
    queues = [sq.Queue() for _ in range(4)]
    for q in queues:
        q.put(q.id)
    src, item = sq.select(queues)
    assert item == src.id
    assert sum(q.qsize() for q in queues) == 3


def test_exactly_one_send_fires():
    a, b = sq.Queue(), sq.Queue()
    src, _ = sq.select([(a, 1), (b, 2)])
    assert a.qsize() + b.qsize() == 1
    assert src.get_nowait() == (1 if src is a else 2)


def test_fair_between_two_always_ready_sources():
    a, b = sq.Queue(), sq.Queue()
    n = 2000
    for i in range(n):
        a.put(i)
        b.put(i)
    counts = collections.Counter()
    for _ in range(n):
        src, _ = sq.select([a, b])
        counts[src.id] += 1
    # random choice: each side gets about half; starvation would give ~0
    assert min(counts.values()) > n // 4, counts


def test_fair_between_two_ready_channels_and_order_kept():
    (r1, s1), (r2, s2) = sq.create_channel(1000), sq.create_channel(1000)
    for i in range(1000):
        s1.send(("one", i))
        s2.send(("two", i))
    seen = {"one": [], "two": []}
    for _ in range(1000):
        _, (name, i) = sq.select([r1, r2])
        seen[name].append(i)
    assert min(len(v) for v in seen.values()) > 250
    for v in seen.values():
        assert v == sorted(v)


def test_timeout_zero_polls():
    a, b = sq.Queue(), sq.Queue()
    t0 = time.monotonic()
    assert sq.select([a, b], timeout=0) is None
    assert time.monotonic() - t0 < 0.5
    b.put(1)
    assert sq.select([a, b], timeout=0) == (b, 1)


def test_timeout():
    a = sq.Queue()
    t0 = time.monotonic()
    assert sq.select([a], timeout=0.05) is None
    assert 0.04 <= time.monotonic() - t0 < 5


def test_blocks_until_one_source_is_ready():
    queues = [sq.Queue() for _ in range(5)]
    t = threading.Timer(0.05, queues[3].put, ("late",))
    t.start()
    assert sq.select(queues, timeout=30) == (queues[3], "late")
    t.join()
    assert all(q.empty() for q in queues)


def test_blocked_send_case_fires_when_receiver_comes():
    recv, send = sq.create_channel()         # rendezvous
    other = sq.Queue()

    def receive_later():
        time.sleep(0.05)
        return recv.recv(timeout=10)

    t = run_in_thread(receive_later)
    src, item = sq.select([other, (send, "to you")], timeout=30)
    t.join(10)
    assert src is send and item is None
    assert t.outcome == ("ok", "to you")


def test_rendezvous_send_cases_complete_one():
    (r1, s1), (r2, s2) = sq.create_channel(), sq.create_channel()
    t1 = run_in_thread(r1.recv, 2)
    t2 = run_in_thread(r2.recv, 2)
    time.sleep(0.05)                    # both receivers are waiting
    src, _ = sq.select([(s1, "a"), (s2, "b")])
    t1.join(10)
    t2.join(10)
    outcomes = sorted([t1.outcome[0], t2.outcome[0]])
    assert outcomes == ["err", "ok"]    # one got it, the other timed out
    winner = t1 if t1.outcome[0] == "ok" else t2
    assert winner.outcome[1] == ("a" if src is s1 else "b")


def test_recv_and_send_on_same_queue():
    q = sq.Queue(1)
    src, item = sq.select([q, (q, 1)])
    assert (src, item) == (q, None)
    src, item = sq.select([q, (q, 2)])
    assert (src, item) == (q, 1)


def test_many_cases_and_duplicates():
    queues = [sq.Queue() for _ in range(40)]
    queues[37].put("deep")
    cases = queues + [queues[0], queues[37]]
    src, item = sq.select(cases, timeout=5)
    assert src is queues[37] and item == "deep"
    t = threading.Timer(0.05, queues[12].put, ("later",))
    t.start()
    assert sq.select(cases, timeout=30) == (queues[12], "later")
    t.join()


def test_concurrent_selects_take_each_item_once():
    queues = [sq.Queue() for _ in range(3)]
    n = 3000
    results = []
    lock = threading.Lock()

    def selector():
        got = []
        while True:
            _, item = sq.select(queues)
            if item is None:
                break
            got.append(item)
        with lock:
            results.extend(got)

    sel = [threading.Thread(target=selector) for _ in range(3)]
    for t in sel:
        t.start()
    for i in range(n):
        queues[i % 3].put(i)
    deadline = time.monotonic() + 60
    while any(q.qsize() for q in queues):   # drained: now stop them
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for _ in sel:
        queues[0].put(None)
    for t in sel:
        t.join(60)
    assert sorted(results) == list(range(n))
    assert all(q.empty() for q in queues)


def test_closed_channel_case_raises_with_source():
    recv, send = sq.create_channel(1)
    q = sq.Queue()
    send.close()
    with pytest.raises(sq.ChannelClosedError) as info:
        sq.select([q, recv])
    assert info.value.source is recv
    with pytest.raises(sq.ChannelClosedError) as info:
        sq.select([q, (send, 1)])
    assert info.value.source is send


def test_close_wakes_blocked_select():
    recv, send = sq.create_channel()
    q = sq.Queue()
    t = threading.Timer(0.05, send.close)
    t.start()
    with pytest.raises(sq.ChannelClosedError):
        sq.select([q, recv], timeout=30)
    t.join()


def test_buffered_items_before_closed():
    recv, send = sq.create_channel(2)
    send.send(1)
    send.close()
    assert sq.select([recv]) == (recv, 1)
    with pytest.raises(sq.ChannelClosedError):
        sq.select([recv])


def test_select_in_other_interpreter():
    chans = [sq.create_channel(1) for _ in range(8)]
    recvs = [r for r, _ in chans]
    it = subinterp.create()
    try:
        t = it.call_in_thread(queue_helpers.select_recv, recvs, 30)
        time.sleep(0.05)
        chans[5][1].send("five")
        assert t.result(timeout=30) == "five"
    finally:
        it.close()


def test_ctrl_c_interrupts_select():
    a, b = sq.Queue(), sq.Queue()
    main = threading.main_thread().ident
    t = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    t.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sq.select([a, b])
    assert time.monotonic() - t0 < 5
    t.join()
    a.put(1)
    assert sq.select([a, b]) == (a, 1)


def test_bad_arguments():
    q = sq.Queue()
    recv, send = sq.create_channel()
    with pytest.raises(ValueError):
        sq.select([])
    with pytest.raises(TypeError):
        sq.select(5)
    with pytest.raises(TypeError):
        sq.select([object()])
    with pytest.raises(TypeError):
        sq.select([send])                 # a send end cannot receive
    with pytest.raises(TypeError):
        sq.select([(recv, 1)])            # a receive end cannot send
    with pytest.raises(TypeError):
        sq.select([(q, 1, 2)])
    with pytest.raises(ValueError):
        sq.select([q], timeout=-1)
    with pytest.raises(TypeError):
        sq.select([q], timeout="1")


class Unpicklable:
    def __reduce__(self):
        raise TypeError("no")


def test_unencodable_send_case_sends_nothing():
    a, b = sq.Queue(), sq.Queue()
    with pytest.raises(Exception):
        sq.select([(a, 1), (b, Unpicklable())])
    assert a.empty() and b.empty()


def test_timeouts_racing_hand_offs_lose_nothing():
    """Selects with tiny random timeouts over random subsets of queues and
    rendezvous channels, racing producers: cancellations and hand-offs
    cross all the time; every item arrives exactly once."""
    import random

    queues = [sq.Queue() for _ in range(3)]
    chans = [sq.create_channel() for _ in range(2)]
    sources = queues + [r for r, _ in chans]
    n_per_producer = 1500
    got = []
    lock = threading.Lock()
    done = threading.Event()

    def producer(k):
        rnd = random.Random(k)
        for i in range(n_per_producer):
            item = (k, i)
            if k < 3:
                queues[rnd.randrange(3)].put(item)
            else:
                while True:             # rendezvous: needs a receiver
                    try:
                        chans[k - 3][1].send(item, timeout=0.001)
                        break
                    except TimeoutError:
                        pass

    def consumer(seed):
        rnd = random.Random(seed)
        mine = []
        while not done.is_set() or any(q.qsize() for q in queues):
            cases = rnd.sample(sources, rnd.randrange(1, len(sources) + 1))
            res = sq.select(cases, timeout=rnd.choice([0, 0.0001, 0.001]))
            if res is not None:
                mine.append(res[1])
        with lock:
            got.extend(mine)

    producers = [threading.Thread(target=producer, args=(k,))
                 for k in range(5)]
    consumers = [threading.Thread(target=consumer, args=(s,))
                 for s in range(3)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join(120)
    done.set()
    for t in consumers:
        t.join(120)
    expected = [(k, i) for k in range(5) for i in range(n_per_producer)]
    assert sorted(got) == expected


@pytest.mark.parametrize("first_is_send", [True, False])
def test_send_object_that_empties_the_cases_list(first_is_send):
    """select() parses its cases from a snapshot: a send case's object
    whose pickling empties the caller's list (and so frees the queues it
    held, but for the snapshot) cannot free what the cases before it
    borrow."""
    import gc

    cases = []

    class Clear:
        def __reduce__(self):
            cases.clear()
            gc.collect()
            return (int, (1,))

    target = sq.Queue(1)
    if first_is_send:
        cases[:] = [(target, Clear())] + [sq.Queue() for _ in range(50)]
    else:
        cases[:] = [sq.Queue(), (target, Clear())]
    tid = target.id
    del target
    source, value = subinterp.select(cases, timeout=5)
    assert cases == []
    assert value is None and source.id == tid
    assert source.get_nowait() == 1
