"""One variant of one task, in a process of its own.

``python -m subinterp._bench.runner CONFIG`` (CONFIG is JSON, written by
``subinterp._bench.cli``) runs the warm-up and the samples of one variant and
reports each as one JSON line on its original standard output:

    {"event": "start", "label": "..."}
    {"event": "sample", "warmup": false, "seconds": 0.0731}
    {"event": "done"}                      or
    {"event": "unavailable", "label": "...", "reason": "..."}
    {"event": "error", "error": "...", "traceback": "..."}
    {"event": "interrupted"}

Anything else the variant prints goes to standard error (file descriptor 1
is pointed at 2), so it cannot garble the report.  A process per variant
keeps the variants apart: a crash (a segfault in a backport, say) fails one
row, ``fork`` in the process pool never copies another variant's threads or
interpreters, and every variant starts from the same clean state.

The process exits when its standard input reaches end of file, which is when
the benchmark that started it is gone.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback

from . import variants, workloads
from .server import DelayServer

# Test hook: SUBINTERP_BENCH_INJECT="threads=raise,processes=crash" makes
# those variants fail in their first sample (raise, crash = abort the
# process, hang = never return).  Used by tests/test_bench_cli.py.
INJECT_ENV = "SUBINTERP_BENCH_INJECT"


def _injected(key: str) -> str | None:
    for item in os.environ.get(INJECT_ENV, "").split(","):
        name, _, what = item.partition("=")
        if name.strip() == key:
            return what.strip() or "raise"
    return None


def _inject(what: str) -> None:
    if what == "crash":
        os.abort()
    if what == "hang":
        threading.Event().wait()
    raise RuntimeError(f"failure injected by {INJECT_ENV}")


def _watch_parent() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(3)  # the benchmark is gone: stop at once


def run(cfg: dict, emit) -> int:
    variant = variants.BY_KEY[cfg["variant"]](cfg["workers"])
    server = None
    try:
        try:
            variant.check()
        except variants.Unavailable as exc:
            emit(event="unavailable", label=variant.describe(), reason=str(exc))
            return 0
        emit(event="start", label=variant.describe())
        if cfg["task"] == "cpu":
            fn = workloads.cpu_worker
            argsets = workloads.scaled(workloads.CPU_WORKLOADS, cfg["scale"])
        else:
            port = cfg["port"]
            if cfg.get("server") == "same-process":
                server = DelayServer(cfg["delay"]).start()
                port = server.port
            fn = workloads.io_worker
            argsets = [
                (a, b, port, cfg["client"])
                for a, b in workloads.scaled(workloads.IO_WORKLOADS, cfg["scale"])
            ]
        inject = _injected(variant.key)
        for i in range(cfg["warmup"] + cfg["samples"]):
            if inject:
                _inject(inject)
            t0 = time.perf_counter()
            variant.sample(fn, argsets)
            dt = time.perf_counter() - t0
            emit(event="sample", warmup=i < cfg["warmup"], seconds=dt)
        emit(event="done")
        return 0
    except KeyboardInterrupt:
        emit(event="interrupted")
        return 130
    except BaseException as exc:
        emit(
            event="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
        return 1
    finally:
        variant.close()
        if server is not None:
            server.stop()


def main() -> int:
    cfg = json.loads(sys.argv[1])
    report = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def emit(**event):
        report.write(json.dumps(event) + "\n")
        report.flush()

    threading.Thread(target=_watch_parent, daemon=True).start()
    return run(cfg, emit)


if __name__ == "__main__":
    sys.exit(main())
