"""Explorer page benchmark; same as `aekit bench explore`. See src/aekit/bench/explore.py.

    python benchmarks/explore.py RUN[:MAX_POINTS] ... [-o benchmarks/results/explore.json] [--screenshot PNG]
"""

import sys

from aekit.bench import explore
from aekit.bench.common import script_main

if __name__ == "__main__":
    sys.exit(script_main(explore))
