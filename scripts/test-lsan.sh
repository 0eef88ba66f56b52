#!/usr/bin/env bash
# The LeakSanitizer run: scripts/test-asan.sh with SUBINTERP_LSAN=1, on
# the debug build of Python 3.14 in the Debian root (python3.14d, Debian's
# python3.14-dbg: it has symbols and frame pointers, so every report shows
# whole, named allocation stacks; and 3.12 and 3.13 never free interned
# strings, so leak detection is meaningful from 3.14 on), over the tests
# of the C core: interpreters, calls, the codec, queues, channels, select,
# locks, the pool, exit and fork.  Any leak report of any process (the
# tests' subprocesses included) fails it, except the memory CPython
# abandons in a forked child (scripts/lsan-abandoned.txt; see
# test-asan.sh).
#
# Not run here: the tests whose scripts exit with threads stuck in C
# (FORCE_CLOSED below).  Their interpreters are ended by deleting the
# thread states of those threads from another thread, which CPython's
# debug build forbids by an assertion (unbind_gilstate_tstate); every
# other run (3.12-3.15, ASan, valgrind) runs them.
#
# Environment: PYTEST_ARGS (extra pytest arguments), SUBINTERP_TEST_TIMEOUT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if skipped 3.14; then
    printf 'lsan   SKIP  (3.14 is in SUBINTERP_SKIP_VERSIONS)\n'
    exit 0
fi
FORCE_CLOSED="
tests/test_exit.py::test_exit_with_several_interpreters_stuck_in_c
tests/test_exit.py::test_exit_with_thread_inside_blocked_in_c
tests/test_exit.py::test_close_refuses_when_threads_do_not_stop
tests/test_exit.py::test_ctrl_c_during_close
tests/test_interp.py::test_exit_while_daemon_thread_blocked_in_interpreter
"
deselect=
for t in $FORCE_CLOSED; do
    deselect="$deselect --deselect $t"
done
exec "$REPO/scripts/run-in-root.sh" env SUBINTERP_LSAN=1 \
    PYTEST_ARGS="-q -p no:cacheprovider$deselect tests/test_interp.py tests/test_codec.py tests/test_queue.py tests/test_channel.py tests/test_select.py tests/test_sync.py tests/test_pool.py tests/test_exit.py tests/test_fork.py ${PYTEST_ARGS:-}" \
    scripts/test-asan.sh /usr/bin/python3.14d
