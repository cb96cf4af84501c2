"""Fixtures for the live view's browser tests: a real headless Chromium driven by Selenium.

Skips with the reason when Debian's ``chromium``/``chromium-driver`` or the ``selenium`` package are
missing (``scripts/bootstrap.sh test`` installs them as root).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        return f"needs Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
    try:
        import selenium  # noqa: F401 - only whether it imports
    except ImportError:
        return "needs the selenium package (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module", name="browser")
def fixture_browser() -> Iterator[Any]:
    """One headless Chromium per test module, 1280x1000; quit (its processes stopped) at the end."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
