"""Benchmarks: throughput (speed, memory) and, later, quality. Run them with ``aekit bench ...``
or ``python benchmarks/<name>.py``; each writes JSON and a markdown table."""
