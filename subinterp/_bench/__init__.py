"""``python -m subinterp bench``: subinterp against the alternatives.

The article's CPU-bound and IO-bound benchmarks (workloads.py) with every
variant (variants.py), each run in a child process (runner.py) by the
orchestrator (cli.py); micro.py runs the micro benchmarks of bench/ and
report.py prints and saves the results.  See docs/benchmarks.md.
"""
