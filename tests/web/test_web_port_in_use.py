"""A live view port already in use stops `crowdwatch run` before the model loads: exit 2, the address
named, and the metrics server it had already bound is let go."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from support.pipeline_harness import REPO, write_config, write_still_clip

from crowdwatch.demo import render_frames


def test_a_busy_web_port_is_exit_2_naming_the_address_before_the_model_loads(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    clip = write_still_clip(tmp_path / "cam.avi", render_frames(160, 128, 1, 5, seed=3)[0])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(
            tmp_path / "site.yaml",
            [{"id": "cam", "url": str(clip), "loop": True}],
            web={"enabled": True, "port": port},
        )
        command = [sys.executable, "-m", "crowdwatch", "run", str(config)]
        result = subprocess.run(
            command, cwd=REPO, env=cli_env, capture_output=True, text=True, timeout=120, check=False
        )
    logs = result.stdout + result.stderr
    assert result.returncode == 2, logs
    assert f"web: cannot listen on 127.0.0.1:{port}" in logs and "(web.address and web.port" in logs
    assert "model ready" not in logs and "Traceback" not in logs  # found before the model was loaded
