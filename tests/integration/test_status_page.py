"""The status page in a real browser during a real `esm run`: a person opening it sees each
partition's lag, state and last result, the page follows the daemon without a reload, and it says
so when the daemon stops answering."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from esm.embedded.topics import OutgoingRecord, produce

from .harness import daemon
from .stuck_partition import stuck_partition

# Where the screenshot goes when set (for a person to look at); else the test's tmp dir.
SCREENSHOT_DIR_VARIABLE = "ESM_SCREENSHOT_DIR"


def cell(browser: WebDriver, partition: int, name: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f"tr[data-partition='{partition}'] td.{name}").text


def shows(browser: WebDriver, partition: int, name: str, text: str, timeout: float = 30.0) -> None:
    seen: list[str] = []

    def matches(driver: WebDriver) -> bool:
        try:
            seen[:] = [cell(driver, partition, name)]
        except Exception:  # the page is between two refreshes, or not rendered yet
            return False
        return seen[0] == text

    try:
        WebDriverWait(browser, timeout, poll_frequency=0.2).until(matches)
    except Exception as err:
        raise AssertionError(f"partition {partition} {name}: wanted {text!r}, the page shows {seen}") from err


def test_a_person_reads_lag_and_state_live_from_the_page(
    kafka_broker: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    run = stuck_partition(kafka_broker, topic, tmp_path)
    port = json.loads(run.config.read_text())["Metrics"]["Port"]
    engine = daemon(run.config)
    try:
        run.wait_partition_0_done(kafka_broker, topic, engine)
        with chromium() as browser:
            browser.get(f"http://127.0.0.1:{port}/")
            shows(browser, 0, "lag", "0")
            shows(browser, 1, "lag", "20")
            shows(browser, 1, "result", "PROBLEM: Function call failed")
            assert cell(browser, 0, "state") == "PROCESSING" and cell(browser, 0, "result") == "OK"
            assert cell(browser, 1, "state") == "PROCESSING" and cell(browser, 1, "committed") == "10"
            assert "has the fail value 'poison'" in cell(browser, 1, "error")
            assert cell(browser, 1, "in-flight").startswith("10-")
            owner = cell(browser, 0, "owner")
            assert owner.endswith(f":{engine.process.pid}") and cell(browser, 1, "owner") == owner
            state = browser.find_element(By.CSS_SELECTOR, "section.mapping .mapping-state").text
            assert state == "Enabled"
            # Live: more records behind the stuck one show up as lag without reloading the page.
            produce(kafka_broker, topic, [OutgoingRecord(value=b"late", partition=1) for _ in range(5)])
            shows(browser, 1, "lag", "25")
            screenshot = Path(os.environ.get(SCREENSHOT_DIR_VARIABLE) or tmp_path) / "status-page.png"
            assert browser.save_screenshot(str(screenshot))
            # The daemon stops: the page keeps what it showed and says the daemon is not answering.
            assert engine.stop() == 0, engine.stderr
            WebDriverWait(browser, 30, poll_frequency=0.2).until(
                lambda driver: driver.find_element(By.ID, "offline").is_displayed()
            )
            assert "The daemon is not answering" in browser.find_element(By.ID, "offline").text
            assert cell(browser, 1, "lag") == "25"
    finally:
        engine.stop()
        run.worker.stop()
