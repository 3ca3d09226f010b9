"""kb serve end to end: the real `kb serve` in a subprocess, driven by a real headless Chromium.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); skipped, with that
reason, where they are missing. Selenium talks to /usr/bin/chromedriver directly, so nothing
is downloaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_serve_site import add_rendering_gaps, make_demo_workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT_FOR_LEAD = Path("/tmp/kb-serve-knowledge.png")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def start_server(root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`kb serve --port 0 --json` in a subprocess; returns it and the URL it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", "serve", "--port", "0", "--json", "--workspace", str(root)],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("}"):
            return proc, json.loads("".join(lines))["url"]
    proc.kill()
    raise AssertionError(f"kb serve did not start: {''.join(lines)} {log.read_text()}")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_viewport(driver, element) -> bool:
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight;", element
    )


def test_browse_follow_badge_search_and_screenshot(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root = make_demo_workspace(tmp_path)
    proc, url = start_server(root, tmp_path / "serve.log")
    try:
        assert url.startswith("http://127.0.0.1:")
        driver = browser
        # 1. the home page is INDEX.md, styled by the package's stylesheet
        driver.get(url)
        assert driver.find_element(By.CSS_SELECTOR, "main h1").text.startswith("Knowledge Index")
        topbar = driver.find_element(By.CSS_SELECTOR, ".topbar")
        assert topbar.value_of_css_property("position") == "sticky"
        # 2. follow a link into a knowledge file
        driver.find_element(By.CSS_SELECTOR, "main a[href='knowledge/performance/00-gpu-profiling.html']").click()
        wait_for(lambda: driver.current_url.endswith("/knowledge/performance/00-gpu-profiling.html"), what="knowledge page")
        assert "GPU Profiling" in driver.find_element(By.CSS_SELECTOR, "main h1").text
        assert driver.find_element(By.CSS_SELECTOR, "aside a.current").text.startswith("GPU Profiling")
        # 3. snippet badges, styled, next to their code blocks
        passed = driver.find_element(By.CSS_SELECTOR, "figure.snippet a.badge.pass")
        assert passed.is_displayed() and passed.text.startswith("✓ passed")
        assert passed.value_of_css_property("background-color") not in ("rgba(0, 0, 0, 0)", "transparent")
        skipped = driver.find_element(By.CSS_SELECTOR, "figure.snippet a.badge.skip")
        assert "needs CUDA" in skipped.text
        assert driver.find_element(By.CSS_SELECTOR, "figure.snippet span.badge.none").text == "not yet run"
        assert driver.find_elements(By.CSS_SELECTOR, "pre.highlight span.kn")  # pygments tokens
        shot = tmp_path / "knowledge-page.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        shutil.copyfile(shot, SCREENSHOT_FOR_LEAD)
        # the badge opens the snippet's output, under its code in the same page
        output = driver.find_element(By.CSS_SELECTOR, "#snippet-0-result pre.output")
        assert not output.is_displayed()
        passed.click()
        wait_for(lambda: driver.current_url.endswith("#snippet-0-result"), what="the result's anchor")
        wait_for(output.is_displayed, what="the output shown")
        assert "elapsed True" in output.text
        # a failure is shown open from the start
        assert "RuntimeError: boom" in driver.find_element(By.CSS_SELECTOR, "#snippet-2-result pre.output.stderr").text
        # 4. search, and land on the right section
        box = driver.find_element(By.ID, "search-box")
        box.send_keys("tensor core utilization", Keys.ENTER)
        wait_for(lambda: "/search.html?q=" in driver.current_url, what="search results")
        first = driver.find_element(By.CSS_SELECTOR, "#search-hits a.hit-title")
        assert first.text == "Section 1: Tensor Core utilization"
        first.click()
        wait_for(lambda: driver.current_url.endswith("#section-1-tensor-core-utilization"), what="the section")
        heading = driver.find_element(By.ID, "section-1-tensor-core-utilization")
        assert heading.tag_name == "h2" and in_viewport(driver, heading)
        assert "01-gpu-utilization.html" in driver.current_url
        # 5. traversal through the browser's own URL handling is a 404 page too
        driver.get(url + "knowledge/%2e%2e/%2e%2e/kb.toml")
        assert driver.find_element(By.CSS_SELECTOR, "main h1").text == "Not found"
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "404" not in e["message"]]
        assert not severe, severe  # no CSP violation, no missing stylesheet
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_static_site_search_works_from_disk(tmp_path, browser):
    from selenium.webdriver.common.by import By

    root = make_demo_workspace(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "kb", "serve", "--build", "site", "--json", "--workspace", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pages"] >= 14
    driver = browser
    driver.get((root / "site" / "search.html").as_uri() + "?q=pin_memory+dataloader")
    first = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#search-hits a.hit-title"), what="static hits")[0]
    assert first.text == "Section 2: Data loading overlap"
    first.click()
    wait_for(lambda: driver.current_url.endswith("01-gpu-utilization.html#section-2-data-loading-overlap"), what="section")
    assert driver.find_element(By.CSS_SELECTOR, "a.current").text == "GPU Utilization Optimization"


def test_raw_html_renders_and_nothing_in_a_knowledge_file_runs(tmp_path, browser):
    """Issue 22: a table with <br> shows a line break; <script> and onerror= in a knowledge file do not run."""
    from selenium.webdriver.common.by import By

    root = add_rendering_gaps(make_demo_workspace(tmp_path))
    proc, url = start_server(root, tmp_path / "serve.log")
    try:
        driver = browser
        driver.get(url + "knowledge/performance/02-rendering.html")
        cell = driver.find_element(By.XPATH, "//td[contains(., 'first line')]")
        assert cell.text == "first line\nsecond line"
        assert cell.size["height"] > 1.6 * driver.find_element(By.XPATH, "//th[contains(., 'Meaning')]").size["height"]
        time.sleep(0.3)  # give an onerror handler its chance
        assert "owned-by" not in driver.title and driver.title.startswith("Rendering what real trees hold")
        details = driver.find_element(By.CSS_SELECTOR, "main details:not(.snippet-result):not(.sources)")
        hidden = details.find_element(By.XPATH, ".//p[contains(., 'Hidden until opened')]")
        assert not hidden.is_displayed()
        details.find_element(By.TAG_NAME, "summary").click()
        wait_for(hidden.is_displayed, what="the details opened")
        assert driver.find_element(By.CSS_SELECTOR, "main sup").text == "2"
        # a missing image is its alt text, marked; a raw <img> whose file is missing has no src at all
        # (never src="", which a browser requests as the page itself); the present one loads
        marked = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "main span.unresolved")]
        assert marked == ["missing.png", "nothing here"], marked  # the raw <img> and the Markdown image
        assert driver.execute_script(
            "return Array.from(document.querySelectorAll('main img')).every(i => i.getAttribute('src') !== '')")
        assert driver.execute_script(
            "return Array.from(document.querySelectorAll('main img[src]')).every(i => i.complete && i.naturalWidth >= 0)")
        # the linked script opens as text, and the tree is drawn with this page marked
        assert driver.find_element(By.CSS_SELECTOR, "aside a.current").text == "Rendering what real trees hold"
        driver.find_element(By.LINK_TEXT, "train.py").click()
        wait_for(lambda: driver.current_url.endswith("/train.py"), what="the script")
        assert "print('train')" in driver.find_element(By.TAG_NAME, "body").text
        # the file with a '%' in its name, from the index
        driver.get(url)
        driver.find_element(By.LINK_TEXT, "Fifty").click()
        wait_for(lambda: "50%25-faster.html" in driver.current_url, what="the percent page")
        assert driver.find_element(By.CSS_SELECTOR, "main h1").text.startswith("Fifty percent faster")
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
        assert not severe, severe  # no CSP violation (nothing inline tried to run), nothing missing
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_static_site_from_disk_renders_the_same(tmp_path, browser):
    from selenium.webdriver.common.by import By

    root = add_rendering_gaps(make_demo_workspace(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "kb", "serve", "--build", "site", "--workspace", str(root)],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    driver = browser
    driver.get((root / "site" / "index.html").as_uri())
    driver.find_element(By.LINK_TEXT, "Fifty").click()
    wait_for(lambda: "50%25-faster.html" in driver.current_url, what="the percent page on disk")
    assert driver.find_element(By.CSS_SELECTOR, "main h1").text.startswith("Fifty percent faster")
    driver.get((root / "site" / "knowledge" / "performance" / "02-rendering.html").as_uri())
    assert driver.find_element(By.XPATH, "//td[contains(., 'first line')]").text == "first line\nsecond line"
    time.sleep(0.3)
    assert "owned-by" not in driver.title
    assert driver.find_element(By.CSS_SELECTOR, "aside a.current").text == "Rendering what real trees hold"
    driver.find_element(By.LINK_TEXT, "job").click()
    wait_for(lambda: driver.current_url.endswith("/job.slurm"), what="the slurm script on disk")
