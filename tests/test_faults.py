"""Allocation failures at every point of the codec, queues, channels,
calls, the pool and locks leave everything consistent and usable.

tests/fault_calls.py does the work in a subprocess, so a crash fails this
test with the step that caused it instead of killing the run.
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import _testcapi
    HAVE_NOMEMORY = hasattr(_testcapi, "set_nomemory")
except ImportError:
    HAVE_NOMEMORY = False

OPS = ["codec", "queue", "shared queue", "channel", "call", "pool", "lock"]


@pytest.mark.skipif(not HAVE_NOMEMORY,
                    reason="needs CPython's _testcapi.set_nomemory")
@pytest.mark.parametrize("op", OPS)
def test_allocation_failure_at_every_point(op):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "faulthandler",
             os.path.join(HERE, "fault_calls.py"), "200", op],
            capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        pytest.fail(f"hung after: {out.strip().splitlines()[-1:]}")
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, (
        f"status {proc.returncode} after {lines[-1:]}\n{proc.stderr[-3000:]}")
    assert lines[-1].startswith("DONE"), lines[-1:]
    # the operation did meet failures (the hook works) ...
    injected = int(lines[-1].split()[1])
    assert injected > 0
