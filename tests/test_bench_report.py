"""The statistics of ``python -m subinterp bench``, on given samples.

These test the report's arithmetic (quartiles, the chunk bound, the
calibration's parallelism and noise, how close a row came to what the
machine allowed) and what the report says about it, without running any
benchmark: every input is a list of made-up sample times.
"""

import math

import pytest

from subinterp._bench import report

# The article's CPU chunks as one 3.13 run measured them (docs/benchmarks.md).
CHUNKS = [0.0176, 0.0217, 0.0229, 0.0247]


def approx(x, rel=1e-9):
    return pytest.approx(x, rel=rel)


# --------------------------------------------------------------------------
# quartiles and the coefficient of variation


def test_quartiles_of_an_odd_and_an_even_list():
    assert report.quartiles([5.0, 1.0, 3.0, 2.0, 4.0]) == (2.0, 3.0, 4.0)
    q1, med, q3 = report.quartiles([1.0, 2.0, 3.0, 4.0])
    assert (q1, med, q3) == (approx(1.75), approx(2.5), approx(3.25))


def test_quartiles_of_one_sample():
    assert report.quartiles([7.0]) == (7.0, 7.0, 7.0)


def test_quartiles_ignore_an_outlier_that_moves_the_stdev():
    quiet = [0.050] * 9 + [0.051] * 10
    q1, med, q3 = report.quartiles(quiet + [0.445])
    assert med == approx(0.051) and q3 - q1 <= 0.001 + 1e-12


def test_cv():
    assert report.cv([1.0]) is None
    assert report.cv([2.0, 2.0, 2.0]) == 0.0
    # stdev of [1, 3] is sqrt(2), the mean 2
    assert report.cv([1.0, 3.0]) == approx(math.sqrt(2) / 2)


def test_add_stats_gives_quartiles_and_iqr():
    row = {"samples_s": [0.1, 0.2, 0.3, 0.4, 0.5]}
    report.add_stats(row)
    assert row["median_s"] == approx(0.3)
    assert row["q1_s"] == approx(0.2) and row["q3_s"] == approx(0.4)
    assert row["iqr_s"] == approx(0.2)
    assert row["min_s"] == 0.1 and row["max_s"] == 0.5
    empty = {"samples_s": []}
    report.add_stats(empty)
    assert empty["median_s"] is None and empty["iqr_s"] is None


# --------------------------------------------------------------------------
# the chunk bound


def test_makespan_hands_each_chunk_to_the_first_free_worker():
    # worker 1: 17.6 then 22.9; worker 2: 21.7 then 24.7
    assert report.makespan(CHUNKS, 2) == approx(0.0217 + 0.0247)
    assert report.makespan(CHUNKS, 1) == approx(sum(CHUNKS))
    assert report.makespan(CHUNKS, 4) == approx(0.0247)
    # in order, not the best order: 1, 1, 2 on 2 workers is 3, not 2
    assert report.makespan([1.0, 1.0, 2.0], 2) == 3.0


def test_chunk_bound_of_the_articles_chunks_is_187_on_two_workers():
    assert report.chunk_bound(CHUNKS, 2) == approx(sum(CHUNKS) / 0.0464)
    assert round(report.chunk_bound(CHUNKS, 2), 2) == 1.87


def test_chunk_bound_of_equal_chunks_is_the_workers():
    assert report.chunk_bound([1.0] * 4, 2) == approx(2.0)
    assert report.chunk_bound([1.0] * 4, 3) == approx(2.0)  # 2 rounds either way
    assert report.chunk_bound([1.0] * 4, 4) == approx(4.0)
    assert report.chunk_bound([], 2) is None
    assert report.chunk_bound([0.0, 0.0], 2) is None


# --------------------------------------------------------------------------
# the calibration


def test_calibration_summary_parallelism_and_noise():
    calib = {"single_s": [0.020, 0.020, 0.020], "parallel_s": [0.020, 0.040, 0.025]}
    m = report.calibration_summary(calib, 2)
    assert m["parallelism"] == [approx(2.0), approx(1.0), approx(1.6)]
    assert m["parallelism_median"] == approx(1.6)
    assert m["parallelism_min"] == approx(1.0)
    assert m["parallelism_max"] == approx(2.0)
    assert m["measures"] == 3
    assert m["single_cv"] == 0.0
    assert m["parallelism_cv"] == approx(report.cv([2.0, 1.0, 1.6]))
    assert report.calibration_summary({"single_s": [], "parallel_s": []}, 2) is None
    assert report.calibration_summary({"status": "failed"}, 2) is None


def test_round_ceilings_average_the_measures_around_each_round():
    par = [2.0, 1.0, 1.8, 1.9]  # before round 0, 1, 2 and after round 2
    # rounds: mean(2.0, 1.0), mean(1.0, 1.8), mean(1.8, 1.9), capped by 1.87
    assert report.round_ceilings(par, 1.87, 3) == [
        approx(1.5), approx(1.4), approx(1.85)]
    assert report.round_ceilings([2.0, 2.0, 2.0], 1.87, 2) == [
        approx(1.87), approx(1.87)]
    assert report.round_ceilings(par, None, 3)[2] == approx(1.85)
    # cut short: the last round has only the measure before it
    assert report.round_ceilings([1.0, 2.0], None, 2) == [approx(1.5), approx(2.0)]


def _summary(single, parallel, workers=2):
    return report.calibration_summary(
        {"single_s": single, "parallel_s": parallel}, workers)


def test_verdict_quiet_machine():
    m = _summary([0.0200, 0.0201, 0.0199] * 7, [0.0202, 0.0203, 0.0201] * 7)
    assert m["parallelism_median"] > 1.97
    assert m["disturbed_measures"] == 0
    assert report.machine_verdict(m) == ("quiet", [])
    assert report.machine_verdict(None) == ("", [])


def test_verdict_short_parallelism_is_noisy():
    # a neighbour kept one of the two CPUs busy all along: steady, but 1x
    m = _summary([0.020] * 9, [0.040] * 9)
    level, (short, disturbed) = report.machine_verdict(m)
    assert level == "noisy"
    assert "only 1.00x" in short
    assert disturbed.startswith("9 of 9 calibration measures were disturbed")


def test_verdict_a_few_disturbed_measures_leave_the_medians():
    # a neighbour in 3 rounds of 21 (the medians stand)
    m = _summary([0.020] * 21, [0.020] * 18 + [0.040] * 3)
    assert m["parallelism_median"] == approx(2.0)
    assert m["disturbed_measures"] == 3
    level, (line,) = report.machine_verdict(m)
    assert level == "disturbed"
    assert line.startswith("3 of 21 calibration measures were disturbed")
    assert "ranged from 1.00x to 2.00x" in line


def test_verdict_more_than_a_quarter_disturbed_is_noisy():
    # 6 of 21 rounds (over a quarter), the median parallelism still 2x
    m = _summary([0.020] * 21, [0.020] * 15 + [0.040] * 6)
    assert m["parallelism_median"] == approx(2.0)
    assert report.machine_verdict(m)[0] == "noisy"
    m = _summary([0.020] * 20, [0.020] * 15 + [0.040] * 5)  # exactly a quarter
    assert report.machine_verdict(m)[0] == "disturbed"


def test_verdict_a_slow_single_process_is_a_disturbed_measure():
    # one process alone 25% slower in 2 measures, 2 at once just as slow
    m = _summary([0.020] * 10 + [0.025] * 2, [0.020] * 10 + [0.025] * 2)
    assert m["parallelism_min"] == approx(2.0)
    assert m["disturbed_measures"] == 2
    level, (line,) = report.machine_verdict(m)
    assert level == "disturbed"
    assert "one process from 20.0 ms to 25.0 ms" in line
    # 9% slower is within the threshold
    m = _summary([0.020] * 10 + [0.0218] * 2, [0.020] * 10 + [0.0218] * 2)
    assert report.machine_verdict(m) == ("quiet", [])


# --------------------------------------------------------------------------
# add_ratios: speed-ups, per round, of the most the machine allowed


def _info(seq, rows, calib=None, workers=2, chunks=None):
    variants = [{"key": "sequential", "label": "Sequential", "status": "ok",
                 "samples_s": seq,
                 "chunks_s": chunks or [CHUNKS] * len(seq)}]
    for key, samples in rows.items():
        variants.append({"key": key, "label": key, "status": "ok",
                         "samples_s": samples})
    for r in variants:
        report.add_stats(r)
    info = {"variants": variants, "workers": workers, "samples": len(seq),
            "warmup": 1, "scale": 1, "workloads": [[1, 10000]] * 4}
    if calib is not None:
        info["calibration"] = calib
    report.add_ratios(info)
    return info, {r["key"]: r for r in variants}


def test_add_ratios_speedup_and_rounds():
    info, rows = _info([0.090, 0.090, 0.100],
                       {"subinterp-default": [0.045, 0.060, 0.050]})
    d = rows["subinterp-default"]
    assert d["speedup"] == approx(0.090 / 0.050)
    assert d["round_speedups"] == [approx(2.0), approx(1.5), approx(2.0)]
    assert (d["speedup_q1"], d["speedup_q3"]) == (approx(1.75), approx(2.0))
    assert info["chunk_bound"] == approx(report.chunk_bound(CHUNKS, 2))
    assert info["chunk_min_s"] == [approx(c) for c in CHUNKS]
    # no calibration: no ceiling
    assert info["machine"] is None and info["ceiling"] is None
    assert d["of_ceiling"] is None and info["noise"] == []
    assert info["verdict"] == ""


def test_add_ratios_takes_the_fastest_time_of_each_chunk():
    # a neighbour slowed chunk 3 of sample 3 and chunk 1 of sample 2
    chunks = [[0.010, 0.020, 0.030, 0.040], [0.019, 0.018, 0.030, 0.041],
              [0.011, 0.019, 0.090, 0.040]]
    info, _ = _info([0.1, 0.1, 0.1], {}, chunks=chunks)
    assert info["chunk_min_s"] == [approx(0.010), approx(0.018),
                                   approx(0.030), approx(0.040)]
    assert info["chunk_bound"] == approx(0.098 / 0.058)


def test_add_ratios_of_ceiling_on_a_busy_machine():
    # The machine gave 1x in the middle rounds: the default pool's speed-up
    # dropped with it, but it still did all the machine allowed.
    seq = [0.0920, 0.0920, 0.0920, 0.0920]
    pool = [0.0492, 0.0920, 0.0920, 0.0492]
    calib = {"single_s": [0.020] * 5,
             "parallel_s": [0.020, 0.020, 0.040, 0.020, 0.020]}
    info, rows = _info(seq, {"subinterp-default": pool,
                             "threads": [0.0950] * 4}, calib=calib)
    bound = info["chunk_bound"]
    assert round(bound, 2) == 1.87
    # rounds: min(bound, mean(2, 2)), mean(2, 1), mean(1, 2), min(bound, 2)
    assert info["round_ceilings"] == [approx(bound), approx(1.5), approx(1.5),
                                      approx(bound)]
    d = rows["subinterp-default"]
    # speed-ups 1.87, 1, 1, 1.87 over ceilings 1.87, 1.5, 1.5, 1.87
    expected = sorted([(0.092 / 0.0492) / bound, 1 / 1.5, 1 / 1.5,
                       (0.092 / 0.0492) / bound])
    assert d["of_ceiling"] == approx((expected[1] + expected[2]) / 2)
    assert rows["threads"]["of_ceiling"] < 0.75
    assert info["verdict"] == "disturbed"  # 1 of 5 measures short: said so
    assert info["noise"][0].startswith("1 of 5 calibration measures")


def test_add_ratios_without_sequential():
    info, rows = _info([], {"subinterp-default": [0.05]})
    assert info["baseline_s"] is None
    assert rows["subinterp-default"]["speedup"] is None
    assert rows["subinterp-default"]["round_speedups"] == []


# --------------------------------------------------------------------------
# what the report says


def test_report_of_a_quiet_run_says_quiet_and_shows_of_max():
    calib = {"single_s": [0.0200] * 4, "parallel_s": [0.0201] * 4}
    info, _ = _info([0.092] * 3, {"subinterp-default": [0.0492] * 3}, calib=calib)
    raw = report.format_task("cpu", info)
    text = raw.replace("\n", " ")
    assert "Chunk bound: 1.87x" in text
    assert "17.6, 21.7, 22.9, 24.7 ms" in text
    assert "parallelism (= 2 x one / 2 at once) median 1.99x" in text
    assert "The machine was quiet" in text
    assert "NOISY" not in text
    line = next(x for x in raw.splitlines() if x.startswith("subinterp-default"))
    assert line.split()[-3:] == ["1.87x", "1.87-1.87", "100%"]


def test_report_of_a_noisy_run_says_so_plainly():
    calib = {"single_s": [0.020] * 4, "parallel_s": [0.020, 0.040, 0.040, 0.020]}
    info, _ = _info([0.092] * 3, {"subinterp-default": [0.0492, 0.092, 0.0492]},
                    calib=calib)
    text = report.format_task("cpu", info).replace("\n", " ")
    assert "NOISY MACHINE: the machine gave 2 processes only 1.50x" in text
    assert "2 of 4 calibration measures were disturbed" in text
    assert "The machine was quiet" not in text and "DISTURBED" not in text


def test_report_of_a_disturbed_run_says_the_medians_stand():
    calib = {"single_s": [0.020] * 5, "parallel_s": [0.020] * 4 + [0.040]}
    info, _ = _info([0.092] * 4, {"subinterp-default": [0.0492] * 3 + [0.092]},
                    calib=calib)
    text = report.format_task("cpu", info).replace("\n", " ")
    assert "DISTURBED MACHINE: 1 of 5 calibration measures" in text
    assert "the medians and the 'per round' ranges stand" in text
    assert "NOISY" not in text and "The machine was quiet" not in text


def test_report_says_when_the_calibration_failed():
    calib = {"status": "failed", "error": "its process died", "samples_s": []}
    info, _ = _info([0.092], {"subinterp-default": [0.0492]}, calib=calib)
    text = report.format_task("cpu", info).replace("\n", " ")
    assert "Calibration: FAILED (its process died)" in text
    assert "of max" not in text


def test_report_without_calibration_has_no_of_max_column():
    info, _ = _info([0.092], {"subinterp-default": [0.0492]})
    text = report.format_task("cpu", info).replace("\n", " ")
    assert "of max" not in text and "Calibration" not in text
    assert "per round" in text and "IQR" in text
