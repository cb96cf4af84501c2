"""The systemd units, checked by the real systemd-analyze (verify and offline security scoring)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
INSTALLED_BINARY = "/opt/crowdwatch/venv/bin/crowdwatch"
#: crowdwatch-serve.service runs the Triton pool from its own venv (Debian's /usr/bin/python3).
SERVE_BINARY = "/opt/crowdwatch/serve-venv/bin/crowdwatch"
UNITS = ["crowdwatch.service", "crowdwatch@lobby.service", "crowdwatch-serve.service"]
MAX_EXPOSURE = 2.5

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def _unit_lines(path: Path, section: str = "Service") -> list[str]:
    """Non-comment lines of one [section]."""
    lines, current = [], None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            lines.append(line)
    return lines


def _settings(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in _unit_lines(path):
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def _copy_for_analysis(src: Path, dest_dir: Path) -> Path:
    """Copy a unit, pointing ExecStart at a binary that exists here.

    `systemd-analyze verify` fails when the ExecStart binary is missing, and /opt/crowdwatch/venv is
    where a site installs crowdwatch, not where tests run. Only that path is rewritten; nothing else.
    """
    text = src.read_text()
    installed = SERVE_BINARY if src.name == "crowdwatch-serve.service" else INSTALLED_BINARY
    assert f"ExecStart={installed} " in text
    dest = dest_dir / src.name
    here = f"ExecStart={sys.executable} -m crowdwatch "
    dest.write_text(text.replace(f"ExecStart={installed} ", here))
    return dest


def _analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def units(tmp_path) -> Path:
    for src in SYSTEMD_DIR.glob("*.service"):
        _copy_for_analysis(src, tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", UNITS)
def test_verify_is_silent(units, name):
    # verify exits 0 on unknown keys and bad values, printing only a warning: any output is a failure.
    result = _analyze("verify", str(units / name))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_harness_sees_typos(units):
    """The silence check above would catch a typo (verify itself still exits 0)."""
    bad = units / "crowdwatch.service"
    bad.write_text(bad.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    result = _analyze("verify", str(bad))
    assert "Unknown key 'ProtectSystm'" in result.stdout + result.stderr


def _exposure(path: Path, threshold: int) -> tuple[int, float]:
    result = _analyze("security", "--offline=true", f"--threshold={threshold}", str(path))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return result.returncode, float(match.group(1))


@pytest.mark.parametrize("name", UNITS)
def test_security_exposure_at_most_target(units, name):
    # --threshold is in tenths of the printed score: 25 means 2.5; a score above it exits non-zero.
    rc, score = _exposure(units / name, int(MAX_EXPOSURE * 10))
    assert rc == 0 and score <= MAX_EXPOSURE
    rc_tight, _ = _exposure(units / name, round(score * 10) - 1)
    assert rc_tight != 0


def test_service_contract():
    s = _settings(SYSTEMD_DIR / "crowdwatch.service")
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["2"]
    assert s["ExecStart"][0].split()[:2] == [INSTALLED_BINARY, "run"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # systemctl reload: SIGHUP, the config again
    watchdog = int(s["WatchdogSec"][0].rstrip("s"))
    stop = int(s["TimeoutStopSec"][0].rstrip("s"))
    restart = int(s["RestartSec"][0].rstrip("s"))
    assert stop > 10, "a clean stop takes up to 10 s: leave margin before SIGKILL"
    unit = dict(line.partition("=")[::2] for line in _unit_lines(SYSTEMD_DIR / "crowdwatch.service", "Unit"))
    window = int(unit["StartLimitIntervalSec"].rstrip("min")) * 60
    burst = int(unit["StartLimitBurst"])
    # A watchdog restart cycle must never trip the start limit (a long camera outage would leave the
    # unit failed for good); a fast crash loop (RestartSec apart) must.
    assert burst * (watchdog + restart) > window >= burst * restart
    # Frames must stop for watchdog_progress_s before pings stop; a larger default than WatchdogSec would
    # only delay the restart of a wedged pipeline.
    config = pytest.importorskip("crowdwatch.config")
    assert config.SystemdSettings().watchdog_progress_s <= watchdog
    assert "AF_UNIX AF_INET AF_INET6" in s["RestrictAddressFamilies"]
    assert "@system-service" in s["SystemCallFilter"]
    assert {"char-nvidia* rw", "char-drm rw"} <= set(s["DeviceAllow"])


def test_serve_contract():
    """The pool binds loopback, restarts on a crash but not on bad usage, and is hardened like the box."""
    s = _settings(SYSTEMD_DIR / "crowdwatch-serve.service")
    argv = s["ExecStart"][0].split()
    assert argv[:2] == [SERVE_BINARY, "serve"]
    assert argv[argv.index("--address") + 1] == "127.0.0.1" and "--metrics-address" not in argv
    assert s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["2"]
    assert int(s["TimeoutStopSec"][0].rstrip("s")) > 30, "Triton's own exit timeout is 30 s"
    box = _settings(SYSTEMD_DIR / "crowdwatch.service")
    for key in ("RestrictAddressFamilies", "SystemCallFilter", "CapabilityBoundingSet", "ProtectSystem"):
        assert s[key] == box[key], key


def test_supplementary_groups_exist_on_every_systemd_box():
    """A missing group stops the unit from starting (status=216/GROUP): only use groups that systemd
    itself creates (sysusers.d/basic.conf), not udev- or driver-created ones such as render."""
    basic = Path("/usr/lib/sysusers.d/basic.conf")
    if not basic.exists():
        pytest.skip("no /usr/lib/sysusers.d/basic.conf here")
    always = {line.split()[1] for line in basic.read_text().splitlines() if line.startswith("g ")}
    values = _settings(SYSTEMD_DIR / "crowdwatch.service")["SupplementaryGroups"]
    groups = {group for value in values for group in value.split()}
    assert groups and groups <= always, groups - always


def test_template_hardening_matches_service():
    """crowdwatch@.service differs from crowdwatch.service only in per-instance lines."""
    single = _unit_lines(SYSTEMD_DIR / "crowdwatch.service")
    template = _unit_lines(SYSTEMD_DIR / "crowdwatch@.service")
    per_instance = [line for line in template if "%i" in line]
    assert {line.split("=")[0] for line in per_instance} == {
        "ExecStart",
        "StateDirectory",
        "CacheDirectory",
        "Environment",
        "LoadCredential",
    }
    assert [line for line in template if "%i" not in line] == [
        line for line in single if line.split("=")[0] not in {other.split("=")[0] for other in per_instance}
    ]


def test_example_config_credentials_are_what_the_unit_loads():
    """LoadCredential=camera:/etc/crowdwatch/credentials loads each file F there as credential camera_F;
    the example config must reference its camera passwords by those names."""
    (spec,) = _settings(SYSTEMD_DIR / "crowdwatch.service")["LoadCredential"]
    prefix, _, directory = spec.partition(":")
    assert directory == "/etc/crowdwatch/credentials"
    example = Path(__file__).resolve().parents[2] / "configs" / "site.yaml"
    config_lines = [line for line in example.read_text().splitlines() if not line.lstrip().startswith("#")]
    names = re.findall(r"\$\{credential:([^}]*)\}", "\n".join(config_lines))
    assert names, "configs/site.yaml should show a camera password as ${credential:...}"
    assert [n for n in names if not n.startswith(prefix + "_")] == []
