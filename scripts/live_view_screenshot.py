"""Take docs/live-view.png: the live view of the synthetic demo clip, in headless Chromium.

    .venv/bin/python scripts/live_view_screenshot.py [--seconds 45] [--out docs/live-view.png]

Writes the demo clips to a temporary folder, runs ``crowdwatch run`` on the demo's two cameras with the
live view on a free port, waits ``--seconds`` (so the sparklines and heatmaps have something to show),
and saves a screenshot of the page. Needs Debian chromium + chromium-driver and the selenium package.
Every process it starts is stopped by its PID (the pipeline by the tests' ``running_pipeline``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pipeline_harness import running_pipeline

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
        clips = ["--clip-only", "--clip", str(folder / "demo.mp4"), "--gate", str(folder / "gate.mp4")]
        subprocess.run([sys.executable, "-m", "crowdwatch", "demo", *clips], check=True, cwd=REPO)
        config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
        for camera in config["cameras"]:  # demo/demo.mp4 and demo/gate.mp4, written here instead
            camera["url"] = str(folder / Path(camera["url"]).name)
        config["output"]["dir"] = str(folder / "out")
        config["metrics"]["port"] = 0
        config["web"] = {"enabled": True, "port": 0}
        (folder / "demo.yaml").write_text(yaml.safe_dump(config))
        with running_pipeline(folder / "demo.yaml", folder, ready_timeout=120, omp_threads=None) as run:
            url = run.wait_for_log(r"web: live view on (http://\S+/)", 120).group(1)
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
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
