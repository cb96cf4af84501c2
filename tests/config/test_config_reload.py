"""What a reload changes: plan_reload sorts cameras and refuses keys that need a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from crowdwatch.config import Config, load_config
from crowdwatch.config.reload import ReloadPlan, plan_reload

ZONE = {"id": "door", "polygon": [[0, 0], [10, 0], [10, 10]], "alert": {"high": 5, "low": 2}}


def site(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "site": "lobby",
        "defaults": {"fps": 2},
        "cameras": [
            {"id": "a", "url": "rtsp://127.0.0.1/a", "zones": [ZONE]},
            {"id": "b", "url": "rtsp://127.0.0.1/b"},
        ],
        "output": {"dir": "out"},
    }
    data.update(changes)
    return data


def load(tmp_path: Path, data: dict[str, Any], name: str = "site.yaml") -> Config:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def with_camera(index: int, **keys: Any) -> dict[str, Any]:
    cameras = site()["cameras"]
    cameras[index] = {**cameras[index], **keys}
    return site(cameras=cameras)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (site(), ReloadPlan()),
        (
            site(cameras=[site()["cameras"][1], {"id": "c", "url": "rtsp://127.0.0.1/c"}]),
            ReloadPlan(added=("c",), removed=("a",)),
        ),
        (with_camera(1, url="rtsp://127.0.0.1/other"), ReloadPlan(restarted=("b",))),
        (with_camera(0, fps=5), ReloadPlan(restarted=("a",))),
        (with_camera(0, reconnect={"max_s": 60}), ReloadPlan(restarted=("a",))),
        (site(defaults={"fps": 3}), ReloadPlan(restarted=("a", "b"))),  # defaults reach every camera
        (
            with_camera(0, zones=[{**ZONE, "polygon": [[0, 0], [20, 0], [20, 20]]}]),
            ReloadPlan(retuned=("a",)),
        ),
        (with_camera(1, smoothing={"window_s": 3}), ReloadPlan(retuned=("b",))),
        (with_camera(1, exclude=[{"polygon": [[0, 0], [5, 0], [5, 5]]}]), ReloadPlan(retuned=("b",))),
        (site(model={"weights": "other.pt"}), ReloadPlan(needs_restart=("model.weights",))),
        (site(metrics={"port": 9200}), ReloadPlan(needs_restart=("metrics.port",))),
        (site(output={"dir": "elsewhere"}), ReloadPlan(needs_restart=("output.dir",))),
        (site(site="hall"), ReloadPlan(needs_restart=("site",))),
        (
            site(output={"dir": "out", "heatmaps": {"enabled": True}}),
            ReloadPlan(needs_restart=("output.heatmaps.enabled",)),
        ),
        (site(mqtt={"enabled": True}), ReloadPlan(needs_restart=("mqtt.enabled",))),
    ],
)
def test_plan_sorts_every_difference(tmp_path: Path, new: dict[str, Any], expected: ReloadPlan) -> None:
    old = load(tmp_path, site())
    assert plan_reload(old, load(tmp_path, new, "new.yaml")) == expected


def test_a_restart_key_beside_camera_changes_is_reported_with_them(tmp_path: Path) -> None:
    old = load(tmp_path, site())
    new = load(tmp_path, {**with_camera(1, url="rtsp://127.0.0.1/x"), "model": {"device": "cpu"}}, "n.yaml")
    plan = plan_reload(old, new)
    assert plan.needs_restart == ("model.device",) and plan.restarted == ("b",)
    assert not plan.empty


def test_a_secret_compares_by_value_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CW_CAM_PASSWORD", "first-secret")
    secret = with_camera(1, url="rtsp://user:${env:CW_CAM_PASSWORD}@127.0.0.1/b")
    old = load(tmp_path, secret)
    assert plan_reload(old, load(tmp_path, secret, "same.yaml")).empty
    monkeypatch.setenv("CW_CAM_PASSWORD", "second-secret")
    plan = plan_reload(old, load(tmp_path, secret, "rotated.yaml"))
    assert plan.restarted == ("b",)  # a rotated password reconnects the camera
    assert "secret" not in plan.summary()
