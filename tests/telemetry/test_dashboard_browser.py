"""The dashboard in headless Chromium against a ledger of generated traffic: every chart
drawn with data, a screenshot that is not blank, and the empty and wrong-key states.

Needs Debian's `chromium` and `chromium-driver` (`make browser` installs them). Without
them the test is skipped, except where TEST_REQUIRE_SERVICES=1 (CI) makes it a failure.
`TEST_SAVE_SCREENSHOT=1` also writes the screenshot to docs/dashboard.png for the README
(not a TURNOUT_* variable: the test fixtures clear those).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from turnout.gateway.governance import Database

from .dashboard_app import ADMIN, Served, dashboard_app
from .traffic import fill

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS = Path(__file__).parents[2] / "docs"
CHARTS = 11
WIDTH, HEIGHT = 1400, 2700  # tall enough for every chart in one screenshot


def _need_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    message = f"missing {', '.join(missing)}: run `make browser` (apt-get install chromium)"
    if os.environ.get("TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",  # small /dev/shm in containers
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, url: str, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{url}/dashboard")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{url}/dashboard")
    field = WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.ID, "key")))
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def _wait_drawn(driver: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1",
        message=f"charts not drawn; page error: {driver.find_element('id', 'error').text!r}",
    )


# Per chart: traces, points across them, whether it says it is empty, its title.
CHART_STATE = """
return Array.from(document.querySelectorAll('.chart')).map((div) => ({
  id: div.id,
  empty: div.dataset.empty,
  traces: (div.data || []).length,
  // points with a finite value: a trace of NaN or nulls draws nothing
  points: (div.data || []).reduce((n, t) => n + (t.y || []).filter(
    (v) => typeof v === 'number' && isFinite(v)).length, 0),
  title: (div.layout && div.layout.title && div.layout.title.text) || '',
  xTitle: (div.layout && div.layout.xaxis && div.layout.xaxis.title.text) || '',
  yTitle: (div.layout && div.layout.yaxis && div.layout.yaxis.title.text) || '',
  drawn: div.querySelector('svg.main-svg') !== null,
  note: Array.from(div.querySelectorAll('.annotation-text')).map((a) => a.textContent),
}));
"""


def _freshness() -> list[dict[str, Any]]:
    return [
        {"collection": "manuals", "age_s": 900, "slo_s": 3600},
        {"collection": "product-photos", "age_s": 9000, "slo_s": 3600},
    ]


def test_every_chart_renders_the_generated_traffic(browser: Any, tmp_path: Path) -> None:
    from PIL import Image

    db = Database.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    fill(db, 3000, now=datetime.now(UTC))
    app = dashboard_app(db, freshness=_freshness, simulated=True)
    try:
        with Served(app) as url:
            _open(browser, url, ADMIN)
            _wait_drawn(browser)
            charts = browser.execute_script(CHART_STATE)
            banner = browser.find_element("id", "simulated")
            assert banner.is_displayed() and "simulated providers" in banner.text
            summary = browser.find_element("id", "summary").text
            assert re.match(r"[\d,]+ requests, \$\d+\.\d\d, \d+\.\d% failed", summary), summary
            png = browser.get_screenshot_as_png()
            viewport = browser.execute_script(
                "return [window.innerWidth * devicePixelRatio, "
                "window.innerHeight * devicePixelRatio]"
            )
    finally:
        db.close()

    assert len(charts) == CHARTS
    for chart in charts:
        assert chart["drawn"], chart
        assert chart["empty"] == "0" and chart["traces"] > 0 and chart["points"] > 0, chart
        assert chart["title"] and chart["xTitle"] and chart["yTitle"], chart
        assert chart["note"] == [], chart  # no "no data" annotation anywhere

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert list(image.size) == [round(v) for v in viewport]
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "the screenshot looks blank"
    # The charts' own colours are on screen, not only the page's background and text.
    bar_blue = (0x1F, 0x77, 0xB4)
    assert any(rgb == bar_blue for _, rgb in colours)
    if os.environ.get("TEST_SAVE_SCREENSHOT") == "1":
        DOCS.mkdir(exist_ok=True)
        (DOCS / "dashboard.png").write_bytes(png)


def test_an_empty_ledger_shows_empty_states(browser: Any, tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with Served(dashboard_app(db)) as url:
            _open(browser, url, ADMIN)
            _wait_drawn(browser)
            charts = browser.execute_script(CHART_STATE)
            assert not browser.find_element("id", "simulated").is_displayed()
    finally:
        db.close()
    assert len(charts) == CHARTS
    for chart in charts:
        assert chart["drawn"] and chart["empty"] == "1" and chart["traces"] == 0, chart
        assert chart["title"] and len(chart["note"]) == 1, chart
    notes = {c["id"]: c["note"][0] for c in charts}
    assert notes["chart-freshness"] == "no collections"
    assert notes["chart-satisfaction"] == "no feedback in this window"


def test_a_wrong_key_asks_again(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    db = Database.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with Served(dashboard_app(db)) as url:
            _open(browser, url, "not-the-key")
            error = WebDriverWait(browser, 15).until(
                ec.visibility_of_element_located((By.ID, "error"))
            )
            assert "invalid admin key" in error.text
            assert browser.find_element(By.ID, "login").is_displayed()
            assert not browser.find_element(By.ID, "grid").is_displayed()
            assert browser.execute_script("return sessionStorage.length") == 0
    finally:
        db.close()
