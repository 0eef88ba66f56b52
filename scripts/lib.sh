# Shared settings and helpers for the scripts in this folder.
# Sourced, not executed:  . "$(dirname "$0")/lib.sh"
#
# Where things live (all outside the repository, reused between runs):
#   $SUBINTERP_CACHE/venv-3.12, venv-3.13   virtual environments made from
#                                           pyenv's CPython 3.12 / 3.13
#   $SUBINTERP_CACHE/sid                    Debian sid root with python3.14
#                                           and python3.15 (GIL builds)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUBINTERP_CACHE=${SUBINTERP_CACHE:-/var/cache/subinterp}
ROOT=$SUBINTERP_CACHE/sid

# Every version the project supports, oldest first.  3.12 and 3.13 come from
# pyenv (host venvs), 3.14 and 3.15 from the Debian root.
ALL_VERSIONS="3.12 3.13 3.14 3.15"
HOST_VERSIONS="3.12 3.13"
ROOT_VERSIONS="3.14 3.15"

# The packages of the Debian root.  Changing this list makes
# setup-pythons.sh rebuild the root (the list is recorded in $ROOT_STAMP).
ROOT_PACKAGES="python3.14,python3.14-dev,python3.14-venv,python3.15,python3.15-dev,python3.15-venv,gcc,make,libc6-dev,python3-pytest,python3-hypothesis,python3-setuptools"
ROOT_STAMP=$ROOT/.subinterp-root-stamp
# Packages that setup-pythons.sh also installs into an existing root when
# they are missing (without rebuilding it): the optional dependencies the
# tests exercise (pure-Python packages of Debian serve every python3.X),
# and python3.14-dbg, the debug build the LeakSanitizer run uses.
ROOT_ADDED_PACKAGES="python3-cloudpickle python3-dask python3-distributed python3-uvloop python3.14-dbg"

# Compiler flags of the test build: warnings are errors, no optimisation,
# asserts on.
TEST_CFLAGS="-Wall -Wextra -Werror -O0 -g3 -UNDEBUG"

# A test run that takes longer than this many seconds is stopped with
# SIGABRT (pytest's faulthandler then prints every thread's stack), so a hang
# fails the run with a diagnosis instead of blocking CI.
TEST_TIMEOUT=${SUBINTERP_TEST_TIMEOUT:-900}
# --foreground: stay in the caller's process group, so Ctrl-C still reaches
# pytest.
TIMEOUT_CMD=(timeout --foreground --signal=ABRT --kill-after=60 "$TEST_TIMEOUT")

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The contents of the root's stamp file: what the root was made from.
root_stamp_text() {
    printf 'suite=sid\nvariant=apt\npackages=%s\n' "$ROOT_PACKAGES"
}

# True when the Debian root exists, is complete and was made from the
# current package list.
root_ready() {
    [ -f "$ROOT_STAMP" ] && [ "$(cat "$ROOT_STAMP")" = "$(root_stamp_text)" ]
}

host_venv() { printf '%s/venv-%s\n' "$SUBINTERP_CACHE" "$1"; }

is_host_version() { case " $HOST_VERSIONS " in *" $1 "*) return 0 ;; esac; return 1; }
is_root_version() { case " $ROOT_VERSIONS " in *" $1 "*) return 0 ;; esac; return 1; }

skipped() { case " ${SUBINTERP_SKIP_VERSIONS:-} " in *" $1 "*) return 0 ;; esac; return 1; }

# resolve_python VERSION: set $where (host or root) and $py (the interpreter
# to run there) for one of the supported versions; when it is not available,
# set $why and return 1.
resolve_python() {
    local ver=$1
    if is_host_version "$ver"; then
        where=host
        py=$(host_venv "$ver")/bin/python
        [ -x "$py" ] || { why="no $py (run scripts/setup-pythons.sh)"; return 1; }
    elif is_root_version "$ver"; then
        where=root
        py=python$ver
        root_ready || { why="no Debian root at $ROOT (run scripts/setup-pythons.sh)"; return 1; }
        [ -x "$ROOT/usr/bin/$py" ] || { why="no $py in $ROOT"; return 1; }
    else
        why="unknown version (supported: $ALL_VERSIONS, or a path to a python)"
        return 1
    fi
}

# in_env WHERE CMD...: run CMD in the repository, on the host (WHERE=host)
# or inside the Debian root (WHERE=root).
in_env() {
    local where=$1
    shift
    if [ "$where" = root ]; then
        "$REPO/scripts/run-in-root.sh" "$@"
    else
        (cd "$REPO" && "$@")
    fi
}

# Mount points (absolute host paths) at or below $1, deepest first.
mounts_under() {
    local dir
    dir=$(readlink -f "$1")
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' \
        /proc/self/mountinfo | sort -r
}

# Unmount everything at or below $1 (leftovers of an interrupted run; only
# call this while holding the cache's lock).
unmount_under() {
    local target
    for target in $(mounts_under "$1"); do
        log "removing stale mount $target"
        umount "$target" 2>/dev/null || umount -l "$target"
    done
}

# rm -rf a directory, refusing if anything is mounted inside it (a leftover
# bind mount of the repository would otherwise be deleted with it).
safe_rm_tree() {
    local dir=$1
    [ -e "$dir" ] || return 0
    if [ -n "$(mounts_under "$dir")" ]; then
        die "refusing to delete $dir: something is mounted inside it:
$(mounts_under "$dir")
unmount it first (umount PATH)"
    fi
    rm -rf --one-file-system "$dir"
}

# read_pytest_summary LOG: read the closing line of a pytest run, e.g.
# "===== 1 failed, 12 passed, 1 skipped in 3.05s =====" (without the "=" under
# -q), into $pytest_summary ("1 failed, 12 passed, 1 skipped") and the counts
# $n_passed (xfailed and xpassed included), $n_failed (errors included) and
# $n_skipped.
read_pytest_summary() {
    local line n word
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" \
        | grep -aE '^(=+ )?([0-9]+ [a-z]+|no tests ran).* in [0-9.]+s( \([0-9:]+\))?( =+)?$' \
        | tail -n 1 || true)
    pytest_summary=$(printf '%s\n' "$line" | sed -E 's/^(=+ )?(.*) in [0-9.]+s.*$/\2/')
    [ -n "$pytest_summary" ] || pytest_summary="no pytest summary"
    n_passed=0 n_failed=0 n_skipped=0
    while read -r n word; do
        case $word in
            passed | xpassed | xfailed) n_passed=$((n_passed + n)) ;;
            failed | error | errors) n_failed=$((n_failed + n)) ;;
            skipped) n_skipped=$((n_skipped + n)) ;;
        esac
    done < <(printf '%s\n' "$line" | grep -oE '[0-9]+ (passed|failed|errors?|skipped|xfailed|xpassed)' || true)
}

# pytest_status RC: what a failed pytest run (exit status RC) did, after
# read_pytest_summary of its log.  A run that printed no closing line died
# before pytest could finish (a crash, a sanitizer report, a signal).
pytest_status() {
    local what
    if [ "$1" -eq 124 ]; then
        echo "timed out after ${TEST_TIMEOUT}s (SUBINTERP_TEST_TIMEOUT); stacks in the log"
        return
    fi
    if [ "$pytest_summary" = "no pytest summary" ]; then
        echo "pytest died (exit $1: crash, sanitizer report or signal; see the log)"
        return
    fi
    case $1 in
        1) what="tests failed" ;;
        2) what="collection error or interrupted" ;;
        3) what="pytest internal error" ;;
        4) what="pytest usage error" ;;
        5) what="no tests collected" ;;
        *) what="pytest exit $1" ;;
    esac
    echo "$what: $pytest_summary"
}
