"""Two boxes share one inference pool: two `crowdwatch run` processes with `backend: triton`, each
reading a real RTSP camera, and one `crowdwatch serve` (PyTriton's tritonserver, OpenVINO backend).

Each camera streams a lossless H.264 clip of one still image, so every frame a box decodes is
bit-identical to frame 0 decoded from the file here: every CSV row must hold the count the local
openvino backend gives on that frame. Triton's own metrics must show requests of the two boxes run
together (fewer executions than requests). Killing the pool (SIGKILL) must make both boxes degrade
(/healthz 503 with the reason, frames dropped as `inference_unavailable`, no rows), without a crash;
when the pool is back, both count again, and no row ever holds a made-up count. The pool itself comes
up only after the boxes have started: they wait for it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.exported_models import exported
from support.pipeline_harness import (
    PipelineProcess,
    decode_first_frame,
    read_csv_rows,
    write_config,
    write_lossless_still_h264,
)
from support.rtsp_fixtures import RtspServer, requires_rtsp
from support.triton_pool import TritonPool, count_band, pool_missing

from crowdwatch.demo import render_frames
from crowdwatch.logthrottle import REPEAT_LOG_S

__all__ = ["exported"]  # the session fixture, imported so pytest finds it here

pytestmark = [requires_rtsp, pytest.mark.rtsp, pytest.mark.slow]
pytest.importorskip("tritonclient.grpc", reason="needs the crowdwatch[triton] extra (tritonclient[grpc])")

BOXES = ("box-a", "box-b")
#: A generous bound for a loaded 2-core machine (the pool, two boxes and the camera server share it):
#: a behaviour is waited for, never a rate.
WAIT_S = 120.0


@pytest.fixture
def pool(exported: dict[str, Path], tmp_path: Path) -> Iterator[TritonPool]:
    reason = pool_missing()
    if reason:
        pytest.skip(reason)
    # A box sends its next request only once its last one is answered, so two boxes would alternate on
    # one model instance, each request arriving while the other runs. Here a request waits up to 3 s
    # for a partner (a batch of 2 is full and runs at once; 3 s is beyond one run on a loaded machine):
    # the two boxes' requests then run as one batch.
    server = TritonPool(
        exported["xml"], tmp_path, max_batch=2, queue_delay_us=3_000_000
    )  # started by the test
    try:
        yield server
    finally:
        server.stop()


def processed(box: PipelineProcess) -> float:
    return box.value("crowdwatch_frames_processed_total", camera="cam") or 0.0


def dropped(box: PipelineProcess) -> float:
    return box.value("crowdwatch_frames_dropped_total", camera="cam", reason="inference_unavailable") or 0.0


def test_two_boxes_share_a_pool_count_as_local_and_ride_out_its_outage(
    pool: TritonPool, exported: dict[str, Path], tmp_path: Path
) -> None:
    from crowdwatch.model.predictor import Predictor

    local = Predictor.from_checkpoint(exported["xml"], backend="openvino", precision="fp32")  # as the pool
    clips, expected = {}, {}
    for i, box in enumerate(BOXES):
        clips[box] = write_lossless_still_h264(
            tmp_path / f"{box}.mp4", render_frames(160, 128, 1, 25, seed=20 + i)[0], seconds=600
        )
        # the counts an fp32 run may give (batched with the other box's frame): almost always one value
        expected[box] = count_band(local, [decode_first_frame(clips[box])])[0]
        assert 0 not in expected[box], "the frame must show people: a made-up 0 would then be visible"
    camera = RtspServer({f"/{box}": f"file:{clip}" for box, clip in clips.items()}).start()
    boxes: dict[str, PipelineProcess] = {}
    # The pool comes up only after the boxes have started: they wait for it, with back-off.
    late_start = threading.Timer(5.0, pool.start)
    late_start.start()
    try:
        for box in BOXES:
            folder = tmp_path / box
            folder.mkdir()
            model = {
                "backend": "triton",
                "url": pool.url,
                "timeout_s": 30.0,  # CPU inference on a loaded machine; the outage below is a refusal
                "retry_initial_s": 0.5,
                "retry_max_s": 2.0,
                "max_batch": 4,
            }
            cameras = [{"id": "cam", "url": camera.url(f"/{box}"), "fps": None, "stale_after_s": 30.0}]
            config = write_config(folder / "site.yaml", cameras, model=model)
            boxes[box] = PipelineProcess(config, folder).start(ready_timeout=WAIT_S)
        late_start.join()
        for name, box in boxes.items():
            box.wait_for(f"{name} counting", lambda b=box: processed(b) >= 3, timeout=WAIT_S)
            assert box.value("crowdwatch_people", camera="cam") in expected[name]
            assert box.health()[0] == 200
        # Requests of both boxes ran together: fewer executions than requests served.
        first = boxes[BOXES[0]]
        first.wait_for(
            "a batch holding requests of both boxes",
            lambda: (m := pool.metrics())["nv_inference_exec_count"] < m["nv_inference_request_success"],
            timeout=WAIT_S,
        )

        outage_started = time.monotonic()
        pool.stop(signal.SIGKILL)  # the pool crashes
        for name, box in boxes.items():
            box.wait_for(f"{name} drops frames", lambda b=box: dropped(b) >= 2, timeout=WAIT_S)
            status, health = box.health()
            assert status == 503 and health["status"] == "degraded", health
            assert "inference pool" in health["reason"] and pool.url in health["reason"]
        frozen = {name: processed(box) for name, box in boxes.items()}
        for name, box in boxes.items():  # still dropping, not counting: no row is made up
            start = dropped(box)
            box.wait_for(f"{name} keeps dropping", lambda b=box, s=start: dropped(b) >= s + 2, timeout=WAIT_S)
            assert processed(box) == frozen[name]

        pool.start()  # back on the same port
        for name, box in boxes.items():
            box.wait_for(
                f"{name} counting again", lambda b=box, n=name: processed(b) >= frozen[n] + 3, timeout=WAIT_S
            )
            box.wait_for(f"{name} healthy", lambda b=box: b.health()[0] == 200, timeout=WAIT_S)
        outage_s = time.monotonic() - outage_started
        for box in boxes.values():
            rc, _ = box.signal(signal.SIGTERM, timeout=30)
            assert rc == 0, box.logs()
    finally:
        late_start.join()
        for box in boxes.values():
            box.close()
        camera.stop()
    for name, box in boxes.items():
        logs = box.logs()
        assert "Traceback" not in logs
        # The outage is logged as it starts and then at most once a minute (REPEAT_LOG_S), its end once.
        warnings = [line for line in logs.splitlines() if "retrying with back-off" in line]
        assert 1 <= len(warnings) <= 1 + outage_s // REPEAT_LOG_S, warnings
        assert logs.count("is back after") == 1
        # Started before the pool: waited for it, said so as the wait began (the first box at least).
        if name == BOXES[0]:
            assert "waiting for it (back-off up to 2 s)" in logs
        rows = read_csv_rows(tmp_path / name / "out")
        final = box.final_counts()["cam"]
        assert len(rows) == final["processed"] - final["sink_overload"] > frozen[name]
        assert {int(row["count"]) for row in rows} <= set(expected[name])
