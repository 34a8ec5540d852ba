"""Save a screenshot of a running gateway's dashboard (for the README), in headless
Chromium (`make browser` installs it):

    .venv/bin/python scripts/dashboard_screenshot.py URL ADMIN_KEY docs/demo-dashboard.png
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(url: str, key: str, out: Path, width: int = 1400, height: int = 2700) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(f"{url}/dashboard")
        field = WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.ID, "key")))
        field.send_keys(key)
        driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.body.dataset.ready") == "1"
        )
        banner = driver.find_element(By.ID, "simulated")
        print(f"simulated banner shown: {banner.is_displayed()}")
        out.write_bytes(driver.get_screenshot_as_png())
        print(f"wrote {out}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
