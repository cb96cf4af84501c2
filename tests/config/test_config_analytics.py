"""Config of smoothing, alert for_s, exclusion masks and heatmaps: defaults, overrides, key-path errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config
from crowdwatch.zones import zones_from_config


def test_defaults_overrides_and_what_the_pipeline_builds(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            """
        defaults:
          smoothing: {window_s: 20}
        cameras:
          - id: a
            url: a.mp4
            smoothing: {window_s: 0}
            pixels_per_metre: 55.5
            exclude:
              - polygon: [[0, 0], [100, 0], [100, 50]]
            zones:
              - id: door
                polygon: [[0, 0], [10, 0], [10, 10]]
                alert: {high: 5, low: 2, for_s: 30}
          - id: b
            url: b.mp4
        output:
          heatmaps: {enabled: true, window_s: 600, slot_s: 30, cell_px: 8, npy: true}
        """,
        )
    )
    a, b = config.cameras
    assert (a.smoothing.window_s, b.smoothing.window_s, config.defaults.smoothing.window_s) == (0, 20, 20)
    assert a.pixels_per_metre == 55.5 and b.pixels_per_metre is None and b.exclude == []
    assert a.zones[0].alert is not None and a.zones[0].alert.for_s == 30
    maps = config.output.heatmaps
    assert (maps.enabled, maps.window_s, maps.slot_s, maps.cell_px, maps.interval_s, maps.npy) == (
        True,
        600,
        30,
        8,
        60,
        True,
    )
    zones = zones_from_config(
        a.zones, exclusions=[r.polygon for r in a.exclude], window_s=a.smoothing.window_s
    )
    assert len(zones.exclusions) == 1 and zones.zones[0].for_s == 30 and zones.window_s == 0


def test_built_in_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "cameras:\n  - {id: a, url: a.mp4, zones: []}\n"))
    assert config.cameras[0].smoothing.window_s == 10
    assert config.output.heatmaps.enabled is False and config.output.heatmaps.window_s == 900


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("cameras:\n  - {id: a, url: a.mp4, smoothing: {window_s: -1}}\n", "cameras[0].smoothing.window_s"),
        (
            "defaults: {smoothing: {window: 5}}\ncameras:\n  - {id: a, url: a.mp4}\n",
            "defaults.smoothing.window",
        ),
        (
            "cameras:\n  - {id: a, url: a.mp4, exclude: [{polygon: [[0, 0], [1, 1]]}]}\n",
            "cameras[0].exclude[0].polygon",
        ),
        (
            "cameras:\n  - {id: a, url: a.mp4, exclude: [{polygon: [[0, 0], [1, 1], [2, 2]]}]}\n",
            "cameras[0].exclude[0].polygon",
        ),
        (
            "cameras:\n  - {id: a, url: a.mp4, exclude: [{points: [[0, 0]]}]}\n",
            ("cameras[0].exclude[0].polygon", "cameras[0].exclude[0].points"),
        ),
        ("cameras:\n  - {id: a, url: a.mp4, pixels_per_metre: 0}\n", "cameras[0].pixels_per_metre"),
        (
            "cameras:\n  - id: a\n    url: a.mp4\n    zones: [{id: z, polygon: [[0, 0], [9, 0], [9, 9]], "
            "alert: {high: 3, low: 1, for_s: -2}}]\n",
            "cameras[0].zones[0].alert.for_s",
        ),
        (  # every error of the section, not only the first pydantic finds
            "cameras:\n  - id: a\n    url: a.mp4\n    zones: [{id: z, polygon: [[0, 0], [9, 0], [9, 9]], "
            "alert: {high: 5, low: 8, for_s: -2}}]\n",
            ("cameras[0].zones[0].alert.low", "cameras[0].zones[0].alert.for_s"),
        ),
        ("cameras:\n  - {id: a, url: a.mp4}\noutput: {heatmaps: {cell_px: 1}}\n", "output.heatmaps.cell_px"),
        ("cameras:\n  - {id: a, url: a.mp4}\noutput: {heatmaps: {colour: red}}\n", "output.heatmaps.colour"),
        (
            "cameras:\n  - {id: a, url: a.mp4}\noutput: {heatmaps: {window_s: 60, slot_s: 120}}\n",
            "output.heatmaps",
        ),
        (
            "cameras:\n  - {id: a, url: a.mp4}\noutput: {heatmaps: {window_s: 86400, slot_s: 1}}\n",
            "output.heatmaps",
        ),
    ],
)
def test_bad_values_name_their_key_path(tmp_path: Path, yaml_text: str, key: str | tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, yaml_text))
    assert [path for path, _ in info.value.errors] == ([key] if isinstance(key, str) else list(key))
