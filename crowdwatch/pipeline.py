"""The running service: cameras -> shared model -> CSV, overlays and Prometheus, until SIGTERM.

:class:`Pipeline` assembles the rooms (``crowdwatch run CONFIG``, in :mod:`crowdwatch.commands.run`,
builds one and runs it).

Start-up order: config, the metrics port (bound first, so a port in use is found before the slow model
load), model, sinks, metrics server, worker, readers (each opens in its own thread,
so a camera that never comes up does not hold up the others), then READY=1 to systemd and the
progress-gated watchdog pinger. On SIGHUP (``systemctl reload``) the config file is read again and
applied without stopping the cameras that did not change (:mod:`crowdwatch.reload`). On
SIGTERM/SIGINT (or after ``--duration``): STOPPING=1, stop the
readers, finish the frames already taken, flush and close the sinks, stop the metrics server, all
within :data:`STOP_BUDGET_S`. A batch still inside the model when the worker's share of the budget
is spent is abandoned: the sinks are closed without its results, and the log says so. The caller
must end the process without finalizing the interpreter (``crowdwatch run`` always does, see
:mod:`crowdwatch.commands.run`): a thread inside a torch operator when the interpreter shuts down
aborts the process (SIGABRT or SIGSEGV instead of exit 0).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from crowdwatch import __version__
from crowdwatch.capture.reader import DEFAULT_FILE_FPS, CameraReader, stop_readers
from crowdwatch.config import CameraConfig, Config
from crowdwatch.errors import CrowdwatchError, InferenceUnavailable, UsageError
from crowdwatch.flow import CameraFlow, flow_from_config
from crowdwatch.inference.worker import PredictorLike, Worker
from crowdwatch.logthrottle import LogThrottle
from crowdwatch.reload import DetachableEvents, Reloader, camera_zones, flow_series, site_layout
from crowdwatch.sinks.base import Sink
from crowdwatch.sinks.csv import CsvSink
from crowdwatch.sinks.heatmap import HeatmapSink
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.sinks.overlay import OverlaySink
from crowdwatch.sinks.runner import SinkRunner, SinkStatus
from crowdwatch.telemetry.flow_metrics import FlowMetrics
from crowdwatch.telemetry.health import camera_health
from crowdwatch.telemetry.metrics import PipelineMetrics
from crowdwatch.telemetry.mqtt_metrics import MqttMetrics
from crowdwatch.telemetry.notify import Notifier, WatchdogPinger
from crowdwatch.telemetry.reload import ReloadMetrics
from crowdwatch.telemetry.server import MetricsServer
from crowdwatch.telemetry.sinkloss import SinkLossCollector
from crowdwatch.web.live import LiveView
from crowdwatch.web.sink import LiveViewSink
from crowdwatch.zones import CameraZones

if TYPE_CHECKING:  # loaded in Pipeline.run, after the config is checked (torch is slow to import)
    from crowdwatch.model.predictor import Predictor

__all__ = ["READER_STOP_S", "SINK_CLOSE_S", "STATUS_INTERVAL_S", "STOP_BUDGET_S", "Pipeline", "ServedModel"]

logger = logging.getLogger(__name__)

#: SIGTERM to exit: readers get up to READER_STOP_S, the worker (in-flight batch, sink queue) what is
#: left but SINK_CLOSE_S, which is kept for closing the sinks (the MQTT sink's close takes up to 2 s).
STOP_BUDGET_S = 9.0
READER_STOP_S = 3.0
SINK_CLOSE_S = 2.5
#: How often a one-line status goes to the log and to systemd (STATUS=).
STATUS_INTERVAL_S = 60.0

#: What ``signal.signal`` returns and takes.
_SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class ServedModel(PredictorLike, Protocol):
    """What the pipeline needs of its model: ``predict``, and the device and precision for build_info."""

    @property
    def device(self) -> object: ...

    @property
    def precision(self) -> str: ...


class Pipeline:
    """The running service for one :class:`~crowdwatch.config.Config`.

    ``model_factory`` builds the model when :meth:`run` starts (default: the config's ``model`` section
    through :meth:`Predictor.from_checkpoint`); tests pass their own. ``stop_budget_s`` bounds the stop.
    """

    def __init__(
        self,
        config: Config,
        *,
        model_factory: Callable[[], ServedModel] | None = None,
        stop_budget_s: float = STOP_BUDGET_S,
    ) -> None:
        self.config = config
        self.stop_budget_s = stop_budget_s
        self._model_factory = model_factory
        self.stop_event = threading.Event()
        # No `*_created` series: a sample per counter and histogram that no dashboard or rule reads
        # (a process-wide switch of client_python; this process only ever serves the pipeline's metrics).
        disable_created_metrics()  # type: ignore[no-untyped-call]  # (client_python leaves it untyped)
        self.registry = CollectorRegistry()
        # Process metrics (resident memory, CPU) in the same registry: useful beside the pipeline's own.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.zones: dict[str, CameraZones] = {cam.id: camera_zones(cam) for cam in config.cameras}
        self.metrics = PipelineMetrics(
            self.registry,
            [cam.id for cam in config.cameras],
            {cam.id: [zone.id for zone in cam.zones] for cam in config.cameras},
        )
        self.metrics.set_build_info(site=config.site, version=__version__)
        self.reload_metrics = ReloadMetrics(self.registry)
        self.flows: dict[str, CameraFlow] = {
            cam.id: flow_from_config(cam.lines, cam.tracking, cam.zones, self.zones[cam.id].zones, cam.id)
            for cam in config.cameras
        }
        # always there, so that a reload may add lines: families without series show nothing on /metrics
        self.metrics.flow = _flow_metrics(self.registry, config)
        self.mqtt: MqttSink | None = None  # when mqtt.enabled, once the sinks are made
        # the sink thread, and each sink's losses and failing state (read from the sinks), once they run
        self.sink_runner: SinkRunner | None = None
        self.registry.register(SinkLossCollector(self._sink_status))
        self._reload_requested = threading.Event()
        self._reloader: Reloader | None = None  # once the readers run
        self._notifier: Notifier | None = None
        self._readers: list[CameraReader] = []  # the running readers, once started
        self.live: LiveView | None = None  # the live view (web.enabled), bound when run starts
        # why the model cannot count right now (backend triton: the pool's fault), for /healthz
        self._model_fault: Callable[[], str | None] = lambda: None

    def request_reload(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Read the config file again at the next turn of the main loop (SIGHUP)."""
        if signum is not None:
            logger.info("received %s: reloading %s", signal.Signals(signum).name, self.config.source)
        self._reload_requested.set()

    def _sink_status(self) -> list[SinkStatus]:
        return self.sink_runner.status() if self.sink_runner is not None else []

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            logger.info("received %s: stopping", signal.Signals(signum).name)
        self.stop_event.set()

    def run(self, duration: float | None = None) -> int:
        cfg = self.config
        readers: list[CameraReader] = []  # filled once the model and sinks are ready
        self._readers = readers
        server = self._metrics_server(readers) if cfg.metrics.enabled else None  # bound, not serving yet
        previous = self._install_signal_handlers()
        try:
            if cfg.web.enabled:  # bound now too: a port in use is found before the model loads
                self.live = LiveView(cfg, lambda: [reader.state() for reader in readers])
            if cfg.model.threads and cfg.model.backend == "torch":  # openvino takes them in _load_model
                import torch

                torch.set_num_threads(cfg.model.threads)
            predictor = self._model_factory() if self._model_factory else self._load_model()
            if predictor is None:  # stopped while waiting for the inference pool (backend triton)
                logger.info("stopped cleanly before the inference pool answered")
                return 0
            self._set_build_info(predictor)
            logger.info(
                "model ready on %s (%s), %d camera(s)",
                predictor.device,
                predictor.precision,
                len(cfg.cameras),
            )
            with contextlib.ExitStack() as stack:
                stack.callback(self._log_sink_losses)  # runs last: after the sinks' final flush
                sinks = self._open_sinks(stack)
                wake = threading.Event()
                events = _ReaderEvents(self.metrics, self.mqtt)

                def make_reader(camera: CameraConfig) -> CameraReader:
                    return CameraReader(camera, DetachableEvents(events), on_frame=wake)

                readers += [make_reader(cam) for cam in cfg.cameras]
                if server is not None:
                    server.start()
                if self.live is not None:
                    self.live.start()
                runner = self.sink_runner = SinkRunner(sinks)
                worker = Worker(
                    predictor,
                    readers,
                    publish=runner.submit,
                    events=self.metrics,
                    zones=self.zones,
                    flows=self.flows,
                    max_batch=cfg.model.max_batch,
                    max_wait_ms=cfg.model.max_wait_ms,
                    wake=wake,
                )
                self._reloader = Reloader(
                    cfg,
                    readers=readers,
                    make_reader=make_reader,
                    worker=worker,
                    runner=runner,
                    sinks=sinks,
                    zones=self.zones,
                    metrics=self.metrics,
                    reload_metrics=self.reload_metrics,
                    flows=self.flows,
                )
                runner.start()
                worker.start()
                for reader in readers:
                    try:
                        reader.start()
                    except Exception:
                        logger.exception("%s: reader did not start", reader.camera.id)
                notifier, pinger = self._notify_ready(worker)
                try:
                    self._wait(duration, readers, worker)
                finally:
                    self._shutdown(notifier, pinger, readers, worker)
            logger.info("stopped cleanly")
            return 0
        finally:
            if server is not None:
                server.stop()
            if self.live is not None:
                self.live.stop()
            self._restore_signal_handlers(previous)

    # -- steps ---------------------------------------------------------------------------------
    def _load_model(self) -> Predictor | None:
        from crowdwatch.model.predictor import Predictor

        model = self.config.model
        if model.backend == "triton":
            return self._wait_for_pool()
        return Predictor.from_checkpoint(
            model.weights,
            backend=model.backend,
            device=model.device,
            precision=model.precision,
            threshold=model.threshold,
            longest_side=model.longest_side,
            tile_pixels=model.tile_pixels,
            threads=model.threads,
        )

    def _wait_for_pool(self) -> Predictor | None:
        """backend triton: the Predictor once the pool has answered (its model config holds the metadata);
        a pool that is down at start is waited for with back-off, like a camera; None after a stop."""
        from crowdwatch.model.predictor import Predictor
        from crowdwatch.model.triton import TritonTarget

        model = self.config.model
        tls = model.tls
        target = TritonTarget(
            str(model.url),
            name=model.name,
            timeout_s=model.timeout_s,
            retry_initial_s=model.retry_initial_s,
            retry_max_s=model.retry_max_s,
            ca=tls.ca if tls else None,
            cert=tls.cert if tls else None,
            key=tls.key if tls else None,
        )
        wait = model.retry_initial_s
        throttle = LogThrottle(logger)  # once as the wait starts, then once a minute
        while True:
            try:
                predictor = Predictor.from_checkpoint(
                    None,
                    backend="triton",
                    threshold=model.threshold,
                    longest_side=model.longest_side,
                    tile_pixels=model.tile_pixels,
                    triton=target,
                )
            except InferenceUnavailable as exc:
                throttle.log(
                    "pool",
                    logging.WARNING,
                    "%s; waiting for it (back-off up to %g s)",
                    exc,
                    model.retry_max_s,
                )
                if self.stop_event.wait(wait):
                    return None
                wait = min(model.retry_max_s, wait * 2)
                continue
            self._model_fault = getattr(predictor.backend, "fault", lambda: None)
            return predictor

    def _open_sinks(self, stack: contextlib.ExitStack) -> list[Sink]:
        sinks: list[Sink] = []
        try:
            for sink in self._make_sinks():
                stack.enter_context(sink)  # opened now, closed when the stack unwinds
                sinks.append(sink)
            return sinks
        except OSError as exc:
            where = exc.filename or self.config.output.dir
            raise CrowdwatchError(
                f"output: cannot write to {where}: {exc.strerror or exc} (output.dir)"
            ) from None

    def _make_sinks(self) -> list[CsvSink | OverlaySink | HeatmapSink | MqttSink | LiveViewSink]:
        out = self.config.output
        sinks: list[CsvSink | OverlaySink | HeatmapSink | MqttSink | LiveViewSink] = []
        if out.csv.enabled:
            zone_ids = [zone.id for cam in self.config.cameras for zone in cam.zones]
            line_ids = [line.id for cam in self.config.cameras for line in cam.lines]
            sinks.append(
                CsvSink(out.dir, zone_ids, line_ids=line_ids, flush_interval_s=out.csv.flush_interval_s)
            )
        if out.snapshots.enabled or out.video.enabled:
            sinks.append(
                OverlaySink(
                    out.dir / "snapshots",
                    interval_s=out.snapshots.interval_s,
                    snapshots=out.snapshots.enabled,
                    video_directory=out.dir / "video" if out.video.enabled else None,
                    video_fps=self._video_fps,
                    zones={
                        camera: [(zone.id, zone.polygon) for zone in zones.zones]
                        for camera, zones in self.zones.items()
                    },
                    exclusions={camera: zones.exclusions for camera, zones in self.zones.items()},
                    lines={
                        camera: [
                            (c.line.id, c.line.a, c.line.b, c.line.in_name, c.line.out_name)
                            for c in flow.counters
                        ]
                        for camera, flow in self.flows.items()
                    },
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
                    pixels_per_metre={cam.id: cam.pixels_per_metre for cam in self.config.cameras},
                    exclusions={camera: zones.exclusions for camera, zones in self.zones.items()},
                )
            )
        if self.config.mqtt.enabled:
            sinks.append(self._mqtt_sink())
        if self.live is not None:
            sinks.append(self.live.sink)
        return sinks

    def _video_fps(self, camera: str) -> float:
        """The frame rate written into ``camera``'s annotated video: output.video.fps, else the camera's
        sampling rate, else (fps: null, every frame kept) the rate its stream declared."""
        if self.config.output.video.fps is not None:
            return self.config.output.video.fps
        sampling = next((cam.fps for cam in self.config.cameras if cam.id == camera), None)
        if sampling is not None:
            return sampling
        declared = next((r.nominal_fps for r in self._readers if r.camera.id == camera), 0.0)
        return declared or DEFAULT_FILE_FPS

    def _mqtt_sink(self) -> MqttSink:
        """The MQTT sink, its metrics registered beside the pipeline's (only when MQTT is on)."""
        metrics = MqttMetrics(self.registry)
        layout = site_layout(self.config)
        sink = MqttSink(self.config.mqtt, self.config.site, layout=layout, events=metrics)
        metrics.watch_outbox(sink.outbox_length)
        self.mqtt = sink
        return sink

    def _metrics_server(self, readers: list[CameraReader]) -> MetricsServer:
        """/metrics, and /healthz from the readers' own judgement of their cameras: bound now (a port in
        use is a config error, exit 2), serving once :meth:`MetricsServer.start` is called."""
        address, port = self.config.metrics.address, self.config.metrics.port

        def health() -> tuple[bool, dict[str, object]]:
            fault = self._model_fault()
            return camera_health(
                (reader.state() for reader in readers), self._sink_status(), [fault] if fault else []
            )

        try:
            return MetricsServer(self.registry, health, address, port)
        except OSError as exc:
            raise UsageError(
                f"metrics: cannot listen on {address}:{port}: {exc.strerror or exc} "
                "(metrics.address and metrics.port in the config)"
            ) from None

    def _set_build_info(self, predictor: ServedModel) -> None:
        # The installed torch's version, read without importing it: the openvino backend never loads torch.
        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:  # an OpenVINO-only install
            torch_version = "none"
        self.metrics.set_build_info(
            torch=torch_version,
            device=str(predictor.device),
            precision=str(predictor.precision),
        )

    def _notify_ready(self, worker: Worker) -> tuple[Notifier, WatchdogPinger]:
        notifier = self._notifier = Notifier.from_env()
        notifier.ready()
        max_age = self.config.systemd.watchdog_progress_s
        pinger = WatchdogPinger(notifier, worker.last_progress_monotonic, max_age)
        pinger.start()
        return notifier, pinger

    def _wait(self, duration: float | None, readers: list[CameraReader], worker: Worker) -> None:
        started = time.monotonic()
        next_status = started + STATUS_INTERVAL_S
        while not self.stop_event.wait(0.2):
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                logger.info("--duration %.1f s reached: stopping", duration)
                return
            if readers and all(reader.ended for reader in readers):
                logger.info("every camera is a file that has ended: stopping")
                return
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self._reload()
            if now >= next_status:
                next_status = now + STATUS_INTERVAL_S
                logger.info("status: %s", self._status(readers))

    def _reload(self) -> None:
        """Read the config file again and apply it (see :mod:`crowdwatch.reload`), telling systemd."""
        if self._reloader is None:
            return
        notifier = self._notifier
        if notifier is not None:  # systemctl reload waits for READY=1 after RELOADING=1
            notifier.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            if self._reloader.reload():
                self.config = self._reloader.config
                if self.live is not None:
                    self.live.reconfigure(self.config)
        finally:
            if notifier is not None:
                notifier.ready()

    def _status(self, readers: list[CameraReader]) -> str:
        parts = []
        for reader in readers:
            camera = reader.camera_id
            processed = self.metrics.counts.get(camera).processed
            parts.append(f"{camera} {'up' if reader.up else 'DOWN'} {processed:.0f} frames")
        return ", ".join(parts)

    def _shutdown(
        self, notifier: Notifier, pinger: WatchdogPinger, readers: list[CameraReader], worker: Worker
    ) -> None:
        deadline = time.monotonic() + self.stop_budget_s
        notifier.stopping()
        pinger.stop()
        readers_budget = min(READER_STOP_S, self.stop_budget_s / 3)
        if not stop_readers(readers, timeout=readers_budget):
            logger.warning("some readers are still blocked in the capture library; not waiting for them")
        sinks_deadline = deadline - SINK_CLOSE_S
        worker_done = worker.stop(timeout=max(0.5, sinks_deadline - time.monotonic()))
        sinks_done = self.sink_runner is None or self.sink_runner.stop(
            max(sinks_deadline, time.monotonic() + 0.2)
        )
        if not (worker_done and sinks_done):
            logger.warning(
                "the worker did not finish within the stop budget (%s); closing the sinks anyway",
                "a batch is still inside the model: its results are not recorded"
                if worker.busy
                else "the sinks are still taking results",
            )
        logger.info("final counts: %s", json.dumps(self._final_counts(readers)))
        notifier.close()

    def _final_counts(self, readers: list[CameraReader]) -> dict[str, dict[str, int]]:
        """Per camera: frames processed, results dropped on sink overload (CSV rows = the difference) and
        frames superseded by a newer one before the model took them (the gaps in the CSV's frame column)."""
        out = {}
        for reader in readers:
            counts = self.metrics.counts.get(reader.camera_id)
            out[reader.camera_id] = {
                "processed": counts.processed,
                "sink_overload": counts.dropped["sink_overload"],
                "superseded": counts.dropped["superseded"],
            }
        return out

    def _log_sink_losses(self) -> None:
        """The final summary's second line: per sink, the records it could not deliver and why, e.g.
        ``{"csv": {"total": 9, "reasons": {"write_error": 9}}, "overlay": {"total": 0, "reasons": {}}}``."""
        statuses = self._sink_status()
        lost = {
            status.sink: {"total": status.lost_total, "reasons": {r: n for r, n in status.lost.items() if n}}
            for status in statuses
        }
        level = logging.WARNING if any(status.lost_total for status in statuses) else logging.INFO
        logger.log(level, "final sink losses (records not delivered): %s", json.dumps(lost))

    def _install_signal_handlers(self) -> dict[int, _SignalHandler]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        handlers: dict[int, _SignalHandler] = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, self.request_reload)
        return handlers

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, _SignalHandler]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _ReaderEvents:
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


def _flow_metrics(registry: CollectorRegistry, config: Config) -> FlowMetrics:
    """Crossing counters, dwell histograms and lingering gauges for the cameras' lines and zones."""
    series = {cam.id: flow_series(cam) for cam in config.cameras}
    return FlowMetrics(
        registry,
        {camera: lines for camera, (lines, _, _) in series.items()},
        {camera: dwell for camera, (_, dwell, _) in series.items()},
        {camera: lingering for camera, (_, _, lingering) in series.items()},
    )
