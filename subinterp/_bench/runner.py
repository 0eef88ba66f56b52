"""One variant of one task, in a process of its own.

``python -m subinterp._bench.runner CONFIG`` (CONFIG is JSON, written by
``subinterp._bench.cli``) prepares one variant and then runs one sample per
command line it reads on standard input (``warmup`` or ``sample``), until
``quit`` or end of file.  It reports each step as one JSON line on its
original standard output:

    {"event": "ready", "label": "..."}     or
    {"event": "unavailable", "label": "...", "reason": "..."}
    {"event": "sample", "warmup": false, "seconds": 0.0731, ...}
    {"event": "done"}
    {"event": "error", "error": "...", "traceback": "..."}
    {"event": "interrupted"}

A sample's event carries the variant's own figures too, when it has any:
Sequential's ``chunks_s`` (each chunk's time) and, for the calibration
(``"variant": "calibration"``, which runs beside the variants of the CPU
task), ``single_s`` and ``parallel_s``.

Anything else the variant prints goes to standard error (file descriptor 1
is pointed at 2), so it cannot garble the report.

A process per variant keeps the variants apart: a crash (a segfault in a
backport, say) fails one row, ``fork`` in the process pool never copies
another variant's threads or interpreters, and every variant starts from the
same clean state.  The orchestrator keeps all of a task's variants alive and
asks them for samples in turns (round-robin), so a disturbance of the
machine (another program, a frequency change) spreads over all variants
instead of spoiling one of them.
"""

from __future__ import annotations

import faulthandler
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


def _prepare(cfg: dict):
    """(function, argument tuples, server or None) of the task."""
    if cfg["task"] == "cpu":
        return (
            workloads.cpu_worker,
            workloads.scaled(workloads.CPU_WORKLOADS, cfg["scale"]),
            None,
        )
    server = None
    port = cfg["port"]
    if cfg.get("server") == "same-process":
        server = DelayServer(cfg["delay"]).start()
        port = server.port
    argsets = [
        (a, b, port, cfg["client"])
        for a, b in workloads.scaled(workloads.IO_WORKLOADS, cfg["scale"])
    ]
    return workloads.io_worker, argsets, server


def run(cfg: dict, emit, commands) -> int:
    variant = variants.RUNNABLE[cfg["variant"]](cfg["workers"])
    server = None
    try:
        try:
            if cfg["task"] not in variant.tasks:
                raise variants.Unavailable(
                    f"a variant of the {' and '.join(variant.tasks)} "
                    f"benchmark only")
            variant.check()
        except variants.Unavailable as exc:
            emit(event="unavailable", label=variant.describe(), reason=str(exc))
            return 0
        fn, argsets, server = _prepare(cfg)
        emit(event="ready", label=variant.describe())
        inject = _injected(variant.key)
        while True:
            command = commands.readline().strip()
            if command not in (b"warmup", b"sample"):
                break  # quit, or end of file: the orchestrator is gone
            if inject:
                _inject(inject)
            t0 = time.perf_counter()
            extra = variant.sample(fn, argsets) or {}
            dt = time.perf_counter() - t0
            emit(event="sample", warmup=command == b"warmup", seconds=dt, **extra)
        variant.close()
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
    faulthandler.enable()  # a crash leaves a Python traceback on stderr
    cfg = json.loads(sys.argv[1])
    report = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def emit(**event):
        report.write(json.dumps(event) + "\n")
        report.flush()

    return run(cfg, emit, sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
