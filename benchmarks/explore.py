"""The explorer page's size and speed: build it for a run, open it in headless Chromium from file://, and time it.

For each run (``RUN[:MAX_POINTS][@DATASET]``, DATASET's test split mapped instead of the run's own): the page's
size, the seconds to build it, the seconds from navigation to drawn (wall clock through Selenium, and the page's own
``performance.now()`` when it marks itself ready; median of 3 loads), one full redraw of the map (pan or zoom; mean
of 20), one hover hit-test (mean of 2,000), decoding one image in the page (mean of 10), and the largest difference
between the page's decoder and torch's on 5 test codes. Needs Chromium, chromedriver and Selenium (``pip install
'aekit[explore]'``; Debian's chromium and chromium-driver).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import finish, machine, script_main

NAME = "explore"


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN[:MAX_POINTS][@DATASET]",
                   help="run directories (a cap on the points; another dataset's test split)")
    p.add_argument("-o", "--output", default="benchmarks/results/explore.json", help="JSON report (and .md beside it)")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="a screenshot of the first run's page")


TIMINGS = """
const e = window.aekitExplore, t0 = performance.now();
for (let r = 0; r < 20; r++) e.draw();
const t1 = performance.now();
for (let r = 0; r < 2000; r++) e.pick(Math.random() * 900, Math.random() * 600);
const t2 = performance.now(), code = e.codeOf(0);
for (let r = 0; r < 10; r++) e.decode(code);
return [(t1 - t0) / 20, (t2 - t1) / 2000, (performance.now() - t2) / 10];
"""


SHOWCASE = """
const e = window.aekitExplore, by = Array.from(e.errors.keys()).sort((a, b) => e.errors[a] - e.errors[b]);
e.choose(by[Math.floor(by.length / 2)]); e.choose(by[Math.floor(by.length / 5)]); e.draw();
"""


def measure(driver, run: str, max_points: int | None, screenshot: str | None = None, dataset: str | None = None) -> dict:
    import numpy as np
    import torch

    from aekit.explore.browser import open_page
    from aekit.explore.page import as_in_page, page_data, render
    from aekit.explore.source import open_source

    start = time.perf_counter()
    src = open_source(run, dataset=dataset)
    data = page_data(src, max_points=max_points)
    html = render(data)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "explore.html"
        page.write_text(html)
        loads, inside = [], []
        for _ in range(3):
            loads.append(open_page(driver, page))
            inside.append(float(driver.execute_script("return document.body.dataset.drawMs")) / 1000)
        drawn = int(driver.execute_script("return document.body.dataset.points"))
        frame_ms, pick_ms, decode_ms = driver.execute_script(TIMINGS)
        codes = np.array(driver.execute_script("return [0, 1, 2, 3, 4].map((i) => Array.from(window.aekitExplore.codeOf(i)))"),
                         dtype=np.float32)
        page_decoded = np.array(driver.execute_script(
            "return arguments[0].map((c) => Array.from(window.aekitExplore.decode(c)))", codes.tolist()))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if screenshot:  # two points chosen: their interpolation decoded in the page
            driver.execute_script(SHOWCASE)
            driver.save_screenshot(screenshot)
    with torch.no_grad():  # the page's weights may be float16: compare with torch's decoder on the same weights
        expected = as_in_page(src.autoencoder, data["weights_dtype"]).decode(torch.from_numpy(codes)).numpy()
    return {"run": run, "title": src.title, "architecture": data["architecture"], "code_size": data["code_size"],
            "codes_dtype": data["codes_dtype"], "weights_dtype": data["weights_dtype"],
            "weights_error": data["weights_error"], "points": data["n"], "drawn": drawn, "bytes": len(html.encode()),
            "sprite_bytes": len(data["sprite"]), "arrays_bytes": len(data["blob"]), "build_s": round(build_s, 2),
            "open_s": round(statistics.median(loads), 3), "ready_in_page_s": round(statistics.median(inside), 3),
            "frame_ms": round(frame_ms, 2), "hover_pick_ms": round(pick_ms, 4), "decode_ms": round(decode_ms, 2),
            "decoder_max_abs_diff": float(np.abs(page_decoded - expected).max()), "console_errors": len(errors)}


def to_markdown(result: dict) -> str:
    lines = ["| run | architecture | points | size | build | open + draw (wall) | drawn (in page) | redraw | hover pick "
             "| decode one image | page vs torch decoder |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        weights = r.get("weights_dtype", "float32")
        lines.append(f"| {r['title']} | {r['architecture']}, {r['code_size']}-d ({r['codes_dtype']} codes, {weights} weights) "
                     f"| {r['points']:,} | {r['bytes'] / 1e6:.1f} MB | {r['build_s']:.1f} s | {r['open_s']:.2f} s "
                     f"| {r['ready_in_page_s']:.2f} s "
                     f"| {r['frame_ms']:.1f} ms | {r['hover_pick_ms'] * 1000:.1f} µs | {r['decode_ms']:.1f} ms "
                     f"| {r['decoder_max_abs_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def run_cli(args) -> int:
    from aekit.explore.browser import headless

    driver = headless()
    try:
        rows = []
        for n, spec in enumerate(args.runs):
            spec, _, dataset = spec.partition("@")
            run, _, cap = spec.partition(":")
            rows.append(measure(driver, run, int(cap) if cap else None, args.screenshot if n == 0 else None, dataset or None))
            print(to_markdown({"rows": rows[-1:]}).splitlines()[-1], file=sys.stderr, flush=True)
        version = driver.capabilities.get("browserVersion")
    finally:
        driver.quit()
    result = {"benchmark": NAME, "machine": {**machine(), "browser": f"headless Chromium {version}"}, "rows": rows}
    return finish(result, to_markdown(result), args.output)


if __name__ == "__main__":
    raise SystemExit(script_main(sys.modules[__name__]))
