#!/usr/bin/env bash
# Build the extension with release flags and run the benchmarks:
#
#   scripts/bench.sh           # the newest Python available (3.15 first)
#   scripts/bench.sh 3.13      # a given version
#
# Runs `python -m subinterp bench $BENCH_ARGS` (default: all), in the Debian
# root for 3.14 / 3.15.  Versions in SUBINTERP_SKIP_VERSIONS are not picked.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

read -ra bench_args <<<"${BENCH_ARGS:-all}"
[ -f "$REPO/subinterp/__main__.py" ] \
    || die "subinterp/__main__.py does not exist yet: no 'python -m subinterp bench'"

if [ $# -gt 0 ]; then
    ver=$1
    resolve_python "$ver" || die "Python $ver: $why"
else
    ver=
    for candidate in $(printf '%s\n' $ALL_VERSIONS | sort -rV); do
        if ! skipped "$candidate" && resolve_python "$candidate"; then
            ver=$candidate
            break
        fi
    done
    [ -n "$ver" ] || die "no Python available (run scripts/setup-pythons.sh)"
fi

# Release build: Python's own flags (-O2, asserts off), in place.  It
# replaces the test build of the same version in subinterp/.
log "bench: building for $ver ($py, $where)"
in_env "$where" env -u SUBINTERP_CFLAGS -u SUBINTERP_LDFLAGS \
    "$py" setup.py build_ext --inplace --build-temp "build/temp-$ver-release" --force
# Byte-compile the package, as installing it does: every new interpreter
# imports subinterp, and without .pyc files (PYTHONDONTWRITEBYTECODE, a
# read-only checkout) each would parse and compile its source again.
in_env "$where" "$py" -m compileall -q subinterp >/dev/null
log "bench: python$ver -m subinterp bench ${bench_args[*]}"
in_env "$where" "$py" -m subinterp bench "${bench_args[@]}"
