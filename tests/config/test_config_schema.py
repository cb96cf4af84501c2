"""The config schema: defaults merged into cameras, reconnect overrides checked after merging, relative
paths resolved against the config folder, a digit string as a device index."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config


def test_defaults_merge_into_each_camera(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            """
        defaults:
          fps: 3
          read_timeout_s: 2
          reconnect: {initial_s: 0.5, max_s: 8}
        cameras:
          - id: a
            url: a.mp4
          - id: b
            url: rtsp://h/x
            fps: null
            read_timeout_s: 7
            reconnect: {max_s: 60}
        """,
        )
    )
    a, b = config.cameras
    assert (a.fps, a.read_timeout_s, a.reconnect.initial_s, a.reconnect.max_s) == (3, 2, 0.5, 8)
    assert (b.fps, b.read_timeout_s, b.reconnect.initial_s, b.reconnect.max_s) == (None, 7, 0.5, 60)
    assert a.open_timeout_s == b.open_timeout_s == 5.0  # neither set: the built-in default
    assert config.defaults.fps == 3
    assert config.metrics.address == "127.0.0.1" and config.metrics.port == 9108


def test_camera_override_is_checked_against_the_merged_reconnect(tmp_path: Path) -> None:
    text = (
        "defaults:\n  reconnect: {initial_s: 5, max_s: 10}\n"
        "cameras:\n  - {id: a, url: a.mp4, reconnect: {max_s: 2}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text))
    assert [key for key, _ in info.value.errors] == ["cameras[0].reconnect"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = load_config(
        write_config(
            tmp_path / "etc",
            """
        model: {weights: weights/p2p.pth}
        cameras:
          - {id: a, url: clips/a.mp4}
          - {id: b, url: /abs/b.mp4}
        output: {dir: ../out}
        """,
        )
    )
    assert config.model.weights == tmp_path / "etc" / "weights" / "p2p.pth"
    assert config.cameras[0].url.reveal() == str(tmp_path / "etc" / "clips" / "a.mp4")
    assert config.cameras[1].url.reveal() == "/abs/b.mp4"
    assert config.output.dir == tmp_path / "out"
    assert config.cameras[0].kind == "file"


def test_a_digit_string_is_a_device_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_CAMERA_INDEX", "2")
    config = load_config(write_config(tmp_path, "cameras:\n  - {id: a, url: '${env:CW_CAMERA_INDEX}'}\n"))
    assert config.cameras[0].url == 2 and config.cameras[0].kind == "device"


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("defaults: {fps: true}", "defaults.fps"),
        ("defaults: {loop: 1}", "defaults.loop"),
        ("defaults: {stale_after_s: '10'}", "defaults.stale_after_s"),
        ("defaults: {reconnect: {jitter: false}}", "defaults.reconnect.jitter"),
        ("model: {max_batch: 2.0}", "model.max_batch"),
        ("metrics: {port: '9108'}", "metrics.port"),
        ("metrics: {enabled: 'yes'}", "metrics.enabled"),
        ("output: {csv: {enabled: 0}}", "output.csv.enabled"),
    ],
)
def test_a_bool_or_number_of_the_other_kind_is_rejected(tmp_path: Path, snippet: str, key: str) -> None:
    text = f"{snippet}\ncameras:\n  - {{id: a, url: a.mp4}}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, text))
    assert [k for k, _ in info.value.errors] == [key]


def test_ints_still_fill_float_fields_and_paths_come_as_strings(tmp_path: Path) -> None:
    text = (
        "model: {weights: w.pth, max_wait_ms: 20}\noutput: {dir: out}\n"
        "cameras:\n  - {id: a, url: 3, fps: 5, stale_after_s: 4,"
        " zones: [{id: z, polygon: [[0, 0], [4, 0], [4, 4]], alert: {high: 3, low: 1}}]}\n"
    )
    config = load_config(write_config(tmp_path, text))
    camera = config.cameras[0]
    assert (camera.fps, camera.stale_after_s, camera.url) == (5.0, 4.0, 3)
    assert isinstance(camera.fps, float) and config.model.max_wait_ms == 20.0
    assert config.output.dir == tmp_path / "out" and config.model.weights == tmp_path / "w.pth"


def test_model_tile_pixels_bounds_the_pass_and_reaches_the_predictor(tmp_path):
    """model.tile_pixels is validated in the config and handed to the Predictor the pipeline builds."""
    import threading

    from crowdwatch.pipeline.model import load_model

    base = "cameras: [{id: a, url: rtsp://127.0.0.1/x}]\noutput: {dir: out}\nmetrics: {enabled: false}\n"
    path = tmp_path / "site.yaml"
    path.write_text(base + "model: {tile_pixels: 1000}\n")
    with pytest.raises(ConfigError, match="tile_pixels"):
        load_config(path)
    path.write_text(base + "model: {tile_pixels: 1048576}\n")
    config = load_config(path)
    assert config.model.tile_pixels == 1048576
    predictor, fault = load_model(config, threading.Event())
    assert predictor is not None and predictor.tile_pixels == 1048576 and fault() is None
