"""Every sink's losses in one metric family: ``crowdwatch run`` with its CSV on a 256 kB tmpfs that the
test fills, and MQTT towards a broker that is away (a free port on 127.0.0.1 where nothing listens),
so its small outbox overflows.

Both show on the real /metrics as ``crowdwatch_sink_lost_total{sink, reason}``, every declared reason
there from the first scrape; the final summary adds up exactly: CSV rows on disk plus rows lost equal the
rows made, and every MQTT message the sink was given (one count per result, one retained status per
camera change) is lost as ``outbox_full`` or, still waiting at the stop, ``shutdown``. /healthz is
``degraded`` while the disk is full and 200 again once it has space, although MQTT keeps losing: a
broker that is away never degrades it. Mounting a tmpfs needs root: without it the test skips, saying
so (the ``small_disk`` fixture, tests/conftest.py).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support.pipeline_harness import PipelineProcess, read_csv_rows, write_config, write_still_clip
from support.ports import free_port
from support.small_disk import fill

from crowdwatch.demo import render_frames

OUTBOX = 10  # the smallest outbox the config takes: it is full after 10 results


def lost_family(pipeline: PipelineProcess) -> dict[tuple[str, str], float]:
    """The samples of the one ``crowdwatch_sink_lost`` family on /metrics, by (sink, reason)."""
    pipeline.scrape()  # keeps the text for the secret check, and fails loudly when the server is gone
    families = {f.name: f for f in text_string_to_metric_families(pipeline.scraped[-1])}
    family = families["crowdwatch_sink_lost"]
    assert family.type == "counter"
    return {
        (s.labels["sink"], s.labels["reason"]): s.value for s in family.samples if s.name.endswith("_total")
    }


def test_csv_rows_and_mqtt_messages_lost_add_up_in_one_family(tmp_path: Path, small_disk: Path) -> None:
    clip = write_still_clip(tmp_path / "still.avi", render_frames(64, 48, 1, 10, seed=5)[0], fps=25.0)
    config = write_config(
        tmp_path / "site.yaml",
        [{"id": "cam", "url": str(clip), "fps": None, "loop": True}],
        site="lobby",
        output={"dir": str(small_disk), "csv": {"flush_interval_s": 0.5}, "snapshots": {"enabled": False}},
        mqtt={
            "enabled": True,
            "port": free_port(),  # nothing listens: every attempt is refused
            "outbox_size": OUTBOX,
            "reconnect": {"initial_s": 1, "max_s": 1},
        },
    )
    pipeline = PipelineProcess(config, tmp_path)
    try:
        pipeline.start()
        first = lost_family(pipeline)
        declared = {
            ("csv", "write_error"),
            ("csv", "raised"),
            *(("mqtt", r) for r in ("outbox_full", "connection_lost", "shutdown", "raised")),
        }
        assert declared <= set(first), first  # every series from the start
        assert first[("csv", "write_error")] == 0
        pipeline.wait_for("rows on disk", lambda: len(read_csv_rows(small_disk)) >= 3, timeout=60)
        filler = fill(small_disk)
        # the CSV's last 4 kB page still takes rows (tmpfs allocates whole pages): up to ~70 rows
        pipeline.wait_for("CSV rows lost", lambda: lost_family(pipeline)[("csv", "write_error")] >= 3, 40)
        both = lost_family(pipeline)
        assert both[("mqtt", "outbox_full")] > 0  # the same family, the other sink
        status, body = pipeline.health()
        assert status == 503 and "csv sink failing" in body["reason"] and "mqtt sink" not in body["reason"]
        filler.unlink()
        pipeline.wait_for("healthy again", lambda: pipeline.health()[0] == 200, timeout=20)
        csv_lost_at_recovery = lost_family(pipeline)[("csv", "write_error")]
        mqtt_before = lost_family(pipeline)[("mqtt", "outbox_full")]
        pipeline.wait_for(
            "MQTT still losing", lambda: lost_family(pipeline)[("mqtt", "outbox_full")] > mqtt_before, 20
        )
        status, body = pipeline.health()
        assert status == 200 and body["sinks"]["mqtt"]["ok"], body  # counted, never degraded
        assert pipeline.value("crowdwatch_mqtt_outbox_messages") == OUTBOX
        last = lost_family(pipeline)
        rc, _ = pipeline.signal(signal.SIGTERM)
    finally:
        pipeline.close()
    assert rc == 0
    logs = pipeline.logs()
    assert "Traceback" not in logs
    match = re.search(r"final sink losses \(records not delivered\): (\{.*\})", logs)
    assert match, logs[-3000:]
    final = json.loads(match.group(1))
    counts = pipeline.final_counts()["cam"]
    made = counts["processed"] - counts["sink_overload"]  # results every sink was given

    csv = final["csv"]
    assert csv["reasons"] == {"write_error": csv["total"]}  # no write raised
    assert csv["total"] == csv_lost_at_recovery  # nothing lost once the disk had space again
    assert len(read_csv_rows(small_disk)) + csv["total"] == made

    # The MQTT sink was given one count per result and one retained status per camera change: the first
    # "offline" as the reader starts, then each change the reader logs (up, and down at the stop).
    changes = len(re.findall(r"cam: camera (?:up|down)", logs))
    given = made + 1 + changes
    mqtt = final["mqtt"]
    assert mqtt["reasons"] == {"outbox_full": given - OUTBOX, "shutdown": OUTBOX}, (mqtt, made, changes)
    assert mqtt["total"] == given
    assert all(last[key] <= mqtt["reasons"].get(key[1], 0) for key in last if key[0] == "mqtt")
