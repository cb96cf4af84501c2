"""The live view's sink: hands every result to the :class:`~crowdwatch.web.hub.LiveHub` (no copy, no
encoding: the hub encodes only what a viewer asks for)."""

from __future__ import annotations

from crowdwatch.frames import Result
from crowdwatch.sinks.base import SinkBase
from crowdwatch.web.hub import LiveHub

__all__ = ["LiveViewSink"]


class LiveViewSink(SinkBase):
    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub

    def write(self, result: Result) -> None:
        self.hub.publish(result)

    def close(self) -> None:
        self.hub.close()
