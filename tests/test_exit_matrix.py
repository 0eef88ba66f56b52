"""Exit with subinterp's objects alive, every way a program can end.

Each case is a script that sets up some state (live interpreters, a pool
mid-task, threads blocked in a wait of subinterp's, zero-copy views) and
then ends: by returning, ``sys.exit(3)``, an unhandled exception, SIGINT
or SIGTERM.  The process must end with the status that way of ending
gives, within the subprocess timeout, without a crash and without a
message about leaked or remaining state.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from script_helpers import CRASH_MARKERS

HERE = os.path.dirname(os.path.abspath(__file__))

# What every state script starts with.
PRELUDE = """
import subinterp, sys, threading, time
def in_thread(interp, code):
    # a (non-daemon) thread of that interpreter, blocked in `code`
    interp.exec("import threading\\n"
                f"threading.Thread(target=lambda: {code}).start()")
"""

STATES = {
    "idle interpreters": """
        keep = [subinterp.create() for _ in range(3)]
        keep[0].exec("x = 1")
    """,
    "pool mid-task": """
        pool = subinterp.Pool(2)
        futs = [pool.submit(time.sleep, 0.3) for _ in range(4)]
        futs[0].result()
    """,
    "daemon thread of main blocked in get": """
        q = subinterp.Queue()
        threading.Thread(target=q.get, daemon=True).start()
    """,
    "thread of an interpreter blocked in get": """
        q = subinterp.Queue()
        i = subinterp.create()
        i.prepare_main(q=q)
        in_thread(i, "q.get()")
    """,
    "thread of an interpreter blocked in recv": """
        r, s = subinterp.create_channel()
        i = subinterp.create()
        i.prepare_main(r=r, s=s)
        in_thread(i, "r.recv()")
    """,
    "thread of an interpreter blocked in acquire": """
        lock = subinterp.Lock()
        lock.acquire()
        i = subinterp.create()
        i.prepare_main(lock=lock)
        in_thread(i, "lock.acquire()")
    """,
    "thread of an interpreter blocked in select": """
        q = subinterp.Queue()
        r, s = subinterp.create_channel()
        i = subinterp.create()
        i.prepare_main(q=q, r=r)
        in_thread(i, "__import__('subinterp').select([q, r])")
    """,
    "threads of interpreters blocked in Barrier.wait": """
        b = subinterp.Barrier(3)
        its = [subinterp.create() for _ in range(2)]
        for i in its:
            i.prepare_main(b=b)
            in_thread(i, "b.wait()")
    """,
    "zero-copy views both ways": """
        buf = bytearray(1 << 20)
        i = subinterp.create()
        i.prepare_main(sb=subinterp.share(buf, writable=True))
        i.exec("m = memoryview(sb); m[0] = 7")
        q = subinterp.Queue()
        i.prepare_main(q=q)
        i.exec("import subinterp\\n"
               "own = bytearray(b'x' * (1 << 20))\\n"
               "q.put(subinterp.share(own))")
        view = memoryview(q.get())
        assert buf[0] == 7 and view[0] == ord("x")
    """,
}

# How the script ends: (code, signal to send after "ready", expected status)
ENDINGS = {
    "return": ("print('ready', flush=True)", None, (0,)),
    "sys.exit(3)": ("print('ready', flush=True); sys.exit(3)", None, (3,)),
    "unhandled exception": (
        "print('ready', flush=True); raise RuntimeError('boom')", None, (1,)),
    # blocked in a wait of subinterp's when the signal comes: Ctrl-C must
    # reach it; an unhandled KeyboardInterrupt ends the process by SIGINT
    "SIGINT": ("print('ready', flush=True); subinterp.Queue().get()",
               signal.SIGINT, (-signal.SIGINT, 130)),
    "SIGTERM": ("print('ready', flush=True); subinterp.Queue().get()",
                signal.SIGTERM, (-signal.SIGTERM,)),
}

FORBIDDEN = CRASH_MARKERS + (
    "remaining subinterpreters",
    "not the last thread",
    "Exception ignored",
    "leak",
    "stopped at exit",
)


def run_case(state, ending):
    code, sig, statuses = ENDINGS[ending]
    script = (textwrap.dedent(PRELUDE) + textwrap.dedent(STATES[state])
              + "\n" + code + "\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), HERE, env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        if sig is not None and line == "ready\n":
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"hung: {state} / {ending}\n{err[-3000:]}")
    return line + out, err, proc.returncode, statuses


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("state", list(STATES))
def test_exit(state, ending):
    out, err, status, statuses = run_case(state, ending)
    assert out.startswith("ready\n"), (out, err[-3000:])
    assert status in statuses, (status, err[-3000:])
    for text in FORBIDDEN:
        assert text not in err, err[-3000:]
    if ending == "unhandled exception":
        assert "RuntimeError: boom" in err
    elif ending == "SIGINT":
        assert "KeyboardInterrupt" in err
    elif ending != "SIGTERM":
        assert err == "", err[-3000:]
