"""A full output disk for real: ``crowdwatch run`` writing its CSV onto a 256 kB tmpfs that a test fills.

Lost rows must be visible everywhere an operator looks: ``crowdwatch_sink_lost_total{sink="csv"}``
and ``crowdwatch_sink_up`` on /metrics, /healthz ``degraded`` (503) while the sink fails and 200 once
space is freed, and the final summary in the log; rows on disk plus rows lost equal the rows made.
Mounting a tmpfs needs root (CAP_SYS_ADMIN): without it the test skips, saying so (the ``small_disk``
fixture, tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from support.pipeline_harness import read_csv_rows, running_pipeline, write_config, write_still_clip
from support.small_disk import fill

from crowdwatch.demo import render_frames


def test_rows_lost_on_a_full_disk_are_counted_reported_and_healthz_degrades(
    tmp_path: Path, small_disk: Path
) -> None:
    # small frames at 25 fps: ~10 rows/s even on a busy 2-core machine
    clip = write_still_clip(tmp_path / "still.avi", render_frames(64, 48, 1, 10, seed=5)[0], fps=25.0)
    config = write_config(
        tmp_path / "site.yaml",
        [{"id": "cam", "url": str(clip), "fps": None, "loop": True}],
        output={"dir": str(small_disk), "csv": {"flush_interval_s": 0.5}, "snapshots": {"enabled": False}},
    )
    with running_pipeline(config, tmp_path) as pipeline:

        def lost() -> float:
            return pipeline.value("crowdwatch_sink_lost_total", sink="csv", reason="write_error") or 0.0

        pipeline.wait_for("rows on disk", lambda: len(read_csv_rows(small_disk)) >= 3, timeout=60)
        assert lost() == 0 and pipeline.value("crowdwatch_sink_up", sink="csv") == 1
        assert pipeline.value("crowdwatch_sink_lost_total", sink="csv", reason="raised") == 0
        assert pipeline.health()[0] == 200
        filler = fill(small_disk)
        # the CSV's last 4 kB page still takes rows (tmpfs allocates whole pages): up to ~70 rows
        pipeline.wait_for("rows counted as lost", lambda: lost() >= 3, timeout=40)
        status, body = pipeline.health()
        assert status == 503 and body["status"] == "degraded", body
        assert "csv sink failing: No space left on device" in body["reason"]
        assert pipeline.value("crowdwatch_sink_up", sink="csv") == 0
        filler.unlink()  # space again: the next flush succeeds and the sink is healthy
        pipeline.wait_for("healthy again", lambda: pipeline.health()[0] == 200, timeout=20)
        assert pipeline.value("crowdwatch_sink_up", sink="csv") == 1
        lost_at_recovery = lost()
        rc, _ = pipeline.signal(signal.SIGTERM)
    assert rc == 0
    logs = pipeline.logs()
    assert "lost" in logs and "No space left on device" in logs and "Traceback" not in logs
    match = re.search(r"final sink losses \(records not delivered\): (\{.*\})", logs)
    assert match, logs[-3000:]
    final = json.loads(match.group(1))["csv"]
    final_lost = final["total"]
    assert final["reasons"] == {"write_error": final_lost}  # no write raised: every loss is a failed flush
    assert final_lost == lost_at_recovery > 0  # nothing lost after the disk had space again
    counts = pipeline.final_counts()["cam"]
    made = counts["processed"] - counts["sink_overload"]
    assert len(read_csv_rows(small_disk)) + final_lost == made  # every row is on disk or counted lost
    assert not os.listdir(small_disk) or all(p.name.startswith("counts-") for p in small_disk.iterdir())
