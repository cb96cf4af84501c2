"""Take docs/live-view.png: the live view of the synthetic demo clip, in headless Chromium.

    .venv/bin/python scripts/live_view_screenshot.py [--seconds 45] [--out docs/live-view.png]

Writes the demo clip to a temporary folder, runs ``crowdwatch run`` on the demo's two cameras with the
live view on a free port, waits ``--seconds`` (so the sparklines and heatmaps have something to show),
and saves a screenshot of the page. Needs Debian chromium + chromium-driver and the selenium package.
Every process it starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "live-view.png")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = folder / "demo.mp4"
        subprocess.run([sys.executable, "-m", "crowdwatch.demo", str(clip)], check=True, cwd=REPO)
        config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
        for camera in config["cameras"]:
            camera["url"] = str(clip)
        config["output"]["dir"] = str(folder / "out")
        config["metrics"]["port"] = 0
        config["web"] = {"enabled": True, "port": 0}
        (folder / "demo.yaml").write_text(yaml.safe_dump(config))
        log = folder / "run.log"
        with open(log, "wb") as out:
            run = subprocess.Popen([sys.executable, "-m", "crowdwatch", "run", str(folder / "demo.yaml")],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=REPO)  # fmt: skip
        try:
            url = None
            deadline = time.monotonic() + 120
            while url is None and time.monotonic() < deadline and run.poll() is None:
                found = re.search(r"web: live view on (http://\S+/)", log.read_text(errors="replace"))
                url = found.group(1) if found else None
                time.sleep(0.5)
            if url is None:
                print(log.read_text(errors="replace"), file=sys.stderr)
                return 1
            time.sleep(args.seconds)
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1000"):
                options.add_argument(flag)
            driver = webdriver.Chrome(
                options=options, service=Service(executable_path="/usr/bin/chromedriver")
            )
            try:
                driver.get(url)
                time.sleep(12)  # the history and the heatmap are fetched once, then on their own timers
                driver.save_screenshot(str(args.out))
            finally:
                driver.quit()
        finally:
            if run.poll() is None:
                os.kill(run.pid, signal.SIGTERM)
                run.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
