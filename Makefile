# Entry points for development.  `make test` is the full check (CI runs it);
# `make bench` compares subinterp with the alternatives.
#
# Variables (on the command line or in the environment):
#   PY=...       the Python of build, debug, test-one, asan and fuzz: a path,
#                or for test-one also a version (3.12 ... 3.15)
#   V=3.13       the version `make bench` uses (default: the newest)
#   PYTEST_ARGS, BENCH_ARGS, SUBINTERP_SKIP_VERSIONS: see the README

PY ?= /var/cache/subinterp/venv-3.12/bin/python
V ?=

BUILD_CFLAGS = -Wall -Wextra
DEBUG_CFLAGS = -Wall -Wextra -O0 -g3 -UNDEBUG

.PHONY: all build debug setup test test-one asan lsan valgrind bench fuzz clean help

all: build

help:
	@echo "make build      in-place build for PY (default: the 3.12 venv)"
	@echo "make debug      in-place build for PY with -O0 -g3, asserts on"
	@echo "make setup      create or reuse the 3.12/3.13 venvs and the 3.14/3.15 root"
	@echo "make test       setup, then build+test on 3.12-3.15, the ASan run, the"
	@echo "                LeakSanitizer run, the valgrind run and $(FUZZ_TIME) s of"
	@echo "                codec fuzzing"
	@echo "make test-one   build+test with PY (a path or a version)"
	@echo "make asan       ASan+UBSan build and test run"
	@echo "make lsan       LeakSanitizer run (python3.14d, in the Debian root)"
	@echo "make valgrind   memcheck run of the codec, queue and lock tests"
	@echo "make bench      benchmarks on the newest Python (V=3.13 for another)"
	@echo "make fuzz       the fuzz harness under fuzz/"
	@echo "make clean      remove build products"

build:
	SUBINTERP_CFLAGS="$(BUILD_CFLAGS)" $(PY) setup.py build_ext --inplace --force

debug:
	SUBINTERP_CFLAGS="$(DEBUG_CFLAGS)" $(PY) setup.py build_ext --inplace --force

setup:
	bash scripts/setup-pythons.sh

# Every version, then the sanitizer, memcheck and fuzz runs even if a
# version failed; fails if any did.
FUZZ_TIME ?= 60
test: setup
	rc=0; bash scripts/test.sh || rc=1; bash scripts/test-asan.sh || rc=1; \
	bash scripts/test-lsan.sh || rc=1; bash scripts/test-valgrind.sh || rc=1; \
	$(MAKE) -C fuzz TIME=$(FUZZ_TIME) || rc=1; exit $$rc

test-one: setup
	bash scripts/test.sh $(PY)

asan: setup
	bash scripts/test-asan.sh $(PY)

lsan: setup
	bash scripts/test-lsan.sh

valgrind: setup
	bash scripts/test-valgrind.sh $(PY)

bench: setup
	bash scripts/bench.sh $(V)

fuzz:
	bash scripts/fuzz.sh $(PY)

clean:
	rm -rf build *.egg-info .pytest_cache .hypothesis subinterp/*.so
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
