"""Settings for the whole suite."""

import signal

# A shell starts background jobs with SIGINT ignored, and an ignored signal
# stays ignored across exec: Python then installs no KeyboardInterrupt
# handler, and the tests that press Ctrl-C in a child process would wait
# for an exit that never comes.  Give the children Python's usual handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
