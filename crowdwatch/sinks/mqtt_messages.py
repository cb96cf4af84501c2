"""What the MQTT sink says, apart from how it says it: the site's topics, their payloads, and which
topics the current config keeps on the broker.

Topics, under ``<topic_prefix>/<site>`` (``crowdwatch/lobby``):

- ``status``: the box, ``online`` or ``offline`` (retained; ``offline`` is also the box's last will);
- ``<camera>/status``: the camera, ``online`` while it delivers frames, else ``offline`` (retained);
- ``<camera>/count``: the camera's (smoothed) count, JSON;
- ``<camera>/<zone>/count``: the zone's (smoothed) count and alert state, JSON;
- ``<camera>/<zone>/alert``: the zone's alert state, JSON: each change as it happens, and the current
  state again on every (re)connect, so that the retained message is never an earlier run's.
- ``<camera>/<line>/crossings``: a counting line's totals each way since the start of the run, JSON,
  with every frame of its camera (retained like the counts);
- ``<camera>/<line>/crossing``: one message per crossing (never retained): direction, track, time.

:class:`SiteLayout` is the part of the config the sink needs (cameras, their zones, which zones have an
alert); :func:`retained_topics` turns it into the set of topics this config keeps retained, so that
anything else retained under the site (a removed zone, an earlier config's camera) can be cleared.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from crowdwatch.frames import AlertChange, FlowReading, Result
from crowdwatch.timefmt import iso_utc

__all__ = [
    "OFFLINE",
    "ONLINE",
    "CameraLayout",
    "Message",
    "SiteLayout",
    "SiteTopics",
    "alert_payload",
    "initial_alert_payload",
    "result_messages",
    "retained_topics",
    "to_json",
]

ONLINE, OFFLINE = b"online", b"offline"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True)
class CameraLayout:
    """One camera as the bus sees it: its id, its zones in order, and those with an occupancy alert."""

    id: str
    zones: tuple[str, ...] = ()
    alert_zones: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not set(self.alert_zones) <= set(self.zones):
            raise ValueError(f"alert_zones {self.alert_zones} must be among zones {self.zones}")


@dataclass(frozen=True)
class SiteLayout:
    cameras: tuple[CameraLayout, ...] = ()


@dataclass(frozen=True)
class SiteTopics:
    """Topic names under ``base`` (``<topic_prefix>/<site>``)."""

    base: str

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def everything(self) -> str:
        """The filter that matches every topic of the site."""
        return f"{self.base}/#"

    def camera_status(self, camera: str) -> str:
        return f"{self.base}/{camera}/status"

    def count(self, camera: str) -> str:
        return f"{self.base}/{camera}/count"

    def zone_count(self, camera: str, zone: str) -> str:
        return f"{self.base}/{camera}/{zone}/count"

    def alert(self, camera: str, zone: str) -> str:
        return f"{self.base}/{camera}/{zone}/alert"

    def crossings(self, camera: str, line: str) -> str:
        return f"{self.base}/{camera}/{line}/crossings"

    def crossing(self, camera: str, line: str) -> str:
        return f"{self.base}/{camera}/{line}/crossing"


def to_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def alert_payload(site: str, camera: str, event: AlertChange) -> bytes:
    """An alert event as JSON: where, which way, the count against its threshold, since when, at when."""
    return to_json(
        {
            "site": site,
            "camera": camera,
            "zone": event.zone,
            "state": event.state,
            "count": round(event.count, 2),
            "threshold": event.threshold,
            "since": iso_utc(event.since),
            "since_timestamp": round(event.since, 3),
            "time": iso_utc(event.at),
            "timestamp": round(event.at, 3),
        }
    )


def initial_alert_payload(site: str, camera: str, zone: str, at: float) -> bytes:
    """A zone's state before its first change in this run: ``cleared`` (every alert starts cleared).

    The keys of an event, with ``count``, ``threshold`` and ``since`` null (no condition has been
    held yet) and ``time`` the moment it is published.
    """
    return to_json(
        {
            "site": site,
            "camera": camera,
            "zone": zone,
            "state": "cleared",
            "count": None,
            "threshold": None,
            "since": None,
            "since_timestamp": None,
            "time": iso_utc(at),
            "timestamp": round(at, 3),
        }
    )


def result_messages(topics: SiteTopics, site: str, result: Result, retain: bool) -> Iterator[Message]:
    """One result's messages: the camera's count, each zone's count, each alert change."""
    camera = result.camera
    when: dict[str, Any] = {"frame": result.index, "time": iso_utc(result.captured_at)}
    when["timestamp"] = round(result.captured_at, 3)
    count = result.smoothed_count if result.smoothed_count is not None else float(result.count)
    head = {"site": site, "camera": camera}
    body = {"count": round(count, 2), "raw_count": result.count, **when}
    yield Message(topics.count(camera), to_json({**head, **body}), retain)
    for zone, raw in result.zone_counts.items():
        zone_count = result.zone_smoothed.get(zone, float(raw))
        payload = {
            **head,
            "zone": zone,
            "count": round(zone_count, 2),
            "raw_count": raw,
            "alert": bool(result.zone_alerts.get(zone, False)),
            **when,
        }
        yield Message(topics.zone_count(camera, zone), to_json(payload), retain)
    for event in result.alert_events:
        yield Message(topics.alert(camera, event.zone), alert_payload(site, camera, event), retain)
    if result.flow is not None:
        yield from flow_messages(topics, site, camera, result.flow, when, retain)


def flow_messages(
    topics: SiteTopics, site: str, camera: str, flow: FlowReading, when: dict[str, Any], retain: bool
) -> Iterator[Message]:
    """Each crossing as an event, then each line's running totals (``in``/``out`` and their names)."""
    for c in flow.crossings:
        payload: dict[str, Any] = {"site": site, "camera": camera, "line": c.line, "direction": c.direction}
        payload |= {"name": c.name, "track": c.track, "time": iso_utc(c.at), "timestamp": round(c.at, 3)}
        yield Message(topics.crossing(camera, c.line), to_json(payload), False)
    for line, (n_in, n_out) in flow.totals.items():
        totals = {"site": site, "camera": camera, "line": line, "in": n_in, "out": n_out, **when}
        yield Message(topics.crossings(camera, line), to_json(totals), retain)


def retained_topics(topics: SiteTopics, cameras: Iterable[CameraLayout], retain: bool) -> set[str]:
    """The topics under the site that this config keeps retained (statuses always; counts and alert
    states when ``retain``): every other retained topic there is left over from an earlier config."""
    kept = {topics.status}
    for camera in cameras:
        kept.add(topics.camera_status(camera.id))
        if retain:
            kept.add(topics.count(camera.id))
            kept.update(topics.zone_count(camera.id, zone) for zone in camera.zones)
            kept.update(topics.alert(camera.id, zone) for zone in camera.alert_zones)
            kept.update(topics.crossings(camera.id, line) for line in camera.lines)
    return kept
