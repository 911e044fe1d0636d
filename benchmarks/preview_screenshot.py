"""Screenshot of the try-it page for the README: the seed case in Debian's Chromium.

    .venv/bin/python -m benchmarks.preview_screenshot [docs/preview.png]

Runs the real service in this process (SQLite in a temporary directory, CDS_PREVIEW on, the
clock pinned to the date the seed case was written for) and opens
/preview?fixture=seed-dermatomyositis headless. Needs `apt-get install chromium chromium-driver`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.preview_browser import (
    REPO,
    browser_paths,
    chromium,
    fixture_now,
    preview_settings,
    serve,
)

WIDTH = 1440
MAX_HEIGHT = 1800  # the whole page, or its top when the cards run longer


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else REPO / "docs" / "preview.png"
    paths = browser_paths()
    if paths is None:
        print("chromium and chromium-driver are needed: apt-get install chromium chromium-driver")
        return 2
    now = fixture_now()
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(preview_settings(Path(tmp)), clock=lambda: now) as url,
        chromium(*paths, width=WIDTH, height=1200) as browser,
    ):
        browser.get(f"{url}/preview?fixture=seed-dermatomyositis")
        deadline = time.monotonic() + 60
        while browser.execute_script("return document.body.dataset.runs") != "1":
            if time.monotonic() > deadline:
                print("the page did not finish its first run")
                return 1
            time.sleep(0.1)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(WIDTH, min(int(height) + 40, MAX_HEIGHT))
        time.sleep(0.3)
        browser.save_screenshot(str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
