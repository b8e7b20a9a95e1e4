"""The built site in a real headless Chromium: search in three languages, hostile content inert.

Uses Debian's `chromium` and `chromium-driver` through selenium (no browser download);
the site is served from a local HTTP server on 127.0.0.1. The `driver` fixture
(tests/conftest.py) skips, with the reason, only when selenium, Chromium or its driver is
missing or Chromium cannot start, and fails instead under `CI=true`.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from test_site import build_sample_site  # same module object pytest collected: one shared build

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    built = build_sample_site(tmp_path_factory)
    handler = functools.partial(_QuietHandler, directory=str(built["site"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def assert_no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    pytest.fail(f"a script from post content ran: alert({text!r})")


def search(driver, base: str, query: str) -> list[tuple[str, str]]:
    """Open the site with ``?q=`` (the home page's search box submits that) and read the results."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "?q=" + quote(query))

    def results(drv):
        meta = drv.find_elements(By.CSS_SELECTOR, ".md-search-result__meta")
        items = drv.find_elements(By.CSS_SELECTOR, ".md-search-result__item")
        if items or (meta and "No matching" in meta[0].text):
            return items or True
        return False

    found = WebDriverWait(driver, 30).until(results)
    if found is True:
        return []
    out = []
    for item in found:
        link = item.find_element(By.TAG_NAME, "a")
        out.append((link.get_attribute("href"), item.text))
    return out


@pytest.mark.parametrize("query, expected_path, expected_title", [
    ("регуляризация", "/posts/scheduled-drophead-regulyarizatsiya-transformerov-", "Scheduled DropHead: регуляризация"),
    ("decoupled", "/posts/adam-https-arxiv-org-abs-1412-6980-and-deco", "decoupled weight decay"),
    ("分词", "/posts/", "新词发现与中文分词"),
])
def test_search_finds_the_post_in_each_language(driver, site_url, query, expected_path, expected_title):
    hits = search(driver, site_url, query)
    assert any(expected_path in href and expected_title in text for href, text in hits[:5]), hits[:5]
    assert_no_alert(driver)


def test_home_page_renders_and_is_saved_as_a_screenshot(driver, site_url):
    from selenium.webdriver.common.by import By

    driver.get(site_url)
    assert driver.title.startswith("paper-digest")
    tabs = [el.text for el in driver.find_elements(By.CSS_SELECTOR, ".md-tabs__link")]
    assert {"Posts", "Papers", "Tags", "Reproductions"} <= set(tabs), tabs
    assert driver.find_element(By.CSS_SELECTOR, "form.digest-search input[name=q]").is_displayed()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "site-home.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    assert_no_alert(driver)


def test_hostile_post_runs_nothing_and_shows_its_text(driver, site_url):
    from selenium.webdriver.common.by import By

    hits = search(driver, site_url, "onerror")
    post = next((href for href, _ in hits if "/posts/script-alert-5-script-title-" in href), None)
    assert post, hits
    assert_no_alert(driver)
    driver.get(post.split("?")[0])
    assert_no_alert(driver)
    body = driver.find_element(By.CSS_SELECTOR, "article").text
    assert "<script>alert(1)</script>" in body and "<img src=x onerror=alert(2)>" in body
    assert "{{ 7*7 }}" in body and "[x](javascript:alert(3))" in body
    assert driver.find_elements(By.CSS_SELECTOR, "article img") == []  # the <img> stayed text
    chips = [el.text for el in driver.find_elements(By.CSS_SELECTOR, ".md-tag")]
    assert "<script>alert(1)</script>" in chips
    # the 5,000-character word wraps instead of widening the page
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "site-hostile-post.png"))
