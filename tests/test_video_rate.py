"""The annotated video's playback rate: output.video.fps, else the camera's sampling rate, else (a camera
that keeps every frame) the rate its stream declared; never a hidden constant."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.config_files import write_config

from crowdwatch.capture.reader import DEFAULT_FILE_FPS, CameraReader
from crowdwatch.config import load_config
from crowdwatch.pipeline import Pipeline


def _pipeline(tmp_path: Path, video: str) -> Pipeline:
    text = f"""
        cameras:
          - {{id: sampled, url: a.mp4, fps: 3}}
          - {{id: every, url: b.mp4, fps: null}}
        output: {{dir: out, video: {video}}}
        metrics: {{enabled: false}}
    """
    return Pipeline(load_config(write_config(tmp_path, text)))


@pytest.mark.parametrize(("declared", "expected"), [(12.5, 12.5), (0.0, DEFAULT_FILE_FPS)])
def test_the_rate_follows_the_sampling_rate_or_the_stream(
    tmp_path: Path, declared: float, expected: float
) -> None:
    pipeline = _pipeline(tmp_path, "{enabled: true}")
    readers = [CameraReader(camera) for camera in pipeline.config.cameras]  # never started
    readers[1].nominal_fps = declared  # what the stream declared when it opened (0: nothing)
    pipeline._readers = readers
    assert pipeline._video_fps("sampled") == 3
    assert pipeline._video_fps("every") == expected


def test_an_explicit_rate_wins(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, "{enabled: true, fps: 7.5}")
    assert pipeline._video_fps("sampled") == pipeline._video_fps("every") == 7.5
