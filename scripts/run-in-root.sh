#!/usr/bin/env bash
# Run a command inside the Debian root (python3.14, python3.15), with the
# repository mounted at /src and the command started in /src.
#
#   scripts/run-in-root.sh python3.15 -m pytest -x
#   scripts/run-in-root.sh                  # an interactive shell
#
# Mounts proc on /proc, tmpfs on /dev/shm (multiprocessing needs it) and on
# /tmp, and the repository on /src (SUBINTERP_SRC=DIR mounts another folder);
# all are unmounted again when the command ends, fails or is interrupted.
# Runs under the cache's lock, so two users of the root take turns.
#
# The command gets a clean environment: PATH, HOME, LANG, TERM, plus CI and
# the SUBINTERP_*, PYTEST_*, HYPOTHESIS_*, ASAN/UBSAN and a few PYTHON*
# variables of the caller.  Needs root.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

root_ready || die "no usable Debian root at $ROOT: run scripts/setup-pythons.sh first"
src=$(cd "${SUBINTERP_SRC:-$REPO}" && pwd)

if [ -z "${SUBINTERP_CACHE_LOCKED:-}" ]; then
    lock=$SUBINTERP_CACHE/.lock
    if ! flock -n "$lock" true; then
        log "waiting for another user of $SUBINTERP_CACHE to finish"
    fi
    exec flock -o "$lock" env SUBINTERP_CACHE_LOCKED=1 "$0" "$@"
fi

mounted=()      # what this run mounted, in mount order
cleanup() {
    local i target
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        target=${mounted[i]}
        # A process that outlived the command can keep a mount busy; detach
        # it then (-l) rather than leave it behind.
        umount "$target" 2>/dev/null || umount -l "$target" \
            || printf 'warning: could not unmount %s\n' "$target" >&2
    done
    mounted=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Mounts left by a run that was killed before its trap could run.  We hold
# the lock, so no other run is using them.
unmount_under "$ROOT"

do_mount() {   # do_mount TARGET MOUNT-ARGS...
    local target=$1
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    mounted+=("$target")
}
do_mount "$ROOT/proc" -t proc proc
do_mount "$ROOT/dev/shm" -t tmpfs tmpfs
do_mount "$ROOT/tmp" -t tmpfs -o mode=1777 tmpfs
do_mount "$ROOT/src" --bind "$src"

# The environment inside the root.
envs=(
    HOME=/root
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    LANG=C.UTF-8
    "TERM=${TERM:-dumb}"
)
while IFS= read -r name; do
    envs+=("$name=${!name}")
done < <(compgen -e | grep -E '^(CI|SUBINTERP_[A-Z_]+|PYTEST_[A-Z_]+|HYPOTHESIS_[A-Z_]+|ASAN_OPTIONS|UBSAN_OPTIONS|PYTHONMALLOC|PYTHONFAULTHANDLER|PYTHONDEVMODE|PYTHONHASHSEED|PYTHONWARNINGS)$' || true)

[ $# -gt 0 ] || set -- bash
rc=0
env -i "${envs[@]}" chroot "$ROOT" /bin/sh -c 'cd /src && exec "$@"' sh "$@" || rc=$?
exit "$rc"
