#!/usr/bin/env bash
# The LeakSanitizer run: scripts/test-asan.sh with SUBINTERP_LSAN=1, on
# Python 3.14 in the Debian root (3.12 and 3.13 never free interned
# strings, so leak detection is meaningful from 3.14 on), over the tests of
# the C core: interpreters, calls, the codec, queues, channels, select,
# locks, the pool, exit and fork.  Any leak report of any process (the
# tests' subprocesses included) fails it; see test-asan.sh.  Not part of
# `make test` yet: a few processes still report small leaks whose stacks
# end inside CPython (docs/reliability.md).
#
# Environment: PYTEST_ARGS (extra pytest arguments), SUBINTERP_TEST_TIMEOUT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if skipped 3.14; then
    printf 'lsan   SKIP  (3.14 is in SUBINTERP_SKIP_VERSIONS)\n'
    exit 0
fi
exec "$REPO/scripts/run-in-root.sh" env SUBINTERP_LSAN=1 \
    PYTEST_ARGS="-q -p no:cacheprovider tests/test_interp.py tests/test_codec.py tests/test_queue.py tests/test_channel.py tests/test_select.py tests/test_sync.py tests/test_pool.py tests/test_exit.py tests/test_fork.py ${PYTEST_ARGS:-}" \
    scripts/test-asan.sh /usr/bin/python3.14
