"""Settings for the whole suite."""

import os
import signal

import pytest

# A shell starts background jobs with SIGINT ignored, and an ignored signal
# stays ignored across exec: Python then installs no KeyboardInterrupt
# handler, and the tests that press Ctrl-C in a child process would wait
# for an exit that never comes.  Give the children Python's usual handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# The LeakSanitizer run (scripts/test-asan.sh with SUBINTERP_LSAN=1)
# writes one report file per leaking process into this directory; name
# the test each new report came from beside it (report.PID.test), so that
# a leak can be traced to the test that made it.
_LEAK_LOGS = os.environ.get("SUBINTERP_LEAK_LOGS")

if _LEAK_LOGS:
    @pytest.fixture(autouse=True)
    def _name_leak_reports(request):
        before = set(os.listdir(_LEAK_LOGS))
        yield
        for name in set(os.listdir(_LEAK_LOGS)) - before:
            if name.startswith("report.") and not name.endswith(".test"):
                with open(os.path.join(_LEAK_LOGS, name + ".test"), "w") as f:
                    f.write(request.node.nodeid + "\n")


@pytest.fixture
def interp():
    """A new interpreter, closed after the test unless the test did."""
    import subinterp

    it = subinterp.create()
    yield it
    try:
        it.close()
    except subinterp.InterpreterError:
        pass
