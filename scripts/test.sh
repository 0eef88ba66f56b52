#!/usr/bin/env bash
# Build the extension in place and run the test suite, once per Python.
#
#   scripts/test.sh                 # 3.12 3.13 3.14 3.15
#   scripts/test.sh 3.13 3.15       # some versions
#   scripts/test.sh /path/to/python # any other interpreter, on the host
#
# 3.12 / 3.13 use the venvs and 3.14 / 3.15 the Debian root that
# scripts/setup-pythons.sh makes.  Each build goes to subinterp/ (the .so
# names carry the version tag, so all builds sit side by side) with
#   -Wall -Wextra -Werror -O0 -g3 -UNDEBUG
# and its objects to build/temp-<version>.  The logs are kept in
# build/logs/build-<version>.log and test-<version>.log.
#
# Environment:
#   SUBINTERP_SKIP_VERSIONS="3.14 3.15"  versions to skip.  A version that is
#       neither skipped nor available FAILS the run.
#   PYTEST_ARGS="-x -k queue"  extra pytest arguments (split on blanks).
#   SUBINTERP_TEST_TIMEOUT=900  seconds one version's pytest run may take.
#
# Prints a per-version summary; exits non-zero if any version failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

trap 'printf "\ninterrupted\n" >&2; exit 130' INT
trap 'exit 143' TERM

read -ra pytest_args <<<"${PYTEST_ARGS:-}"
[ -t 1 ] && pytest_args=(--color=yes "${pytest_args[@]}")

[ $# -gt 0 ] || set -- $ALL_VERSIONS
mkdir -p "$REPO/build/logs"

summary=()                 # one line per version
total_passed=0 total_failed=0 total_skipped=0
any_failed= any_tested=

# test_one LABEL WHERE PYTHON: build and test with one interpreter.
test_one() {
    local label=$1 where=$2 py=$3 log t0 t1 t2 rc
    log=$REPO/build/logs/test-$label.log
    any_tested=1
    log "$label: building ($py, $where)"
    t0=$SECONDS
    rc=0
    in_env "$where" env SUBINTERP_CFLAGS="$TEST_CFLAGS" \
        "$py" setup.py build_ext --inplace --build-temp "build/temp-$label" --force 2>&1 \
        | (trap '' INT && exec tee "$REPO/build/logs/build-$label.log") || rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        # Name the first compiler error in the summary.
        summary+=("$(printf '%-6s FAIL  build failed (%ds): %s' "$label" $((SECONDS - t0)) \
            "$(grep -a -m 1 -E ': (fatal )?error: ' "$REPO/build/logs/build-$label.log" || true)")")
        any_failed=1
        return
    fi
    t1=$SECONDS
    log "$label: testing"
    rc=0
    # tee ignores Ctrl-C, so that it passes on everything pytest prints while
    # it stops, and this script waits for run-in-root.sh's unmounting.
    in_env "$where" "${TIMEOUT_CMD[@]}" "$py" -m pytest "${pytest_args[@]}" 2>&1 \
        | (trap '' INT && exec tee "$log") || rc=${PIPESTATUS[0]}
    t2=$SECONDS
    read_pytest_summary "$log"
    total_passed=$((total_passed + n_passed))
    total_failed=$((total_failed + n_failed))
    total_skipped=$((total_skipped + n_skipped))
    if [ "$rc" -eq 0 ]; then
        summary+=("$(printf '%-6s PASS  %s (build %ds, tests %ds)' "$label" "$pytest_summary" $((t1 - t0)) $((t2 - t1)))")
    else
        summary+=("$(printf '%-6s FAIL  %s (build %ds, tests %ds)' "$label" "$(pytest_status "$rc")" $((t1 - t0)) $((t2 - t1)))")
        any_failed=1
    fi
}

unavailable() {
    summary+=("$(printf '%-6s FAIL  not available: %s' "$1" "$2")")
    any_failed=1
}

for arg in "$@"; do
    if [[ $arg == */* ]]; then
        # An interpreter given by path: label it with its version.
        label=$("$arg" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
            || { unavailable "$arg" "cannot run it"; continue; }
        # Absolute, but not resolved: a venv's python is a symlink.
        test_one "$label" host "$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"
    elif skipped "$arg"; then
        summary+=("$(printf '%-6s SKIP  (SUBINTERP_SKIP_VERSIONS)' "$arg")")
    elif resolve_python "$arg"; then
        test_one "$arg" "$where" "$py"
    else
        unavailable "$arg" "$why"
    fi
done

if [ -z "$any_tested" ] && [ -z "$any_failed" ]; then
    summary+=("nothing tested: every version was skipped")
    any_failed=1
fi

printf '\n========================= subinterp test summary =========================\n'
printf '%s\n' "${summary[@]}"
printf 'tests: %d passed, %d failed, %d skipped\n' "$total_passed" "$total_failed" "$total_skipped"
[ -z "$any_failed" ]
