"""The :class:`Pipeline`: start-up, the main loop (status, reload), and the stop within its budget (see
the package's docstring for the order)."""

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
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from crowdwatch import __version__
from crowdwatch.capture.reader import DEFAULT_FILE_FPS, CameraReader, stop_readers
from crowdwatch.config import CameraConfig, Config
from crowdwatch.errors import UsageError
from crowdwatch.flow import CameraFlow, flow_from_config
from crowdwatch.inference.worker import Worker
from crowdwatch.pipeline.model import ModelFault, ServedModel, load_model
from crowdwatch.pipeline.outputs import ReaderEvents, flow_metrics, make_sinks, open_sinks
from crowdwatch.reload import DetachableEvents, Reloader, camera_zones
from crowdwatch.sinks.mqtt import MqttSink
from crowdwatch.sinks.runner import SinkRunner, SinkStatus
from crowdwatch.telemetry.health import camera_health
from crowdwatch.telemetry.metrics import PipelineMetrics
from crowdwatch.telemetry.notify import Notifier, WatchdogPinger
from crowdwatch.telemetry.reload import ReloadMetrics
from crowdwatch.telemetry.server import MetricsServer
from crowdwatch.telemetry.sinkloss import SinkLossCollector
from crowdwatch.web.live import LiveView
from crowdwatch.zones import CameraZones

__all__ = ["READER_STOP_S", "SINK_CLOSE_S", "STATUS_INTERVAL_S", "STOP_BUDGET_S", "Pipeline"]

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
        self.metrics.flow = flow_metrics(self.registry, config)
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
        self._model_fault: ModelFault = lambda: None

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
            if cfg.model.threads and cfg.model.backend == "torch":  # openvino takes them in load_model
                import torch

                torch.set_num_threads(cfg.model.threads)
            if self._model_factory is not None:
                predictor: ServedModel | None = self._model_factory()
            else:
                predictor, self._model_fault = load_model(cfg, self.stop_event)
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
                made, self.mqtt = make_sinks(
                    cfg,
                    zones=self.zones,
                    flows=self.flows,
                    registry=self.registry,
                    live=self.live,
                    video_fps=self._video_fps,
                )
                sinks = open_sinks(stack, made, cfg)
                wake = threading.Event()
                events = ReaderEvents(self.metrics, self.mqtt)

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
