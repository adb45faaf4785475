"""One-class anomaly benchmark; same as `aekit bench anomaly`. See src/aekit/bench/anomaly.py.

    python benchmarks/anomaly.py [--dataset mnist-5k] [--json benchmarks/results/anomaly.json]
"""

import sys

from aekit.bench.anomaly import main

if __name__ == "__main__":
    sys.exit(main())
