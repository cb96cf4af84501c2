"""What the MQTT sink must say on every (re)connect, and which retained topics it must clear.

:class:`SiteState` holds what is true now (each camera up or down, each alert zone's latest state) and
turns it into the messages sent on connect. :class:`RetainedSweep` reads the retained messages under
the site once after a connect and names the topics the current config no longer has. Neither touches
the network: :class:`crowdwatch.sinks.mqtt.MqttSink` sends what they return.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from crowdwatch.frames import Result
from crowdwatch.sinks.mqtt_messages import (
    OFFLINE,
    ONLINE,
    Message,
    SiteLayout,
    SiteTopics,
    alert_payload,
    initial_alert_payload,
    retained_topics,
)

__all__ = ["RetainedSweep", "SiteState"]


class SiteState:
    """Each camera's availability and each alert zone's current state (thread-safe: readers report
    cameras, the sink thread results, paho's thread asks for the messages on connect)."""

    def __init__(self, topics: SiteTopics, site: str, layout: SiteLayout, retain: bool) -> None:
        self.topics, self.site, self.retain = topics, site, retain
        self.layout = layout
        self._lock = threading.Lock()
        self._up = {camera.id: False for camera in layout.cameras}  # down until its first frame
        self._early: dict[str, bool] = {}  # cameras not in the layout (yet): their latest state
        # the latest alert event's payload per (camera, zone); None: no change yet in this run (cleared)
        self._alerts: dict[tuple[str, str], bytes | None] = {
            (camera.id, zone): None for camera in layout.cameras for zone in camera.alert_zones
        }

    def camera_changed(self, camera: str, up: bool) -> Message | None:
        """Record a camera going up or down; the retained status message that says so (None for a
        camera the layout does not have: one a reload removed, whose reader is still stopping)."""
        with self._lock:
            if camera not in self._up:
                self._early[camera] = up  # a new camera's reader ahead of its layout: said by set_layout
                return None
            self._up[camera] = up
        return self._status(camera, up)

    def set_layout(self, layout: SiteLayout) -> list[Message]:
        """Change to ``layout`` (a config reload); the messages that say so: each removed camera
        ``offline``, an empty retained message for every topic only the old layout kept (the removed
        cameras' counts, removed zones, alerts that went), a new camera's state (``offline`` until its
        first frame), a new alert zone ``cleared``. Kept cameras and zones keep their state."""
        now = time.time()
        old_kept = retained_topics(self.topics, self.layout.cameras, self.retain)
        new_kept = retained_topics(self.topics, layout.cameras, self.retain)
        cameras = {camera.id for camera in layout.cameras}
        alert_zones = {(camera.id, zone) for camera in layout.cameras for zone in camera.alert_zones}
        messages: list[Message] = []
        with self._lock:
            for camera in [camera for camera in self._up if camera not in cameras]:
                del self._up[camera]
                messages.append(self._status(camera, False))
            for camera in sorted(cameras - set(self._up)):
                self._up[camera] = self._early.pop(camera, False)
                messages.append(self._status(camera, self._up[camera]))
            self._early.clear()
            for key in [key for key in self._alerts if key not in alert_zones]:
                del self._alerts[key]
            for camera, zone in sorted(alert_zones - set(self._alerts)):
                self._alerts[(camera, zone)] = None
                payload = initial_alert_payload(self.site, camera, zone, now)
                messages.append(Message(self.topics.alert(camera, zone), payload, self.retain))
            self.layout = layout
        status_topics = {message.topic for message in messages}
        messages += [Message(topic, b"", True) for topic in sorted(old_kept - new_kept - status_topics)]
        return messages

    def note(self, result: Result) -> None:
        """Keep the alert events of a result (the latest per zone is the zone's current state)."""
        if not result.alert_events:
            return
        with self._lock:
            for event in result.alert_events:
                self._alerts[(result.camera, event.zone)] = alert_payload(self.site, result.camera, event)

    def on_connect(self, now: float) -> list[Message]:
        """Each camera's status and each alert zone's current state, as they are now."""
        with self._lock:
            up = dict(self._up)
            alerts = dict(self._alerts)
        messages = [self._status(camera, is_up) for camera, is_up in up.items()]
        for (camera, zone), payload in alerts.items():
            if payload is None:
                payload = initial_alert_payload(self.site, camera, zone, now)
            messages.append(Message(self.topics.alert(camera, zone), payload, self.retain))
        return messages

    def on_close(self) -> list[Message]:
        """Every camera ``offline``: the box stops watching them."""
        with self._lock:
            cameras = list(self._up)
        return [self._status(camera, False) for camera in cameras]

    def _status(self, camera: str, up: bool) -> Message:
        return Message(self.topics.camera_status(camera), ONLINE if up else OFFLINE, True)


class RetainedSweep:
    """The retained topics under ``filters``, collected after a connect until ``marker`` comes back.

    The sink subscribes to ``filters`` and then publishes its ``online`` status (the marker) on the same
    connection; the broker sends the retained messages of a new subscription before it forwards a
    message published after the subscription (forwarded with the retain flag off), so when the marker
    arrives without the retain flag, every retained message has arrived.
    """

    def __init__(self, filters: Sequence[str], keep: set[str], marker: Message) -> None:
        self.filters = tuple(filters)
        self.keep = keep
        self.marker = marker
        self._lock = threading.Lock()
        self._seen: set[str] | None = None  # None: not sweeping

    def start(self) -> None:
        with self._lock:
            self._seen = set()

    def stop(self) -> None:
        with self._lock:
            self._seen = None

    def received(self, topic: str, payload: bytes, retain: bool) -> list[str] | None:
        """Note one message; at the marker, the retained topics to clear (sorted), else None."""
        with self._lock:
            if self._seen is None:
                return None
            if retain:
                if payload:
                    self._seen.add(topic)
                return None
            if topic != self.marker.topic or payload != self.marker.payload:
                return None  # one of our own live messages: no sign of the end yet
            stale, self._seen = sorted(self._seen - self.keep), None
        return stale
