"""The service as systemd runs it: the unit's ExecStart, a real NOTIFY_SOCKET, a real RTSP camera and a
real Prometheus scraping it, so every dashboard query is checked against live data.

systemd cannot run here (PID 1 is not systemd), so the test plays its part: it binds the notify socket,
sets NOTIFY_SOCKET, WATCHDOG_USEC, CREDENTIALS_DIRECTORY and the unit's Environment=, and runs the
unit's ExecStart command line with only the installed binary path (/opt/crowdwatch/venv/bin/crowdwatch
-> this venv's `python -m crowdwatch`) and the config path replaced. WATCHDOG_USEC is 1 s instead of the
unit's 60 s and watchdog_progress_s 3 s, so a frozen camera shows within seconds.

One pipeline serves every test in this module (one model load on a 2-core machine); the tests run in
order: ready, dashboard queries, watchdog while frames flow, reload, freeze, resume, SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from support.dashboard import load_dashboard, panel_queries
from support.ports import free_port
from support.rtsp_fixtures import RtspServer
from support.systemd_unit import (
    REPO,
    NotifyListener,
    reload_command,
    stop_process,
    unit_command,
    unit_environment,
)

SECRET = "s3cr3t-Pa55"
WATCHDOG_USEC = 1_000_000
PROGRESS_S = 3.0
#: The config's `site`: the dashboard finds it on crowdwatch_build_info (the target carries no label).
SITE = "lobby-box"

pytestmark = [
    pytest.mark.rtsp,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
    pytest.mark.skipif(
        not Path("/usr/bin/python3").exists(), reason="GStreamer RTSP server needs /usr/bin/python3"
    ),
]


def _prom_query(port: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    procs: list[subprocess.Popen] = []
    listener = NotifyListener(tmp / "notify.sock")
    rtsp = RtspServer({"/live": "pattern:160x120@10"})
    try:
        rtsp.start()
        rtsp_port = rtsp.port

        metrics_port = free_port()
        (tmp / "credentials").mkdir()
        # LoadCredential=camera:/etc/crowdwatch/credentials names a file "lobby" camera_lobby.
        (tmp / "credentials" / "camera_lobby").write_text(SECRET)
        config = tmp / "site.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "site": SITE,
                    "model": {"device": "cpu", "threads": 1, "max_batch": 2},
                    "defaults": {
                        "fps": 5,
                        "open_timeout_s": 2,
                        "read_timeout_s": 1,
                        "stale_after_s": 3,
                        "reconnect": {"initial_s": 0.5, "max_s": 2},
                    },
                    "cameras": [
                        {
                            "id": "lobby",
                            "url": f"rtsp://viewer:${{credential:camera_lobby}}@127.0.0.1:{rtsp_port}/live",
                            "zones": [
                                {
                                    "id": "door",
                                    "polygon": [[0, 0], [80, 0], [80, 120], [0, 120]],
                                    "alert": {"high": 50, "low": 40},
                                    "dwell_alert_s": 30,
                                }
                            ],
                            "lines": [{"id": "entry", "points": [[0, 60], [160, 60]]}],
                        }
                    ],
                    "output": {"dir": str(tmp / "state" / "crowdwatch")},
                    "metrics": {"address": "127.0.0.1", "port": metrics_port},
                    "systemd": {"watchdog_progress_s": PROGRESS_S},
                    # no broker listens there: the MQTT panels show it disconnected
                    "mqtt": {
                        "enabled": True,
                        "port": free_port(),
                        "reconnect": {"initial_s": 1, "max_s": 2},
                    },
                }
            )
        )
        env = {**os.environ, **unit_environment(tmp / "state", tmp / "cache")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "OMP_NUM_THREADS": "1",
                "NOTIFY_SOCKET": str(listener.path),
                "WATCHDOG_USEC": str(WATCHDOG_USEC),
                "CREDENTIALS_DIRECTORY": str(tmp / "credentials"),
            }
        )
        env.pop("WATCHDOG_PID", None)
        log = (tmp / "crowdwatch.log").open("w")
        # cwd "/" as under systemd (no WorkingDirectory=).
        crowdwatch = subprocess.Popen(
            unit_command(config), env=env, stdout=log, stderr=subprocess.STDOUT, cwd="/"
        )
        procs.append(crowdwatch)

        prom_config = yaml.safe_load((REPO / "configs" / "prometheus" / "prometheus.yml").read_text())
        prom_config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
        prom_config["rule_files"] = [str(REPO / "configs" / "prometheus" / "alerts.yml")]
        prom_config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        prom_port = free_port()
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "prometheus.log").open("w"),
        )
        procs.append(prometheus)
        yield {
            "rtsp": rtsp,
            "crowdwatch": crowdwatch,
            "notify": listener,
            "tmp": tmp,
            "metrics_port": metrics_port,
            "prom_port": prom_port,
            "log": tmp / "crowdwatch.log",
            "config": config,
        }
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        rtsp.stop()
        listener.close()


def _log_tail(service) -> str:
    return service["log"].read_text()[-3000:]


def test_ready_after_model_and_sinks(service):
    assert service["notify"].wait_for("READY=1", timeout=180) is not None, _log_tail(service)
    assert service["crowdwatch"].poll() is None, _log_tail(service)


def test_watchdog_pings_while_frames_flow(service):
    notify = service["notify"]
    first = notify.wait_for("WATCHDOG=1", timeout=60)
    assert first is not None, _log_tail(service)
    time.sleep(2.0)
    pings = [t for t in notify.times("WATCHDOG=1") if t >= first]
    # One ping every WATCHDOG_USEC/2 = 0.5 s.
    assert len(pings) >= 3, pings


def test_every_dashboard_query_returns_series(service):
    port = service["prom_port"]
    # As Grafana would send them: the site and camera variables set to ours, $__rate_interval expanded
    # for a 1 s scrape interval (Grafana uses at least 4 scrape intervals).
    queries = {
        expr.replace("$instance", f"127.0.0.1:{service['metrics_port']}")
        .replace("$camera", "lobby")
        .replace("$__rate_interval", "10s")
        for _, expr in panel_queries(load_dashboard())
    }
    pending = set(queries)
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:
        for expr in sorted(pending):
            try:
                if _prom_query(port, expr):
                    pending.discard(expr)
            except OSError:
                pass  # Prometheus still starting
        time.sleep(1)
    assert not pending, f"no series for: {sorted(pending)}"
    assert _prom_query(port, f'crowdwatch_build_info{{site="{SITE}"}}')  # what the site variable reads
    assert _prom_query(port, 'crowdwatch_camera_up{camera="lobby"} == 1')
    assert _prom_query(port, 'rate(crowdwatch_frames_processed_total{camera="lobby"}[10s]) > 0')
    # CrowdwatchRestarting and CrowdwatchDown rely on these two, which come from outside the dashboard.
    assert _prom_query(port, 'process_start_time_seconds{job="crowdwatch"}')
    assert _prom_query(port, 'up{job="crowdwatch"} == 1')


def test_prometheus_evaluates_the_alert_rules_without_error(service):
    url = f"http://127.0.0.1:{service['prom_port']}/api/v1/rules"
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(url, timeout=5) as response:
            rules = [r for g in json.load(response)["data"]["groups"] for r in g["rules"]]
        evaluated = bool(rules) and all(not r["lastEvaluation"].startswith("0001") for r in rules)
        if evaluated or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expected = yaml.safe_load((REPO / "configs" / "prometheus" / "alerts.yml").read_text())["groups"][0][
        "rules"
    ]
    assert len(rules) == len(expected) and {r["health"] for r in rules} == {"ok"}, rules
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert not firing & {"CrowdwatchDown", "CrowdwatchCameraDown"}


def test_metrics_exposition_passes_promtool_and_hides_the_password(service):
    with urllib.request.urlopen(f"http://127.0.0.1:{service['metrics_port']}/metrics", timeout=5) as r:
        body = r.read()
    if shutil.which("promtool"):
        lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    assert SECRET.encode() not in body


def test_systemctl_reload_applies_the_edited_config_and_tells_systemd(service):
    """ExecReload as systemd runs it: RELOADING=1, then READY=1 once the new config is in place; frames
    keep flowing (the camera is not touched by a zone change), and the reload metric says it worked."""
    notify, config = service["notify"], service["config"]
    site = yaml.safe_load(config.read_text())
    site["cameras"][0]["zones"][0]["alert"] = {"high": 60, "low": 45}
    config.write_text(yaml.safe_dump(site))
    sent = time.monotonic()
    subprocess.run(reload_command(service["crowdwatch"].pid), check=True, timeout=10)
    assert notify.wait_for("RELOADING=1", timeout=30, after=sent) is not None, _log_tail(service)
    assert notify.wait_for("READY=1", timeout=30, after=sent) is not None, _log_tail(service)
    assert "config reload: " in service["log"].read_text() and "applied (retuned [lobby])" in _log_tail(
        service
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{service['metrics_port']}/metrics", timeout=5) as r:
        assert b"crowdwatch_config_last_reload_successful 1.0" in r.read()
    assert notify.wait_for("WATCHDOG=1", timeout=30, after=time.monotonic()) is not None
    assert service["crowdwatch"].poll() is None


def test_watchdog_stops_when_the_camera_freezes_and_resumes_after(service):
    notify, rtsp = service["notify"], service["rtsp"]
    rtsp.freeze()
    frozen_at = time.monotonic()
    try:
        # Pings must stop: wait for 3 s of silence (6 ping intervals) within PROGRESS_S + reads + margin.
        silent_since = None
        deadline = frozen_at + PROGRESS_S + 20
        while time.monotonic() < deadline:
            last = max(notify.times("WATCHDOG=1"), default=0.0)
            if time.monotonic() - last >= 3.0:
                silent_since = last
                break
            time.sleep(0.2)
        assert silent_since is not None, "WATCHDOG=1 kept coming with the camera frozen"
        assert service["crowdwatch"].poll() is None, _log_tail(service)
    finally:
        rtsp.thaw()
    # The reader reconnects and frames flow again: so do the pings.
    assert notify.wait_for("WATCHDOG=1", timeout=30, after=time.monotonic()) is not None, _log_tail(service)


def test_sigterm_sends_stopping_and_exits_zero(service):
    crowdwatch, notify = service["crowdwatch"], service["notify"]
    sent = time.monotonic()
    crowdwatch.send_signal(signal.SIGTERM)
    rc = crowdwatch.wait(15)
    took = time.monotonic() - sent
    assert notify.wait_for("STOPPING=1", timeout=1, after=sent) is not None
    assert rc == 0, _log_tail(service)
    assert took <= 10.0, f"clean stop took {took:.1f} s; the unit's TimeoutStopSec leaves 20 s"
    assert SECRET not in service["log"].read_text()
