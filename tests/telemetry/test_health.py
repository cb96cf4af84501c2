"""/healthz reports the readers' own judgement of their cameras: no second staleness clock."""

from __future__ import annotations

import threading

from support.capture_fakes import FakeCapture, camera, factory_of, run_reader, wait_for

from crowdwatch.capture.base import CameraState
from crowdwatch.capture.reader import CameraReader
from crowdwatch.sinks.runner import SinkStatus
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


def test_a_failing_sink_makes_health_degraded_after_the_cameras() -> None:
    fresh = [CameraState("cam1", True, 0.1)]
    ok, body = camera_health(
        fresh, [SinkStatus("csv", {"write_error": 0}, None), SinkStatus("overlay", {}, None)]
    )
    assert ok and body["status"] == "ok"
    failing = [
        SinkStatus("csv", {"write_error": 9, "raised": 0}, "No space left on device (/out/counts.csv)"),
        SinkStatus("overlay", {"raised": 0}, None),
    ]
    ok, body = camera_health(fresh, failing)
    assert not ok and body["status"] == "degraded"
    assert body["reason"] == "csv sink failing: No space left on device (/out/counts.csv) (9 lost so far)"
    assert body["sinks"] == {
        "csv": {
            "ok": False,
            "lost": {"write_error": 9, "raised": 0},
            "error": "No space left on device (/out/counts.csv)",
        },
        "overlay": {"ok": True, "lost": {"raised": 0}, "error": None},
    }
    # a stale camera is the first thing to say; the failing sink is still named
    ok, body = camera_health([CameraState("cam1", False, 20.0)], failing)
    assert not ok and body["status"] == "stale"
    assert str(body["reason"]).startswith("cam1: camera down; csv sink failing")
    # a sink that recovered (error None) is healthy again; its lost rows stay on record
    ok, body = camera_health(fresh, [SinkStatus("csv", {"write_error": 9}, None)])
    assert ok and body["sinks"] == {"csv": {"ok": True, "lost": {"write_error": 9}, "error": None}}


def test_losses_without_a_failing_sink_keep_health_ok() -> None:
    """MQTT drops (a broker away) are counted, never a reason for 503: the box still records to disk."""
    dropping = SinkStatus(
        "mqtt", {"outbox_full": 120, "connection_lost": 3, "shutdown": 0, "raised": 0}, None
    )
    ok, body = camera_health([CameraState("cam1", True, 0.1)], [dropping])
    assert ok and body["status"] == "ok" and "reason" not in body
    assert body["sinks"] == {"mqtt": {"ok": True, "lost": dropping.lost, "error": None}}
