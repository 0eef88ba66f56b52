"""``python -m subinterp bench``: the command line, not the timings.

Every test runs the real command in a subprocess, on workloads shrunk with
the undocumented ``--scale`` option so that a run takes seconds.  No test
asserts anything about speed.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--scale", "0.001", "--samples", "1"]
ALL_KEYS = [
    "sequential",
    "threads",
    "processes",
    "stdlib-interpreters",
    "subinterp-pool",
    "subinterp-default",
]


# Marks the processes this test run starts (runners inherit it), so that
# runner_processes() never counts another run's on the same machine.
RUN_TAG = f"SUBINTERP_TEST_RUN={os.getpid()}-{time.monotonic_ns()}"


def _env(pythonpath=ROOT, **extra):
    env = dict(os.environ)
    env.pop("SUBINTERP_BENCH_INJECT", None)
    env["PYTHONPATH"] = pythonpath
    name, value = RUN_TAG.split("=", 1)
    env[name] = value
    env.update(extra)
    return env


def bench(*args, env=None, cwd=ROOT, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "subinterp", *args],
        capture_output=True,
        text=True,
        env=env or _env(),
        cwd=cwd,
        timeout=timeout,
    )


def rows_by_key(result, task):
    return {r["key"]: r for r in result["tasks"][task]["variants"]}


def runner_processes(marker):
    """pids of runner processes of this test run whose command line
    contains *marker*."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "subinterp._bench.runner" not in cmd or marker not in cmd:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if RUN_TAG.encode() in environ:
            found.append(int(pid))
    return found


def is_listening(port):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------
# usage


@pytest.mark.parametrize(
    "args",
    [
        [],  # no command
        ["nope"],  # unknown command
        ["bench", "gpu"],  # unknown sub-command
        ["bench", "cpu", "--bogus"],  # unknown option
        ["bench", "cpu", "--samples", "0"],
        ["bench", "cpu", "--samples", "many"],
        ["bench", "cpu", "--workers", "-1"],
        ["bench", "io", "--delay-ms", "-5"],
        ["bench", "io", "--port", "70000"],
        ["bench", "cpu", "--variants", "threads,warp-drive"],
        ["bench", "io", "--client", "curl"],
    ],
)
def test_bad_usage_prints_usage_and_exits_2(args):
    r = bench(*args, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "usage:" in r.stderr
    assert r.stdout == ""


def test_help_documents_the_options_not_the_test_hooks():
    r = bench("bench", "--help", timeout=60)
    assert r.returncode == 0
    for option in ("--samples", "--json", "--plot", "--variants", "--delay-ms",
                   "--client", "--workers", "cpu", "io", "micro", "all"):
        assert option in r.stdout
    assert "--scale" not in r.stdout
    assert "--timeout" not in r.stdout


# --------------------------------------------------------------------------
# the CPU-bound benchmark


def test_cpu_prints_a_table_and_writes_valid_json(tmp_path):
    out = tmp_path / "r.json"
    r = bench("bench", "cpu", *TINY, "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "The article's CPU-bound benchmark" in r.stdout
    assert "speed-up" in r.stdout
    # progress went to stderr, one line per round
    assert "[cpu] warm-up:" in r.stderr
    assert "[cpu] sample 1/1:" in r.stderr

    result = json.loads(out.read_text())
    assert result["schema"] == 1
    assert result["python"] == sys.version.split()[0]
    info = result["tasks"]["cpu"]
    assert info["samples"] == 1 and info["warmup"] == 1
    assert info["workloads"] == [[1, 10], [11, 20], [21, 30], [31, 40]]
    rows = rows_by_key(result, "cpu")
    assert list(rows) == ALL_KEYS
    for key in ("sequential", "threads", "processes", "subinterp-pool",
                "subinterp-default"):
        row = rows[key]
        assert row["status"] == "ok", row
        assert len(row["samples_s"]) == 1 and len(row["warmup_s"]) == 1
        assert row["median_s"] > 0
        assert row["label"] in r.stdout
    assert rows["sequential"]["speedup"] == 1.0
    # Sequential timed each chunk: the chunk bound comes from those
    assert [len(c) for c in rows["sequential"]["chunks_s"]] == [4]
    assert 1.0 <= info["chunk_bound"] <= 2.0
    # the calibration ran before the round and after it, in 2 processes
    calib = info["calibration"]
    assert calib["status"] == "ok", calib
    assert len(calib["single_s"]) == len(calib["parallel_s"]) == 2
    assert info["machine"]["measures"] == 2
    assert info["machine"]["workers"] == info["workers"]
    assert len(info["round_ceilings"]) == 1
    assert "[cpu] after the last round: c:" in r.stderr
    assert "Calibration: the same fixed CPU work" in r.stdout
    assert "of max" in r.stdout
    stdlib = rows["stdlib-interpreters"]
    if sys.version_info >= (3, 14):
        assert stdlib["status"] == "ok", stdlib
    else:  # the backport may or may not be installed (and work)
        assert stdlib["status"] in ("ok", "unavailable", "failed")
        if stdlib["status"] == "unavailable":
            assert "interpreters-pep-734" in stdlib["error"]
            assert "not available" in r.stdout


def test_variants_option_selects_rows(tmp_path):
    out = tmp_path / "r.json"
    r = bench("bench", "cpu", *TINY, "--variants", "subinterp-default,sequential",
              "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert list(rows_by_key(json.loads(out.read_text()), "cpu")) == [
        "subinterp-default", "sequential"]


def test_no_calibration_option(tmp_path):
    out = tmp_path / "r.json"
    r = bench("bench", "cpu", *TINY, "--variants", "sequential,subinterp-default",
              "--no-calibration", "--json", str(out))
    assert r.returncode == 0, r.stderr
    info = json.loads(out.read_text())["tasks"]["cpu"]
    assert "calibration" not in info and info["machine"] is None
    assert "c:" not in r.stderr
    assert "Calibration" not in r.stdout and "of max" not in r.stdout
    assert "Chunk bound" in r.stdout


def test_a_failing_calibration_fails_no_row(tmp_path):
    out = tmp_path / "r.json"
    env = _env(SUBINTERP_BENCH_INJECT="calibration=crash")
    r = bench("bench", "cpu", *TINY, "--variants", "sequential,subinterp-default",
              "--json", str(out), env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(out.read_text())["tasks"]["cpu"]
    assert info["calibration"]["status"] == "failed"
    assert "SIGABRT" in info["calibration"]["error"]
    assert all(row["status"] == "ok" for row in info["variants"])
    assert "Calibration: FAILED" in r.stdout


def test_a_failing_variant_is_reported_and_the_run_goes_on(tmp_path):
    out = tmp_path / "r.json"
    env = _env(SUBINTERP_BENCH_INJECT="threads=raise,processes=crash,subinterp-pool=hang")
    r = bench("bench", "cpu", *TINY, "--timeout", "3", "--json", str(out), env=env)
    assert r.returncode == 0, r.stderr
    rows = rows_by_key(json.loads(out.read_text()), "cpu")
    assert rows["threads"]["status"] == "failed"
    assert "RuntimeError: failure injected" in rows["threads"]["error"]
    assert rows["processes"]["status"] == "failed"
    assert "SIGABRT" in rows["processes"]["error"]
    assert rows["subinterp-pool"]["status"] == "failed"
    assert "timed out" in rows["subinterp-pool"]["error"]
    # the hung runner was made to dump its stacks before it was killed
    assert "most recent call first" in rows["subinterp-pool"].get("stderr", "")
    for key in ("sequential", "subinterp-default"):
        assert rows[key]["status"] == "ok"
        assert rows[key]["samples_s"]
    assert r.stdout.count("FAILED") == 3
    assert not runner_processes('"variant": "subinterp-pool"')


# --------------------------------------------------------------------------
# the IO-bound benchmark


def test_io_makes_real_requests_to_its_own_server(tmp_path):
    out = tmp_path / "r.json"
    r = bench("bench", "io", "--samples", "2", "--scale", "0.4", "--delay-ms", "1",
              "--variants", "sequential,threads,subinterp-pool,subinterp-default",
              "--client", "http.client", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "The article's IO-bound benchmark" in r.stdout
    info = json.loads(out.read_text())["tasks"]["io"]
    assert info["workloads"] == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert info["client"] == "http.client"
    rows = rows_by_key({"tasks": {"io": info}}, "io")
    assert all(row["status"] == "ok" for row in rows.values()), rows
    # 8 GETs per sample, 3 samples (1 warm-up) per variant, 4 variants
    assert info["requests_served"] == 8 * 3 * 4
    assert not is_listening(info["port"])


def test_io_async_variant_makes_the_gets_as_coroutines(tmp_path):
    out = tmp_path / "r.json"
    r = bench("bench", "io", "--samples", "2", "--scale", "0.4", "--delay-ms", "1",
              "--variants", "sequential,subinterp-async",
              "--client", "http.client", "--json", str(out))
    assert r.returncode == 0, r.stderr
    info = json.loads(out.read_text())["tasks"]["io"]
    rows = rows_by_key({"tasks": {"io": info}}, "io")
    row = rows["subinterp-async"]
    assert row["label"] == "subinterp.Pool async, 2 workers x max_concurrency=10"
    if sys.version_info >= (3, 13):
        assert row["status"] == "ok", row
        assert row["label"] in r.stdout
        # 8 GETs per sample, 3 samples (1 warm-up), for both variants:
        # the server checks every answer the coroutines got
        assert info["requests_served"] == 8 * 3 * 2
    else:
        assert row["status"] == "unavailable", row
        assert "gh-112140" in row["error"]
        assert "not available" in r.stdout
        assert info["requests_served"] == 8 * 3


def test_io_only_variant_is_not_a_cpu_row(tmp_path):
    # not among the cpu rows by default (ALL_KEYS above); asked for, it
    # says it is of the io benchmark only
    out = tmp_path / "r.json"
    r = bench("bench", "cpu", *TINY, "--variants", "subinterp-async",
              "--json", str(out))
    assert r.returncode == 0, r.stderr
    row = rows_by_key(json.loads(out.read_text()), "cpu")["subinterp-async"]
    assert row["status"] == "unavailable"
    assert "io benchmark only" in row["error"]


def test_io_port_in_use_fails_the_rows_not_the_command(tmp_path):
    out = tmp_path / "r.json"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = bench("bench", "io", *TINY, "--port", str(port), "--variants",
                  "sequential,threads", "--json", str(out))
    assert r.returncode == 1, r.stderr  # the task could not run at all
    rows = rows_by_key(json.loads(out.read_text()), "io")
    for row in rows.values():
        assert row["status"] == "failed"
        assert "could not start" in row["error"] and str(port) in row["error"]
    assert r.stdout.count("FAILED") == 2


def test_sigint_stops_the_run_and_the_server():
    proc = subprocess.Popen(
        [sys.executable, "-m", "subinterp", "bench", "io", "--samples", "50",
         "--delay-ms", "20", "--client", "http.client"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        port = None
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"HTTP server on 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
            if line.startswith("[io] sample 1/50"):
                break
        assert port is not None, "".join(seen)
        assert is_listening(port)
        assert runner_processes(f'"port": {port}')
        time.sleep(0.3)  # in the middle of the next round
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert took < 30
    assert "INTERRUPTED" in out
    assert "The article's IO-bound benchmark" in out  # the rows so far
    assert "Traceback" not in err
    assert not is_listening(port)
    assert not runner_processes(f'"port": {port}')


def _tagged_processes(tag):
    """pids of the processes whose environment holds *tag*."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if tag.encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_sigint_in_cpu_stops_the_calibration_processes_too():
    tag = f"SUBINTERP_TEST_SIGINT={os.getpid()}-{time.monotonic_ns()}"
    name, value = tag.split("=", 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "subinterp", "bench", "cpu", "--scale", "0.01",
         "--samples", "500", "--variants", "sequential,subinterp-default"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(**{name: value}),
        cwd=ROOT,
    )
    try:
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("[cpu] sample 1/500"):
                break
        assert seen and seen[-1].startswith("[cpu] sample 1/500"), "".join(seen)
        # the orchestrator, 2 runners, the calibration's 2 processes (the
        # default pool's workers are interpreters, not processes)
        assert len(_tagged_processes(tag)) >= 5
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out
    assert "Traceback" not in err
    assert _tagged_processes(tag) == []


# --------------------------------------------------------------------------
# chart


def test_plot_draws_a_png_or_says_matplotlib_is_missing(tmp_path):
    png = tmp_path / "chart.png"
    r = bench("bench", "cpu", *TINY, "--variants", "sequential,threads",
              "--plot", str(png))
    assert r.returncode == 0, r.stderr
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in r.stderr
        assert not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# micro: the benchmarks of bench/, from a copy laid out like an install


@pytest.fixture
def installed(tmp_path):
    """A copy of the package in site/ with no bench/ beside it."""
    site = tmp_path / "site"
    shutil.copytree(
        os.path.join(ROOT, "subinterp"),
        site / "subinterp",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return site


def test_micro_without_bench_folder_says_so(installed):
    r = bench("bench", "micro", env=_env(str(installed)), cwd=str(installed))
    assert r.returncode == 1
    assert "no micro benchmarks" in r.stdout
    assert "source repository" in r.stdout


FAKE_BENCH = textwrap.dedent("""
    import argparse, json
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    assert args.quick
    print("fake table: 42 us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": [{"what": "fake", "us": 42}]}, f)
""")


def test_micro_runs_every_bench_script_and_reports_failures(installed, tmp_path):
    folder = installed / "bench"
    folder.mkdir()
    (folder / "bench_fake.py").write_text(FAKE_BENCH)
    (folder / "bench_broken.py").write_text("raise SystemExit('broken on purpose')\n")
    (folder / "helper.py").write_text("raise SystemExit('not a benchmark')\n")
    out = tmp_path / "m.json"
    r = bench("bench", "micro", "--json", str(out), env=_env(str(installed)),
              cwd=str(installed))
    assert r.returncode == 0, r.stderr
    assert "fake table: 42 us" in r.stdout
    assert "bench_broken.py" in r.stdout and "FAILED" in r.stdout
    assert "helper.py" not in r.stdout
    micro = json.loads(out.read_text())["micro"]
    by_name = {b["name"]: b for b in micro["benchmarks"]}
    assert set(by_name) == {"bench_fake.py", "bench_broken.py"}
    assert by_name["bench_fake.py"]["status"] == "ok"
    assert by_name["bench_fake.py"]["json"] == {"rows": [{"what": "fake", "us": 42}]}
    assert by_name["bench_broken.py"]["status"] == "failed"
    assert "broken on purpose" in by_name["bench_broken.py"]["stderr"]
