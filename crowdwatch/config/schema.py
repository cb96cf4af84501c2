"""The site configuration's schema: the typed, validated sections of one YAML file.

``Config`` holds ``site``, ``model``, ``defaults`` (per-camera settings every camera inherits),
``cameras`` (each with its ``zones``), ``output``, ``metrics``, ``mqtt`` (its own module) and ``systemd``.
Every section rejects unknown keys; relative paths resolve against the config file's folder (given as
the ``base_dir`` validation context by :func:`crowdwatch.config.load_config`). One cohesive schema,
kept in one module (under 300 lines) so that the whole file format reads top to bottom.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crowdwatch.choices import DEFAULT_MAX_PIXELS, BackendName, PrecisionName
from crowdwatch.config.analytics import ExcludeRegion, HeatmapSettings, SmoothingSettings
from crowdwatch.config.base import Polygon, Section, resolve_path
from crowdwatch.config.flow import LineConfig, TrackingSettings
from crowdwatch.config.mqtt import MqttSettings, default_site
from crowdwatch.config.triton import TritonTls
from crowdwatch.config.web import WebSettings
from crowdwatch.poolurl import DEFAULT_TRITON_MODEL, parse_grpc_url
from crowdwatch.secrets import SecretUrl, SecretValues
from crowdwatch.weightsfile import DEFAULT_NAME, EXPORTED_SUFFIXES, PACKAGED_WEIGHTS

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="lower-case letters, digits, '-' and '_'")]
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
#: clearer messages than a regex for fields with a pattern, by field name
PATTERN_HELP = {
    "id": "expected a slug: 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit",
    "device": "expected auto, cpu, cuda or cuda:N",
    "site": "expected a slug: 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit",
}


_BACKEND_RULE = (
    "torch runs a .pt checkpoint; openvino a checkpoint or an exported .xml/.onnx (crowdwatch export)"
)
_TRITON_KEYS = ("url", "tls")  # the pool's keys: given only with backend triton


class ModelSettings(Section):
    weights: Path | None = Field(
        None, strict=False, description="P2PNet weights file; null or default = the packaged weights"
    )
    backend: BackendName = Field(
        "torch", description="openvino: weights = a checkpoint or an exported .xml; triton: url"
    )
    precision: PrecisionName = Field("auto", description="inference precision")
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
    threads: int | None = Field(
        None,
        ge=1,
        le=512,
        description="CPU inference threads (torch or OpenVINO); null = the runtime's default",
    )
    tile_pixels: int | None = Field(
        None,
        ge=512 * 512,
        le=100_000_000,
        description="most input pixels per forward pass (bounds the model's memory; larger frames are "
        "counted in overlapping tiles); null = 4,194,304 (2048x2048)",
    )

    # backend triton: the shared inference pool (crowdwatch/config/triton.py, docs/triton.md)
    url: str | None = Field(None, description="triton: grpc://HOST:PORT (grpcs:// for TLS)")
    name: str = Field(DEFAULT_TRITON_MODEL, pattern=r"^[A-Za-z0-9._-]{1,64}$", description="triton model")
    timeout_s: float = Field(2.0, gt=0, le=60, description="triton: deadline of one batch's request")
    retry_initial_s: float = Field(1.0, gt=0, le=3600, description="triton: first wait after a failure")
    retry_max_s: float = Field(30.0, gt=0, le=3600, description="triton: cap of the doubling wait")
    tls: TritonTls | None = Field(None, description="triton: CA and client certificate for grpcs://")

    _abs_weights = field_validator("weights")(resolve_path)

    @field_validator("url")
    @classmethod
    def _grpc_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_grpc_url(value)
        return value

    @field_validator("weights", mode="before")
    @classmethod
    def _default_is_packaged(cls, value: object) -> object:
        return PACKAGED_WEIGHTS if value == DEFAULT_NAME else value

    @model_validator(mode="after")
    def _weights_fit_backend(self) -> ModelSettings:
        if self.backend == "triton":
            if self.url is None:
                raise ValueError("backend triton needs url: the pool's grpc://HOST:PORT")
            if self.weights is not None:
                raise ValueError("backend triton runs the pool's model: leave weights out (it has none here)")
            if self.tls is not None and not self.url.startswith("grpcs://"):
                raise ValueError("tls is for a grpcs:// url")
            return self
        given = [key for key in _TRITON_KEYS if getattr(self, key) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with backend triton")
        exported = self.weights is not None and self.weights.suffix.lower() in EXPORTED_SUFFIXES
        if exported and self.backend != "openvino":
            raise ValueError(f"backend {self.backend} cannot run weights {self.weights}: {_BACKEND_RULE}")
        return self


class ReconnectSettings(Section):
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


class CameraSettings(Section):
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
    smoothing: SmoothingSettings = Field(default_factory=SmoothingSettings)
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="a camera whose frames are larger is refused (down, retried)"
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)


class AlertSettings(Section):
    high: float = Field(gt=0, description="raise the alert when the zone count reaches this")
    low: float = Field(ge=0, description="clear it when the count falls to this or below")
    for_s: float = Field(
        0.0, ge=0, le=86_400, description="the (smoothed) count must stay past high/low this long (seconds)"
    )

    # A field check on `low` (not a model check, which pydantic skips when any field failed): so a bad
    # pair is reported beside every other error of the section, e.g. a negative for_s.
    @field_validator("low")
    @classmethod
    def _high_above_low(cls, low: float, info: ValidationInfo) -> float:
        high = info.data.get("high")
        if high is not None and not high > low:
            raise ValueError(f"high ({high}) must be greater than low ({low})")
        return low


class ZoneConfig(Section):
    id: Slug
    polygon: Polygon = Field(description="[[x, y], ...] in source-frame pixels")
    alert: AlertSettings | None = None
    dwell: bool = Field(False, description="measure how long tracked heads stay (needs tracking)")
    dwell_alert_s: float | None = Field(
        None, gt=0, le=86_400, description="count the heads inside for at least this long (implies dwell)"
    )


class CameraConfig(CameraSettings):
    """One camera's effective config: its own keys merged over ``defaults``."""

    id: Slug
    url: int | SecretUrl = Field(description="rtsp://..., a video file path, or a device index (int)")
    zones: list[ZoneConfig] = Field(default_factory=list)
    exclude: list[ExcludeRegion] = Field(default_factory=list, description="areas never counted")
    lines: list[LineConfig] = Field(default_factory=list, description="counting lines (crossings)")
    pixels_per_metre: float | None = Field(
        None, gt=0, le=10_000, description="ground scale for heatmap legends in people/m^2; null = per px"
    )

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[LineConfig]) -> list[LineConfig]:
        ids = [line.id for line in lines]
        if len(set(ids)) != len(ids):
            raise ValueError(f"line ids must be unique per camera, but got {ids}")
        return lines

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
        stream = url if isinstance(url, SecretUrl) else SecretUrl(url, secrets)
        text = stream.reveal()
        if not text or text.strip() != text:
            raise ValueError("URL is empty or has leading or trailing spaces")
        if stream.scheme:
            if stream.scheme not in STREAM_SCHEMES:
                raise ValueError(
                    f"unsupported scheme {stream.scheme!r}: expected rtsp://, a file path or a device index"
                )
            host = text.split("://", 1)[1].rsplit("@", 1)[-1]
            if not host or host[0] in "/:?#":
                raise ValueError(f"{stream.scheme}:// URL has no host")
            return stream
        return SecretUrl(str(resolve_path(Path(text), info)), secrets)

    @property
    def kind(self) -> Literal["stream", "file", "device"]:
        """``stream`` (rtsp://, http://...), ``file`` (a video file) or ``device`` (an index)."""
        if isinstance(self.url, int):
            return "device"
        return "stream" if self.url.scheme else "file"

    @property
    def display_url(self) -> str:
        return str(self.url)


class CsvSettings(Section):
    enabled: bool = True
    flush_interval_s: float = Field(1.0, gt=0, le=60, description="longest a row stays unwritten")


class SnapshotSettings(Section):
    enabled: bool = True
    interval_s: float = Field(5.0, gt=0, le=86_400, description="write the latest overlay this often")


class VideoSettings(Section):
    enabled: bool = Field(False, description="write an annotated video file per camera")
    fps: float | None = Field(
        None,
        gt=0,
        le=240,
        description="the frame rate written into the video file (its playback speed); null = the camera's "
        "sampling rate (fps), or the stream's declared rate for a camera with fps: null",
    )


class OutputSettings(Section):
    dir: Path = Field(
        Path("output"),
        strict=False,
        validate_default=True,
        description="folder for CSV, snapshots and videos; relative = next to the config file",
    )
    csv: CsvSettings = Field(default_factory=CsvSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    heatmaps: HeatmapSettings = Field(default_factory=HeatmapSettings)

    _abs_dir = field_validator("dir")(resolve_path)


class MetricsSettings(Section):
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


class SystemdSettings(Section):
    watchdog_progress_s: float = Field(
        60.0, gt=0, le=3600, description="WATCHDOG=1 is sent only if a frame was processed this recently"
    )


class Config(Section):
    site: Slug = Field(
        default_factory=default_site, description="this box's name on MQTT; default: host name"
    )
    model: ModelSettings = Field(default_factory=ModelSettings)
    defaults: CameraSettings = Field(default_factory=CameraSettings)
    cameras: list[CameraConfig] = Field(min_length=1)
    # validated from {} (not OutputSettings()) so that the default dir resolves against the config folder
    output: OutputSettings = Field(default_factory=dict, validate_default=True)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    web: WebSettings = Field(default_factory=WebSettings)  # config/web.py
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
                for nested in ("reconnect", "tracking"):
                    if isinstance(camera.get(nested), dict):
                        merged[nested] = {**defaults[nested], **camera[nested]}
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
