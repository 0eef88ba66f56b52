"""Functions the stress tests run inside other interpreters (by reference).

Kept apart from the test modules so that a fresh interpreter importing them
does not import pytest.
"""

import random
from array import array

import subinterp


def produce(q, first, count, batch=1):
    """Put the ints first .. first+count-1 on queue q."""
    put = q.put
    for i in range(first, first + count):
        put(i)
    return count


def consume(q, stop_after, stop_marker=-1):
    """Get ints from q until stop_marker, or until stop_after items (a
    consumer that leaves mid-stream).  Returns (ints, unbound count,
    saw_marker) with the ints packed in an array's bytes."""
    got = array("q")
    append = got.append
    unbound = 0
    get = q.get
    UNBOUND = subinterp.UNBOUND
    n = 0
    while n < stop_after:
        item = get()
        if item is UNBOUND:
            unbound += 1
        elif item == stop_marker:
            return got.tobytes(), unbound, True
        else:
            append(item)
        n += 1
    return got.tobytes(), unbound, False


def send_range(send, first, count):
    for i in range(first, first + count):
        send.send(i)
    return count


def recv_until_closed(recv, stop_after):
    got = array("q")
    append = got.append
    n = 0
    try:
        while n < stop_after:
            append(recv.recv())
            n += 1
    except subinterp.ChannelClosedError:
        return got.tobytes(), True
    return got.tobytes(), False


def task(i):
    if i % 997 == 0:
        raise ValueError(i)
    return i * 2


def square(x):
    return x * x


def churn_sender(sends, first, count, seed):
    """Send ints on random channels of the list; a closed channel is
    skipped (its item goes to the next pick)."""
    rng = random.Random(seed)
    sent = array("q")
    i = first
    end = first + count
    while i < end:
        s = sends[rng.randrange(len(sends))]
        try:
            s.send(i)
        except subinterp.ChannelClosedError:
            continue
        sent.append(i)
        i += 1
    return sent.tobytes()
