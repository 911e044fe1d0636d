"""The try-it page in a real browser (Debian's Chromium): the seed case's cards and exposure
chart, an override with "already done" sent as feedback, and the card snoozed on the next run.

Skips when Chromium or its driver is missing, except under CI=true, where it must run."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service.settings import Settings
from cds_service.steroid_status import dose_lines
from cds_service.thresholds import load_thresholds
from tests.preview_browser import browser_paths, chromium, fixture_now, preview_settings, serve

pytest.importorskip("selenium")

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# The topics the seed case answers (README table); its texts may change, its topics should not.
SEED_TOPICS = {"bone-health", "osteonecrosis", "infection-prevention", "myositis-monitoring"}
WAIT_S = 30
THRESHOLDS = load_thresholds(Settings().hooks_dir / "thresholds.toml")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    paths = browser_paths()
    if paths is None:
        message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the browser test")
        pytest.skip(message)
    with chromium(*paths) as session:
        yield session


@pytest.fixture
def service_url(tmp_path: Path) -> Iterator[str]:
    now = fixture_now()
    with serve(preview_settings(tmp_path), clock=lambda: now) as url:
        yield url


def _runs(driver: Any) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-runs") or 0)


def _wait_runs(driver: Any, count: int) -> None:
    WebDriverWait(driver, WAIT_S).until(lambda d: _runs(d) >= count)
    status = driver.find_element(By.ID, "status")
    assert "error" not in (status.get_attribute("class") or ""), status.text


def _topics(driver: Any) -> set[str]:
    return {c.get_attribute("data-topic") for c in driver.find_elements(By.CSS_SELECTOR, ".card")}


def _console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_seed_case_cards_chart_override_and_snooze(browser: Any, service_url: str) -> None:
    browser.get(f"{service_url}/preview?fixture=seed-dermatomyositis")
    _wait_runs(browser, 1)

    # The cards, as an EHR shows them: one per topic, each with its indicator and summary.
    assert _topics(browser) == SEED_TOPICS
    cards = browser.find_elements(By.CSS_SELECTOR, ".card")
    for card in cards:
        indicator = card.get_attribute("data-indicator")
        assert indicator in {"info", "warning", "critical"}
        assert f"indicator-{indicator}" in (card.get_attribute("class") or "")
        assert card.find_element(By.CSS_SELECTOR, ".summary").text.strip()
        assert card.find_elements(By.CSS_SELECTOR, ".detail p, .detail li")  # Markdown rendered
        assert card.find_elements(By.CSS_SELECTOR, "select.override-reason option")
    assert any(c.find_elements(By.CSS_SELECTOR, ".source a[href^='https://']") for c in cards)
    assert any(c.find_elements(By.CSS_SELECTOR, "button.suggestion") for c in cards)

    # The chart: the dose lines from hooks/thresholds.toml, the seed's prednisone courses.
    svg = browser.find_element(By.CSS_SELECTOR, "#chart svg#exposure-chart")
    lines = {
        float(g.get_attribute("data-mg")) for g in svg.find_elements(By.CSS_SELECTOR, "g.threshold")
    }
    assert lines == {line["mg"] for line in dose_lines(THRESHOLDS)} == {2.5, 7.5, 20.0, 30.0}
    courses = svg.find_elements(By.CSS_SELECTOR, "g.course")
    assert courses
    assert any("prednisone" in c.text and "MedicationRequest/" in c.text for c in courses)
    assert svg.find_elements(By.CSS_SELECTOR, "rect.exposure")
    assert "Rules:" in browser.find_element(By.ID, "explanation").text

    # Override the bone card with "already done": real feedback to the service.
    bone = browser.find_element(By.CSS_SELECTOR, '.card[data-topic="bone-health"]')
    reason = Select(bone.find_element(By.CSS_SELECTOR, "select.override-reason"))
    already_done = next(o for o in reason.options if o.get_attribute("data-code") == "already-done")
    reason.select_by_value(already_done.get_attribute("value") or "")
    bone.find_element(By.CSS_SELECTOR, "button.override-button").click()
    WebDriverWait(browser, WAIT_S).until(
        lambda _: "Feedback sent" in bone.find_element(By.CSS_SELECTOR, ".feedback-status").text
    )

    # The next run: the bone card is gone and the explanation lists the topic as snoozed.
    browser.find_element(By.ID, "run").click()
    _wait_runs(browser, 2)
    assert _topics(browser) == SEED_TOPICS - {"bone-health"}
    snoozed = browser.find_element(By.ID, "snoozed")
    assert "bone-health" in (snoozed.get_attribute("data-topics") or "").split()
    assert snoozed.is_displayed()
    assert _console_errors(browser) == []


def test_markdown_renderer_escapes_html(browser: Any, service_url: str) -> None:
    browser.get(f"{service_url}/preview")
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )
    render = "return window.PreviewMarkdown.render(arguments[0]);"
    html = browser.execute_script(
        render,
        "# Head\n**bold** and *it* <img src=x onerror=alert(1)>\n\n- one\n"
        "- [two](https://example.org/a?b=1&c=2)\n\n"
        '[bad](javascript:alert(1)) [quote](https://x.org/"onmouseover=alert(1)) '
        "[paren](https://x.org/a(1))",
    )
    assert "<h4>Head</h4>" in html
    assert "<strong>bold</strong>" in html
    assert "<em>it</em>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<ul><li>one</li><li><a href="https://example.org/a?b=1&amp;c=2"' in html
    tags = re.findall(r"<([a-z0-9]+)([^>]*)>", html)
    assert {name for name, _ in tags} <= {"h4", "strong", "em", "ul", "li", "p", "a"}
    hrefs = [attrs for name, attrs in tags if name == "a"]
    assert hrefs == [
        ' href="https://example.org/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer"'
    ]
    assert "bad" in html  # the label stays, as text
    assert "onmouseover" not in "".join(attrs for _, attrs in tags)
