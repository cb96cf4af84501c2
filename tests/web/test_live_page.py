"""The live view in a real headless Chromium, against ``crowdwatch run`` on two cameras served by a real
RTSP server (GStreamer): one pipeline process for the whole module.

- ``lobby`` streams a lossless H.264 clip of one still crowd frame (the synthetic demo's drawing), so its
  counts are the same on every frame and the page can be compared with /metrics exactly;
- ``door`` streams a live test pattern with a moving ball (the picture changes), and goes down last.

The page is bound to 0.0.0.0 with a token (the browser still only talks to 127.0.0.1): every test goes
through the token check, and one test shows that a request without it is refused.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.pipeline_harness import (
    REPO,
    PipelineProcess,
    running_pipeline,
    write_config,
    write_lossless_still_h264,
)
from support.rtsp_fixtures import RtspServer, requires_rtsp

from crowdwatch.demo import render_frames

pytestmark = [requires_rtsp, pytest.mark.rtsp, pytest.mark.slow]

TOKEN = "web-token-3Fq9Zx7Lm2Pw"
PASSWORD = "Lobby-pa55-Qz81"
_WEB_LINE = re.compile(r"web: live view on http://0\.0\.0\.0:(\d+)/")
#: Generous bounds for a loaded 2-core machine: behaviour is waited for, never a rate.
WAIT_S = 60.0


class Site:
    def __init__(self, pipeline: PipelineProcess, base: str, door: RtspServer, config: Path) -> None:
        self.pipeline, self.base, self.door, self.config = pipeline, base, door, config


def wait(what: str, predicate: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module", name="site")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web")
    still = render_frames(320, 240, frames=1, people=12, seed=3)[0]
    clip = write_lossless_still_h264(tmp / "lobby.mp4", still, seconds=300, fps=5)
    lobby = RtspServer({"/lobby": f"file:{clip}"}).start()
    door = RtspServer({"/door": "pattern:320x240@10"}).start()
    try:
        config = write_config(
            tmp / "site.yaml",
            [
                {
                    "id": "lobby",
                    "url": lobby.url("/lobby", "viewer:${env:CAM_PASSWORD}"),
                    "zones": [{"id": "left", "polygon": [[0, 0], [160, 0], [160, 240], [0, 240]]}],
                },
                {"id": "door", "url": door.url("/door"), "read_timeout_s": 1.0, "stale_after_s": 3.0},
            ],
            defaults={"fps": 2, "smoothing": {"window_s": 2}},
            web={"enabled": True, "address": "0.0.0.0", "port": 0, "token": "${env:WEB_TOKEN}"},
        )
        env = {"CAM_PASSWORD": PASSWORD, "WEB_TOKEN": TOKEN}
        with running_pipeline(config, tmp, env={**dict(os.environ), **env}) as pipeline:
            port = pipeline.wait_for_log(_WEB_LINE, 30, what="the page URL in the log").group(1)
            yield Site(pipeline, f"http://127.0.0.1:{port}", door, config)
    finally:
        lobby.stop()
        door.stop()


@pytest.fixture(scope="module", name="page")
def fixture_page(site: Site, browser: Any) -> Any:
    """The page, opened once with ?token= (which the server trades for a cookie)."""
    browser.get(f"{site.base}/?token={TOKEN}")
    wait("the page to list the cameras", lambda: browser.execute_script("return document.body.dataset.ready"))
    assert browser.current_url == f"{site.base}/"  # the token left the address bar
    return browser


def card_text(page: Any, camera: str, selector: str) -> str:
    return str(page.execute_script(
        "const e = document.querySelector(`section[data-camera='${arguments[0]}'] ${arguments[1]}`);"
        "return e ? e.textContent : null;", camera, selector))  # fmt: skip


def test_page_shows_every_camera_up(page: Any) -> None:
    cameras = page.execute_script(
        "return [...document.querySelectorAll('section.camera')].map(e => e.dataset.camera)"
    )
    assert cameras == ["lobby", "door"]
    for camera in cameras:
        wait(f"{camera} up on the page", lambda c=camera: card_text(page, c, ".status") == "up")


def test_the_image_changes_over_time(page: Any) -> None:
    digest_js = (
        "const img = document.querySelector(`section[data-camera='door'] img.live`);"
        "if (!img.complete || !img.naturalWidth) return null;"
        "const c = document.createElement('canvas');"
        "c.width = img.naturalWidth; c.height = img.naturalHeight;"
        "const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);"
        "return Array.from(ctx.getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 97 == 0));"
    )

    def digest() -> str | None:
        pixels = page.execute_script(digest_js)
        return hashlib.sha1(bytes(pixels)).hexdigest() if pixels else None

    first = wait("a first frame in the door's image", digest)
    wait("the door's image to change", lambda: (d := digest()) is not None and d != first)


def test_counts_on_the_page_equal_metrics(site: Site, page: Any) -> None:
    pipeline = site.pipeline

    def agree() -> bool:
        people = pipeline.value("crowdwatch_people", camera="lobby")
        zone = pipeline.value("crowdwatch_zone_people", camera="lobby", zone="left")
        smoothed = pipeline.value("crowdwatch_people_smoothed", camera="lobby")
        if people is None or zone is None or smoothed is None:
            return False
        return (
            card_text(page, "lobby", ".count") == f"{people:.0f}"
            and card_text(page, "lobby", "tr[data-zone='left'] .zcount") == f"{zone:.0f}"
            # the page shows one decimal (or none for a whole number): the same rounding of the same value
            and float(card_text(page, "lobby", ".smoothed")) == pytest.approx(smoothed, abs=0.051)
        )

    wait("the lobby's counts on the page to equal /metrics", agree)
    assert pipeline.value("crowdwatch_people", camera="lobby") > 0  # the still frame has people in it


def test_drawing_a_polygon_gives_yaml_that_check_config_accepts(
    site: Site, page: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page.find_element(By.CSS_SELECTOR, "section[data-camera='lobby'] button.edit").click()
    canvas = page.find_element(By.ID, "canvas")
    wait(
        "the frozen frame in the editor",
        lambda: page.execute_script("return document.getElementById('canvas').width") == 320,
    )
    page.find_element(By.ID, "shape-id").send_keys("queue")
    size = canvas.size  # the canvas as shown; the page maps clicks back to source-frame pixels
    clicks = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]
    for fx, fy in clicks:  # offsets from the element's centre (Selenium 4)
        ActionChains(page).move_to_element_with_offset(
            canvas, int((fx - 0.5) * size["width"]), int((fy - 0.5) * size["height"])
        ).click().perform()
    page.find_element(By.ID, "finish").click()
    Select(page.find_element(By.ID, "mode")).select_by_value("line")
    for field, side in (("line-in", "on"), ("line-out", "off")):  # words YAML would read as booleans
        page.find_element(By.ID, field).clear()
        page.find_element(By.ID, field).send_keys(side)
    for fx, fy in [(0.1, 0.9), (0.9, 0.9)]:
        ActionChains(page).move_to_element_with_offset(
            canvas, int((fx - 0.5) * size["width"]), int((fy - 0.5) * size["height"])
        ).click().perform()
    block = yaml.safe_load(page.find_element(By.ID, "yaml").get_property("value"))
    zones = {zone["id"]: zone["polygon"] for zone in block["zones"]}
    assert set(zones) == {"left", "queue"}  # the camera's own zone is kept
    for (x, y), (fx, fy) in zip(zones["queue"], clicks, strict=True):
        assert abs(x - fx * 320) <= 3 and abs(y - fy * 240) <= 3, zones["queue"]  # source-frame pixels
    assert [(line["id"], line["in"], line["out"]) for line in block["lines"]] == [("line-1", "on", "off")]
    page.find_element(By.ID, "check").click()
    wait("the schema's verdict", lambda: page.find_element(By.ID, "verdict").text == "valid")
    # the user pastes the block into the camera's entry, and check-config accepts the file
    config = yaml.safe_load(site.config.read_text())
    config["cameras"][0].update({key: block[key] for key in ("zones", "exclude", "lines")})
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(config))
    env = {
        **dict(os.environ),
        "CAM_PASSWORD": PASSWORD,
        "WEB_TOKEN": TOKEN,
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run([sys.executable, "-m", "crowdwatch", "check-config", str(edited)],
                            capture_output=True, text=True, env=env, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "lobby: stream" in result.stdout and "2 zone(s)" in result.stdout
    # a shape the schema refuses is shown with its key path
    page.execute_script(
        "document.getElementById('yaml').value = 'zones:\\n  - id: Bad\\n    polygon: [[0, 0], [1, 1]]\\n'"
    )
    page.find_element(By.ID, "check").click()
    errors = wait("the schema's errors", lambda: page.find_element(By.ID, "errors").text)
    assert "cameras[0].zones[0].id" in errors and "cameras[0].zones[0].polygon" in errors


def test_no_page_answer_or_log_shows_a_secret(site: Site, page: Any) -> None:
    texts = [page.page_source, site.pipeline.logs()]
    for path in ("/api/v1/cameras", "/api/v1/counts", "/static/app.js"):
        request = urllib.request.Request(site.base + path, headers={"Authorization": f"Bearer {TOKEN}"})
        texts.append(urllib.request.urlopen(request, timeout=10).read().decode())
    for text in texts:
        assert PASSWORD not in text and TOKEN not in text
    csp_errors = [entry for entry in page.get_log("browser") if "Content Security Policy" in entry["message"]]
    assert not csp_errors  # the page works under its own strict policy


def test_requests_without_the_token_are_refused(site: Site) -> None:
    for path in ("/", "/api/v1/cameras", "/api/v1/counts", "/api/v1/cameras/lobby/frame.jpg"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(site.base + path, timeout=10)
        assert refused.value.code == 401, path


def test_a_camera_that_goes_down_shows_as_down(site: Site, page: Any) -> None:
    """Last in the module: it stops the door's server."""
    site.door.kill()
    wait("the door down on the page", lambda: card_text(page, "door", ".status") == "down")
    reason = wait("a reason beside it", lambda: card_text(page, "door", ".reason"))
    assert reason and PASSWORD not in reason
    assert card_text(page, "lobby", ".status") == "up"
