#!/usr/bin/env bash
# Run the fuzz harness under fuzz/, whatever form it has:
#   fuzz/Makefile   `make -C fuzz PY=...` (the harness knows how to run itself)
#   fuzz/*.c        each file is built as a program that embeds Python $PY,
#                   with ASan + UBSan, and run from the repository root
#   nothing         says so and succeeds
#
#   scripts/fuzz.sh [PYTHON]     default: the 3.12 venv
set -euo pipefail
. "$(dirname "$0")/lib.sh"

py=${1:-$(host_venv 3.12)/bin/python}
cd "$REPO"

if [ -f fuzz/Makefile ]; then
    exec make -C fuzz PY="$py"
fi

shopt -s nullglob
sources=(fuzz/*.c)
if [ ${#sources[@]} -eq 0 ]; then
    echo "see issue: fuzz harness not yet present"
    exit 0
fi

[ -x "$py" ] || die "no $py (run scripts/setup-pythons.sh)"
CC=${CC:-gcc}
# Compiler and linker flags for embedding this Python.
read -r include libdir ldver < <("$py" -c 'import sysconfig as s; print(s.get_paths()["include"], s.get_config_var("LIBDIR"), s.get_config_var("LDVERSION"))')
flags=(-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g -UNDEBUG
    -Wall -Wextra -I"$include" -Isrc)
libs=(-L"$libdir" -Wl,-rpath,"$libdir" "-lpython$ldver" -lm)

mkdir -p build/fuzz
rc=0
for src in "${sources[@]}"; do
    name=$(basename "$src" .c)
    log "fuzz: $name"
    "$CC" "${flags[@]}" "$src" -o "build/fuzz/$name" "${libs[@]}"
    ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        PYTHONMALLOC=malloc "build/fuzz/$name" || rc=1
done
exit "$rc"
