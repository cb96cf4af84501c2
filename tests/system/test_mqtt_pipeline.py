"""`crowdwatch run` publishing to a real mosquitto: a broker that dies and comes back, the last will on
kill -9, and a wrong password. The pipeline is a subprocess; CSV is read back from disk, metrics scraped.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from support.mosquitto import Mosquitto, Subscriber, require_mosquitto
from support.pipeline_harness import read_csv_rows, running_pipeline, write_config, write_still_clip

from crowdwatch.demo import render_frames

BOX, BOX_PASSWORD = "box", "Box-Pass-5821"
SUB, SUB_PASSWORD = "reader", "Reader-Pass-3307"


def mqtt_config(tmp_path: Path, port: int, site: str, camera: str = "cam") -> Path:
    clip = write_still_clip(tmp_path / f"{camera}.avi", render_frames(160, 128, 1, 10, seed=5)[0])
    cameras: list[dict[str, Any]] = [{"id": camera, "url": str(clip), "fps": 4, "loop": True}]
    mqtt = {
        "enabled": True,
        "port": port,
        "username": BOX,
        "password": "${env:CW_MQTT_PASSWORD}",
        "keepalive_s": 5,
        "reconnect": {"initial_s": 1, "max_s": 2},
    }
    output = {"dir": str(tmp_path / "out"), "csv": {"flush_interval_s": 0.5}, "snapshots": {"enabled": False}}
    return write_config(tmp_path / "site.yaml", cameras, site=site, mqtt=mqtt, output=output)


def frames(sub: Subscriber, topic: str) -> list[int]:
    return [m.json()["frame"] for m in sub.received(topic)]


def test_the_pipeline_rides_out_a_broker_restart_and_its_will_says_offline_on_kill_9(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD, SUB: SUB_PASSWORD}).start()
    cli_env["CW_MQTT_PASSWORD"] = BOX_PASSWORD
    sub = Subscriber(broker.port, SUB, SUB_PASSWORD, ["crowdwatch/lobby/#"])
    count_topic = "crowdwatch/lobby/cam/count"
    try:
        with running_pipeline(mqtt_config(tmp_path, broker.port, "lobby"), tmp_path, env=cli_env) as pipeline:
            sub.wait_for("3 counts", lambda: len(frames(sub, count_topic)) >= 3, timeout=60)
            assert sub.received("crowdwatch/lobby/status")[-1].payload == b"online"
            assert pipeline.value("crowdwatch_mqtt_connected") == 1

            broker.kill()
            pipeline.wait_for(
                "mqtt disconnected", lambda: pipeline.value("crowdwatch_mqtt_connected") == 0, 10
            )
            rows_down = len(read_csv_rows(tmp_path / "out"))
            before = max(frames(sub, count_topic))
            # The broker stays away for a while: the pipeline goes on (CSV rows keep coming, metrics too).
            pipeline.wait_for(
                "8 more CSV rows with the broker down",
                lambda: len(read_csv_rows(tmp_path / "out")) >= rows_down + 8,
                timeout=30,
                interval=0.5,
            )
            assert pipeline.value("crowdwatch_mqtt_connected") == 0

            broker.start()  # same port; the subscriber and crowdwatch each reconnect by themselves
            sub.wait_for("counts again", lambda: max(frames(sub, count_topic)) > before + 8, timeout=30)
            assert pipeline.value("crowdwatch_mqtt_connected") == 1
            assert (pipeline.value("crowdwatch_mqtt_connections_total") or 0) >= 2
            sub.wait_for(
                "online again", lambda: sub.received("crowdwatch/lobby/status")[-1].payload == b"online"
            )

            rc, _ = pipeline.signal(signal.SIGKILL)  # no goodbye: the broker publishes the will
            assert rc == -signal.SIGKILL
            sub.wait_for(
                "the last will",
                lambda: sub.received("crowdwatch/lobby/status")[-1].payload == b"offline",
                timeout=10,
            )
    finally:
        sub.close()
        broker.stop()
    logs = pipeline.logs()
    assert "mqtt: lost the connection to 127.0.0.1" in logs
    assert "s away" in logs  # the reconnect says how long the broker was gone
    assert "Traceback" not in logs
    assert BOX_PASSWORD not in logs


def test_a_wrong_password_is_a_clear_error_that_never_shows_the_password(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    require_mosquitto()
    broker = Mosquitto(tmp_path / "broker", {BOX: BOX_PASSWORD}).start()
    wrong = "Wrong-Secret-7741"
    cli_env["CW_MQTT_PASSWORD"] = wrong
    try:
        with running_pipeline(mqtt_config(tmp_path, broker.port, "lobby"), tmp_path, env=cli_env) as pipeline:
            pipeline.wait_for("the refusal", lambda: "refused the connection" in pipeline.logs(), timeout=20)
            # The other sinks do not wait for MQTT.
            pipeline.wait_for("4 CSV rows", lambda: len(read_csv_rows(tmp_path / "out")) >= 4, 30, 0.5)
            scraped = pipeline.scrape()
            rc, _ = pipeline.signal(signal.SIGTERM)
    finally:
        broker.stop()
    assert rc == 0, pipeline.logs()
    assert scraped[("crowdwatch_mqtt_connected", frozenset())] == 0
    logs = pipeline.logs()
    assert (
        f"mqtt: broker 127.0.0.1:{broker.port} refused the connection: Not authorized for user 'box' "
        "(check mqtt.username and the password credential)"
    ) in logs
    assert wrong not in logs and wrong not in "".join(pipeline.scraped)
    assert "Traceback" not in logs
