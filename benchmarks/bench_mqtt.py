"""MQTT sink throughput on loopback: the real sink, a real mosquitto, a real subscriber counting arrivals.

    python benchmarks/bench_mqtt.py                       # 20 cameras x 5 frames/s, 2 zones each, QoS 0 and 1
    python benchmarks/bench_mqtt.py --qos 1 --paced-s 30 --flat-s 10

For each QoS, two phases, each with a fresh mosquitto (Debian's, on 127.0.0.1, anonymous, no queue
limit) and a paho subscriber on ``bench/#`` at the same QoS (at most 1: QoS 2's four-way handshake on
the subscriber's side would measure the subscriber):

1. paced: ``--cameras`` synthetic results every 1/``--fps`` s for ``--paced-s`` s, as the worker would
   produce them (each result = 1 camera count + ``--zones`` zone counts, so 20 x 5 x 3 = 300 messages/s);
2. flat out: ``MqttSink.write`` in a tight loop for ``--flat-s`` s (default outbox: what the broker
   cannot take in time is dropped, oldest first, and counted).

Reported per phase, as JSON: messages written, taken by the broker (the sink's count: acknowledged at
QoS 1 and 2), delivered to the subscriber, lost by reason (the sink's ``losses()``),
delivered messages/s (first to last arrival), latency (capture time in the payload -> arrival at the
subscriber) p50/p95/max, and the cost of one ``write()`` call p50/max.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.frames import Result
from crowdwatch.sinks.mqtt import MqttSink

IMAGE = np.zeros((4, 4, 3), np.uint8)
POINTS = np.zeros((0, 2), np.float32)


class Broker:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            sys.exit("needs Debian's mosquitto (apt-get install mosquitto)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        config = directory / "mosquitto.conf"
        # No queue limit per subscriber: the benchmark measures the sink, not the broker's overflow policy.
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 0",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        config.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        sys.exit("mosquitto did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)


class Counter:
    """A subscriber that counts arrivals and their latency (now - the payload's capture timestamp)."""

    def __init__(self, port: int, qos: int) -> None:
        self.latencies: list[float] = []
        self.first = self.last = 0.0
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.max_queued_messages_set(0)
        self.client.on_connect = lambda client, *_: client.subscribe("bench/+/+/#", qos)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._ready.wait(10):
            sys.exit("subscriber: no SUBACK")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        now = time.time()
        if message.topic.endswith("/status"):
            return
        self.latencies.append(now - json.loads(message.payload)["timestamp"])
        self.first = self.first or now
        self.last = now

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Events:
    """The sink's own account of messages the broker acknowledged (QoS 1, 2) or took (QoS 0); what it
    lost, by reason, is the sink's ``losses()``."""

    def __init__(self) -> None:
        self.published = 0

    def mqtt_connected(self, connected: bool) -> None:
        pass

    def mqtt_published(self, n: int = 1) -> None:
        self.published += n


def result(camera: int, index: int, zones: int) -> Result:
    zone_counts = {f"z{z}": 3 + z for z in range(zones)}
    return Result(
        camera=f"cam{camera:02d}",
        index=index,
        captured_at=time.time(),
        image=IMAGE,
        points=POINTS,
        count=17,
        latency_s=0.1,
        zone_counts=zone_counts,
        zone_alerts={z: False for z in zone_counts},
        smoothed_count=16.5,
        zone_smoothed={z: c - 0.5 for z, c in zone_counts.items()},
    )


def run_phase(args: argparse.Namespace, qos: int, paced: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        broker = Broker(Path(tmp))
        counter = Counter(broker.port, min(qos, 1))  # QoS 2's handshake would make the subscriber the limit
        events = Events()
        settings = MqttSettings.model_validate(
            {
                "enabled": True,
                "port": broker.port,
                "qos": qos,
                "topic_prefix": "bench",
                "client_id": "bench-box",
            }
        )
        sink = MqttSink(settings, "site", events=events)
        write_s: list[float] = []
        written = 0
        try:
            sink.open()
            deadline = time.monotonic() + 10
            while not sink.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            index = 0
            while True:
                now = time.monotonic()
                if now - started >= (args.paced_s if paced else args.flat_s):
                    break
                for camera in range(args.cameras):
                    t0 = time.perf_counter()
                    sink.write(result(camera, index, args.zones))
                    write_s.append(time.perf_counter() - t0)
                    written += 1 + args.zones
                index += 1
                if paced:  # the next frame time of every camera
                    time.sleep(max(0.0, started + index / args.fps - time.monotonic()))
            deadline = time.monotonic() + 20
            while sink.outbox_length() and time.monotonic() < deadline:
                time.sleep(0.05)
            while time.time() - (counter.last or time.time()) < 1.0:  # until arrivals stop for 1 s
                time.sleep(0.1)
        finally:
            sink.close()
            counter.close()
            broker.stop()
    lost = sink.losses()
    lat = np.array(counter.latencies) if counter.latencies else np.zeros(1)
    delivered = len(counter.latencies)
    span = max(counter.last - counter.first, 1e-9)
    return {
        "qos": qos,
        "phase": f"paced {args.cameras} cameras x {args.fps:g} frames/s" if paced else "flat out",
        "messages_written": written,
        "messages_taken_by_broker": events.published - 2,  # less "online" and "offline"
        "messages_delivered": delivered,
        "messages_lost": {reason: n for reason, n in lost.items() if n},
        "delivered_per_s": round(delivered / span, 1),
        "written_per_s": round(written / (args.paced_s if paced else args.flat_s), 1),
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)) * 1000, 2),
            "p95": round(float(np.percentile(lat, 95)) * 1000, 2),
            "max": round(float(lat.max()) * 1000, 2),
        },
        "write_call_us": {
            "p50": round(float(np.percentile(write_s, 50)) * 1e6, 1),
            "max": round(float(np.max(write_s)) * 1e6, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second per camera (paced phase)")
    parser.add_argument("--zones", type=int, default=2, help="zones per camera (messages per result - 1)")
    parser.add_argument("--paced-s", type=float, default=20.0)
    parser.add_argument("--flat-s", type=float, default=5.0)
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1], choices=[0, 1, 2])
    args = parser.parse_args()
    for qos in args.qos:
        for paced in (True, False):
            print(json.dumps(run_phase(args, qos, paced)), flush=True)


if __name__ == "__main__":
    main()
