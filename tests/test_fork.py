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
