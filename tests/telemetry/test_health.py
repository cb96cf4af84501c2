"""/healthz reports the readers' own judgement of their cameras: no second staleness clock."""

from __future__ import annotations

import threading

from support.capture_fakes import FakeCapture, camera, factory_of, fixture_readers, run_reader, wait_for  # noqa: F401 (fixture_readers is a fixture)

from crowdwatch.capture.base import CameraState
from crowdwatch.capture.reader import CameraReader
from crowdwatch.telemetry.health import camera_health


def test_health_needs_every_camera_up_with_a_frame() -> None:
    ok, body = camera_health([CameraState("cam1", False, None), CameraState("cam2", False, None)])
    assert not ok and "cam1: no frame yet" in str(body["reason"]) and body["status"] == "stale"
    ok, body = camera_health([CameraState("cam1", True, 0.2), CameraState("cam2", True, 0.1)])
    assert ok and body["status"] == "ok" and "reason" not in body
    ok, body = camera_health([CameraState("cam1", True, 0.1), CameraState("cam2", False, 6.0)])
    assert not ok and body["reason"] == "cam2: camera down"
    assert body["cameras"] == {
        "cam1": {"up": True, "age_s": 0.1, "fresh": True},
        "cam2": {"up": False, "age_s": 6.0, "fresh": False},
    }


def test_a_camera_the_readers_watchdog_declares_stale_is_unhealthy(readers: list[CameraReader]) -> None:
    hang = threading.Event()
    cam = camera(stale_after_s=0.5)
    reader = run_reader(
        readers, cam, capture_factory=factory_of(FakeCapture(frames=5, interval_s=0.02, hang=hang))
    )
    try:
        wait_for(lambda: reader.up, timeout=2)
        ok, body = camera_health([reader.state()])
        assert ok, body
        wait_for(lambda: not reader.up, timeout=2)  # the read is blocked: the reader's watchdog decides
        ok, body = camera_health([reader.state()])
        assert not ok and body["reason"] == "cam: camera down"
        assert body["cameras"]["cam"]["age_s"] >= 0.5  # type: ignore[index]  # body is dict[str, object]
    finally:
        hang.set()
