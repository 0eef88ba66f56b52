#!/usr/bin/env bash
# Make every Python the tests need, reusing whatever already exists:
#
#   $SUBINTERP_CACHE/venv-3.12, venv-3.13  venvs from pyenv's newest 3.12.* /
#       3.13.*, with the tools of requirements-test.txt installed
#   $SUBINTERP_CACHE/sid  a Debian sid root (mmdebstrap) with python3.14 and
#       python3.15, gcc and Debian's pytest / hypothesis / setuptools, and
#       the optional dependencies the tests use (cloudpickle, dask)
#
# SUBINTERP_CACHE defaults to /var/cache/subinterp.  Safe to run again and
# again: when everything is present it only checks and returns in a second.
# Versions listed in SUBINTERP_SKIP_VERSIONS are not set up.
#
# Needs root (apt-get, mmdebstrap, chroot).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$SUBINTERP_CACHE"

# One setup (or root user, see run-in-root.sh) at a time: re-run this script
# under the cache's lock.
if [ -z "${SUBINTERP_CACHE_LOCKED:-}" ]; then
    lock=$SUBINTERP_CACHE/.lock
    if ! flock -n "$lock" true; then
        log "waiting for another user of $SUBINTERP_CACHE to finish"
    fi
    exec flock -o "$lock" env SUBINTERP_CACHE_LOCKED=1 "$0" "$@"
fi

# ---------------------------------------------------------------- venvs ----

pyenv_root() {
    if command -v pyenv >/dev/null 2>&1; then
        pyenv root
    else
        printf '%s\n' "${PYENV_ROOT:-/root/.pyenv}"
    fi
}

# Newest pyenv CPython X.Y.Z for version X.Y (plain releases only: no
# "3.13.0t" free-threaded or "-debug" builds), or nothing.
find_base_python() {
    local ver=$1 root dir best=
    root=$(pyenv_root)
    for dir in "$root"/versions/"$ver".*; do
        [[ $(basename "$dir") =~ ^${ver//./\\.}\.[0-9]+$ ]] || continue
        [ -x "$dir/bin/python$ver" ] || continue
        best+="$dir/bin/python$ver"$'\n'
    done
    printf '%s' "$best" | sort -V | tail -n 1
}

# What a venv was set up from; a mismatch re-runs the pip install.
venv_stamp_text() {
    printf 'requirements=%s\n' "$(sha256sum <"$REPO/requirements-test.txt" | cut -d' ' -f1)"
}

# True if $1 runs and is Python $2.
python_is() {
    "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$2'.split('.'))))" \
        >/dev/null 2>&1
}

ensure_venv() {
    local ver=$1 venv base stamp
    venv=$(host_venv "$ver")
    stamp=$venv/.subinterp-venv-stamp
    if python_is "$venv/bin/python" "$ver"; then
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(venv_stamp_text)" ]; then
            log "venv $ver: reusing $venv"
            return 0
        fi
        log "venv $ver: updating tools in $venv"
    else
        base=$(find_base_python "$ver")
        [ -n "$base" ] || die "no CPython $ver under $(pyenv_root)/versions (install it with pyenv, or skip it: SUBINTERP_SKIP_VERSIONS=$ver)"
        log "venv $ver: creating $venv from $base"
        # A venv cannot be moved after creation, so it is made in place; a
        # run that stops half-way leaves no stamp and is completed next time.
        safe_rm_tree "$venv"
        "$base" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check -q \
        -r "$REPO/requirements-test.txt"
    venv_stamp_text >"$stamp"
}

# ------------------------------------------------------- host packages ----

apt_updated=
# apt_install PACKAGE...: install Debian packages on the host, running
# `apt-get update` once first.
apt_install() {
    if [ -z "$apt_updated" ]; then
        # A third-party source that cannot be reached makes update complain;
        # Debian's own lists are what matters.
        apt-get update || log "apt-get update reported errors; installing anyway"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# The host builds the 3.12 / 3.13 extensions and the ASan build: it needs a
# C compiler (gcc brings libasan and libubsan).  The memcheck run needs
# valgrind, the codec's fuzz harness clang with libFuzzer.
ensure_host_tools() {
    local missing=()
    command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    if ! command -v clang >/dev/null 2>&1 \
        || [ ! -e "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
        missing+=(clang libclang-rt-14-dev)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
}

# ---------------------------------------------------------- Debian root ----

ensure_mmdebstrap() {
    command -v mmdebstrap >/dev/null 2>&1 && return 0
    log "installing mmdebstrap"
    apt_install mmdebstrap
}

# Install the packages of ROOT_ADDED_PACKAGES that an existing root lacks
# (a root made before they were listed); nothing to do, and no network,
# when all are there.
ensure_root_added_packages() {
    local root=$1 pkg missing=()
    for pkg in $ROOT_ADDED_PACKAGES; do
        chroot "$root" dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null \
            | grep -qx installed || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "root: installing ${missing[*]}"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get \
        -o Acquire::Check-Valid-Until=false update \
        || log "root: apt-get update reported errors; installing anyway"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends "${missing[@]}"
}

ensure_root() {
    if root_ready; then
        log "root: reusing $ROOT"
        ensure_root_added_packages "$ROOT"
        return 0
    fi
    ensure_mmdebstrap

    # Build into a temporary folder and rename it at the end, so a run that is
    # interrupted never leaves a half-made root that looks usable.
    local tmp=$ROOT.new old=$ROOT.old
    # Leftovers of an interrupted run (we hold the lock: nobody uses them).
    unmount_under "$tmp"
    unmount_under "$old"
    safe_rm_tree "$tmp"
    safe_rm_tree "$old"
    log "root: creating $ROOT (Debian sid, a minute or two)"
    # The archive is a frozen snapshot whose Release file has expired:
    # Check-Valid-Until must be off.
    mmdebstrap --variant=apt \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --include="$ROOT_PACKAGES,${ROOT_ADDED_PACKAGES// /,}" \
        sid "$tmp"

    # mmdebstrap (as root) makes the device nodes the tests need; check, as a
    # missing /dev/null or /dev/urandom fails in confusing ways later.
    local dev
    for dev in null zero full random urandom tty; do
        [ -c "$tmp/dev/$dev" ] || die "root: $tmp/dev/$dev is missing"
    done
    mkdir -p "$tmp/src" "$tmp/dev/shm"
    local ver
    for ver in $ROOT_VERSIONS; do
        chroot "$tmp" "python$ver" -c 'import pytest, hypothesis, setuptools, sysconfig, os; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
            || die "root: python$ver in $tmp lacks pytest, hypothesis, setuptools or headers"
    done

    root_stamp_text >"$tmp/${ROOT_STAMP##*/}"
    if [ -e "$ROOT" ]; then
        unmount_under "$ROOT"
        mv "$ROOT" "$old"
    fi
    mv "$tmp" "$ROOT"
    safe_rm_tree "$old"
    log "root: ready"
}

# ----------------------------------------------------------------- main ----

ensure_host_tools
for ver in $HOST_VERSIONS; do
    if skipped "$ver"; then
        log "venv $ver: skipped (SUBINTERP_SKIP_VERSIONS)"
    else
        ensure_venv "$ver"
    fi
done

need_root=
for ver in $ROOT_VERSIONS; do
    skipped "$ver" || need_root=1
done
if [ -n "$need_root" ]; then
    ensure_root
else
    log "root: skipped (SUBINTERP_SKIP_VERSIONS)"
fi
