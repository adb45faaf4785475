"""Quality benchmark; same as `aekit bench quality`. See src/aekit/bench/quality.py.

    python benchmarks/quality.py [--quick] [--json benchmarks/results/quality.json]
"""

import sys

from aekit.bench.quality import main

if __name__ == "__main__":
    sys.exit(main())
