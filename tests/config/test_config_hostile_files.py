"""Config files that used to crash or run away (issue 11, items 2-5 and 8's non-UTF-8 bytes): each is now
a clear ConfigError (exit 2) in bounded time and memory; YAML merge keys work and stay validated."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.config import ConfigError, load_config
from crowdwatch.config.loader import MAX_CONFIG_BYTES

GOOD = "cameras:\n  - id: front\n    url: rtsp://127.0.0.1:8554/front\n"


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == 2
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("? [a, b]\n: 1\n" + GOOD, "a key must be a plain value such as a name, but got a sequence"),
        ("{a: 1}: 2\n" + GOOD, "a key must be a plain value such as a name, but got a mapping"),
        (
            "cameras:\n  - id: x\n    url: a.mp4\n    zones:\n      - ? {id: z}\n        : 1\n",
            "got a mapping",
        ),
    ],
    ids=["sequence-key", "mapping-key", "nested-mapping-key"],
)
def test_a_key_that_is_not_a_plain_value_is_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    message = error_of(write_config(tmp_path, text))
    assert fragment in message and "line " in message


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 3000 + "]" * 3000 + "\n" + GOOD)
    assert "nested more than" in error_of(path)


def alias_bomb(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n" + GOOD


def test_an_alias_bomb_is_refused_quickly_and_small(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(9))
    assert len(path.read_bytes()) < 800
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = error_of(path)
    assert time.monotonic() - started < 10  # it took over 120 s and 2.4 GB before
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: < 200 MB more
    assert "aliases" in message


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write(GOOD)
        f.write("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    assert f"at most {MAX_CONFIG_BYTES} bytes" in error_of(path)


def test_non_utf8_bytes_are_reported_with_their_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    assert "not UTF-8 text: byte 0xe9 at line 4, column 6" in error_of(path)


MERGED = """
defaults: &camera
  fps: 2
cameras:
  - <<: *camera
    id: a
    url: rtsp://127.0.0.1:8554/a
  - <<: *camera
    id: b
    url: rtsp://127.0.0.1:8554/b
    fps: 5
"""


def test_merge_keys_work_and_an_own_key_overrides_a_merged_one(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, MERGED))
    assert [(c.id, c.fps) for c in config.cameras] == [("a", 2), ("b", 5)]


def test_a_merged_key_is_still_validated(tmp_path: Path) -> None:
    text = "defaults: &d\n  fps: -1\ncameras:\n  - <<: *d\n    id: a\n    url: a.mp4\n"
    assert "cameras[0].fps" in error_of(write_config(tmp_path, text))
    unknown = "x: &d\n  fpz: 2\ncameras:\n  - <<: *d\n    id: a\n    url: a.mp4\n"
    message = error_of(write_config(tmp_path, unknown, "unknown.yaml"))
    assert "cameras[0].fpz" in message and "unknown key" in message


def test_check_config_exits_2_without_a_traceback(
    tmp_path: Path, cli_env: dict[str, str], python: str
) -> None:
    path = write_config(tmp_path, "? [a, b]\n: 1\n" + GOOD)
    proc = subprocess.run(
        [python, "-m", "crowdwatch", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "a key must be a plain value" in proc.stderr + proc.stdout
