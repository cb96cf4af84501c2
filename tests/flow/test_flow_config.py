"""The ``lines``, ``tracking`` and zone dwell settings: defaults, overrides, and key-path errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config


def test_lines_tracking_and_dwell_load(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            """
        defaults:
          tracking: {max_speed_px_s: 300}
        cameras:
          - id: a
            url: a.mp4
            lines:
              - {id: gate, points: [[10, 100], [600, 100]], in: entering, out: leaving}
              - {id: side, points: [[5, 5], [5, 300]]}
            zones:
              - {id: queue, polygon: [[0, 0], [10, 0], [10, 10]], dwell_alert_s: 60}
              - {id: hall, polygon: [[0, 0], [10, 0], [10, 10]], dwell: true}
          - id: b
            url: b.mp4
            tracking: {max_missed: 4}
        """,
        )
    )
    a, b = config.cameras
    assert [(line.id, line.in_name, line.out_name) for line in a.lines] == [
        ("gate", "entering", "leaving"),
        ("side", "in", "out"),
    ]
    assert a.lines[0].points == [[10, 100], [600, 100]] and a.lines[0].band_px == 4.0
    assert (a.tracking.max_speed_px_s, a.tracking.max_missed) == (300, 3)
    assert (b.tracking.max_speed_px_s, b.tracking.max_missed) == (300, 4)  # merged over defaults
    assert [(z.dwell, z.dwell_alert_s) for z in a.zones] == [(False, 60), (True, None)]
    assert b.lines == []


CAM = "cameras:\n  - id: a\n    url: a.mp4\n"


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        (CAM + "    lines: [{id: g, points: [[1, 2], [1, 2]]}]\n", "cameras[0].lines[0].points"),
        (CAM + "    lines: [{id: g, points: [[1, 2]]}]\n", "cameras[0].lines[0].points"),
        (CAM + "    lines: [{id: g, points: [[1, 2], [3, 4], [5, 6]]}]\n", "cameras[0].lines[0].points"),
        (CAM + "    lines: [{id: G/1, points: [[1, 2], [3, 4]]}]\n", "cameras[0].lines[0].id"),
        (CAM + "    lines: [{id: g, points: [[1, 2], [3, 4]], in: 'in out'}]\n", "cameras[0].lines[0].in"),
        (CAM + "    lines: [{id: g, points: [[1, 2], [3, 4]], out: a+b}]\n", "cameras[0].lines[0].out"),
        (CAM + "    lines: [{id: g, points: [[1, 2], [3, 4]], in: x, out: x}]\n", "cameras[0].lines[0]"),
        (CAM + "    lines: [{id: g, points: [[1, 2], [3, 4]], colour: red}]\n", "cameras[0].lines[0].colour"),
        (
            CAM + "    lines: [{id: g, points: [[1, 2], [3, 4]]}, {id: g, points: [[5, 2], [3, 4]]}]\n",
            "cameras[0].lines",
        ),
        (CAM + "    tracking: {max_speed_px_s: 0}\n", "cameras[0].tracking.max_speed_px_s"),
        ("defaults: {tracking: {max_missed: -1}}\n" + CAM, "defaults.tracking.max_missed"),
        (
            CAM + "    zones: [{id: z, polygon: [[0, 0], [9, 0], [9, 9]], dwell_alert_s: 0}]\n",
            "cameras[0].zones[0].dwell_alert_s",
        ),
    ],
)
def test_bad_values_name_their_key_path(tmp_path: Path, yaml_text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, yaml_text))
    assert [path for path, _ in info.value.errors] == [key]
