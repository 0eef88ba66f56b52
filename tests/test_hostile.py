"""Hostile input: every public callable with wrong types and values.

tests/hostile_calls.py does the calls in a subprocess, so that a crash or a
hang fails this test with the name of the call instead of killing the run.
SUBINTERP_LONG=1 tries every pair of values instead of a third of them.
"""

import os
import signal
import subprocess
import sys

import pytest

import subinterp

HERE = os.path.dirname(os.path.abspath(__file__))


def test_every_public_callable_survives_hostile_arguments():
    args = [] if os.environ.get("SUBINTERP_LONG") else ["--quick"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "faulthandler",
             os.path.join(HERE, "hostile_calls.py"), *args],
            capture_output=True, text=True, timeout=600, env=env,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        last = out.strip().splitlines()[-1:] or ["(nothing)"]
        pytest.fail(f"hung after: {last[0]}")
    lines = proc.stdout.strip().splitlines()
    last_call = lines[-1] if lines else "(nothing)"
    assert proc.returncode == 0, (
        f"exit status {proc.returncode} after {last_call}\n"
        f"{proc.stderr[-3000:]}"
    )
    system_errors = [ln for ln in lines if ln.startswith("SYSTEMERROR")]
    assert not system_errors, "\n".join(system_errors)
    assert last_call.startswith("DONE"), last_call


@pytest.mark.parametrize("blocking", [None, (), False, 0])
def test_nonblocking_lock_acquire_with_huge_timeout_raises(blocking):
    # A timeout that does not fit a C long used to leave an OverflowError
    # set while acquire() went on (SystemError).
    for lock in (subinterp.Lock(), subinterp.RLock()):
        with pytest.raises(ValueError, match="non-blocking"):
            lock.acquire(blocking, 2**63)
        assert lock.acquire(blocking, -1) is True
        lock.release()


def test_hostile_calls_are_interruptible():
    # The harness relies on a blocked call being interrupted by a signal
    # handler that raises: check that premise on one call.
    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Stop):
            subinterp.Queue().get()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
