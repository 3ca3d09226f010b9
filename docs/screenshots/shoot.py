"""Take docs/screenshots/kb-serve-knowledge-page.png: a page of this repository's base, served by `kb serve`, in headless Chromium.

    .venv/bin/python docs/screenshots/shoot.py [PAGE]

Needs Debian's chromium and chromium-driver (as tests/test_serve_browser.py does); nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
PAGE = "knowledge/performance/07-activation-checkpointing-strategies.html"
DEST = Path(__file__).resolve().parent / "kb-serve-knowledge-page.png"


def main() -> None:
    page = sys.argv[1] if len(sys.argv) > 1 else PAGE
    proc = subprocess.Popen([sys.executable, "-m", "kb", "serve", "--port", "0", "--json", "--workspace", str(ROOT)],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("}"):
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("kb serve did not start")
            lines.append(line)
        url = json.loads("".join(lines))["url"]
        with tempfile.TemporaryDirectory() as profile:
            options = webdriver.ChromeOptions()
            options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
            for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000",
                        "--disable-dev-shm-usage", "--disable-background-networking", f"--user-data-dir={profile}"):
                options.add_argument(arg)
            driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
            try:
                driver.get(url + page)
                time.sleep(1.0)  # the tree script draws the sidebar
                driver.save_screenshot(str(DEST))
            finally:
                driver.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"wrote {DEST}")


if __name__ == "__main__":
    main()
