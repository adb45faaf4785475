"""Streaming benchmark; same as `aekit bench streaming`. See src/aekit/bench/streaming.py.

    python benchmarks/streaming.py [--images 1000000] [--source fashion-mnist] [--json benchmarks/results/streaming.json]
"""

import sys

from aekit.bench.streaming import main

if __name__ == "__main__":
    sys.exit(main())
