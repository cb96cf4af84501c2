"""The tests' running-pipeline context manager keeps its promises: a pipeline that cannot start is a
clear failure carrying its log, and a pipeline is stopped by its PID when the block fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.pipeline_harness import PipelineFailed, running_pipeline, write_config, write_still_clip
from support.ports import busy_port

from crowdwatch.demo import render_frames


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: is there such a process (not yet reaped)?
    except ProcessLookupError:
        return False
    return True


def test_a_pipeline_that_exits_before_ready_fails_with_its_log_tail(tmp_path: Path) -> None:
    clip = write_still_clip(tmp_path / "cam.avi", render_frames(96, 64, 1, 3, seed=2)[0])
    with busy_port() as port:
        config = write_config(
            tmp_path / "site.yaml",
            [{"id": "cam", "url": str(clip)}],
            metrics={"address": "127.0.0.1", "port": port},
        )
        with pytest.raises(PipelineFailed) as failed, running_pipeline(config, tmp_path):
            pytest.fail("the block must not run")
    assert "exited with 2 while waiting for its metrics server" in str(failed.value)
    assert f"cannot listen on 127.0.0.1:{port}" in failed.value.log_tail


def test_a_failing_block_still_stops_the_pipeline_by_its_pid(tmp_path: Path) -> None:
    clip = write_still_clip(tmp_path / "cam.avi", render_frames(96, 64, 1, 3, seed=2)[0])
    config = write_config(tmp_path / "site.yaml", [{"id": "cam", "url": str(clip), "fps": 2, "loop": True}])
    with pytest.raises(RuntimeError, match="the test went wrong"):  # noqa: PT012 (the block is the subject)
        with running_pipeline(config, tmp_path) as pipeline:
            pid = pipeline.pid
            assert pipeline.health()[0] in (200, 503)  # serving
            raise RuntimeError("the test went wrong")
    assert not _alive(pid)
    assert pipeline.logs().rstrip().endswith("stopped cleanly")  # SIGTERM first: a clean stop
