"""The dashboard with 100,000 requests in the ledger: the data call, and the page in
headless Chromium until every chart is drawn.

Fills a fresh SQLite ledger with generated traffic (requests, their ledger attempts,
feedback, judgments; `tests/telemetry/traffic.py`), times `dashboard_data` (median of
--runs), then loads /dashboard in Debian's Chromium (`make browser`) --runs times: the
first with an empty browser cache (Plotly.js fetched), the rest warm.

    .venv/bin/python benches/dashboard.py [--requests N] [--runs 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # the traffic generator and test app live in tests/telemetry


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-dev-shm-usage",
                 "--window-size=1400,2700"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def _page_load(driver: Any, url: str) -> float:
    """Seconds from navigation to every chart drawn (the page sets data-ready=1)."""
    start = time.perf_counter()
    driver.get(f"{url}/dashboard")
    while driver.execute_script("return document.body.dataset.ready") != "1":
        if time.perf_counter() - start > 60:
            raise RuntimeError("the dashboard did not finish drawing within 60 s")
        time.sleep(0.005)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", type=Path, help="append the results to this Markdown file")
    args = parser.parse_args()

    from tests.telemetry.dashboard_app import ADMIN, Served, dashboard_app
    from tests.telemetry.traffic import fill

    from turnout.gateway.governance import Database
    from turnout.gateway.telemetry._dashboard_data import dashboard_data

    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(f"sqlite:///{tmp}/ledger.db")
        start = time.perf_counter()
        traffic = fill(db, args.requests)
        fill_s = time.perf_counter() - start
        size_mb = Path(f"{tmp}/ledger.db").stat().st_size / 1e6
        data_s = []
        for _ in range(args.runs):
            start = time.perf_counter()
            data = dashboard_data(db)
            data_s.append(time.perf_counter() - start)
        freshness = [{"collection": "docs", "age_s": 600, "slo_s": 3600}]
        app = dashboard_app(db, freshness=lambda: freshness)
        driver = _browser()
        try:
            with Served(app) as url:
                driver.get(f"{url}/dashboard")
                driver.execute_script("sessionStorage.setItem(arguments[0], arguments[1])",
                                      "turnout.dashboard.adminKey", ADMIN)  # fmt: skip
                page_s = [_page_load(driver, url) for _ in range(args.runs)]
        finally:
            driver.quit()
            db.close()

    chromium = os.popen("/usr/bin/chromium --version 2>/dev/null").read().strip()
    lines = [
        f"### Dashboard: {args.requests:,} requests in the ledger ({dt.date.today().isoformat()})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}, "
        f"{chromium or 'chromium'} headless. Ledger: {len(traffic.requests):,} requests, "
        f"{len(traffic.ledger):,} attempts, {len(traffic.feedback):,} ratings, "
        f"{len(traffic.judgments):,} judgments over 14 days ({size_mb:.0f} MB SQLite file, "
        f"filled in {fill_s:.1f} s); {data['summary']['requests']:,} requests in the window.",
        "",
        "| measure | median | runs (s) |",
        "| --- | --- | --- |",
        f"| `dashboard_data` (14 days) | {statistics.median(data_s):.3f} s | "
        + ", ".join(f"{s:.3f}" for s in data_s)
        + " |",
        f"| page load to every chart drawn (first run: empty cache) | "
        f"{statistics.median(page_s):.3f} s | " + ", ".join(f"{s:.3f}" for s in page_s) + " |",
        "",
        "Command:",
        "",
        "```",
        f".venv/bin/python benches/dashboard.py --requests {args.requests} --runs {args.runs}",
        "```",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        with args.write.open("a") as out:
            out.write("\n" + report)


if __name__ == "__main__":
    main()
