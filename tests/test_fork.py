"""os.fork() with subinterp's objects alive in the parent.

A child forked while pools run and threads are blocked in subinterp's
waits (get, acquire, recv) can make new interpreters, pools and queues and
exits cleanly; the parent's waiters and pools carry on.  (A child forked
while interpreters from ``subinterp.create()`` are alive cannot survive
CPython's own clean-up: it exits with status 70, see test_interp.py and
docs/design.md.)
"""

import os
import sys

import pytest

from script_helpers import run_script

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")

SCRIPT = """
import os, sys, threading, time, warnings
import multiprocessing as mp
import subinterp
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads

q = subinterp.Queue()
lock = subinterp.Lock()
lock.acquire()
r, s = subinterp.create_channel()
got = []
threads = [threading.Thread(target=lambda: got.append(q.get())),
           threading.Thread(target=lambda: got.append(lock.acquire())),
           threading.Thread(target=lambda: got.append(r.recv()))]
for t in threads:
    t.start()
pool = subinterp.Pool(2)
assert pool.submit(abs, -1).result() == 1
time.sleep(0.2)          # the threads are parked in their waits

pid = os.fork()
if pid == 0:
    code = 1
    try:
        i = subinterp.create()
        assert i.call(abs, -5) == 5
        i.close()
        with subinterp.Pool(1) as p2:
            assert p2.submit(abs, -2).result() == 2
        q2 = subinterp.Queue()
        q2.put(1)
        assert q2.get() == 1
        print("child ok", flush=True)
        code = 0
    finally:
        os._exit(code) if code else None
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print("child status", os.waitstatus_to_exitcode(status), flush=True)

if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as mpp:
        print(mpp.map(abs, [-1, -2]), flush=True)
    q.put("item")
    s.send("msg")
    lock.release()
    for t in threads:
        t.join()
    print(sorted(map(str, got)), pool.submit(abs, -3).result(), flush=True)
    pool.shutdown()
"""


def test_fork_with_pools_and_blocked_waiters():
    res = run_script(SCRIPT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "child ok",
        "child status 0",
        "[1, 2]",
        "['True', 'item', 'msg'] 3",
    ], res.stdout + res.stderr
    assert res.stderr == ""


CHURN = """
import os, sys, threading, warnings
import subinterp
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads

# Threads that keep taking every kind of mutex of subinterp: the object
# registry and object mutexes (new queues, puts and gets, locks), the
# shared-buffer registry (memoryviews through a queue) and the pools'.
stop = threading.Event()
pool = subinterp.Pool(1)

def objects():
    while not stop.is_set():
        q = subinterp.Queue()
        q.put(memoryview(bytearray(100_000)))
        q.get().release()
        lock = subinterp.Lock()
        with lock:
            pass

def pools():
    while not stop.is_set():
        pool.submit(abs, -1).result()

threads = [threading.Thread(target=objects), threading.Thread(target=objects),
           threading.Thread(target=pools)]
for t in threads:
    t.start()
statuses = []
for _ in range(10):
    pid = os.fork()
    if pid == 0:
        # every mutex is usable in the child: none was left held
        q = subinterp.Queue()
        q.put(memoryview(bytearray(100_000)))
        q.get().release()
        with subinterp.Lock():
            pass
        with subinterp.Pool(1) as p:
            p.submit(abs, -2).result()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    statuses.append(os.waitstatus_to_exitcode(status))
stop.set()
for t in threads:
    t.join()
pool.shutdown()
print(statuses)
"""


def test_fork_while_threads_take_every_mutex():
    # A mutex of ours held by another thread at the fork would stay held
    # in the child for ever: the child would hang (and time out here).
    res = run_script(CHURN, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [str([0] * 10)], res.stdout + res.stderr
