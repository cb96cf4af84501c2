"""sd_notify over a real bound AF_UNIX datagram socket (path and abstract namespace)."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest

from crowdwatch.telemetry.notify import Notifier, WatchdogPinger, watchdog_interval_s


def _recv_all(sock: socket.socket, wait_s: float) -> list[str]:
    """Collect every datagram that arrives within wait_s."""
    messages = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return messages


def _drain(sock: socket.socket) -> None:
    """Discard datagrams already queued."""
    sock.setblocking(False)
    try:
        while True:
            sock.recv(4096)
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path):
    """A bound datagram socket and the $NOTIFY_SOCKET value that reaches it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        value = str(tmp_path / "notify.sock")
        sock.bind(value)
    else:
        name = f"crowdwatch-test-{uuid.uuid4().hex}"
        sock.bind(b"\0" + name.encode())
        value = "@" + name
    yield sock, value
    sock.close()


def test_messages_arrive(notify_socket):
    sock, value = notify_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": value})
    assert notifier.enabled
    assert notifier.ready()
    assert notifier.status("2 cameras\nup")
    assert notifier.watchdog()
    assert notifier.stopping()
    notifier.close()
    got = _recv_all(sock, 0.5)
    assert got == [f"READY=1\nMAINPID={os.getpid()}", "STATUS=2 cameras up", "WATCHDOG=1", "STOPPING=1"]


def test_no_socket_is_a_noop():
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_missing_socket_is_logged_not_raised(tmp_path, caplog):
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert sum("sd_notify" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("env", "pid", "expected"),
    [
        ({}, 1, None),
        ({"WATCHDOG_USEC": "0"}, 1, None),
        ({"WATCHDOG_USEC": "junk"}, 1, None),
        ({"WATCHDOG_USEC": "20000000"}, 1, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, 1, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "2"}, 1, None),
    ],
)
def test_watchdog_interval(env, pid, expected):
    assert watchdog_interval_s(env, pid=pid) == expected


def test_pinger_pings_only_while_progress_is_recent(notify_socket):
    sock, value = notify_socket
    last = {"t": time.monotonic()}
    pinger = WatchdogPinger(Notifier(value), lambda: last["t"], max_age_s=0.3, interval_s=0.05)
    with pinger:
        assert pinger.active
        pings = _recv_all(sock, 0.25)
        assert len(pings) >= 3 and set(pings) == {"WATCHDOG=1"}
        # Progress stops: pings stop once the last frame is max_age_s old.
        time.sleep(0.35)
        _drain(sock)
        assert _recv_all(sock, 0.3) == []
        # Progress resumes: so do the pings.
        last["t"] = time.monotonic() + 10
        assert len(_recv_all(sock, 0.3)) >= 2
    assert not pinger.active
    _drain(sock)
    assert _recv_all(sock, 0.2) == []


def test_pinger_no_progress_yet_never_pings(notify_socket):
    sock, value = notify_socket
    with WatchdogPinger(Notifier(value), lambda: None, max_age_s=1.0, interval_s=0.05):
        assert _recv_all(sock, 0.25) == []


def test_pinger_without_watchdog_env_does_not_start(monkeypatch, notify_socket):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    pinger = WatchdogPinger(Notifier(notify_socket[1]), time.monotonic, max_age_s=1.0)
    pinger.start()
    assert pinger.interval_s is None and not pinger.active
    pinger.stop()


def test_tick_with_a_fake_clock_logs_each_stall_once(notify_socket, caplog):
    sock, value = notify_socket
    now, last = [100.0], [None]
    pinger = WatchdogPinger(
        Notifier(value), lambda: last[0], max_age_s=10, interval_s=1, clock=lambda: now[0]
    )
    caplog.set_level("INFO", logger="crowdwatch.telemetry.notify")

    def stalls() -> list[str]:
        return [r.message for r in caplog.records if r.levelname == "WARNING"]

    assert pinger.tick() is False and stalls() == []  # startup: no frame yet, not a stall
    now[0] = 111.0
    assert pinger.tick() is False and pinger.tick() is False
    assert stalls() == ["no frame processed for 11 s: withholding systemd watchdog pings"]
    last[0] = 110.5
    assert pinger.tick() is True
    now[0] = 125.0
    assert pinger.tick() is False
    assert stalls()[-1] == "no frame processed for 14 s: withholding systemd watchdog pings"
    assert _recv_all(sock, 0.2) == ["WATCHDOG=1"]


def test_a_failing_progress_check_withholds_pings_without_ending_the_thread(notify_socket, caplog):
    sock, value = notify_socket
    calls = []

    def progress() -> float:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("worker gone")
        return time.monotonic()

    with WatchdogPinger(Notifier(value), progress, max_age_s=1.0, interval_s=0.05) as pinger:
        assert len(_recv_all(sock, 0.3)) >= 2
        assert pinger.active
    assert sum("progress check failed" in r.message for r in caplog.records) == 2
