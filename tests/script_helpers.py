"""Running a Python snippet in a fresh process of the Python under test."""

import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# What a crashed process writes to stderr: CPython's fatal error and
# faulthandler, and the sanitizers' reports (under ASan a crash exits with
# status 1, the status of an unhandled exception, so a test that accepts 1
# must look for these).
CRASH_MARKERS = (
    "Fatal Python error",
    "Segmentation fault",
    "ERROR: AddressSanitizer",
    "runtime error:",
)


def crashed(stderr):
    """Whether *stderr* of a process shows a crash (CRASH_MARKERS)."""
    return any(marker in stderr for marker in CRASH_MARKERS)


def run_script(code, timeout=120, env=None):
    """Run dedented *code* with ``python -c``; the repository and tests/ on
    PYTHONPATH (after env's PYTHONPATH, if given), the other variables of
    *env* set.  Returns the CompletedProcess (text output captured)."""
    extra = dict(env or {})
    first = [extra.pop("PYTHONPATH")] if "PYTHONPATH" in extra else []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        first + [os.path.dirname(HERE), HERE, env.get("PYTHONPATH", "")]
    )
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def by_value_off():
    """Functions that cannot cross by reference or as code are refused
    (not sent by value through cloudpickle) for the test's duration."""
    import subinterp

    prev = subinterp.set_functions_by_value(False)
    yield
    subinterp.set_functions_by_value(prev)
