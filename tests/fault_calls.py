"""Allocation failures injected at every point of an operation.

For each operation and each k, ``_testcapi.set_nomemory(k, k + 1)`` makes
the k-th allocation from then on fail (every allocator: raw, mem, object,
so both subinterp's own C structures and the Python objects it makes), the
operation runs and may raise ``MemoryError`` (or an exception that wraps
one), the hooks are removed, and the same operation must then work and
give the right result: a failure leaves every structure consistent.

Run as a script by tests/test_faults.py (a crash must not take the test
run with it).  Prints each step before taking it.
"""

import sys

import _testcapi

import subinterp

# "n" makes the encoder's buffer grow several times (dumps() grows its
# result in place)
PAYLOAD = {"a": [1, 2.5, "three", b"four", (5, None)], "b": {"c": list(range(50))},
           "s": "x" * 300, "big": 2**100, "n": list(range(1000, 1600))}


def op_codec():
    data = subinterp.dumps(PAYLOAD)
    assert subinterp.loads(data) == PAYLOAD


def op_queue():
    q = subinterp.Queue()
    q.put(PAYLOAD)
    q.put(1)
    assert q.get() == PAYLOAD
    assert q.get() == 1
    assert q.empty()


QUEUE = subinterp.Queue()


def op_shared_queue():
    # A queue that lives across failures.
    QUEUE.put(PAYLOAD)
    assert QUEUE.get() == PAYLOAD
    assert QUEUE.empty()


def after_shared_queue():
    # Exactly once: a put that failed did not insert its item, a get that
    # failed left its item in the queue.  So after a failure the queue
    # holds nothing, or the one item whose get failed.
    left = []
    while not QUEUE.empty():
        left.append(QUEUE.get_nowait())
    assert left in ([], [PAYLOAD]), left


def op_channel():
    r, s = subinterp.create_channel(4)
    s.send(PAYLOAD)
    assert r.recv() == PAYLOAD
    s.close()


INTERP = None


def op_call():
    assert INTERP.call(sorted, [3, 1, 2]) == [1, 2, 3]


POOL = None


def op_pool():
    # Only the submission runs under the injected failure (the C core's
    # task and message set-up, and the worker picking it up meanwhile):
    # concurrent.futures' own locking is CPython's and is not made to
    # survive a MemoryError half-way through a Condition.wait().
    global POOL
    try:
        fut = POOL.submit(sorted, [3, 1, 2])
    finally:
        _testcapi.remove_mem_hooks()
    try:
        assert fut.result() == [1, 2, 3]
    except subinterp.BrokenInterpreterPool:
        # A worker that could not make or use its interpreter breaks the
        # pool, as a failing initializer does; a new pool works.
        POOL.shutdown()
        POOL = subinterp.Pool(1)
        raise MemoryError("pool broken by an injected failure")


def op_lock():
    lock = subinterp.Lock()
    with lock:
        assert lock.locked()
    assert not lock.locked()


OPS = {
    "codec": op_codec,
    "queue": op_queue,
    "shared queue": op_shared_queue,
    "channel": op_channel,
    "call": op_call,
    "pool": op_pool,
    "lock": op_lock,
}

AFTER_FAILURE = {"shared queue": after_shared_queue}


def main(names, limit):
    global INTERP, POOL
    INTERP = subinterp.create()
    POOL = subinterp.Pool(1)
    # the worker has made its interpreter before any failure is injected
    assert POOL.submit(abs, -1).result() == 1
    failures = 0
    for name in names:
        op = OPS[name]
        op()  # warm: lazily made things exist before the failures start
        for k in range(limit):
            print(f"{name} k={k}", flush=True)
            _testcapi.set_nomemory(k, k + 1)
            try:
                op()
            except BaseException as exc:  # noqa: BLE001
                _testcapi.remove_mem_hooks()
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failures += 1
                if name in AFTER_FAILURE:
                    AFTER_FAILURE[name]()
            else:
                _testcapi.remove_mem_hooks()
            # The process and the objects are usable afterwards.
            op()
    assert POOL.submit(abs, -1).result() == 1
    POOL.shutdown()
    INTERP.close()
    print(f"DONE {failures} injected failures", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    limit = int(args.pop(0)) if args and args[0].isdigit() else 150
    main(args or list(OPS), limit)
