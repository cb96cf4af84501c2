"""`crowdwatch run` with exclusions, smoothing, a for_s alert and heatmaps, checked through its real
outputs: CSV read back from disk, /metrics scraped, snapshot, heatmap JPEG and .npy decoded."""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from support.pipeline_harness import (
    count_cli,
    decode_first_frame,
    read_csv_rows,
    running_pipeline,
    write_config,
    write_still_clip,
)

from crowdwatch.demo import render_frames
from crowdwatch.drawing import draw_exclusions
from crowdwatch.polygons import points_in_polygon

LEFT = [[0, 0], [80, 0], [80, 128], [0, 128]]
POSTER = [[112, 0], [160, 0], [160, 128], [112, 128]]  # the right 48 px: never counted


def seconds(time_utc: str) -> float:
    return datetime.fromisoformat(time_utc.replace("Z", "+00:00")).timestamp()


def test_exclusions_smoothing_for_s_alert_and_heatmaps_end_to_end(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    clip = write_still_clip(tmp_path / "still.avi", render_frames(160, 128, 1, 25, seed=1)[0])
    frame = decode_first_frame(clip)
    cv2.imwrite(str(tmp_path / "still.png"), frame)
    points = np.array(count_cli([tmp_path / "still.png"], cli_env)["still"]["points"], np.float32).reshape(
        -1, 2
    )
    kept = points[~points_in_polygon(points, np.array(POSTER, np.float32))]
    left = int(points_in_polygon(kept, np.array(LEFT, np.float32)).sum())
    assert len(kept) < len(points) and left >= 1, "the scene must have heads in the poster and the zone"

    camera = {
        "id": "hall",
        "url": str(clip),
        "fps": 4,
        "loop": True,
        "smoothing": {"window_s": 5},
        "exclude": [{"polygon": POSTER}],
        "zones": [{"id": "left", "polygon": LEFT, "alert": {"high": left, "low": 0, "for_s": 1.0}}],
    }
    out = tmp_path / "out"
    output = {
        "dir": str(out),
        "snapshots": {"interval_s": 0.5},
        "heatmaps": {
            "enabled": True,
            "window_s": 60,
            "slot_s": 10,
            "cell_px": 16,
            "interval_s": 1,
            "npy": True,
        },
    }
    with running_pipeline(
        write_config(tmp_path / "site.yaml", [camera], output=output), tmp_path
    ) as pipeline:
        pipeline.wait_for(
            "8 frames processed",
            lambda: (pipeline.value("crowdwatch_frames_processed_total", camera="hall") or 0) >= 8,
            timeout=60,
        )
        samples = pipeline.scrape()
        rc, _ = pipeline.signal(signal.SIGTERM)
    assert rc == 0, pipeline.logs()

    hall, zone = frozenset({("camera", "hall")}), frozenset({("camera", "hall"), ("zone", "left")})
    assert samples[("crowdwatch_people", hall)] == len(kept)
    assert samples[("crowdwatch_people_smoothed", hall)] == len(kept)  # a still scene: smoothed = raw
    assert samples[("crowdwatch_zone_people_smoothed", zone)] == left

    rows = read_csv_rows(out)
    assert len(rows) >= 8
    assert {row["count"] for row in rows} == {str(len(kept))}
    assert {row["count_smoothed"] for row in rows} == {f"{len(kept):.2f}"}
    assert {row["smoothed_left"] for row in rows} == {f"{left:.2f}"}
    # for_s: the alert is raised once the zone held >= high for 1 s of capture time, not before.
    start = seconds(rows[0]["time_utc"])
    for row in rows:
        held = seconds(row["time_utc"]) - start
        if abs(held - 1.0) > 0.01:
            assert row["alert_left"] == ("1" if held > 1.0 else "0"), (held, row)
    assert "zone left alert raised" in pipeline.logs()

    grid = np.load(out / "heatmaps" / "hall.npy")
    assert grid.shape == (8, 10) and grid.dtype == np.float32
    assert not grid[:, 7:].any()  # cells right of x = 112: inside the poster
    # people per 100 px^2 x the cell's area (16 x 16 px) = heads per frame: all the kept ones
    assert abs(float((grid * 256 / 100).sum()) - len(kept)) < 1e-3
    heatmap = cv2.imread(str(out / "heatmaps" / "hall.jpg"))
    assert heatmap is not None and heatmap.shape[1] == 160 and heatmap.shape[0] > 128

    snapshot = cv2.imread(str(out / "snapshots" / "hall.jpg")).astype(int)
    hatched = draw_exclusions(frame.copy(), [np.array(POSTER, np.float32)]).astype(int)
    region = (slice(4, 124), slice(116, 156))
    assert (
        np.abs(snapshot[region] - hatched[region]).mean()
        < np.abs(snapshot[region] - frame[region]).mean() / 2
    )
