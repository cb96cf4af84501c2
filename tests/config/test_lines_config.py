"""A camera's ``lines`` (the shape the live view's editor writes): accepted by the real loader, and each
mistake reported with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config

CAMERA = """\
    cameras:
      - id: door
        url: clip.mp4
        lines:
%s
"""


def test_a_line_loads_with_its_sides(tmp_path: Path) -> None:
    line = "          - {id: entry, points: [[0, 300], [640, 300]], in: hall, out: street}"
    config = load_config(write_config(tmp_path, CAMERA % line))
    (loaded,) = config.cameras[0].lines
    assert (loaded.id, loaded.points, loaded.in_name, loaded.out_name) == (
        "entry",
        [[0, 300], [640, 300]],
        "hall",
        "street",
    )
    assert loaded.model_dump(by_alias=True)["in"] == "hall"  # what the page shows, as written


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ("{id: a, points: [[0, 0], [0, 0]], in: x, out: y}", "cameras[0].lines[0].points", "must differ"),
        ("{id: a, points: [[0, 0], [5, 5]], in: x, out: x}", "cameras[0].lines[0]", "in and out must differ"),
        ("{id: a, points: [[0, 0]], in: x, out: y}", "cameras[0].lines[0].points", "at least 2"),
        (
            "{id: a, points: [[0, 0], [1, 1], [2, 2]], in: x, out: y}",
            "cameras[0].lines[0].points",
            "at most 2",
        ),
        ("{id: a, points: [[0, 0], [5, 5]], out: in}", "cameras[0].lines[0]", "in and out must differ"),
        (
            "{id: a, points: [[0, 0], [5, 5]], in: x, out: y, dir: z}",
            "cameras[0].lines[0].dir",
            "unknown key",
        ),
        ("{id: A, points: [[0, 0], [5, 5]], in: x, out: y}", "cameras[0].lines[0].id", "expected a slug"),
    ],
)
def test_bad_lines_are_reported_by_key_path(tmp_path: Path, line: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write_config(tmp_path, CAMERA % f"          - {line}"))
    assert any(path == key and message in text for path, text in error.value.errors), error.value.errors
