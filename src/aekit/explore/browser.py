"""Headless Chromium through Selenium and the system's chromedriver: how the tests, the benchmark and the
docs' screenshots open explorer pages. Optional: ``pip install 'aekit[explore]'`` and Debian's
``chromium`` and ``chromium-driver`` packages (browsers are not downloaded)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from aekit.errors import AekitError

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


class BrowserMissing(AekitError):
    """Selenium, Chromium or chromedriver is not installed."""


def find_chromium() -> tuple[str, str]:
    """Paths of the browser and its driver ($AEKIT_CHROMIUM / $AEKIT_CHROMEDRIVER first), or BrowserMissing."""
    browser = os.environ.get("AEKIT_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM)), None)
    driver = os.environ.get("AEKIT_CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        raise BrowserMissing("headless Chromium needs the chromium and chromedriver programs; "
                             "run: apt-get install chromium chromium-driver")
    return browser, driver


def headless(width: int = 1280, height: int = 800):
    """A Selenium Chrome driver on headless Chromium that keeps the browser console's log."""
    browser, driver = find_chromium()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise BrowserMissing("driving Chromium needs Selenium; run: pip install 'aekit[explore]'") from None
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def open_page(driver, page: str | os.PathLike, timeout: float = 60.0) -> float:
    """Load ``page`` from file:// and wait until it says it is drawn; returns the seconds it took."""
    start = time.perf_counter()
    driver.get(Path(page).resolve().as_uri())
    while (state := driver.execute_script("return document.body.dataset.ready")) == "false":
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{page} was not drawn within {timeout} s")
        time.sleep(0.01)
    if state != "true":
        raise RuntimeError(f"{page} failed to draw: {driver.get_log('browser')}")
    return time.perf_counter() - start
