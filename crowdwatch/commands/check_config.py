"""``crowdwatch check-config FILE``: validate a site config file without starting anything.

Exit 0 when valid, printing a summary of the cameras with masked URLs; exit 2 when invalid, printing
each error with its key path on stderr. The weights file (``model.weights``, or the packaged weights) must
exist and be what ``model.backend`` runs: checked from its name and first bytes, without loading the
network. So must the backend's runtime be installed (torch for ``torch``, OpenVINO for ``openvino``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from crowdwatch.config import Config, ConfigError, load_config
from crowdwatch.secrets import SecretUrl, mask_url
from crowdwatch.weightsfile import PACKAGED_WEIGHTS, weights_problem


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch check-config",
        description="Validate a crowdwatch config file: print each error with its key path (exit 2), "
        "or a summary of the cameras with masked URLs (exit 0).",
    )
    parser.add_argument("config", type=Path, help="YAML config file")
    return parser


def _summary(config: Config) -> list[str]:
    lines = [f"{config.source}: OK, {len(config.cameras)} camera(s)"]
    for camera in config.cameras:
        rate = "every frame" if camera.fps is None else f"{camera.fps:g} fps"
        zones = f"{len(camera.zones)} zone(s)"
        lines.append(f"  {camera.id}: {camera.kind} {mask_url(camera.display_url)} ({rate}, {zones})")
        if (
            isinstance(camera.url, SecretUrl)
            and camera.kind == "file"
            and not Path(camera.url.reveal()).is_file()
        ):
            lines.append(f"    warning: {camera.id}: file does not exist (yet)")
    if config.model.backend == "triton":
        lines.append(f"  model: {config.model.name} on the inference pool {config.model.url} (triton)")
    else:
        lines.append(f"  model: {config.model.weights or PACKAGED_WEIGHTS} ({config.model.backend})")
    lines.append(f"  output: {config.output.dir}")
    if config.metrics.enabled:
        lines.append(f"  metrics: http://{config.metrics.address}:{config.metrics.port}/metrics")
    if config.web.enabled:
        token = ", token required" if config.web.token is not None else ""
        lines.append(f"  live view: http://{config.web.address}:{config.web.port}/{token}")
    mqtt = config.mqtt
    if mqtt.enabled:
        scheme = "mqtts" if mqtt.tls.enabled else "mqtt"
        user = f", user {mqtt.username}" if mqtt.username else ""
        lines.append(
            f"  mqtt: {scheme}://{mqtt.host}:{mqtt.effective_port}{user}, "
            f"topics {mqtt.topic_prefix}/{config.site}/..."
        )
    return lines


#: backend -> (the package it runs on, the extra that installs it)
RUNTIMES = {
    "torch": ("torch", "torch"),
    "openvino": ("openvino", "openvino"),
    "triton": ("tritonclient.grpc", "triton"),
}


def runtime_problem(backend: str) -> str | None:
    """Why ``backend`` cannot run on this install (its runtime package is missing); None when it can."""
    package, extra = RUNTIMES[backend]
    try:
        found = importlib.util.find_spec(package) is not None
    except ImportError:  # an import hook that refuses the package
        found = False
    if not found:
        other = " (or model.backend: openvino)" if backend == "torch" else ""
        return (
            f"backend {backend} needs {package}, which is not installed: pip install 'crowdwatch[{extra}]'"
            + other
        )
    return None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"crowdwatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    runtime = runtime_problem(config.model.backend)
    if runtime is not None:
        print(f"crowdwatch: error: {config.source}: invalid configuration (1 error):", file=sys.stderr)
        print(f"  model.backend: {runtime}", file=sys.stderr)
        return 2
    weights = config.model.weights or PACKAGED_WEIGHTS
    # backend triton has no weights file here: the pool's model is checked when the box connects
    problem = None if config.model.backend == "triton" else weights_problem(weights, config.model.backend)
    if problem is not None:
        what = "model.weights" if config.model.weights else "model.weights (null: the packaged weights)"
        print(
            f"crowdwatch: error: {config.source}: invalid configuration (1 error):\n"
            f"  {what}: {weights}: {problem}",
            file=sys.stderr,
        )
        return 2
    print("\n".join(_summary(config)))
    return 0
