#!/usr/bin/env bash
# Probe which extension modules (popular PyPI packages and the standard
# library's) load in subinterp's interpreters, and write docs/extensions.md:
#
#   scripts/probe-extensions.sh              # 3.12 3.13 3.14 3.15
#   scripts/probe-extensions.sh 3.14         # some versions; the report keeps
#                                            # the last results of the others
#
# Per version: builds subinterp in place, makes a throwaway venv from that
# Python (3.12 / 3.13: the base interpreter of the test venv, the venv under
# $SUBINTERP_PROBE_DIR, default /tmp/subinterp-probe; 3.14 / 3.15: inside
# the Debian root, the venv under its /tmp), pip-installs the packages
# listed in scripts/probe-extensions.py there and probes every module in
# fresh processes.  Results go to build/probe/VERSION.json, the report to
# docs/extensions.md.  Needs PyPI and takes a while (minutes per version):
# not part of the tests or CI.  The test venvs are not touched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

results=build/probe

# probe_in_venv VERSION BASE-PYTHON VENV: run in the repository, where
# BASE-PYTHON runs (the host or the root).
probe_in_venv() {
    local ver=$1 base=$2 venv=$3
    log "probe $ver: venv $venv from $base"
    "$base" -m venv --clear "$venv"
    "$venv/bin/python" scripts/probe-extensions.py install "$results/install-$ver.json"
    log "probe $ver: probing"
    "$venv/bin/python" scripts/probe-extensions.py probe \
        "$results/install-$ver.json" "$results/$ver.json.part"
    mv "$results/$ver.json.part" "$results/$ver.json"
}

if [ "${1:-}" = --in-root ]; then
    # inside the Debian root (run-in-root.sh), in /src
    ver=$2
    # the host's certificate authorities (a proxy's, say), copied below
    if [ -f "$results/ca-bundle.crt" ]; then
        export PIP_CERT=$PWD/$results/ca-bundle.crt
    fi
    python$ver setup.py build_ext --inplace --build-temp "build/temp-$ver-probe" -q
    probe_in_venv "$ver" "python$ver" "/tmp/probe-venv-$ver"
    exit 0
fi

[ $# -gt 0 ] || set -- $ALL_VERSIONS
mkdir -p "$REPO/$results"
cd "$REPO"
for ver in "$@"; do
    resolve_python "$ver" || die "Python $ver: $why"
    if [ "$where" = root ]; then
        # pip in the root trusts what pip here trusts
        cert=${PIP_CERT:-${SSL_CERT_FILE:-}}
        if [ -n "$cert" ] && [ -f "$cert" ]; then
            cp "$cert" "$results/ca-bundle.crt"
        fi
        "$REPO/scripts/run-in-root.sh" bash scripts/probe-extensions.sh --in-root "$ver"
    else
        "$py" setup.py build_ext --inplace --build-temp "build/temp-$ver-probe" -q
        base=$("$py" -c 'import sys; print(sys._base_executable)')
        probe_dir=${SUBINTERP_PROBE_DIR:-/tmp/subinterp-probe}
        mkdir -p "$probe_dir"
        probe_in_venv "$ver" "$base" "$probe_dir/venv-$ver"
    fi
done

rm -f "$results/ca-bundle.crt"

reports=()
for ver in $ALL_VERSIONS; do
    [ -f "$results/$ver.json" ] && reports+=("$results/$ver.json")
done
resolve_python 3.12 || die "Python 3.12: $why"
"$py" scripts/probe-extensions.py report "${reports[@]}" >docs/extensions.md.part
mv docs/extensions.md.part docs/extensions.md
log "wrote docs/extensions.md (${reports[*]})"
