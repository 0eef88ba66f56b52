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
# Environment:
#   PYTEST_ARGS   extra pytest arguments (split on blanks)
#   SUBINTERP_TEST_TIMEOUT  seconds the pytest run may take (default 900)
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

work=$REPO/build/asan
mkdir -p "$REPO/build/logs"
log "asan: copying the package and tests to $work"
mkdir -p "$work"
for item in src subinterp tests docs; do
    rm -rf "${work:?}/$item"
    cp -a "$REPO/$item" "$work/$item"
done
for item in setup.py pyproject.toml README.md conftest.py; do
    [ ! -e "$REPO/$item" ] || cp -a "$REPO/$item" "$work/$item"
done
find "$work" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +

log "asan: building with $py"
cd "$work"
t0=$SECONDS
if ! SUBINTERP_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g -UNDEBUG" \
    SUBINTERP_LDFLAGS="-fsanitize=address,undefined" \
    "$py" setup.py build_ext --inplace --build-temp build/temp-asan --force; then
    printf '\nasan   FAIL  build failed (%ds)\n' $((SECONDS - t0))
    exit 1
fi
t1=$SECONDS

log "asan: testing (LD_PRELOAD=$libasan)"
rc=0
# detect_leaks=0: CPython does not free everything at exit.
# allocator_may_return_null=1: a huge allocation gives MemoryError, as it
# does without ASan, instead of aborting.
env LD_PRELOAD="$libasan" \
    PYTHONMALLOC=malloc \
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    SUBINTERP_SANITIZER=address \
    "${TIMEOUT_CMD[@]}" "$py" -m pytest "${pytest_args[@]}" 2>&1 \
    | (trap '' INT && exec tee "$REPO/build/logs/test-asan.log") || rc=${PIPESTATUS[0]}
t2=$SECONDS

read_pytest_summary "$REPO/build/logs/test-asan.log"

printf '\n=========================== subinterp asan summary ===========================\n'
if [ "$rc" -eq 0 ]; then
    printf 'asan   PASS  %s (build %ds, tests %ds)\n' "$pytest_summary" $((t1 - t0)) $((t2 - t1))
else
    printf 'asan   FAIL  %s (build %ds, tests %ds)\n' \
        "$(pytest_status "$rc")" $((t1 - t0)) $((t2 - t1))
fi
printf 'asan: %d passed, %d failed, %d skipped\n' "$n_passed" "$n_failed" "$n_skipped"
exit "$rc"
