"""The benchmarks' modules import each other by top-level name (`charts`, `kafka_bench`), as they
do when run as scripts from benchmarks/: put that directory on the path for their tests."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
