"""The explorer page in headless Chromium, from file://: no console errors, every point drawn, hover shows
the image, two clicks give an interpolation whose ends are the two reconstructions, and the page's
JavaScript decoder matches torch's within 1e-4 for every architecture. Skips where Chromium,
chromedriver or Selenium is missing."""

import numpy as np
import pytest
import torch
from test_explore import ARCHITECTURES

from aekit.cli import main
from aekit.explore.source import open_source

pytest.importorskip("selenium", reason="the browser tests need Selenium: pip install 'aekit[explore]'")
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from aekit.explore.browser import BrowserMissing, headless, open_page  # noqa: E402

pytestmark = pytest.mark.slow  # a real browser

PIXELS = "const c = document.getElementById(arguments[0]); return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0));"
STRIP = "const c = document.querySelectorAll('#strip canvas')[arguments[0]]; return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0));"


@pytest.fixture(scope="module")
def browser():
    try:
        driver = headless()
    except BrowserMissing as e:
        pytest.skip(str(e))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(explore_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    for name in ARCHITECTURES:
        assert main(["explore", str(explore_runs[name]), "--dataset", str(explore_runs["data"]), "-o", str(root / f"{name}.html")]) == 0
    return root


def severe(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def pointer_to(driver, i: int, click: bool = False) -> None:
    """Move the mouse onto point i of the map (viewport coordinates), and click there if asked."""
    x, y = driver.execute_script("const r = document.getElementById('map').getBoundingClientRect(); "
                                 "const [x, y] = window.aekitExplore.screenOf(arguments[0]); return [r.left + x, r.top + y];", i)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(x), round(y))
    if click:
        actions.pointer_action.click()
    actions.perform()


def test_loads_from_file_and_draws_every_point(browser, pages):
    open_page(browser, pages / "mlp.html")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-points") == "40"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#worst li")) == 40
    assert severe(browser) == []


def test_hover_shows_the_image(browser, pages, explore_runs):
    open_page(browser, pages / "mlp.html")
    pointer_to(browser, 5)
    shown = int(browser.find_element(By.ID, "detail-name").text.lstrip("#"))
    x_test = np.load(explore_runs["data"])["x_test"]
    assert browser.execute_script(PIXELS, "image") == x_test[shown].ravel().tolist()
    assert not browser.find_element(By.ID, "tip").get_attribute("hidden")
    assert severe(browser) == []


def test_two_points_give_an_interpolation_between_their_reconstructions(browser, pages):
    open_page(browser, pages / "conv.html")
    errors = browser.execute_script("return Array.from(window.aekitExplore.errors)")
    a, b = int(np.argmax(errors)), int(np.argmin(errors))
    ends = []
    for i in (a, b):
        pointer_to(browser, i, click=True)
        ends.append(browser.execute_script(PIXELS, "reconstruction"))
    strip = browser.find_elements(By.CSS_SELECTOR, "#strip canvas")
    assert len(strip) == 10
    assert browser.execute_script(STRIP, 0) == ends[0] and browser.execute_script(STRIP, 9) == ends[1]
    assert ends[0] != ends[1] and severe(browser) == []


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_page_decoder_matches_torch(browser, pages, explore_runs, name):
    open_page(browser, pages / f"{name}.html")
    model = open_source(str(explore_runs[name]), dataset=str(explore_runs["data"])).autoencoder
    codes = browser.execute_script("const e = window.aekitExplore; return [0, 7, 39].map((i) => Array.from(e.codeOf(i)));")
    rng = np.random.default_rng(0)
    codes = np.array(codes + (rng.normal(0, 2, size=(2, len(codes[0])))).tolist(), dtype=np.float32)  # unbounded too
    page = np.array(browser.execute_script("return arguments[0].map((c) => Array.from(window.aekitExplore.decode(c)))",
                                           codes.tolist()))
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(codes)).numpy()
    assert np.abs(page - expected).max() < 1e-4
    assert severe(browser) == []


def test_float16_weights_decode_as_torch_with_rounded_weights(browser, explore_runs, tmp_path):
    """--weights float16: the page runs the weights rounded to float16, in float32 arithmetic, and nothing else."""
    import copy

    page_file = tmp_path / "half.html"
    assert main(["explore", str(explore_runs["pca-residual"]), "--dataset", str(explore_runs["data"]), "-o",
                 str(page_file), "--weights", "float16"]) == 0
    open_page(browser, page_file)
    codes = np.array(browser.execute_script("const e = window.aekitExplore; return [0, 9].map((i) => Array.from(e.codeOf(i)));"),
                     dtype=np.float32)
    page = np.array(browser.execute_script("return arguments[0].map((c) => Array.from(window.aekitExplore.decode(c)))",
                                           codes.tolist()))
    model = open_source(str(explore_runs["pca-residual"]), dataset=str(explore_runs["data"])).autoencoder
    rounded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for t in [*rounded.parameters(), *rounded.buffers()]:
            if t.is_floating_point():
                t.copy_(t.half().float())
        expected, exact = rounded.decode(torch.from_numpy(codes)).numpy(), model.decode(torch.from_numpy(codes)).numpy()
    assert np.abs(page - expected).max() < 1e-4
    assert np.abs(page - exact).max() > 1e-6  # the rounding is really there
    assert severe(browser) == []


def _page_and_model(browser, tmp_path, run, source):
    assert main(["explore", str(run), *source, "-o", str(tmp_path / "page.html")]) == 0
    open_page(browser, tmp_path / "page.html")
    assert not severe(browser) and browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    return open_source(str(run), **dict(zip(("input",), source[1:])))


def _decoder_agrees(browser, src) -> None:
    codes = np.array(browser.execute_script("const e = window.aekitExplore; return [0, 3].map((i) => Array.from(e.codeOf(i)));"),
                     dtype=np.float32)
    page = np.array(browser.execute_script("return arguments[0].map((c) => Array.from(window.aekitExplore.decode(c)))",
                                           codes.tolist()))
    with torch.no_grad():
        assert np.abs(page - src.autoencoder.decode(torch.from_numpy(codes)).numpy()).max() < 1e-4


def test_a_table_page_shows_each_rows_values_and_its_worst_columns(browser, tmp_path):
    from test_tables import make_table, write

    rows = write(make_table(), tmp_path / "rows.csv")
    assert main(["reproduce", "stacked", "--dataset", str(rows), "--label-column", "kind", "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "epochs=2", "--set", "batch_size=16"]) == 0
    src = _page_and_model(browser, tmp_path, tmp_path / "run" / "stacked", ["--input", str(rows)])
    assert src.table is not None and len(src.images) == 120
    pointer_to(browser, 5)
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in browser.find_elements(By.CSS_SELECTOR, "#row tr")[1:]]
    assert sorted(c[0] for c in cells) == ["price", "site", "size"]  # one row per column, the worst first
    shares = [int(c[3].rstrip("%")) for c in cells]
    assert shares == sorted(shares, reverse=True) and 98 <= sum(shares) <= 102
    site = next(c for c in cells if c[0] == "site")
    assert site[1] in ("north", "south") and site[2] in ("north", "south")
    size = next(c for c in cells if c[0] == "size")
    assert abs(float(size[1]) - make_table().loc[5, "size"]) < 0.01 * abs(make_table().loc[5, "size"])  # in the table's units
    assert "(" in browser.find_element(By.CSS_SELECTOR, "#worst li").text  # its worst columns, with their shares
    _decoder_agrees(browser, src)


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_a_color_page_draws_and_decodes_color(browser, tmp_path, architecture):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (120, 12, 10, 3), dtype=np.uint8)
    x[:, :, :, 0] += 180  # red images: a gray page would show r == g == b
    np.savez(tmp_path / "red.npz", x_train=x[:100], x_test=x[100:])
    extra = ["--set", "architecture=conv", "--set", "hidden_sizes=4,8,6"] if architecture == "conv" else []
    assert main(["reproduce", "stacked", "--dataset", str(tmp_path / "red.npz"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--set", "epochs=2", "--set", "batch_size=20", *extra]) == 0
    src = _page_and_model(browser, tmp_path, tmp_path / "run" / "stacked", ["--input", str(tmp_path / "red.npz")])
    pointer_to(browser, 2)
    rgb = np.array(browser.execute_script("const c = document.getElementById('image'); "
                                          "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"))
    rgb = rgb.reshape(-1, 4)[:, :3]
    assert rgb.shape[0] == 12 * 10 and (rgb[:, 0] > rgb[:, 1] + 100).all()  # the sprite keeps the colours
    _decoder_agrees(browser, src)
