"""Throughput benchmark; same as `aekit bench throughput`. See src/aekit/bench/throughput.py.

    python benchmarks/throughput.py [--dataset fashion-mnist] [--json benchmarks/results/throughput.json]
"""

import sys

from aekit.bench.throughput import main

if __name__ == "__main__":
    sys.exit(main())
