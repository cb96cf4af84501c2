"""The live view of one config, assembled: hub, sink and server (what the pipeline adds when
``web.enabled``). Bound at construction, so a port in use is reported before the model loads."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from crowdwatch.capture.base import CameraState
from crowdwatch.config import CameraConfig, Config
from crowdwatch.errors import UsageError
from crowdwatch.web.hub import CameraView, LiveHub, ZoneView
from crowdwatch.web.server import WebServer
from crowdwatch.web.sink import LiveViewSink
from crowdwatch.web.validate import validate_block

__all__ = ["LiveView", "camera_view"]


def camera_view(camera: CameraConfig) -> CameraView:
    """What the page may show of a camera: shapes and rate, never the URL."""
    return CameraView(
        id=camera.id,
        kind=camera.kind,
        fps=camera.fps,
        zones=tuple(
            ZoneView(
                zone.id,
                np.asarray(zone.polygon, dtype=np.float64),
                None if zone.alert is None else zone.alert.high,
                None if zone.alert is None else zone.alert.low,
                None if zone.alert is None else zone.alert.for_s,
            )
            for zone in camera.zones
        ),
        exclusions=tuple(np.asarray(region.polygon, dtype=np.float64) for region in camera.exclude),
        lines=tuple(line.model_dump(by_alias=True) for line in camera.lines),
    )


class LiveView:
    """``hub`` (fed by ``sink``) served by ``server``; ``states`` gives each camera's up/down state."""

    def __init__(self, config: Config, states: Callable[[], Iterable[CameraState]]) -> None:
        web = config.web
        self.config = config  # the one running now: validate reads its defaults
        views = [camera_view(cam) for cam in config.cameras]
        self.hub = LiveHub(views, states=states, max_fps=web.max_fps)
        self.sink = LiveViewSink(self.hub)
        heatmaps = config.output.dir / "heatmaps" if config.output.heatmaps.enabled else None
        try:
            self.server = WebServer(
                self.hub,
                address=web.address,
                port=web.port,
                token=None if web.token is None else web.token.get_secret_value(),
                max_viewers=web.max_viewers,
                validate=lambda camera, text: validate_block(self.config, camera, text),
                heatmaps=heatmaps,
            )
        except OSError as exc:
            raise UsageError(
                f"web: cannot listen on {web.address}:{web.port}: {exc.strerror or exc} "
                "(web.address and web.port in the config)"
            ) from None

    def start(self) -> None:
        self.server.start()

    def reconfigure(self, config: Config) -> None:
        """A reloaded config: its cameras, zones and lines on the page; its defaults for validation. The
        server's own settings (web.*) need a restart, like the metrics server's."""
        self.config = config
        self.hub.set_cameras([camera_view(cam) for cam in config.cameras])

    def stop(self) -> None:
        self.hub.close()
        self.server.stop()
