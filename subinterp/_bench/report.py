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


# A measure of the calibration is *disturbed* when its parallelism is
# under this fraction of the workers (the machine did not give them their
# CPUs) ...
SHORT_PARALLELISM = 0.90
# ... or when its one process took longer than this times the median of
# the run (a quiet machine stays within about 1%: CV 0.6-1.1% in quiet
# stretches here).
SLOW_SINGLE = 1.10
# Up to this fraction of disturbed measures leaves the medians sound: a median moves at most to the 67th
# percentile of the undisturbed samples when a quarter of them are slowed
# down.  More makes the run noisy.
MOST_DISTURBED = 0.25


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of *samples* (at least
    one), interpolated between the samples as numpy's default does."""
    s = sorted(samples)
    if len(s) == 1:
        return s[0], s[0], s[0]
    q1, q2, q3 = statistics.quantiles(s, n=4, method="inclusive")
    return q1, q2, q3


def cv(samples: list[float]) -> float | None:
    """Coefficient of variation (stdev / mean) of *samples*; None for
    fewer than two."""
    if len(samples) < 2:
        return None
    mean = statistics.fmean(samples)
    return statistics.stdev(samples) / mean if mean else None


def add_stats(row: dict) -> None:
    """median / min / max / mean / stdev / quartiles (seconds) of the row's
    samples."""
    s = row.get("samples_s") or []
    if s:
        row["q1_s"], row["median_s"], row["q3_s"] = quartiles(s)
        row["iqr_s"] = row["q3_s"] - row["q1_s"]
        row["min_s"] = min(s)
        row["max_s"] = max(s)
        row["mean_s"] = statistics.fmean(s)
        row["stdev_s"] = statistics.stdev(s) if len(s) > 1 else None
    else:
        for k in ("median_s", "min_s", "max_s", "mean_s", "stdev_s",
                  "q1_s", "q3_s", "iqr_s"):
            row[k] = None


def makespan(chunks: list[float], workers: int) -> float:
    """How long *workers* workers take for chunks of these durations when
    each chunk, in order, goes to the worker that is free first (what a
    pool's queue does with chunksize=1)."""
    free = [0.0] * max(1, workers)
    for c in chunks:
        i = free.index(min(free))
        free[i] += c
    return max(free)


def chunk_bound(chunks: list[float], workers: int) -> float | None:
    """The best speed-up over running the chunks one after the other that
    handing them out in order to *workers* workers allows: their sum over
    the makespan.  The article's CPU chunks are unequal (later ones
    multiply bigger numbers), so on 2 workers this is about 1.87, not 2."""
    if not chunks or workers < 1:
        return None
    span = makespan(chunks, workers)
    return sum(chunks) / span if span > 0 else None


def round_ratios(base: list[float], samples: list[float]) -> list[float]:
    """The speed-up of each round: base[r] / samples[r] (the samples of
    one round were taken one after the other, see cli.run_task)."""
    return [b / s for b, s in zip(base, samples) if s > 0]


def calibration_summary(calib: dict, workers: int) -> dict | None:
    """The machine's parallelism and noise from the calibration's measures
    (single_s, parallel_s: one of each before every round and one after
    the last).  Parallelism = workers * single / parallel: W when W
    processes run as fast at once as one alone."""
    single = calib.get("single_s") or []
    parallel = calib.get("parallel_s") or []
    par = [workers * a / b for a, b in zip(single, parallel) if b > 0]
    if not par:
        return None
    return {
        "workers": workers,
        "measures": len(par),
        "parallelism": par,
        "parallelism_median": statistics.median(par),
        "parallelism_min": min(par),
        "parallelism_max": max(par),
        "parallelism_cv": cv(par),
        "disturbed_measures": sum(
            p < SHORT_PARALLELISM * workers
            or a > SLOW_SINGLE * statistics.median(single)
            for p, a in zip(par, single)),
        "single_s": list(single),
        "single_median_s": statistics.median(single),
        "single_cv": cv(single),
        "parallel_median_s": statistics.median(parallel),
        "parallel_cv": cv(parallel),
    }


def round_ceilings(parallelism: list[float], bound: float | None,
                   rounds: int) -> list[float]:
    """The most the machine allowed in each round: the lower of the chunk
    bound and the mean of the parallelism measured just before and just
    after the round (measures r and r + 1; only the one before when the
    run was cut short)."""
    out = []
    for r in range(min(rounds, len(parallelism))):
        ceiling = statistics.fmean(parallelism[r:r + 2])
        if bound is not None:
            ceiling = min(ceiling, bound)
        out.append(ceiling)
    return out


def machine_verdict(summary: dict | None) -> tuple[str, list[str]]:
    """How quiet the machine was: ("quiet" | "disturbed" | "noisy", the
    sentences that say why), or ("", []) without a calibration."""
    if summary is None:
        return "", []
    w, n = summary["workers"], summary["measures"]
    med = summary["parallelism_median"]
    bad = summary["disturbed_measures"]
    out = []
    if med < SHORT_PARALLELISM * w:
        out.append(
            f"the machine gave {w} processes only {med:.2f}x the speed of one "
            f"(median; {w:.2f}x on an idle machine with {w} free CPUs)")
    if bad:
        single = summary["single_s"]
        out.append(
            f"{bad} of {n} calibration measures were disturbed (parallelism "
            f"under {SHORT_PARALLELISM * w:.2f}x or one process over "
            f"{SLOW_SINGLE:.2f} times its median time): the parallelism ranged "
            f"from {summary['parallelism_min']:.2f}x to "
            f"{summary['parallelism_max']:.2f}x (CV "
            f"{_pct(summary['parallelism_cv'])}), one process from "
            f"{_dur(min(single))} to {_dur(max(single))} (CV "
            f"{_pct(summary['single_cv'])})")
    if not out:
        return "quiet", out
    # (a short median means that half the measures or more were short)
    if bad <= MOST_DISTURBED * n:
        return "disturbed", out
    return "noisy", out


def add_ratios(info: dict) -> None:
    """speedup = Sequential's median / the row's median (above 1: faster),
    the per-round speed-ups and, with a calibration, how close each row
    came to what the machine and the chunks allowed."""
    seq = next((r for r in info["variants"]
                if r["key"] == "sequential" and r.get("median_s")), None)
    base = seq["median_s"] if seq else None
    info["baseline_s"] = base
    # The chunk bound, from Sequential's times of each chunk: the fastest
    # of each, the one least slowed down by other programs (the bound
    # depends on how the chunks' costs compare, not on the machine's load).
    chunks = seq.get("chunks_s") if seq else None
    bound = None
    if chunks:
        per_chunk = [min(c) for c in zip(*chunks)]
        info["chunk_min_s"] = per_chunk
        bound = chunk_bound(per_chunk, info["workers"])
    info["chunk_bound"] = bound
    calib = info.get("calibration")
    summary = (calibration_summary(calib, info["workers"])
               if isinstance(calib, dict) else None)
    info["machine"] = summary
    ceilings = []
    if seq is not None and summary is not None:
        ceilings = round_ceilings(summary["parallelism"], bound,
                                  len(seq["samples_s"]))
    info["round_ceilings"] = ceilings
    info["ceiling"] = statistics.median(ceilings) if ceilings else None
    info["verdict"], info["noise"] = machine_verdict(summary)
    for r in info["variants"]:
        m = r.get("median_s")
        r["speedup"] = base / m if base and m else None
        ratios = round_ratios(seq["samples_s"], r["samples_s"]) if seq else []
        r["round_speedups"] = ratios
        r["speedup_q1"], _, r["speedup_q3"] = (
            quartiles(ratios) if ratios else (None, None, None))
        # In each round: the row's speed-up over the most that round
        # allowed; the median of those.
        fr = [s / c for s, c in zip(ratios, ceilings) if c > 0]
        r["of_ceiling"] = statistics.median(fr) if fr else None


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
    ceiling = info.get("ceiling")
    head = (f"{'variant':<{lw}}  {'median':>9}  {'min':>9}  {'max':>9}  "
            f"{'IQR':>8}  {'speed-up':>8}  {'per round':>9}")
    if ceiling:
        head += f"  {'of max':>6}"
    out.append(head)
    out.append("-" * len(head))
    notes = []
    for r, label in zip(rows, labels):
        if r["status"] in ("ok", "interrupted") and r["samples_s"]:
            sp = r.get("speedup")
            ratio = f"{sp:.2f}x" if sp else "-"
            q1, q3 = r.get("speedup_q1"), r.get("speedup_q3")
            rnd = f"{q1:.2f}-{q3:.2f}" if q1 and q3 and r["key"] != "sequential" else "-"
            line = (
                f"{label:<{lw}}  {_dur(r['median_s']):>9}  {_dur(r['min_s']):>9}  "
                f"{_dur(r['max_s']):>9}  {_dur(r.get('iqr_s')):>8}  {ratio:>8}  {rnd:>9}"
            )
            if ceiling:
                of = r.get("of_ceiling")
                line += f"  {f'{of:.0%}' if of and r['key'] != 'sequential' else '-':>6}"
            out.append(line)
            if r.get("note"):
                notes.append(f"(!) {r['label']}: {r['note']}")
        else:
            what = {"unavailable": "not available", "interrupted": "no sample"}.get(
                r["status"], "FAILED")
            text = f"{what}: {r.get('error') or ''}"
            wrapped = _wrap(text, max(40, len(head) - lw - 2))
            out.append(f"{label:<{lw}}  {wrapped[0]}")
            out.extend(f"{'':<{lw}}  {line}" for line in wrapped[1:4])
    out.extend(_wrap(
        "(speed-up: Sequential's median / the variant's median; above 1.00x is "
        "faster than Sequential. IQR: the middle half of the samples spans "
        "this much. per round: the middle half of the speed-ups of single "
        "rounds (Sequential's sample / the variant's sample of the same "
        "round)" + (". of max: the median, over the rounds, of the round's "
                    "speed-up / the most that round allowed (see below)"
                    if ceiling else "") + ")", 96))
    out.extend(notes)
    out.extend(_format_machine(info))
    other = info.get("other_load_cpus")
    if other is not None and other >= BUSY_CPUS:
        out.extend(_wrap(
            f"WARNING: other programs kept {other:.2f} CPUs busy on average while "
            "this ran: the figures are disturbed (parallel variants most); run "
            "again on a quiet machine.", 96))
    return "\n".join(out) + "\n"


def _format_machine(info: dict) -> list[str]:
    """The calibration, the chunk bound and the verdict on the noise."""
    out = []
    calib = info.get("calibration")
    m = info.get("machine")
    bound = info.get("chunk_bound")
    w = info["workers"]
    if bound is not None and info.get("chunk_min_s"):
        chunks = ", ".join(f"{c * 1e3:.1f}" for c in info["chunk_min_s"])
        out.extend(_wrap(
            f"Chunk bound: {bound:.2f}x. Sequential's chunks took {chunks} ms "
            f"(the fastest of each); handed out in order to {w} workers, each "
            "to the first free one, they cannot run faster than that.", 96))
    if isinstance(calib, dict) and m is None:
        why = calib.get("error") or "no measure"
        out.append(f"Calibration: FAILED ({why}); the figures are not checked "
                   "against the machine.")
    elif m is not None:
        out.extend(_wrap(
            f"Calibration: the same fixed CPU work in 1 process, then in {w} "
            f"at once, before each round and after the last ({m['measures']} "
            f"measures): one process {_dur(m['single_median_s'])} (CV "
            f"{_pct(m['single_cv'])}), {w} at once {_dur(m['parallel_median_s'])} "
            f"(CV {_pct(m['parallel_cv'])}); parallelism (= {w} x one / {w} at "
            f"once) median {m['parallelism_median']:.2f}x, min "
            f"{m['parallelism_min']:.2f}x, max {m['parallelism_max']:.2f}x "
            f"(CV {_pct(m['parallelism_cv'])}; {w:.2f}x on an idle machine).", 96))
        if info.get("ceiling"):
            out.extend(_wrap(
                f"Most a row could reach: {info['ceiling']:.2f}x (median over the "
                "rounds of the lower of the chunk bound and the mean "
                "parallelism measured before and after the round).", 96))
        noise = "; ".join(info.get("noise") or [])
        verdict = info.get("verdict")
        if verdict == "noisy":
            out.extend(_wrap(
                f"NOISY MACHINE: {noise}. The speed-ups of the parallel "
                "variants may be held down by the machine rather than by what "
                "they measure: compare their 'of max' column, or run again on "
                "a quiet machine.", 96))
        elif verdict == "disturbed":
            out.extend(_wrap(
                f"DISTURBED MACHINE: {noise}. At most "
                f"{MOST_DISTURBED:.0%} of the measures: the medians and the "
                "'per round' ranges stand, the max column does not.", 96))
        else:
            out.extend(_wrap(
                "The machine was quiet: no calibration measure was disturbed "
                f"(parallelism at least {SHORT_PARALLELISM * w:.2f}x, one "
                f"process within {SLOW_SINGLE:.2f} times its median time).", 96))
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


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
