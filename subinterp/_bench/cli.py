"""``python -m subinterp bench``: the article's comparison, on this machine.

The orchestrator: it parses the command line, starts the local HTTP server
of the IO task, runs every variant in a child process of its own
(``subinterp._bench.runner``), shows progress on standard error, prints the
results table on standard output and writes the JSON and the chart.

Ctrl-C (SIGINT) stops the run: every variant's process gets SIGINT and a
few seconds to shut its pool down, then it is killed with its process
group; the server is stopped; the rows measured so far are printed; exit
status 130.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import micro, report, variants, workloads
from .server import DelayServer

TASKS = ("cpu", "io")
# Samples per variant when --samples is not given: a CPU sample takes
# ~0.1 s, an IO one ~0.4 s; `bench all` stays around two minutes.
DEFAULT_SAMPLES = {"cpu": 20, "io": 10}
# Seconds a variant's process may take to start (import, check, prepare).
STARTUP_TIMEOUT = 120.0

USAGE_EPILOG = """\
what to run:
  cpu     the article's CPU-bound benchmark (big-int products, 4 chunks)
  io      the article's IO-bound benchmark (20 HTTP GETs to a local server
          that waits --delay-ms per response, one client per chunk)
  micro   the micro benchmarks of bench/ (creation, memory, call latency,
          queues, codec, pool overhead), when run from a source checkout
  all     cpu, io and micro (the default)

variants (--variants takes a comma-separated subset of these keys):
  sequential, threads, processes, stdlib-interpreters, subinterp-pool,
  subinterp-default, and for io only subinterp-async (each GET a coroutine
  task, asyncio streams, 2 workers x max_concurrency=10; Python 3.13+)

Each variant runs in a process of its own: a warm-up sample, then --samples
samples, taken in turns; the table shows the median, min, max and
interquartile range, the speed-up against Sequential (Sequential's median /
the variant's) and the middle half of the speed-ups of single rounds.
`cpu` also measures the machine before each round and after the last (the
same CPU work in 1 process, then in --workers processes at once): it prints
the parallelism the machine gave, how much it varied, the bound that the
unequal chunks set, each row's speed-up as a share of that ("of max"), and
says plainly when the machine was too noisy to take the figures as they are.
Exit status: 0 when the run completed (a failed variant is reported in its
row), 1 when a task could not run at all, 2 for bad usage, 130 after Ctrl-C.
"""


# --------------------------------------------------------------------------
# command line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _variant_list(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in variants.KEYS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown variant {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(variants.KEYS)}"
        )
    return keys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m subinterp",
        description="subinterp command line: run `python -m subinterp bench`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = commands.add_parser(
        "bench",
        help="compare subinterp with sequential code, threads, processes "
        "and the standard library's interpreters",
        description="Run the article's CPU-bound and IO-bound benchmarks with "
        "sequential code, threads, processes, the standard library's "
        "InterpreterPoolExecutor and subinterp, on this machine, and print a "
        "table of medians with the speed-up against sequential code.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "what", nargs="?", default="all", choices=("cpu", "io", "micro", "all"),
        help="what to run (default: all)",
    )
    bench.add_argument(
        "--samples", type=_positive_int, default=None, metavar="N",
        help="measured samples per variant (default: 20 for cpu, 10 for io)",
    )
    bench.add_argument(
        "--warmup", type=_non_negative_int, default=1, metavar="N",
        help="warm-up samples per variant, not counted (default: 1)",
    )
    bench.add_argument(
        "--workers", type=_positive_int, default=None, metavar="N",
        help="workers of every pool (default: the usable CPUs, "
        f"{variants.usable_cpus()} here)",
    )
    bench.add_argument(
        "--variants", type=_variant_list, default=None, metavar="LIST",
        help="only these variants, e.g. sequential,subinterp-default "
        "(default: all)",
    )
    bench.add_argument(
        "--no-calibration", dest="calibrate", action="store_false",
        help="cpu: do not measure the machine's parallelism and noise "
        "before each round (by default a fixed piece of CPU work runs in 1 "
        "and then in --workers processes)",
    )
    bench.add_argument(
        "--json", metavar="FILE", help="also write the results to FILE as JSON"
    )
    bench.add_argument(
        "--plot", metavar="FILE.png",
        help="also draw a bar chart to FILE.png (needs matplotlib)",
    )
    bench.add_argument(
        "--delay-ms", type=_non_negative_float, default=20.0, metavar="MS",
        help="the local server's delay per response (default: 20)",
    )
    bench.add_argument(
        "--client", choices=("auto", *workloads.CLIENTS), default="auto",
        help="HTTP client of the io task (default: httpx when it is "
        "installed, as in the article, else http.client)",
    )
    bench.add_argument(
        "--port", type=_port, default=0,
        help="port of the local HTTP server (default: a free one)",
    )
    # Undocumented: for the tests and for docs/benchmarks.md.
    bench.add_argument("--scale", type=_positive_float, default=1.0, help=argparse.SUPPRESS)
    bench.add_argument("--timeout", type=_positive_float, default=120.0, help=argparse.SUPPRESS)
    bench.add_argument(
        "--server", choices=("orchestrator", "same-process"), default="orchestrator",
        help=argparse.SUPPRESS,
    )
    return parser


# --------------------------------------------------------------------------
# progress on standard error


class Progress:
    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.open_line = False

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
        self.open_line = not text.endswith("\n")

    def line(self, text: str) -> None:
        """*text* on a line of its own."""
        if self.open_line:
            self.write("\n")
        self.write(text + "\n")

    def end(self, text: str) -> None:
        """*text* at the end of the current line."""
        self.write(text + "\n")


# --------------------------------------------------------------------------
# how busy the rest of the machine was


def _machine_cpu_seconds() -> float | None:
    """CPU-seconds all CPUs spent not idle since boot (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal: all but idle and
    # iowait are busy; steal is a hypervisor's other guests taking our CPUs.
    ticks = [int(x) for x in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(sessions: set[int]) -> dict[int, float]:
    """{pid: CPU-seconds} of this process and of every process in one of
    *sessions*, children it reaped included (utime, stime, cutime, cstime).

    The runners are session leaders, and what they start (process pools,
    the forkserver and its workers) stays in their sessions.
    """
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    found: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # after "pid (comm)": state ppid pgrp session ... utime stime cutime cstime
        fields = stat[stat.rindex(")") + 2:].split()
        pid = int(name)
        if pid == me or int(fields[3]) in sessions:
            found[pid] = sum(int(x) for x in fields[11:15]) / tick
    return found


class OtherLoad:
    """How many CPUs other programs kept busy during the rounds of a task:
    the figures of a disturbed run are flagged in the report.

    Other = what all CPUs spent (/proc/stat) minus what this process and
    the variants' processes spent (/proc/PID/stat), between two snapshots
    taken while all of them are alive.
    """

    def __init__(self, sessions: set[int]) -> None:
        self.sessions = sessions
        self.machine = _machine_cpu_seconds()
        self.own = _process_cpu_seconds(sessions) if self.machine is not None else {}
        self.wall = time.monotonic()

    def cpus(self) -> float | None:
        machine = _machine_cpu_seconds()
        wall = time.monotonic() - self.wall
        if machine is None or self.machine is None or wall <= 0:
            return None
        now = _process_cpu_seconds(self.sessions)
        own = sum(t - self.own.get(pid, 0.0) for pid, t in now.items())
        return max(0.0, ((machine - self.machine) - own) / wall)


# --------------------------------------------------------------------------
# running a child process


def _package_parent() -> str:
    import subinterp

    return os.path.dirname(os.path.dirname(os.path.abspath(subinterp.__file__)))


def child_env() -> dict[str, str]:
    """The environment of the children: PYTHONPATH starts with the folder of
    this very subinterp package, so the runner, the process pool's workers
    and the standard library's interpreters (which do not inherit sys.path)
    all import the same package and workloads."""
    env = dict(os.environ)
    parent = _package_parent()
    paths = [parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _describe_exit(rc: int | None) -> str:
    if rc is None:
        return "did not exit"
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


class Child:
    """A child process in a session of its own (so the terminal's Ctrl-C
    reaches only the orchestrator, which passes it on in order), with its
    standard output read line by line in a thread."""

    def __init__(self, argv: list[str], cwd: str | None = None) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=child_env(),
            cwd=cwd,
            start_new_session=True,
        )
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float) -> bytes | None:
        """The next line, None at end of output; queue.Empty on timeout."""
        return self.lines.get(timeout=timeout)

    def dump_and_kill(self) -> None:
        """After a timeout: SIGABRT, so that faulthandler (on in the runner
        and the micro benchmarks) writes every thread's stack to stderr,
        then the group's end."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGABRT)
            except ProcessLookupError:
                pass
        self.finish(grace=5.0)

    def interrupt(self, grace: float = 10.0) -> None:
        """SIGINT to the child, then SIGKILL to its group after *grace* s."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
        self.finish(grace)

    def finish(self, grace: float = 10.0) -> None:
        """Close its stdin (it exits on EOF), wait, kill the group if needed."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # The group: the child and what it started (the process pool).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._reader.join(5)

    def stderr_tail(self, lines: int = 12) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace")
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def close(self) -> None:
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr.close()


def _ignoring_sigint():
    """Ctrl-C pressed again while cleaning up must not skip the cleanup."""
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return None


def _telling_line(text: str) -> str:
    """The line of a dead child's stderr that best says what happened."""
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    for line in reversed(lines):
        if "Fatal Python error" in line or "Error" in line or "Exception" in line:
            return line
    return lines[-1] if lines else ""


class VariantProcess:
    """One variant's runner process and the row of results it fills."""

    def __init__(self, cfg: dict, timeout: float) -> None:
        self.key = cfg["variant"]
        self.timeout = timeout
        self.row: dict = {
            "key": self.key,
            "label": variants.RUNNABLE[self.key].label,
            "status": "failed",
            "error": None,
            "warmup_s": [],
            "samples_s": [],
        }
        self.active = False  # ready and not failed
        self.child = Child([sys.executable, "-m", "subinterp._bench.runner", json.dumps(cfg)])

    def _fail(self, error: str, traceback: str | None = None) -> None:
        self.active = False
        self.row["status"] = "failed"
        self.row["error"] = error
        if traceback:
            self.row["traceback"] = traceback

    def _event(self, what: str, timeout: float | None = None) -> dict | None:
        """The next event; None (after _fail) on a timeout or a dead child."""
        timeout = timeout or self.timeout
        while True:
            try:
                line = self.child.next_line(timeout)
            except queue.Empty:
                self._fail(f"timed out: no answer within {timeout:g} s ({what})")
                self.child.dump_and_kill()
                return None
            if line is None:
                self.child.finish(grace=5)
                why = f"its process died ({_describe_exit(self.child.proc.returncode)})"
                last = _telling_line(self.child.stderr_tail())
                self._fail(f"{why}: {last}" if last else why)
                return None
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "error":
                self._fail(event["error"], event.get("traceback"))
                return None
            if kind == "interrupted":
                self._fail("interrupted")
                return None
            return event

    def wait_ready(self) -> None:
        # Starting is not measured: on a slow build (ASan) or a loaded
        # machine it may take longer than a sample may.
        event = self._event("starting", max(self.timeout, STARTUP_TIMEOUT))
        if event is None:
            return
        self.row["label"] = event.get("label", self.key)
        if event["event"] == "ready":
            self.active = True
        elif event["event"] == "unavailable":
            self.row["status"] = "unavailable"
            self.row["error"] = event["reason"]

    def sample(self, warmup: bool) -> float | None:
        """Run one sample: its seconds, or None when the variant failed."""
        try:
            assert self.child.proc.stdin is not None
            self.child.proc.stdin.write(b"warmup\n" if warmup else b"sample\n")
            self.child.proc.stdin.flush()
        except OSError:
            pass  # dead: _event reports it
        event = self._event("a sample")
        if event is None or event["event"] != "sample":
            if event is not None:
                self._fail(f"unexpected answer {event!r}")
            return None
        (self.row["warmup_s"] if warmup else self.row["samples_s"]).append(event["seconds"])
        if not warmup:
            # The variant's own figures of the sample (Sequential's chunk
            # times, the calibration's two times): one list each.
            for name, value in event.items():
                if name not in ("event", "warmup", "seconds"):
                    self.row.setdefault(name, []).append(value)
        return event["seconds"]

    def finish(self) -> None:
        """Ask the runner to quit and record how it ended."""
        if self.active:
            try:
                assert self.child.proc.stdin is not None
                self.child.proc.stdin.write(b"quit\n")
                self.child.proc.stdin.flush()
            except OSError:
                pass
            event = self._event("quitting")
            if event is not None and event["event"] == "done":
                self.row["status"] = "ok"
            self.active = False
        self.child.finish(grace=30.0)
        rc = self.child.proc.returncode
        self.row["exit_status"] = rc
        if self.row["status"] == "ok" and rc != 0:
            # The samples are good, but something broke at exit: say so.
            self.row["note"] = f"the process ended badly after its samples ({_describe_exit(rc)})"
        if self.row["status"] == "failed":
            tail = self.child.stderr_tail(40)
            if tail:
                self.row["stderr"] = tail

    def interrupted(self) -> None:
        """After Ctrl-C (SIGINT already sent): keep the samples taken, wait
        for the process to shut its pool down, kill it if it does not."""
        self.active = False
        if self.row["status"] != "unavailable" and self.row["error"] is None:
            self.row["status"] = "interrupted"
            self.row["error"] = "interrupted"
        self.child.finish(grace=10.0)

    def close(self) -> None:
        self.child.finish(grace=0)  # no-op when it has already exited
        self.child.close()


# --------------------------------------------------------------------------
# tasks


def _resolve_client(choice: str) -> str:
    if choice != "auto":
        return choice
    return "httpx" if importlib.util.find_spec("httpx") else "http.client"


def _failed_rows(keys: list[str], msg: str) -> list[dict]:
    rows = []
    for key in keys:
        row = {"key": key, "label": key, "status": "failed", "error": msg,
               "warmup_s": [], "samples_s": []}
        report.add_stats(row)
        rows.append(row)
    return rows


def _fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.3g}"


def _calibrate(calib: VariantProcess | None, warmup: bool, workers: int) -> str:
    """One measure of the calibration (before a round, or after the last):
    its parallelism as the progress line shows it."""
    if calib is None:
        return ""
    if not calib.active or calib.sample(warmup) is None:
        return " c:FAILED"
    if warmup:
        return " c:-"
    single, parallel = calib.row["single_s"][-1], calib.row["parallel_s"][-1]
    return f" c:{workers * single / parallel:.2f}x"


def run_task(task: str, opts: argparse.Namespace, progress: Progress, result: dict) -> bool:
    """Run every variant of *task* into result["tasks"][task]; False if the
    task could not run at all."""
    samples = opts.samples or DEFAULT_SAMPLES[task]
    keys = opts.variants or [k for k in variants.KEYS
                             if task in variants.BY_KEY[k].tasks]
    info: dict = {
        "samples": samples,
        "warmup": opts.warmup,
        "workers": opts.workers,
        "scale": opts.scale,
        "order": "round-robin: each round runs one sample of every variant",
        "variants": [],
    }
    if task == "cpu":
        info["workloads"] = workloads.scaled(workloads.CPU_WORKLOADS, opts.scale)
    else:
        info["workloads"] = workloads.scaled(workloads.IO_WORKLOADS, opts.scale)
        info["client"] = _resolve_client(opts.client)
        info["delay_ms"] = opts.delay_ms
        info["server"] = opts.server
    result["tasks"][task] = info

    server = None
    procs: list[VariantProcess] = []
    calib: VariantProcess | None = None  # the machine's calibration (cpu)
    load: OtherLoad | None = None

    def everyone() -> list[VariantProcess]:
        return procs + ([calib] if calib is not None else [])

    try:
        port = None
        if task == "io" and opts.server == "orchestrator":
            try:
                server = DelayServer(opts.delay_ms / 1e3, port=opts.port).start()
            except OSError as exc:
                msg = f"the HTTP server could not start on 127.0.0.1:{opts.port}: {exc}"
                progress.line(f"[{task}] {msg}")
                info["variants"] = _failed_rows(keys, msg)
                return False
            port = info["port"] = server.port
            progress.line(
                f"[{task}] HTTP server on 127.0.0.1:{port}, {opts.delay_ms:g} ms "
                f"per response, client {info['client']}"
            )
        cfg = {
            "task": task,
            "workers": opts.workers,
            "scale": opts.scale,
            "port": port,
            "client": info.get("client"),
            "delay": opts.delay_ms / 1e3,
            "server": opts.server,
        }
        for key in keys:
            procs.append(VariantProcess({**cfg, "variant": key}, opts.timeout))
        if task == "cpu" and opts.calibrate:
            calib = VariantProcess({**cfg, "variant": "calibration"}, opts.timeout)
        for i, p in enumerate(procs, 1):
            p.wait_ready()
            state = ("" if p.active else
                     "  [not available: {}]" if p.row["status"] == "unavailable" else
                     "  [FAILED: {}]").format(p.row["error"])
            progress.line(f"[{task}] {i}: {p.row['label']}{state}")
        if calib is not None:
            calib.wait_ready()
            state = "" if calib.active else f"  [FAILED: {calib.row['error']}]"
            progress.line(
                f"[{task}] c: calibration, the parallelism of {opts.workers} "
                f"processes at the start of each round and after the last{state}")
        load = OtherLoad({p.child.proc.pid for p in everyone()})
        rounds = opts.warmup + samples
        for r in range(rounds):
            warmup = r < opts.warmup
            name = "warm-up" if warmup else f"sample {r - opts.warmup + 1}/{samples}"
            progress.write(f"[{task}] {name}:{_calibrate(calib, warmup, opts.workers)}")
            failed = []
            for i, p in enumerate(procs, 1):
                if not p.active:
                    progress.write(f" {i}:-")
                    continue
                seconds = p.sample(warmup)
                if seconds is None:
                    failed.append((i, p))
                    progress.write(f" {i}:FAILED")
                else:
                    progress.write(f" {i}:{_fmt_ms(seconds)}")
            progress.end(" ms")
            for i, p in failed:
                progress.line(f"[{task}] {i}: {p.row['label']} FAILED: {p.row['error']}")
        if calib is not None:
            # Each round is framed by two measures of the machine.
            progress.line(f"[{task}] after the last round:"
                          f"{_calibrate(calib, False, opts.workers)}")
        info["other_load_cpus"] = load.cpus()
        for p in everyone():
            p.finish()
        if server is not None:
            info["requests_served"] = server.requests
    except KeyboardInterrupt:
        _ignoring_sigint()
        progress.line(f"[{task}] interrupted: stopping the variants' processes")
        for p in everyone():
            if p.child.proc.poll() is None:
                try:
                    p.child.proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
        for p in everyone():
            p.interrupted()
        raise
    finally:
        for p in everyone():
            p.close()
        if procs:
            info["variants"] = [p.row for p in procs]
        for row in info["variants"]:
            report.add_stats(row)
        if calib is not None:
            info["calibration"] = calib.row
        report.add_ratios(info)
        if load is not None and "other_load_cpus" not in info:
            info["other_load_cpus"] = load.cpus()  # interrupted
        if server is not None:
            server.stop()
    return True


def _environment(argv: list[str]) -> dict:
    import subinterp

    return {
        "command": "python -m subinterp " + " ".join(argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "python_full": sys.version,
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "usable_cpus": variants.usable_cpus(),
        "subinterp": getattr(subinterp, "__version__", "?"),
    }


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    opts = build_parser().parse_args(argv)
    if opts.workers is None:
        opts.workers = variants.usable_cpus()
    progress = Progress()
    result: dict = {"schema": 1, **_environment(argv), "tasks": {}, "micro": None}
    tasks = [t for t in TASKS if opts.what in (t, "all")]
    status = 0
    interrupted = False
    try:
        for task in tasks:
            if not run_task(task, opts, progress, result):
                status = 1
        if opts.what in ("micro", "all"):
            result["micro"] = micro.run_all(opts, progress, Child)
            if not result["micro"]["ran"] and opts.what == "micro":
                status = 1  # (with `all`, the note in the report is enough)
    except KeyboardInterrupt:
        _ignoring_sigint()
        interrupted = True
        status = 130
        result["interrupted"] = True
        progress.line("interrupted: the server and the pools are shut down; "
                      "results so far:")
    sys.stdout.write(report.format_report(result))
    sys.stdout.flush()
    if opts.json:
        try:
            report.write_json(result, opts.json)
            progress.line(f"JSON written to {opts.json}")
        except OSError as exc:
            progress.line(f"error: cannot write --json {opts.json}: {exc}")
            status = status or 1
    if opts.plot and not interrupted:
        message, outcome = report.plot(result, opts.plot)
        progress.line(message)
        if outcome == "error":  # a missing matplotlib is not a failure
            status = status or 1
    return status
