"""What the pipeline publishes to: the sinks the config's ``output``, ``mqtt`` and ``web`` sections ask
for, the readers' events (metrics, and camera status to MQTT) and the flow metrics.

:func:`make_sinks` builds the sinks in the order the sink runner calls them (CSV first: the record of
what was counted; the live view last), :func:`open_sinks` opens them on an exit stack so that each is
closed when the run ends, whatever happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry

from crowdwatch.config import Config
from crowdwatch.errors import CrowdwatchError
from crowdwatch.flow import CameraFlow
from crowdwatch.lines import CountingLine
from crowdwatch.reload import flow_series, site_layout
from crowdwatch.sinks.base import Sink
from crowdwatch.sinks.csv import CsvSink
from crowdwatch.sinks.heatmap import HeatmapSink
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.sinks.overlay import LineSpec, OverlaySink
from crowdwatch.telemetry.flow_metrics import FlowMetrics
from crowdwatch.telemetry.metrics import PipelineMetrics
from crowdwatch.telemetry.mqtt_metrics import MqttMetrics
from crowdwatch.web.live import LiveView
from crowdwatch.web.sink import LiveViewSink
from crowdwatch.zones import CameraZones

__all__ = ["ReaderEvents", "SiteSink", "flow_metrics", "make_sinks", "open_sinks"]

#: The sinks a site config can ask for.
SiteSink = CsvSink | OverlaySink | HeatmapSink | MqttSink | LiveViewSink


def open_sinks(stack: contextlib.ExitStack, sinks: list[SiteSink], config: Config) -> list[Sink]:
    """Open ``sinks`` in order, each closed when ``stack`` unwinds; a folder that cannot be written is a
    :class:`CrowdwatchError` naming ``output.dir``."""
    opened: list[Sink] = []
    try:
        for sink in sinks:
            stack.enter_context(sink)  # opened now, closed when the stack unwinds
            opened.append(sink)
        return opened
    except OSError as exc:
        where = exc.filename or config.output.dir
        reason = exc.strerror or exc
        raise CrowdwatchError(f"output: cannot write to {where}: {reason} (output.dir)") from None


def make_sinks(
    config: Config,
    *,
    zones: Mapping[str, CameraZones],
    flows: Mapping[str, CameraFlow],
    registry: CollectorRegistry,
    live: LiveView | None,
    video_fps: Callable[[str], float],
) -> tuple[list[SiteSink], MqttSink | None]:
    """The sinks ``config`` asks for, unopened, and the MQTT sink among them (None when MQTT is off)."""
    out = config.output
    sinks: list[SiteSink] = []
    if out.csv.enabled:
        zone_ids = [zone.id for cam in config.cameras for zone in cam.zones]
        line_ids = [line.id for cam in config.cameras for line in cam.lines]
        sinks.append(CsvSink(out.dir, zone_ids, line_ids=line_ids, flush_interval_s=out.csv.flush_interval_s))
    if out.snapshots.enabled or out.video.enabled:
        sinks.append(
            OverlaySink(
                out.dir / "snapshots",
                interval_s=out.snapshots.interval_s,
                snapshots=out.snapshots.enabled,
                video_directory=out.dir / "video" if out.video.enabled else None,
                video_fps=video_fps,
                zones={camera: [(zone.id, zone.polygon) for zone in z.zones] for camera, z in zones.items()},
                exclusions={camera: z.exclusions for camera, z in zones.items()},
                lines={camera: [_line(c.line) for c in f.counters] for camera, f in flows.items()},
            )
        )
    if out.heatmaps.enabled:
        maps = out.heatmaps
        sinks.append(
            HeatmapSink(
                out.dir / "heatmaps",
                window_s=maps.window_s,
                slot_s=maps.slot_s,
                cell_px=maps.cell_px,
                interval_s=maps.interval_s,
                npy=maps.npy,
                pixels_per_metre={cam.id: cam.pixels_per_metre for cam in config.cameras},
                exclusions={camera: z.exclusions for camera, z in zones.items()},
            )
        )
    mqtt = None
    if config.mqtt.enabled:
        metrics = MqttMetrics(registry)  # registered beside the pipeline's (only when MQTT is on)
        mqtt = MqttSink(config.mqtt, config.site, layout=site_layout(config), events=metrics)
        metrics.watch_outbox(mqtt.outbox_length)
        sinks.append(mqtt)
    if live is not None:
        sinks.append(live.sink)
    return sinks, mqtt


def _line(line: CountingLine) -> LineSpec:
    """A counting line as the overlay draws it: id, ends, and the names of its two directions."""
    return (line.id, line.a, line.b, line.in_name, line.out_name)


class ReaderEvents:
    """The readers' events: all to the metrics, and each camera going up or down also to the MQTT sink
    (its ``<camera>/status``)."""

    def __init__(self, metrics: PipelineMetrics, mqtt: MqttSink | None) -> None:
        self.metrics, self.mqtt = metrics, mqtt

    def frame_read(self, camera: str) -> None:
        self.metrics.frame_read(camera)

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        self.metrics.frame_dropped(camera, reason, n)

    def reconnect(self, camera: str) -> None:
        self.metrics.reconnect(camera)

    def camera_up(self, camera: str, up: bool) -> None:
        self.metrics.camera_up(camera, up)
        if self.mqtt is not None:
            self.mqtt.camera_status(camera, up)

    def frame_captured(self, camera: str, captured_at: float) -> None:
        self.metrics.frame_captured(camera, captured_at)


def flow_metrics(registry: CollectorRegistry, config: Config) -> FlowMetrics:
    """Crossing counters, dwell histograms and lingering gauges for the cameras' lines and zones."""
    series = {cam.id: flow_series(cam) for cam in config.cameras}
    return FlowMetrics(
        registry,
        {camera: lines for camera, (lines, _, _) in series.items()},
        {camera: dwell for camera, (_, dwell, _) in series.items()},
        {camera: lingering for camera, (_, _, lingering) in series.items()},
    )
