"""End to end in a real browser: the status page shows a daemon probing the lab, follows a
DNS outage without a reload, and says so plainly when the daemon stops answering.

With FAILOVER_PAGE_SCREENSHOT=PATH set, the screenshot of the outage is also written to
PATH: docs/status-page.png is made so (docs/status-page.md)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from failover.api.page import ANSWER_WITHIN_S, REFRESH_S
from failover.lab import Lab
from tests.browser import chromium
from tests.e2e.test_daemon_with_lab import (
    DETECTION_BOUND,
    Daemon,
    daemon_process,
    wait_until,
    write_config,
)
from tests.servers import free_port

SHOWN_WITHIN = DETECTION_BOUND + REFRESH_S + 1.0
"""An outage reaches the page within the daemon's detection bound, then one refresh, plus
a second for the browser's fetch and render on a loaded machine."""

DOWN_SHOWN_WITHIN = REFRESH_S + ANSWER_WITHIN_S + 2.0
"""A daemon gone is told after at most one refresh and its wait for an answer (a refused
connection fails at once), plus slack."""


def page_rows(driver: WebDriver) -> dict[str, dict[str, str]]:
    """Every cluster row on the page: its state and the text of its share cell."""
    rows = driver.execute_script("""
        return [...document.querySelectorAll("tr[data-n]")].map(r => [
            r.cells[1].textContent, r.dataset.s, r.cells[4].textContent])""")
    return {name: {"state": state, "share": share} for name, state, share in rows}


def wait_for(driver: WebDriver, within: float, what: str, condition: Any) -> Any:
    return WebDriverWait(driver, within, poll_frequency=0.1).until(
        condition, message=f"{what} within {within:.1f}s")


def screenshot(driver: WebDriver, path: Path) -> None:
    """Of the whole page, not only the window: a thousand rows fit as much as a few."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(600, height), 4000))
    driver.save_screenshot(str(path))


def shown_shares(cell: str) -> tuple[float, float]:
    """A share cell, "40.7% → 50.0%", as its share and target in percent."""
    share, target = cell.split("→")
    return float(share.strip().rstrip("%")), float(target.strip().rstrip("%"))


async def test_the_page_follows_an_outage_live_and_says_when_the_daemon_is_gone(
        lab: Lab, tmp_path: Path) -> None:
    port = free_port()
    async with daemon_process(write_config(tmp_path, lab, port), port) as daemon:
        await wait_until(lambda: all_serving(daemon), 20, "every cluster serving")
        status = await daemon.status()
        with chromium(tmp_path / "profile") as driver:
            await asyncio.to_thread(driver.get, daemon.url + "/")
            rows = await asyncio.to_thread(page_rows, driver)
            assert set(rows) == {c["name"] for c in status["clusters"]}
            # States and shares follow latency scores from tick to tick (a slow probe on a
            # loaded machine ranks a cluster degraded), so the page's are checked on their
            # own: each passing and serving, all of them the whole of the traffic.
            assert {row["state"] for row in rows.values()} <= {"healthy", "degraded"}
            shares = {name: shown_shares(row["share"]) for name, row in rows.items()}
            assert all(share > 0 for share, _ in shares.values())
            assert sum(share for share, _ in shares.values()) == pytest.approx(100, abs=0.3)
            # Set on this document: gone if the page reloaded rather than refreshed itself.
            await asyncio.to_thread(driver.execute_script, "window.sameDocument = true")

            await lab.set_fault("lab-1", dns="timeout")
            await asyncio.to_thread(
                wait_for, driver, SHOWN_WITHIN, "lab-1 shown unhealthy",
                lambda d: page_rows(d)["lab-1"]["state"] == "unhealthy")
            assert await asyncio.to_thread(driver.execute_script,
                                           "return window.sameDocument") is True
            await asyncio.to_thread(
                wait_for, driver, SHOWN_WITHIN, "lab-1's share shown at 0",
                lambda d: shown_shares(page_rows(d)["lab-1"]["share"])[0] == 0)
            state = driver.find_element(By.CSS_SELECTOR, "tr[data-n='lab-1'] .st")
            assert state.text == "unhealthy"
            assert "timeout" in driver.find_element(
                By.CSS_SELECTOR, "tr[data-n='lab-1'] td.r").text
            assert "evacuate" in driver.find_element(By.ID, "decisions").text
            assert not driver.find_element(By.ID, "down").is_displayed()
            await asyncio.to_thread(screenshot, driver, tmp_path / "status-page.png")
            if target := os.environ.get("FAILOVER_PAGE_SCREENSHOT"):
                shutil.copyfile(tmp_path / "status-page.png", target)

            daemon.process.send_signal(signal.SIGTERM)
            assert await daemon.process.wait() == 0
            down = driver.find_element(By.ID, "down")
            await asyncio.to_thread(wait_for, driver, DOWN_SHOWN_WITHIN,
                                    "the page saying the daemon is not answering",
                                    lambda _: down.is_displayed())
            assert "The daemon is not answering" in down.text
            assert "What is shown below is from" in down.text
            assert "stale" in driver.find_element(By.TAG_NAME, "body").get_attribute("class")
            # What the page knew stays on it, marked stale rather than wiped.
            assert (await asyncio.to_thread(page_rows, driver))["lab-1"]["state"] == \
                "unhealthy"
            await asyncio.to_thread(screenshot, driver, tmp_path / "status-page-down.png")


async def all_serving(daemon: Daemon) -> bool:
    try:
        status = await daemon.status()
    except OSError:
        return False
    clusters = status.get("clusters", [])
    return len(clusters) == 3 and all(c["state"] == "healthy" and c["share"] > 0
                                      for c in clusters)
