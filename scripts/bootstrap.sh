#!/usr/bin/env bash
# Set crowdwatch up on a fresh Debian/Ubuntu machine (Python 3.11+) and run one of:
#   scripts/bootstrap.sh demo        the pipeline on a built-in synthetic clip (no camera, no internet)
#   scripts/bootstrap.sh test [ARGS] lint, format and type checks, then the whole test suite (ARGS go to pytest)
#   scripts/bootstrap.sh test-date-shift  the tests that start no servers and train no networks, with the
#                                    wall clock years ahead and a far time zone: date-bound tests fail here
# As root, `test` also installs the system packages the tests use (GStreamer's RTSP server, ffmpeg,
# Prometheus/promtool, systemd-analyze, the mosquitto MQTT broker); without root, those tests skip with a
# reason. `test` installs every extra into $VENV (.venv), and the OpenVINO-only install a CPU box gets
# (pip install '.[openvino]', no torch) into $OPENVINO_VENV (.venv-openvino), which
# tests/system/test_without_torch.py runs. `demo` installs the OpenVINO-only variant too (a 0.64 GB venv
# instead of PyTorch's ~6 GB).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
shift || true
case "$mode" in
  demo|test|test-date-shift) ;;
  *) echo "usage: scripts/bootstrap.sh demo | test [pytest args...] | test-date-shift" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
OPENVINO_VENV=${OPENVINO_VENV:-.venv-openvino}
APT_TEST_PACKAGES=(
  ffmpeg                                   # H.264 test clips (libx264)
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0  # RTSP test server
  prometheus                               # prometheus + promtool for the scrape/alert tests
  systemd                                  # systemd-analyze verify/security for the unit tests
  strace                                   # the sandbox test checks the syscalls the pipeline makes
  mosquitto                                # the MQTT broker the MQTT sink and fleet tests start
  openssl                                  # a throwaway CA and certificate for the MQTT TLS test
  chromium chromium-driver                 # a real headless browser for the live view's tests (Selenium)
  python3-venv libpython3.11               # .venv-serve: the Triton pool (crowdwatch serve) of the tests
)

say() { printf '\n==> %s\n' "$*"; }

# crowdwatch serve (the Triton pool of the tests) runs in its own venv, .venv-serve, from Debian's
# /usr/bin/python3: the Triton Python backend's stub that PyTriton ships loads the system's
# libpython3.11.so.1.0, so the server must run on that very interpreter (under another CPython 3.11
# the stub mixes two patch releases' standard libraries and fails). Only nvidia-pytriton is installed
# there (~25 s, ~370 MB, numpy < 2 as it requires); torch, openvino and crowdwatch come from the main
# venv through a .pth line placed after the serve venv's own packages (both are CPython 3.11).
SERVE_VENV=${SERVE_VENV:-.venv-serve}
SERVE_PYTHON=${SERVE_PYTHON:-/usr/bin/python3}
make_serve_venv() {
  if ! [ -x "$SERVE_PYTHON" ] || ! "$SERVE_PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "note: $SERVE_PYTHON is not CPython 3.11: no $SERVE_VENV, the Triton pool tests will skip" >&2
    return 0
  fi
  say "installing the Triton pool (crowdwatch[serve]) into $SERVE_VENV, on $SERVE_PYTHON"
  [ -x "$SERVE_VENV/bin/python" ] || "$SERVE_PYTHON" -m venv "$SERVE_VENV"
  "$SERVE_VENV/bin/python" -m pip install -q "nvidia-pytriton>=0.7"
  local main_site serve_site
  main_site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  serve_site=$("$SERVE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  main_site=$(cd "$main_site" && pwd)
  echo "import site; site.addsitedir('$main_site')" > "$serve_site/zz_crowdwatch_main_venv.pth"
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "crowdwatch needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  packages=()
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
  [ "$mode" != demo ] && packages+=("${APT_TEST_PACKAGES[@]}")
  if [ ${#packages[@]} -gt 0 ]; then
    missing=()
    for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
      say "installing system packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
  fi
elif [ "$mode" != demo ]; then
  echo "note: not root, so system packages are not installed; tests that need them will skip" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$mode" != demo ]; then
  say "installing crowdwatch and every extra into $VENV (torch is large: a few minutes the first time)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # export = torch + openvino + NNCF + onnx, and the triton client: every backend's tests run in CI.
  "$VENV/bin/python" -m pip install -q -e ".[test,export,triton]"
else
  say "installing crowdwatch with the OpenVINO runtime into $VENV (no PyTorch: about 0.64 GB)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[openvino]"
fi
if [ "$mode" = test ]; then
  # What `pip install 'crowdwatch[openvino]'` gives a CPU-only box: a copy of the package (not editable,
  # so its packaging is tested too) and no torch. pip reinstalls a local folder every time, so the copy
  # matches this checkout. About 70 s in a new venv (pip's cache holds the wheels .venv took), 15 s after.
  say "installing the OpenVINO-only variant into $OPENVINO_VENV (no torch; tests/system/test_without_torch.py)"
  started=$SECONDS
  [ -x "$OPENVINO_VENV/bin/python" ] || "$PYTHON" -m venv "$OPENVINO_VENV"
  "$OPENVINO_VENV/bin/python" -m pip install -q --upgrade pip
  "$OPENVINO_VENV/bin/python" -m pip install -q ".[openvino]"
  echo "$OPENVINO_VENV ready in $((SECONDS - started)) s"
fi

if [ "$mode" = test ]; then
  make_serve_venv
fi

if [ "$mode" = demo ]; then
  say "running the demo: crowdwatch demo (the synthetic clip through configs/demo.yaml) for ${DEMO_SECONDS:-30} s (live view on http://127.0.0.1:9110/, metrics on http://127.0.0.1:9108/metrics)"
  "$VENV/bin/crowdwatch" demo --duration "${DEMO_SECONDS:-30}"
  say "demo outputs (runs/demo): per-frame counts in CSV, latest annotated snapshot per camera"
  ls -l runs/demo runs/demo/* 2>/dev/null || true
elif [ "$mode" = test-date-shift ]; then
  # The wall clock 1923.5 days ahead (over five years, and half a day so the hour moves too) in UTC+14:
  # a test that assumes today's date, the local day or UTC == local time fails. Slow tests run once, in the
  # main run; so do tests/system, whose subprocesses and servers keep the real clock anyway, and the
  # folders that train, evaluate and convert networks (over two thirds of this rerun's time): their tests
  # read no clock and name no date, which tests/test_date_shift_scope.py checks.
  say "running the unit tests with the wall clock 1923.5 days ahead, TZ=Pacific/Kiritimati"
  CROWDWATCH_TEST_CLOCK_SHIFT_DAYS=1923.5 TZ=Pacific/Kiritimati exec \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" --ignore tests/system \
    --ignore tests/model --ignore tests/train --ignore tests/evaluation "$@"
else
  # The project's rules, enforced: a lint, format or type error fails the test command before pytest.
  say "checking lint and format (ruff) and types (mypy --strict on the package, scripts and benchmarks)"
  "$VENV/bin/ruff" check crowdwatch tests scripts benchmarks
  "$VENV/bin/ruff" format --check crowdwatch tests scripts benchmarks
  "$VENV/bin/mypy"
  # The training tests write checkpoints of a few hundred MB (peak ~0.9 GB in the temporary folder, freed
  # test by test): with less than 2 GB free the suite would fail in a hundred places with ENOSPC, so say so.
  tmp_dir=${TMPDIR:-/tmp}
  free_mb=$(df -Pm "$tmp_dir" 2>/dev/null | awk 'NR == 2 {print $4}' || true)
  if [ -n "$free_mb" ] && [ "$free_mb" -lt 2048 ]; then
    echo "error: only ${free_mb} MB free in $tmp_dir; the test suite needs about 2 GB of temporary space" >&2
    df -h "$tmp_dir" >&2
    exit 1
  fi
  say "running the test suite${free_mb:+ (${free_mb} MB free in $tmp_dir)}"
  # pytest exits 5 when it collects nothing: that is a failure here too.
  if [ $# -gt 0 ]; then
    exec "$VENV/bin/python" -m pytest -q "$@"
  fi
  # The browser tests (tests/web) run in a pytest process of their own: after the ~940 tests before them
  # in one process, that process has been seen to die with SIGSEGV as the live page's module fixture
  # starts (no Python traceback survives; each half passes on its own). Both runs must pass.
  "$VENV/bin/python" -m pytest -q --ignore tests/web
  exec "$VENV/bin/python" -m pytest -q tests/web
fi
