"""The site configuration: one YAML file -> one validated, typed :class:`Config`.

``load_config(path)`` reads the YAML (syntax errors keep their line and column, duplicate keys are
errors), substitutes ``${env:...}``/``${credential:...}`` references (see :mod:`crowdwatch.secrets`),
merges the global ``defaults`` into every camera (a camera may override any of them, and single keys
of ``reconnect``), validates everything, and resolves relative paths against the config file's folder.
Every problem is reported at once, each with its key path (``cameras[1].zones[0].polygon``); error
texts are built from pydantic's ``loc``/``msg`` only and scrubbed, so a resolved secret never shows.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crowdwatch.errors import UsageError
from crowdwatch.secrets import SecretReferenceError, SecretUrl, SecretValues, mask_url, substitute

__all__ = [
    "CameraConfig",
    "CameraSettings",
    "Config",
    "ConfigError",
    "check_config_command",
    "load_config",
]

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="lower-case letters, digits, '-' and '_'")]
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_PATTERN_HELP = {
    "id": "expected a slug: 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit",
    "device": "expected auto, cpu, cuda or cuda:N",
}


class ConfigError(UsageError):
    """An invalid config file. ``errors`` lists ``(key_path, message)``; ``path`` is the file."""

    def __init__(self, path: str | Path, errors: Sequence[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.errors = list(errors)
        lines = "\n".join(f"  {key or '<top level>'}: {message}" for key, message in self.errors)
        noun = "error" if len(self.errors) == 1 else "errors"
        super().__init__(f"{self.path}: invalid configuration ({len(self.errors)} {noun}):\n{lines}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    base = (info.context or {}).get("base_dir")
    if value is None or value.is_absolute() or base is None:
        return value
    return (Path(base) / value).resolve()


class ModelSettings(_Section):
    weights: Path | None = Field(None, description="P2PNet weights file; null = the packaged weights")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="inference precision")
    device: str = Field("auto", pattern=_DEVICE.pattern, description="auto, cpu, cuda or cuda:N")
    threshold: float | None = Field(
        None, gt=0, lt=1, description="point confidence threshold; null = model's"
    )
    longest_side: int | None = Field(
        None, ge=16, le=8192, description="resize frames so the longest side fits"
    )
    max_batch: int = Field(4, ge=1, le=256, description="most frames per inference batch")
    max_wait_ms: float = Field(
        50.0, ge=0, le=10_000, description="longest a frame waits for its batch to fill"
    )
    threads: int | None = Field(None, ge=1, le=512, description="torch CPU threads; null = torch's default")

    _abs_weights = field_validator("weights")(_resolve_path)


class ReconnectSettings(_Section):
    initial_s: float = Field(1.0, gt=0, le=3600, description="first wait before reconnecting")
    max_s: float = Field(30.0, gt=0, le=3600, description="cap of the exponential backoff")
    jitter: float = Field(
        0.2, ge=0, le=1, description="each wait is shortened by up to this fraction, at random"
    )

    @model_validator(mode="after")
    def _cap_above_initial(self) -> ReconnectSettings:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        return self


class CameraSettings(_Section):
    """Per-camera settings: given once under ``defaults``, overridable in each camera."""

    fps: float | None = Field(
        5.0, gt=0, le=240, description="frames per second processed (sampling rate); null = every frame"
    )
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="longest a connection attempt may take")
    read_timeout_s: float = Field(5.0, gt=0, le=120, description="longest one read may block")
    stale_after_s: float = Field(
        10.0, gt=0, le=3600, description="camera is down when no frame came for this long"
    )
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTP transport for rtsp:// cameras")
    loop: bool = Field(False, description="video files only: start again at the end instead of stopping")


class AlertSettings(_Section):
    high: float = Field(gt=0, description="raise the alert when the zone count reaches this")
    low: float = Field(ge=0, description="clear it when the count falls to this or below")

    @model_validator(mode="after")
    def _high_above_low(self) -> AlertSettings:
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        return self


Point = Annotated[list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=2)]


class ZoneConfig(_Section):
    id: Slug
    polygon: list[Point] = Field(min_length=3, description="[[x, y], ...] in source-frame pixels")
    alert: AlertSettings | None = None

    @field_validator("polygon")
    @classmethod
    def _has_area(cls, polygon: list[list[float]]) -> list[list[float]]:
        area2 = sum(
            x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True)
        )
        if math.isclose(area2, 0.0, abs_tol=1e-9):
            raise ValueError("polygon has zero area (points on one line?)")
        return polygon


class CameraConfig(CameraSettings):
    """One camera's effective config: its own keys merged over ``defaults``."""

    id: Slug
    url: int | SecretUrl = Field(description="rtsp://..., a video file path, or a device index (int)")
    zones: list[ZoneConfig] = Field(default_factory=list)

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, url: Any, info: ValidationInfo) -> int | SecretUrl:
        if isinstance(url, bool) or not isinstance(url, (int, str, SecretUrl)):
            raise ValueError("expected an rtsp:// URL, a video file path or a device index (int)")
        if isinstance(url, str) and url.isascii() and url.isdigit():
            url = int(url)  # "0", e.g. from ${env:CAMERA_INDEX}: a device index, not a file named 0
        if isinstance(url, int):
            if not 0 <= url <= 255:
                raise ValueError("device index must be between 0 and 255")
            return url
        secrets = (info.context or {}).get("secrets")
        url = url if isinstance(url, SecretUrl) else SecretUrl(url, secrets)
        text = url.reveal()
        if not text or text.strip() != text:
            raise ValueError("URL is empty or has leading or trailing spaces")
        if url.scheme:
            if url.scheme not in STREAM_SCHEMES:
                raise ValueError(
                    f"unsupported scheme {url.scheme!r}: expected rtsp://, a file path or a device index"
                )
            host = text.split("://", 1)[1].rsplit("@", 1)[-1]
            if not host or host[0] in "/:?#":
                raise ValueError(f"{url.scheme}:// URL has no host")
            return url
        return SecretUrl(str(_resolve_path(Path(text), info)), secrets)

    @property
    def kind(self) -> Literal["stream", "file", "device"]:
        """``stream`` (rtsp://, http://...), ``file`` (a video file) or ``device`` (an index)."""
        if isinstance(self.url, int):
            return "device"
        return "stream" if self.url.scheme else "file"

    @property
    def display_url(self) -> str:
        return str(self.url)


class CsvSettings(_Section):
    enabled: bool = True
    flush_interval_s: float = Field(1.0, gt=0, le=60, description="longest a row stays unwritten")


class SnapshotSettings(_Section):
    enabled: bool = True
    interval_s: float = Field(5.0, gt=0, le=86_400, description="write the latest overlay this often")


class VideoSettings(_Section):
    enabled: bool = Field(False, description="write an annotated video file per camera")


class OutputSettings(_Section):
    dir: Path = Field(
        Path("output"),
        validate_default=True,
        description="folder for CSV, snapshots and videos; relative = next to the config file",
    )
    csv: CsvSettings = Field(default_factory=CsvSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)

    _abs_dir = field_validator("dir")(_resolve_path)


class MetricsSettings(_Section):
    enabled: bool = True
    address: str = Field("127.0.0.1", description="IP address the /metrics and /healthz server binds")
    port: int = Field(9108, ge=0, le=65535, description="0 = any free port")

    @field_validator("address")
    @classmethod
    def _ip_address(cls, address: str) -> str:
        if address == "localhost":
            return address
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError("expected an IP address such as 127.0.0.1, 0.0.0.0 or ::1") from None
        return address


class SystemdSettings(_Section):
    watchdog_progress_s: float = Field(
        60.0, gt=0, le=3600, description="WATCHDOG=1 is sent only if a frame was processed this recently"
    )


class Config(_Section):
    model: ModelSettings = Field(default_factory=ModelSettings)
    defaults: CameraSettings = Field(default_factory=CameraSettings)
    cameras: list[CameraConfig] = Field(min_length=1)
    output: OutputSettings = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    systemd: SystemdSettings = Field(default_factory=SystemdSettings)

    _source: Path | None = PrivateAttr(None)
    _secrets: SecretValues = PrivateAttr(default_factory=SecretValues)

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """Give each camera the ``defaults`` it does not override (only if ``defaults`` is valid:
        a bad default is reported once, at ``defaults.*``, not once per camera)."""
        if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
            return data
        try:
            defaults = CameraSettings.model_validate(data.get("defaults") or {}).model_dump()
        except ValidationError:
            return data
        cameras = []
        for camera in data["cameras"]:
            if isinstance(camera, dict):
                merged = {**defaults, **camera}
                if isinstance(camera.get("reconnect"), dict):
                    merged["reconnect"] = {**defaults["reconnect"], **camera["reconnect"]}
                camera = merged
            cameras.append(camera)
        return {**data, "cameras": cameras}

    @property
    def source(self) -> Path | None:
        """The file this config was loaded from."""
        return self._source

    @property
    def secrets(self) -> SecretValues:
        """The substituted secret values, for :class:`crowdwatch.secrets.RedactingFilter`."""
        return self._secrets

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        raise KeyError(camera_id)


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [("", f"cannot read file ({exc.__class__.__name__})")]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [("", f"YAML syntax error at {where}{problem}")]) from None


def _key_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _substitute_all(
    node: Any, loc: tuple[str | int, ...], secrets: SecretValues, errors: list[tuple[str, str]]
) -> Any:
    if isinstance(node, str):
        try:
            return substitute(node, secrets)
        except SecretReferenceError as exc:
            errors.append((_key_path(loc), str(exc)))
            return node
    if isinstance(node, dict):
        return {k: _substitute_all(v, (*loc, str(k)), secrets, errors) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_all(v, (*loc, i), secrets, errors) for i, v in enumerate(node)]
    return node


def _pydantic_errors(exc: ValidationError, secrets: SecretValues) -> list[tuple[str, str]]:
    """(key_path, message) from loc/msg only: pydantic's own text would echo the input value."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (not allowed here; check the spelling)"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = "expected a mapping (key: value pairs)"
        elif err["type"] == "string_pattern_mismatch":
            message = _PATTERN_HELP.get(str(loc[-1]) if loc else "", message)
        out.append((_key_path(loc), secrets.scrub(message)))
    return list(dict.fromkeys(out))


def _ids(items: Any) -> list[tuple[int, str]]:
    if not isinstance(items, list):
        return []
    return [
        (i, item["id"])
        for i, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def _duplicate_ids(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Camera ids unique in the file, zone ids unique per camera (checked on the raw data, so they are
    reported together with every other error)."""
    errors = []
    seen: dict[str, int] = {}
    for i, camera_id in _ids(data.get("cameras")):
        if camera_id in seen:
            errors.append(
                (f"cameras[{i}].id", f"duplicate camera id {camera_id!r} (also cameras[{seen[camera_id]}])")
            )
        seen.setdefault(camera_id, i)
        zones_seen: dict[str, int] = {}
        for j, zone_id in _ids(data["cameras"][i].get("zones")):
            if zone_id in zones_seen:
                errors.append(
                    (f"cameras[{i}].zones[{j}].id", f"duplicate zone id {zone_id!r} in camera {camera_id!r}")
                )
            zones_seen.setdefault(zone_id, j)
    return errors


def load_config(path: str | Path) -> Config:
    """Load, substitute secrets, merge defaults and validate.

    Raises :class:`ConfigError` listing every problem, each with its key path.
    """
    path = Path(path)
    raw = _read_yaml(path)
    if raw is None:
        raise ConfigError(
            path, [("", "the file is empty: expected a mapping with at least a 'cameras' list")]
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            path, [("", f"expected a mapping of sections at the top level, got a {type(raw).__name__}")]
        )
    secrets = SecretValues()
    errors: list[tuple[str, str]] = []
    data = _substitute_all(raw, (), secrets, errors)
    config = None
    try:
        config = Config.model_validate(data, context={"base_dir": path.resolve().parent, "secrets": secrets})
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc, secrets))
    errors.extend(_duplicate_ids(data))
    if errors:
        raise ConfigError(path, errors)
    assert config is not None
    config._source = path
    config._secrets = secrets
    return config


# --------------------------------------------------------------------------- check-config


def _summary(config: Config) -> list[str]:
    lines = [f"{config.source}: OK, {len(config.cameras)} camera(s)"]
    for camera in config.cameras:
        rate = "every frame" if camera.fps is None else f"{camera.fps:g} fps"
        zones = f"{len(camera.zones)} zone(s)"
        lines.append(f"  {camera.id}: {camera.kind} {mask_url(camera.display_url)} ({rate}, {zones})")
        if camera.kind == "file" and not Path(camera.url.reveal()).is_file():  # type: ignore[union-attr]
            lines.append(f"    warning: {camera.id}: file does not exist (yet)")
    lines.append(f"  output: {config.output.dir}")
    if config.metrics.enabled:
        lines.append(f"  metrics: http://{config.metrics.address}:{config.metrics.port}/metrics")
    return lines


def check_config_command(argv: list[str]) -> int:
    """``crowdwatch check-config FILE``: exit 0 when valid (prints a summary with masked URLs), 2 when
    invalid (prints each error with its key path on stderr)."""
    parser = argparse.ArgumentParser(
        prog="crowdwatch check-config",
        description="Validate a crowdwatch config file: print each error with its key path (exit 2), "
        "or a summary of the cameras with masked URLs (exit 0).",
    )
    parser.add_argument("config", type=Path, help="YAML config file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"crowdwatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(_summary(config)))
    return 0


if __name__ == "__main__":  # until the CLI wires it: python -m crowdwatch.config FILE
    sys.exit(check_config_command(sys.argv[1:]))
