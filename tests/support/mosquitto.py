"""A real MQTT broker for tests (Debian's mosquitto on 127.0.0.1) and a real subscriber (paho). No tests.

``Mosquitto`` writes its own config and password file (``mosquitto_passwd``) in a temporary folder and
is started and stopped by PID; ``kill()`` is kill -9, and ``start()`` again brings it back on the same
port. ``Subscriber`` records every message (topic, payload, retain flag) it receives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from support.ports import free_port

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
OPENSSL = shutil.which("openssl")


#: The logins the system tests' broker takes: the box that publishes, and a reader that subscribes.
BOX, BOX_PASSWORD = "box", "box-pass-4721"
SUB, SUB_PASSWORD = "reader", "reader-pass-9930"


def require_mosquitto() -> None:
    if MOSQUITTO is None or MOSQUITTO_PASSWD is None:
        pytest.skip("needs Debian's mosquitto (scripts/bootstrap.sh test installs it as root)")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the test CA's certificate: what a client trusts
    cert: Path  # the broker's certificate for 127.0.0.1, signed by the CA
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a broker certificate for IP 127.0.0.1 (openssl, EC keys: fast)."""
    if OPENSSL is None:
        pytest.skip("needs the openssl command (Debian's openssl) to make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "broker.pem", directory / "broker.key", directory / "broker.csr"
    san = directory / "san.cnf"
    san.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        [OPENSSL, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test CA"],
        [OPENSSL, "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [OPENSSL, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", san],
    ):  # fmt: skip
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=30)
    return TlsFiles(ca, cert, key)


class Mosquitto:
    """mosquitto on 127.0.0.1:``port`` with ``users`` (name -> password); anonymous logins refused.

    With ``tls``, a second listener on ``tls_port`` speaks TLS with that certificate (same logins).
    """

    def __init__(self, directory: Path, users: dict[str, str], tls: TlsFiles | None = None) -> None:
        assert MOSQUITTO is not None and MOSQUITTO_PASSWD is not None
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = directory / "mosquitto.log"
        self.passwords = directory / "passwd"
        self.passwords.touch(mode=0o600)
        for user, password in users.items():
            self._passwd(user, password)
        self.config = directory / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.passwords}",
            "persistence false",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        self.tls_port: int | None = None
        if tls is not None:
            self.tls_port = free_port()
            lines += [f"listener {self.tls_port} 127.0.0.1", f"certfile {tls.cert}", f"keyfile {tls.key}"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user mosquitto, who cannot read our tmp files
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        assert MOSQUITTO is not None
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise AssertionError(f"mosquitto exited with {self.process.returncode}: {err}{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port}:\n{self.logs()}")

    def _passwd(self, user: str, password: str) -> None:
        assert MOSQUITTO_PASSWD is not None
        subprocess.run(
            [MOSQUITTO_PASSWD, "-b", str(self.passwords), user, password],
            check=True,
            timeout=30,
            capture_output=True,
        )

    def add_user(self, user: str, password: str) -> None:
        """Add a login and make the running broker reload its password file (SIGHUP)."""
        self._passwd(user, password)
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGHUP)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """kill -9: the broker vanishes without a word (retained messages go too: no persistence)."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process is not None and process.stderr is not None:
            process.stderr.close()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.time() on arrival

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A paho client subscribed to ``topics`` (QoS 1) that records what arrives, in order."""

    def __init__(self, port: int, user: str, password: str, topics: list[str], client_id: str = "") -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"test-sub-{id(self)}")
        self.client.username_pw_set(user, password)
        self.topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(  # blocking: the broker is there when a test subscribes
            "127.0.0.1", port, keepalive=30
        )
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber: no SUBACK"

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain), time.time()))

    def received(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if topic is None or paho.topic_matches_sub(topic, m.topic)]

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        topics = sorted({m.topic for m in self.received()})
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; topics seen: {topics}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(
    port: int, user: str, password: str, topic_filter: str, timeout: float = 20.0
) -> dict[str, bytes]:
    """What the broker retains under ``topic_filter`` now: topic -> payload.

    A fresh subscription gets the retained messages first; a message this client publishes afterwards
    (non-retained, to a marker topic under the filter's first level) arrives after all of them.
    """
    marker = f"{topic_filter.split('/', 1)[0]}/test-marker-{time.monotonic_ns()}"
    sub = Subscriber(port, user, password, [topic_filter, marker])
    try:
        sub.client.publish(marker, b"end", qos=1, retain=False)
        sub.wait_for("the marker", lambda: bool(sub.received(marker)), timeout=timeout)
        return {m.topic: m.payload for m in sub.received(topic_filter) if m.retain and m.topic != marker}
    finally:
        sub.close()
