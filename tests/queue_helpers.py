"""Functions the queue, channel, select and sync tests run inside other
interpreters (by reference: new interpreters start with our sys.path).

Kept apart from the test modules so that importing them in a fresh
interpreter does not import pytest.
"""

import subinterp
from subinterp import _queues


def echo(src, dst, n):
    """Move n items from src to dst (queues)."""
    for _ in range(n):
        dst.put(src.get())


def echo_channel(recv, send):
    """Send back every item received until the channel closes."""
    count = 0
    for item in recv:
        send.send(item)
        count += 1
    return count


def put_all(q, items, unbounditems=None):
    for item in items:
        if unbounditems is None:
            q.put(item)
        else:
            q.put(item, unbounditems=getattr(_queues, unbounditems))


def type_names(objs):
    return [f"{type(o).__module__}.{type(o).__qualname__}" for o in objs]


def put_stateless(q, item):
    """No globals, no closure: the stdlib's Interpreter.call takes it."""
    q.put(item)


def get_n(q, n, timeout=None):
    return [q.get(timeout=timeout) for _ in range(n)]


def produce(q, start, n):
    for i in range(start, start + n):
        q.put(i)


def consume(q, n):
    total = 0
    for _ in range(n):
        total += q.get()
    return total


def send_all(send, items, close=False):
    for item in items:
        send.send(item)
    if close:
        send.close()


def recv_all(recv):
    return list(recv)


def recv_n(recv, n):
    return [recv.recv() for _ in range(n)]


def queue_id(q):
    return q.id


def same_queue(q, r):
    return q == r and hash(q) == hash(r)


def roundtrip(obj):
    return obj


def select_recv(cases, timeout=None):
    res = subinterp._queues.select(cases, timeout)
    return None if res is None else res[1]


def acquire_and_keep(lock):
    """Acquire and return: the lock stays held by this interpreter."""
    return lock.acquire()


def acquire_release(lock, n, counter_q):
    for _ in range(n):
        with lock:
            value = counter_q.get()
            counter_q.put(value + 1)


def event_wait(event, timeout=None):
    return event.wait(timeout)


def barrier_wait(barrier, timeout=None):
    return barrier.wait(timeout)


def sem_acquire(sem, timeout=None):
    return sem.acquire(timeout=timeout)


def release(lock):
    lock.release()


def exclusive_sections(lock, holders, n):
    """n critical sections under lock; returns how many times another
    holder was seen inside (0 if the lock excludes)."""
    overlaps = 0
    for _ in range(n):
        with lock:
            holders.put(1)
            if holders.qsize() != 1:
                overlaps += 1
            holders.get()
    return overlaps


def rlock_twice(rlock):
    with rlock:
        with rlock:
            return rlock._is_owned()


def put_many_chunks(q, start, n, chunk):
    """put_many() the ints start .. start + n - 1, chunk at a time."""
    for i in range(start, start + n, chunk):
        q.put_many(range(i, min(start + n, i + chunk)))


def get_many_total(q, n, chunk):
    """get_many() n items, at most chunk at a time: (count, sum, calls)."""
    total = count = calls = 0
    while count < n:
        items = q.get_many(min(chunk, n - count), timeout=60)
        assert 1 <= len(items) <= chunk
        count += len(items)
        total += sum(items)
        calls += 1
    return count, total, calls


def get_many_once(q, max_items, timeout=None):
    return q.get_many(max_items, timeout=timeout)


def put_many_once(q, items, timeout=None, unbounditems=None):
    if unbounditems is not None:
        unbounditems = getattr(_queues, unbounditems)
    q.put_many(items, timeout=timeout, unbounditems=unbounditems)


# An object whose reconstruction raises once, as a signal handler that
# raises (KeyboardInterrupt) while the reconstructor runs would.
_raised = set()


def rebuild_raising_once(key, exc_name, value):
    if key not in _raised:
        _raised.add(key)
        raise {"KeyboardInterrupt": KeyboardInterrupt,
               "SystemExit": SystemExit,
               "StopIteration": StopIteration,
               "StopAsyncIteration": StopAsyncIteration,
               "ValueError": ValueError}[exc_name]("while decoding")
    return value


class RaisesOnceWhenDecoded:
    def __init__(self, key, exc_name, value):
        self.args = (key, exc_name, value)

    def __reduce__(self):
        return (rebuild_raising_once, self.args)
