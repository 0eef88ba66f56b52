"""``bench micro``: the micro benchmarks of the source tree's bench/ folder.

Each ``bench/bench_*.py`` (interpreter life cycle, call latency, queues,
codec, pool overhead: one per issue) runs as a child process with
``--quick --json FILE``; its own table goes into the report under its name
and its JSON rows into the report's JSON.  The folder exists only in a
source checkout: an installed package says so and runs nothing.
"""

from __future__ import annotations

import glob
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import time

# A micro benchmark that runs longer than this is stopped and reported
# (with its threads' stacks): --quick runs take seconds, not minutes.
MICRO_TIMEOUT = 240.0


def bench_dir() -> str:
    import subinterp

    root = os.path.dirname(os.path.dirname(os.path.abspath(subinterp.__file__)))
    return os.path.join(root, "bench")


def run_all(opts, progress, child_cls) -> dict:
    folder = bench_dir()
    scripts = sorted(glob.glob(os.path.join(folder, "bench_*.py")))
    result: dict = {"folder": folder, "ran": False, "benchmarks": []}
    if not scripts:
        result["message"] = (
            f"no micro benchmarks: {folder} does not exist or has no bench_*.py. "
            "They live in the bench/ folder of subinterp's source repository, "
            "not in the installed package; run `python -m subinterp bench micro` "
            "from a checkout (with the package built in place) to run them."
        )
        progress.line(f"[micro] {result['message']}")
        return result
    result["ran"] = True
    for i, script in enumerate(scripts, 1):
        name = os.path.basename(script)
        result["benchmarks"].append(
            _run_one(script, name, f"[micro {i}/{len(scripts)}]", progress, child_cls)
        )
    return result


def _takes_json_file(script: str, env: dict) -> bool:
    """Whether the script's --help shows ``--json FILE`` (the convention of
    bench/: ``--quick --json FILE``)."""
    try:
        out = subprocess.run(
            [sys.executable, script, "--help"], capture_output=True, text=True,
            timeout=60, env=env, cwd=os.path.dirname(os.path.dirname(script)),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return re.search(r"--json[ =][A-Z]", out) is not None


def _run_one(script: str, name: str, tag: str, progress, child_cls) -> dict:
    from .cli import child_env

    entry: dict = {"name": name, "status": "failed", "stdout": "", "json": None}
    fd, json_path = tempfile.mkstemp(prefix="subinterp-micro-", suffix=".json")
    os.close(fd)
    os.unlink(json_path)  # the benchmark creates it; no file = no JSON
    argv = [sys.executable, "-X", "faulthandler", script, "--quick"]
    if _takes_json_file(script, child_env()):
        argv += ["--json", json_path]
    else:
        entry["note"] = "its --help shows no --json FILE: its table only, no JSON rows"
    progress.write(f"{tag} {name} --quick ... ")
    t0 = time.perf_counter()
    child = child_cls(argv, cwd=os.path.dirname(os.path.dirname(script)))
    out: list[bytes] = []
    try:
        deadline = t0 + MICRO_TIMEOUT
        while True:
            try:
                line = child.next_line(max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                entry["error"] = f"timed out after {MICRO_TIMEOUT:g} s"
                break
            if line is None:
                break
            out.append(line)
    except KeyboardInterrupt:
        child.interrupt()
        child.close()
        raise
    if "error" in entry:
        child.dump_and_kill()  # its stacks go to stderr, shown below
    else:
        child.finish(grace=30.0)
    entry["seconds"] = time.perf_counter() - t0
    entry["stdout"] = b"".join(out).decode("utf-8", "replace")
    rc = child.proc.returncode
    entry["returncode"] = rc
    if rc == 0 and "error" not in entry:
        entry["status"] = "ok"
    else:
        from .cli import _describe_exit

        entry.setdefault("error", _describe_exit(rc))
        entry["stderr"] = child.stderr_tail(30)
    child.close()
    try:
        with open(json_path) as f:
            entry["json"] = json.load(f)
    except (OSError, ValueError):
        pass
    finally:
        try:
            os.unlink(json_path)
        except OSError:
            pass
    if entry["status"] == "ok":
        progress.end(f"done in {entry['seconds']:.1f} s")
    else:
        progress.end(f"FAILED: {entry['error']}")
    return entry


def format_micro(result: dict) -> str:
    lines = ["Micro benchmarks (bench/bench_*.py --quick)"]
    if not result["ran"]:
        lines.append(result.get("message", "not run"))
        return "\n".join(lines) + "\n"
    for entry in result["benchmarks"]:
        lines.append("")
        lines.append(f"== {entry['name']} ({entry.get('seconds', 0):.1f} s) ==")
        if entry.get("note"):
            lines.append(f"({entry['note']})")
        if entry["stdout"].strip():
            lines.append(entry["stdout"].rstrip())
        if entry["status"] != "ok":
            lines.append(f"FAILED: {entry.get('error')}")
            if entry.get("stderr"):  # the whole tail is in the JSON
                lines.extend("  " + s for s in entry["stderr"].splitlines()[-10:])
    return "\n".join(lines) + "\n"
