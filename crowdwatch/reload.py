"""Changing a running site without a restart: the config file read again on SIGHUP, and applied in order.

:class:`Reloader` is what the pipeline calls when it has received SIGHUP (``systemctl reload``). It
loads and validates the file, sorts the differences (:func:`crowdwatch.config.reload.plan_reload`),
refuses a file that is invalid or changes a key that needs a restart (the old config keeps running,
untouched), builds everything the new config needs before touching anything, and then applies it:

1. The readers leaving (removed cameras, and the old reader of each restarted camera) are detached
   from the metrics and MQTT: whatever they still say as they stop is not heard.
2. The worker, between two batches, finishes every frame it has already taken under the old config,
   then swaps its cameras and zones (:meth:`crowdwatch.inference.worker.Worker.apply`). On its thread,
   before the first frame of the new config: the removed cameras' series leave /metrics, new zones'
   series appear, and the sinks' change is queued behind the last result of the old config
   (:meth:`crowdwatch.sinks.runner.SinkRunner.run_in_order`).
3. On the sink thread, in that order: the CSV sink changes its columns (a new file when they differ),
   the overlay and heatmap sinks their zones and exclusions (a removed camera's video file is closed
   and its heatmap written one last time), the MQTT sink its layout (a removed camera ``offline`` and
   its retained topics cleared; a new camera and alert zone announced).
4. The leaving readers are stopped; then the new ones start (a restarted camera's new reader only
   after its old one let go).

Cameras that did not change are never touched: their readers keep reading, and their frames go on
through the same worker and sinks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from crowdwatch.capture.base import ReaderEvents
from crowdwatch.capture.reader import CameraReader, stop_readers
from crowdwatch.config import CameraConfig, Config, ConfigError, load_config
from crowdwatch.config.reload import ReloadPlan, plan_reload
from crowdwatch.errors import CrowdwatchError
from crowdwatch.flow import CameraFlow, counting_lines, flow_from_config
from crowdwatch.inference.worker import SiteChange, Worker
from crowdwatch.sinks.base import Sink
from crowdwatch.sinks.csv import CsvSink
from crowdwatch.sinks.heatmap import HeatmapSink
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.sinks.mqtt_messages import CameraLayout, SiteLayout
from crowdwatch.sinks.overlay import OverlaySink
from crowdwatch.sinks.runner import SinkRunner
from crowdwatch.telemetry.metrics import PipelineMetrics
from crowdwatch.telemetry.reload import ReloadMetrics
from crowdwatch.zones import CameraZones, zones_from_config

__all__ = ["DetachableEvents", "Reloader", "camera_zones", "site_layout"]

logger = logging.getLogger(__name__)

#: Longest a reload waits for the sinks to take their change (the worker's is always waited for: it
#: only waits for the batch in flight). A slow disk delays it; it still runs in order after that.
SINKS_WAIT_S = 30.0
#: Longest a reload waits for a leaving reader (one blocked in the capture library stops on its own).
READER_STOP_S = 3.0


def camera_zones(camera: CameraConfig) -> CameraZones:
    """A camera's zones, exclusions and smoothing, fresh (no state yet)."""
    return zones_from_config(
        camera.zones,
        exclusions=[region.polygon for region in camera.exclude],
        window_s=camera.smoothing.window_s,
    )


def site_layout(config: Config) -> SiteLayout:
    """The cameras and zones as the MQTT sink sees them."""
    return SiteLayout(
        tuple(
            CameraLayout(
                cam.id,
                tuple(zone.id for zone in cam.zones),
                tuple(zone.id for zone in cam.zones if zone.alert is not None),
                tuple(line.id for line in cam.lines),
            )
            for cam in config.cameras
        )
    )


def flow_series(
    camera: CameraConfig,
) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """A camera's flow metric series: its lines (id, in name, out name), the zones whose stays are
    measured, and the zones with a ``dwell_alert_s``."""
    return (
        [(line.id, line.in_name, line.out_name) for line in camera.lines],
        [zone.id for zone in camera.zones if zone.dwell or zone.dwell_alert_s is not None],
        [zone.id for zone in camera.zones if zone.dwell_alert_s is not None],
    )


class DetachableEvents:
    """One reader's events, passed on until :meth:`detach` (a reader leaving on a reload may still
    report a last frame or its own going down while it stops: nobody should hear it)."""

    def __init__(self, inner: ReaderEvents) -> None:
        self._inner = inner
        self._attached = True

    def detach(self) -> None:
        self._attached = False

    def frame_read(self, camera: str) -> None:
        if self._attached:
            self._inner.frame_read(camera)

    def frame_dropped(self, camera: str, reason: str, n: int = 1) -> None:
        if self._attached:
            self._inner.frame_dropped(camera, reason, n)

    def reconnect(self, camera: str) -> None:
        if self._attached:
            self._inner.reconnect(camera)

    def camera_up(self, camera: str, up: bool) -> None:
        if self._attached:
            self._inner.camera_up(camera, up)

    def frame_captured(self, camera: str, captured_at: float) -> None:
        if self._attached:
            self._inner.frame_captured(camera, captured_at)


class Reloader:
    """Applies a reloaded config file to the running pipeline's parts (see the module docstring).

    ``readers`` is the pipeline's own list (changed in place, so /healthz follows); ``make_reader``
    builds an unstarted reader with :class:`DetachableEvents`; ``zones`` is the worker's per-camera
    zones as first built (only read here: the worker swaps its own copy).
    """

    def __init__(
        self,
        config: Config,
        *,
        readers: list[CameraReader],
        make_reader: Callable[[CameraConfig], CameraReader],
        worker: Worker,
        runner: SinkRunner,
        sinks: Sequence[Sink],
        zones: dict[str, CameraZones],
        metrics: PipelineMetrics,
        reload_metrics: ReloadMetrics,
        flows: dict[str, CameraFlow] | None = None,
    ) -> None:
        self.config = config
        self.readers = readers
        self._make_reader = make_reader
        self.worker = worker
        self.runner = runner
        self.sinks = list(sinks)
        self.zones = dict(zones)
        self.flows = flows if flows is not None else {}  # the pipeline's own: its overlay reads the lines
        self.metrics = metrics
        self.reload_metrics = reload_metrics
        self._secrets = config.secrets  # the log filter's: every reloaded config's secrets join it
        self._lock = threading.Lock()  # one reload at a time

    def reload(self, path: Path | None = None) -> bool:
        """Read the config file again (``path``, else the running config's own) and apply it; True
        when it took effect (or changed nothing), False when it was invalid or needs a restart."""
        with self._lock:
            source = path or self.config.source
            if source is None:
                logger.error("config reload: the running config was not loaded from a file")
                self.reload_metrics.reloaded(False)
                return False
            try:
                ok = self._reload(source)
            except Exception:  # a bug must not end the service: it keeps running, the metric says 0
                logger.exception("config reload failed; the site may run partly on the new config")
                ok = False
            self.reload_metrics.reloaded(ok)
            return ok

    def _reload(self, source: Path) -> bool:
        try:
            new = load_config(source)
        except ConfigError as exc:
            for key, message in exc.errors:
                logger.error("config reload: %s: %s: %s", exc.path, key or "<top level>", message)
            logger.error(
                "config reload refused: %s is invalid (%d error(s)); still running the previous config",
                exc.path,
                len(exc.errors),
            )
            return False
        except CrowdwatchError as exc:
            logger.error("config reload refused: %s; still running the previous config", exc)
            return False
        plan = plan_reload(self.config, new)
        if plan.needs_restart:
            logger.error(
                "config reload refused: %s changed, which needs a restart (systemctl restart); "
                "still running the previous config, nothing applied",
                ", ".join(plan.needs_restart),
            )
            return False
        self._secrets.merge(new.secrets)  # the log filter masks the new config's secrets too
        if plan.empty:
            logger.info("config reload: %s: no change", source)
            self.config = new
            return True
        try:
            zones = self._new_zones(new, plan)
        except ValueError as exc:
            logger.error("config reload refused: %s; still running the previous config", exc)
            return False
        started = time.monotonic()
        self._apply(new, plan, zones)
        self.config = new
        logger.info(
            "config reload: %s: applied (%s) in %.2f s", source, plan.summary(), time.monotonic() - started
        )
        return True

    def _new_zones(self, new: Config, plan: ReloadPlan) -> dict[str, CameraZones]:
        """Zones for every added or changed camera; a changed one keeps its unchanged zones' state."""
        zones = {}
        for camera_id in (*plan.added, *plan.restarted, *plan.retuned):
            zones[camera_id] = camera_zones(new.camera(camera_id))
            previous = self.zones.get(camera_id)
            if previous is not None:
                kept = zones[camera_id].keep_state_of(previous)
                changed = [zone.id for zone in zones[camera_id].zones if zone.id not in kept]
                if changed:
                    logger.info("%s: zones %s start afresh (config reloaded)", camera_id, ", ".join(changed))
        return zones

    def _apply(self, new: Config, plan: ReloadPlan, zones: dict[str, CameraZones]) -> None:
        by_id = {reader.camera_id: reader for reader in self.readers}
        leaving = [by_id[camera] for camera in (*plan.removed, *plan.restarted) if camera in by_id]
        coming = {camera: self._make_reader(new.camera(camera)) for camera in (*plan.added, *plan.restarted)}
        sources = [coming.get(cam.id) or by_id[cam.id] for cam in new.cameras]
        for reader in leaving:
            if isinstance(reader.events, DetachableEvents):
                reader.events.detach()
        sinks_done: list[threading.Event | None] = []

        def on_worker_thread() -> None:  # between the old config's last batch and the new one's first
            self._change_metrics(new, plan)
            sinks_done.append(self.runner.run_in_order(self._sink_change(new, plan)))

        # a camera added or changed gets a new tracker: its tracks and line totals start afresh
        flows = {
            camera: flow_from_config(cam.lines, cam.tracking, cam.zones, zones[camera].zones, camera)
            for camera in (*plan.added, *plan.restarted, *plan.retuned)
            for cam in (new.camera(camera),)
        }
        change = SiteChange(
            sources=sources, zones=zones, flows=flows, removed=plan.removed, then=on_worker_thread
        )
        if not self.worker.apply(change):
            logger.error("config reload: the inference thread is gone; starting the new cameras anyway")
        elif not sinks_done or sinks_done[0] is None or not sinks_done[0].wait(SINKS_WAIT_S):
            logger.warning("config reload: the sinks are slow to take the change; it applies in order")
        self.zones.update(zones)
        self.flows.update(flows)
        for camera in plan.removed:
            self.zones.pop(camera, None)
            self.flows.pop(camera, None)
        self.readers[:] = sources  # /healthz: a removed camera is gone at once, a new one has no frame yet
        if leaving and not stop_readers(leaving, timeout=READER_STOP_S):
            logger.warning("config reload: a leaving reader is still blocked in the capture library")
        for camera, reader in coming.items():
            try:
                reader.start()
            except Exception:
                logger.exception("%s: reader did not start", camera)

    def _change_metrics(self, new: Config, plan: ReloadPlan) -> None:
        """The series of removed cameras go; added and changed cameras get their zones' and flow's."""
        flow = self.metrics.flow
        for camera in plan.removed:
            self.metrics.remove_camera(camera)
            if flow is not None:
                flow.remove_camera(camera)
        for camera in (*plan.added, *plan.restarted, *plan.retuned):
            cam = new.camera(camera)
            self.metrics.set_zones(camera, [zone.id for zone in cam.zones])
            if flow is not None:
                flow.set_camera(camera, *flow_series(cam))

    def _sink_change(self, new: Config, plan: ReloadPlan) -> Callable[[], None]:
        """What each sink does about the new config, run on the sink thread in queue order."""
        zones = {cam.id: camera_zones(cam) for cam in new.cameras}  # polygons only: no state is read
        drawn = {camera: [(zone.id, zone.polygon) for zone in z.zones] for camera, z in zones.items()}
        exclusions = {camera: list(z.exclusions) for camera, z in zones.items()}
        zone_ids = [zone.id for cam in new.cameras for zone in cam.zones]
        line_ids = [line.id for cam in new.cameras for line in cam.lines]
        lines = {
            cam.id: [
                (line.id, line.a, line.b, line.in_name, line.out_name) for line in counting_lines(cam.lines)
            ]
            for cam in new.cameras
        }
        scales = {cam.id: cam.pixels_per_metre for cam in new.cameras}
        layout = site_layout(new)

        def change_one(sink: Sink) -> None:
            if isinstance(sink, CsvSink):
                sink.set_zone_ids(zone_ids, line_ids)
            elif isinstance(sink, OverlaySink):
                sink.set_cameras(drawn, exclusions, closed=(*plan.removed, *plan.restarted), lines=lines)
            elif isinstance(sink, HeatmapSink):
                sink.set_cameras(scales, exclusions, removed=plan.removed)
            elif isinstance(sink, MqttSink):
                sink.set_layout(layout)

        def change() -> None:
            for sink in self.sinks:  # one failing (a full disk for a new CSV file) stops no other
                try:
                    change_one(sink)
                except Exception:
                    logger.exception("config reload: the %s did not take the change", type(sink).__name__)

        return change
