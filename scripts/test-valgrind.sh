#!/usr/bin/env bash
# Run a representative subset of the test suite under valgrind's memcheck,
# on the host's Python 3.12 venv (or the python given as $1), with the
# normal in-place test build (-O0 -g3) and Python's allocator replaced by
# malloc so that memcheck sees every allocation.
#
# The subset: the codec (encoder, decoder, shared buffers), queues,
# channels, select and locks.  Interpreter creation, the pool and the
# stress tests are left to the ASan run: under valgrind every thread runs
# on one core, one at a time, and they would take most of an hour.
#
# Any memcheck error fails the run (--error-exitcode).  Leak checking is
# off: CPython does not free everything at exit (and 3.12 leaks per
# subinterpreter).  valgrind/cpython.supp suppresses reports that are
# CPython's or the C library's own, each with its reason.
#
# Environment: PYTEST_ARGS (extra pytest arguments), SUBINTERP_TEST_TIMEOUT.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

py=${1:-$(host_venv 3.12)/bin/python}
[ -x "$py" ] || die "no $py (run scripts/setup-pythons.sh)"
command -v valgrind >/dev/null 2>&1 || die "no valgrind (run scripts/setup-pythons.sh)"
read -ra pytest_args <<<"${PYTEST_ARGS:-}"
label=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

cd "$REPO"
mkdir -p build/logs
log "valgrind: building with $py"
t0=$SECONDS
SUBINTERP_CFLAGS="$TEST_CFLAGS" "$py" setup.py build_ext --inplace \
    --build-temp "build/temp-$label" >build/logs/build-valgrind.log 2>&1 \
    || { cat build/logs/build-valgrind.log; die "build failed"; }
t1=$SECONDS

log "valgrind: testing (memcheck)"
rc=0
env PYTHONMALLOC=malloc SUBINTERP_SANITIZER=valgrind \
    "${TIMEOUT_CMD[@]}" valgrind --tool=memcheck --error-exitcode=99 \
    --leak-check=no --track-origins=no --num-callers=30 \
    --suppressions="$REPO/valgrind/cpython.supp" -q \
    "$py" -m pytest -q -p no:cacheprovider \
    tests/test_codec.py tests/test_queue.py tests/test_channel.py \
    tests/test_select.py tests/test_sync.py "${pytest_args[@]}" 2>&1 \
    | (trap '' INT && exec tee build/logs/test-valgrind.log) || rc=${PIPESTATUS[0]}
t2=$SECONDS

read_pytest_summary build/logs/test-valgrind.log
printf '\n======================== subinterp valgrind summary ========================\n'
if [ "$rc" -eq 0 ]; then
    printf 'valgrind PASS  %s (build %ds, tests %ds)\n' "$pytest_summary" $((t1 - t0)) $((t2 - t1))
elif [ "$rc" -eq 99 ]; then
    printf 'valgrind FAIL  memcheck errors (see build/logs/test-valgrind.log)\n'
else
    printf 'valgrind FAIL  %s (build %ds, tests %ds)\n' "$(pytest_status "$rc")" $((t1 - t0)) $((t2 - t1))
fi
exit "$rc"
