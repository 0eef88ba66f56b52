"""``python -m subinterp bench [cpu|io|micro|all] ...``: see
``python -m subinterp bench --help`` and docs/benchmarks.md."""

import sys

from ._bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
