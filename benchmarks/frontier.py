"""Quality per second against pythae's default autoencoder; same as `aekit bench frontier`. See src/aekit/bench/frontier.py.

    python benchmarks/frontier.py [--quick] [--peer-python .venv-peers/bin/python] [--json benchmarks/results/frontier.json]
"""

import sys

from aekit.bench.frontier import main

if __name__ == "__main__":
    sys.exit(main())
