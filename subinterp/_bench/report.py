"""Statistics, the results table, the JSON file and the chart."""

from __future__ import annotations

import json
import os
import statistics

# Other programs using this many CPUs on average during a task (from
# /proc/stat, minus the benchmark's own CPU time) get the task a warning.
BUSY_CPUS = 0.15

TASK_TITLES = {
    "cpu": "The article's CPU-bound benchmark",
    "io": "The article's IO-bound benchmark",
}


def add_stats(row: dict) -> None:
    """median / min / max / mean / stdev (seconds) of the row's samples."""
    s = row.get("samples_s") or []
    if s:
        row["median_s"] = statistics.median(s)
        row["min_s"] = min(s)
        row["max_s"] = max(s)
        row["mean_s"] = statistics.fmean(s)
        row["stdev_s"] = statistics.stdev(s) if len(s) > 1 else None
    else:
        for k in ("median_s", "min_s", "max_s", "mean_s", "stdev_s"):
            row[k] = None


def add_ratios(info: dict) -> None:
    """speedup = Sequential's median / the row's median (above 1: faster)."""
    base = next(
        (r["median_s"] for r in info["variants"]
         if r["key"] == "sequential" and r.get("median_s")),
        None,
    )
    info["baseline_s"] = base
    for r in info["variants"]:
        m = r.get("median_s")
        r["speedup"] = base / m if base and m else None


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def _task_header(task: str, info: dict) -> list[str]:
    w = info["workloads"]
    scale = "" if info["scale"] == 1 else f" (scaled by {info['scale']:g}: not the article's size)"
    if task == "cpu":
        what = (f"cpu_worker(start, end) multiplies start..end; {len(w)} chunks "
                f"{w[0][0]}..{w[-1][1]}{scale}")
    else:
        n = sum(b - a + 1 for a, b in w)
        what = (f"io_worker(start, end) makes one GET per integer, one client per "
                f"chunk; {n} GETs in {len(w)} chunks{scale}; local server, "
                f"{info['delay_ms']:g} ms per response; client {info['client']}")
    text = (f"{TASK_TITLES[task]}: {what}. {info['workers']} workers per pool; "
            f"median of {info['samples']} samples after {info['warmup']} warm-up; "
            "each variant in its own process, samples taken in turns.")
    return _wrap(text, 96)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for word in words:
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    return lines or [""]


def _display_label(r: dict) -> str:
    label = r["label"]
    if r["status"] == "interrupted" and r["samples_s"]:
        n = len(r["samples_s"])
        label += f" ({n} sample{'s' if n > 1 else ''})"
    if r.get("note"):
        label += " (!)"
    return label if len(label) <= 60 else label[:57] + "..."


def format_task(task: str, info: dict) -> str:
    rows = info["variants"]
    labels = [_display_label(r) for r in rows]
    lw = max([len("variant")] + [len(label) for label in labels])
    out = _task_header(task, info)
    out.append("")
    head = (f"{'variant':<{lw}}  {'median':>9}  {'min':>9}  {'max':>9}  "
            f"{'stdev':>8}  {'speed-up':>8}")
    out.append(head)
    out.append("-" * len(head))
    notes = []
    for r, label in zip(rows, labels):
        if r["status"] in ("ok", "interrupted") and r["samples_s"]:
            sp = r.get("speedup")
            ratio = f"{sp:.2f}x" if sp else "-"
            out.append(
                f"{label:<{lw}}  {_dur(r['median_s']):>9}  {_dur(r['min_s']):>9}  "
                f"{_dur(r['max_s']):>9}  {_dur(r['stdev_s']):>8}  {ratio:>8}"
            )
            if r.get("note"):
                notes.append(f"(!) {r['label']}: {r['note']}")
        else:
            what = {"unavailable": "not available", "interrupted": "no sample"}.get(
                r["status"], "FAILED")
            text = f"{what}: {r.get('error') or ''}"
            wrapped = _wrap(text, max(40, len(head) - lw - 2))
            out.append(f"{label:<{lw}}  {wrapped[0]}")
            out.extend(f"{'':<{lw}}  {line}" for line in wrapped[1:4])
    out.append("(speed-up: Sequential's median / the variant's median; above 1.00x is "
               "faster than Sequential)")
    out.extend(notes)
    other = info.get("other_load_cpus")
    if other is not None and other >= BUSY_CPUS:
        out.extend(_wrap(
            f"WARNING: other programs kept {other:.2f} CPUs busy on average while "
            "this ran: the figures are disturbed (parallel variants most); run "
            "again on a quiet machine.", 96))
    return "\n".join(out) + "\n"


def format_report(result: dict) -> str:
    parts = [
        f"subinterp {result['subinterp']} benchmark - Python {result['python']} "
        f"({result['implementation']}), {result['platform']}, "
        f"{result['usable_cpus']} usable CPUs",
        f"command: {result['command']}",
        "",
    ]
    for task, info in result["tasks"].items():
        if info.get("variants"):
            parts.append(format_task(task, info))
    if result.get("micro"):
        from . import micro

        parts.append(micro.format_micro(result["micro"]))
    if result.get("interrupted"):
        parts.append("INTERRUPTED: the results above are incomplete.\n")
    return "\n".join(parts)


def write_json(result: dict, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def plot(result: dict, path: str) -> tuple[str, str]:
    """Draw one bar chart per task: (message, "ok" | "missing" | "error")."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return (f"--plot: matplotlib is not installed, no chart written to {path} "
                "(pip install matplotlib); the rest of the run is unaffected", "missing")
    tasks = [(t, i) for t, i in result["tasks"].items()
             if any(r["status"] == "ok" for r in i["variants"])]
    if not tasks:
        return "--plot: no results to draw", "error"
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 5), squeeze=False)
    for ax, (task, info) in zip(axes[0], tasks):
        rows = info["variants"]
        names = [_short(r) for r in rows]
        med = [(r["median_s"] or 0) * 1e3 for r in rows]
        lo = [max(0.0, m - (r["min_s"] or 0) * 1e3) if r["median_s"] else 0 for m, r in zip(med, rows)]
        hi = [max(0.0, (r["max_s"] or 0) * 1e3 - m) if r["median_s"] else 0 for m, r in zip(med, rows)]
        colors = ["#c44e52" if r["key"].startswith("subinterp") else "#4c72b0" for r in rows]
        bars = ax.bar(range(len(rows)), med, yerr=[lo, hi], capsize=4, color=colors)
        for bar, r in zip(bars, rows):
            if r["status"] != "ok":
                ax.text(bar.get_x() + bar.get_width() / 2, 0, " n/a" if r["status"] == "unavailable"
                        else " failed", rotation=90, ha="center", va="bottom", fontsize=8)
            elif r.get("speedup"):  # above the error bar
                ax.text(bar.get_x() + bar.get_width() / 2, (r["max_s"] or 0) * 1e3,
                        f"{r['speedup']:.2f}x\n", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("ms per sample (median, min-max)")
        scale = "" if info["scale"] == 1 else f", scaled by {info['scale']:g}"
        ax.set_title(f"{TASK_TITLES[task]}\nPython {result['python']}, "
                     f"{info['workers']} workers{scale}; speed-up vs Sequential",
                     fontsize=10)
        ax.margins(y=0.12)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        return f"--plot: cannot write {path}: {exc}", "error"
    finally:
        plt.close(fig)
    return f"chart written to {path}", "ok"


_SHORT = {
    "sequential": "Sequential",
    "threads": "Threads",
    "processes": "Processes",
    "stdlib-interpreters": "stdlib\nInterpreterPool",
    "subinterp-pool": "subinterp.Pool\n(new per sample)",
    "subinterp-default": "subinterp\ndefault pool",
    "subinterp-async": "subinterp.Pool\nasync 2x10",
}


def _short(row: dict) -> str:
    return _SHORT.get(row["key"], row["key"])
