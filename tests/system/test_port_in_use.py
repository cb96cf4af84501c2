"""A port already in use, for either HTTP server (metrics and health, the live view), stops `crowdwatch run`
before the model loads: exit 2, the address and the config keys named. In the live view's case the
metrics server it had already bound is let go with the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.pipeline_harness import REPO, write_config, write_still_clip
from support.ports import busy_port

from crowdwatch.demo import render_frames


def busy_section(server: str, port: int) -> dict[str, Any]:
    """The config section that puts ``server`` on ``port`` (the other server keeps the harness's port 0)."""
    if server == "metrics":
        return {"address": "127.0.0.1", "port": port}
    return {"enabled": True, "port": port}


@pytest.mark.parametrize("server", ["metrics", "web"])
def test_a_busy_port_is_exit_2_naming_the_address_before_the_model_loads(
    server: str, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    clip = write_still_clip(tmp_path / "cam.avi", render_frames(160, 128, 1, 5, seed=3)[0])
    with busy_port() as port:
        config = write_config(
            tmp_path / "site.yaml",
            [{"id": "cam", "url": str(clip), "loop": True}],
            **{server: busy_section(server, port)},
        )
        result = subprocess.run(
            [sys.executable, "-m", "crowdwatch", "run", str(config)],
            cwd=REPO,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    logs = result.stdout + result.stderr
    assert result.returncode == 2, logs
    assert f"{server}: cannot listen on 127.0.0.1:{port}" in logs
    assert f"({server}.address and {server}.port" in logs
    assert "model ready" not in logs and "Traceback" not in logs  # found before the model was loaded
