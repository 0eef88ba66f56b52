#!/usr/bin/env bash
# Run the test suite against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of the extension, on the host's Python 3.12 venv (3.13 if 3.12 is in
# SUBINTERP_SKIP_VERSIONS), or on the python given as $1.
#
# The sanitized build lives in build/asan/, a copy of the package, its tests
# and docs (a test runs a doc's example), so the normal in-place build in
# subinterp/ is left alone.  The
# interpreter itself is not instrumented: libasan is preloaded, and Python's
# own allocator is replaced by malloc so that ASan sees every allocation.
#
# With SUBINTERP_LSAN=1 it is the LeakSanitizer run instead: the same
# build (in build/lsan/), leak detection on, every process's report written
# under build/logs/lsan/ beside the name of the test it came from, and any
# leak fails the run but those scripts/lsan-abandoned.txt accepts.  Only
# where CPython frees what it allocated: 3.14 and later (make test runs it
# on python3.14d in the Debian root: scripts/test-lsan.sh).  3.12 and 3.13
# never free interned strings (thousands of reports per process, all
# CPython's).  A deliberate leak is checked to be reported first, so the
# run can fail.
#
# Environment:
#   SUBINTERP_LSAN  1: the LeakSanitizer run
#   PYTEST_ARGS   extra pytest arguments (split on blanks)
#   SUBINTERP_TEST_TIMEOUT  seconds the pytest run may take (default 900)
#   SUBINTERP_LSAN_OPTIONS  more ASAN_OPTIONS for the LeakSanitizer run
#                 (fast_unwind_on_malloc=0 gives whole allocation stacks
#                 through a Python built without frame pointers)
# Tests can tell they run under the sanitizers by SUBINTERP_SANITIZER=address
# (ASan keeps freed memory in quarantine, so RSS-growth checks may need a
# looser bound there).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ $# -gt 0 ]; then
    py=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
    # The oldest host version that is not skipped.
    py=
    for ver in $HOST_VERSIONS; do
        if ! skipped "$ver"; then
            py=$(host_venv "$ver")/bin/python
            break
        fi
    done
    if [ -z "$py" ]; then
        printf 'asan   SKIP  (every host version is in SUBINTERP_SKIP_VERSIONS)\n'
        exit 0
    fi
fi
[ -x "$py" ] || die "no $py (run scripts/setup-pythons.sh)"
read -ra pytest_args <<<"${PYTEST_ARGS:-}"
[ -t 1 ] && pytest_args=(--color=yes "${pytest_args[@]}")

CC=${CC:-gcc}
libasan=$("$CC" -print-file-name=libasan.so)
[ -f "$libasan" ] || die "$CC has no libasan.so (apt-get install gcc)"

lsan=${SUBINTERP_LSAN:-0}
name=asan
[ "$lsan" = 1 ] && name=lsan
work=$REPO/build/$name
mkdir -p "$REPO/build/logs"
log "$name: copying the package and tests to $work"
mkdir -p "$work"
for item in src subinterp tests docs; do
    rm -rf "${work:?}/$item"
    cp -a "$REPO/$item" "$work/$item"
done
for item in setup.py pyproject.toml README.md conftest.py; do
    [ ! -e "$REPO/$item" ] || cp -a "$REPO/$item" "$work/$item"
done
find "$work" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +

log "$name: building with $py"
cd "$work"
t0=$SECONDS
if ! SUBINTERP_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g -UNDEBUG" \
    SUBINTERP_LDFLAGS="-fsanitize=address,undefined" \
    "$py" setup.py build_ext --inplace --build-temp build/temp-asan --force; then
    printf '\n%s   FAIL  build failed (%ds)\n' "$name" $((SECONDS - t0))
    exit 1
fi
t1=$SECONDS

# detect_leaks=0: CPython does not free everything at exit (the LSan run
# checks leaks where it does).
# allocator_may_return_null=1: a huge allocation gives MemoryError, as it
# does without ASan, instead of aborting.
asan_options=detect_leaks=0:allocator_may_return_null=1
leak_logs=$REPO/build/logs/lsan
if [ "$lsan" = 1 ]; then
    # Reports go to files, one per process (tests run scripts in
    # subprocesses and compare their output), and do not change exit
    # statuses: the logs are read at the end.
    rm -rf "$leak_logs"
    mkdir -p "$leak_logs"
    asan_options=detect_leaks=1:allocator_may_return_null=1:exitcode=0:log_path=$leak_logs/report${SUBINTERP_LSAN_OPTIONS:+:$SUBINTERP_LSAN_OPTIONS}
    export LSAN_OPTIONS=exitcode=0
    # The run can fail: a deliberate leak is reported.
    env LD_PRELOAD="$libasan" PYTHONMALLOC=malloc \
        ASAN_OPTIONS="detect_leaks=1:exitcode=0:log_path=$leak_logs/selfcheck" \
        "$py" -c 'import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
for _ in range(10):
    libc.malloc(4321)'
    if ! grep -qs "43210 byte(s) leaked" "$leak_logs"/selfcheck.*; then
        printf '\nlsan   FAIL  LeakSanitizer did not report a deliberate leak\n'
        exit 1
    fi
    rm -f "$leak_logs"/selfcheck.*
fi

log "$name: testing (LD_PRELOAD=$libasan)"
rc=0
env LD_PRELOAD="$libasan" \
    PYTHONMALLOC=malloc \
    ASAN_OPTIONS="$asan_options" \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    SUBINTERP_SANITIZER=address \
    SUBINTERP_LEAK_LOGS="$([ "$lsan" = 1 ] && echo "$leak_logs")" \
    "${TIMEOUT_CMD[@]}" "$py" -m pytest "${pytest_args[@]}" 2>&1 \
    | (trap '' INT && exec tee "$REPO/build/logs/test-$name.log") || rc=${PIPESTATUS[0]}
t2=$SECONDS

read_pytest_summary "$REPO/build/logs/test-$name.log"

leaks=
if [ "$lsan" = 1 ]; then
    # Every report names the test it came from (tests/conftest.py).  A
    # report counts unless its test is listed in lsan-abandoned.txt and it
    # leaks no more than the bytes allowed there.  Crashes count always:
    # with exitcode=0 a crash under ASan (SEGV...) exits with status 0
    # too, so the reports are what tells.
    leaks=0
    for report in "$leak_logs"/report.*; do
        [ -e "$report" ] || continue
        case $report in *.test) continue ;; esac
        test_id=$(cat "$report.test" 2>/dev/null || echo 'test unknown')
        summary=$(grep -h 'SUMMARY' "$report" || grep -m1 'ERROR' "$report" || true)
        bytes=$(sed -n 's/.*SUMMARY: AddressSanitizer: \([0-9]*\) byte(s) leaked.*/\1/p' "$report" | head -1)
        reason=
        if ! grep -q 'ERROR: AddressSanitizer' "$report" && [ -n "$bytes" ]; then
            reason=$(awk -F '\t' -v t="$test_id" -v b="$bytes" \
                '!/^#/ && NF >= 3 && index(t, $1) == 1 && b <= $2 { print $3; exit }' \
                "$REPO/scripts/lsan-abandoned.txt")
        fi
        if [ -n "$reason" ]; then
            printf 'accepted %s (%s): %s\n    %s\n' "$(basename "$report")" \
                "$test_id" "$summary" "$reason"
        else
            printf 'LEAK %s (%s): %s\n' "$(basename "$report")" "$test_id" \
                "$summary"
            leaks=$((leaks + 1))
        fi
        # what leaked, by the innermost frame of CPython or ours
        grep -A6 'leak of' "$report" \
            | sed -n 's/.* in \([A-Za-z_][A-Za-z0-9_]*\) \([^ ]*\)$/      \1 \2/p' \
            | grep -v 'malloc\|_PyMem_\|PyObject_Malloc\|PyMem_Raw\|gc_alloc\|_PyObject_GC_New\|_PyObject_MallocWithType\|asan_' | head -4 || true
    done
    [ "$leaks" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
fi

printf '\n=========================== subinterp %s summary ===========================\n' "$name"
if [ "$rc" -eq 0 ]; then
    printf '%s   PASS  %s (build %ds, tests %ds)\n' "$name" "$pytest_summary" $((t1 - t0)) $((t2 - t1))
elif [ -n "$leaks" ] && [ "$leaks" -gt 0 ]; then
    printf '%s   FAIL  %s leak report(s) in %s (tests: %s)\n' "$name" "$leaks" "$leak_logs" "$pytest_summary"
else
    printf '%s   FAIL  %s (build %ds, tests %ds)\n' "$name" \
        "$(pytest_status "$rc")" $((t1 - t0)) $((t2 - t1))
fi
printf '%s: %d passed, %d failed, %d skipped\n' "$name" "$n_passed" "$n_failed" "$n_skipped"
exit "$rc"
