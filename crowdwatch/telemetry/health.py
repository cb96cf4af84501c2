"""The /healthz decision: healthy when every camera is up and has delivered a frame, and no sink is failing.

It judges nothing itself: each camera's reader decides whether its camera is up (its watchdog declares
a camera down once no frame arrived for ``stale_after_s``), and reports the age of its last frame on
its own clock (:class:`~crowdwatch.capture.base.CameraState`); the sink runner knows which sink is
failing (:class:`~crowdwatch.sinks.runner.SinkStatus`). This module only turns those states into
the HTTP status and the JSON body.

Statuses: ``ok`` (200); ``stale`` (503) when a camera is down or has sent nothing yet; ``degraded`` (503)
when every camera is fresh but a sink is failing (its rows are being lost, e.g. on a full disk) or the
inference pool does not answer (``backend: triton``: frames are dropped, not counted). Degraded
is a 503, not a 200: frames are counted but not recorded, which someone must fix (free the disk); a
probe that only looks at the status code must see it. Restarting does not help, and nothing in
crowdwatch restarts on /healthz (the systemd watchdog follows frame progress).

A sink's losses alone do not degrade: only a sink that says it is *failing* (``error``) does. The MQTT
sink's drops never do (a broker that is away or slow is outside the box, and the box still records
everything to disk; ``crowdwatch_mqtt_connected`` and ``crowdwatch_sink_lost_total{sink="mqtt"}`` show
it), so a load balancer or probe watching /healthz never takes a counting box out for a broker outage.
"""

from __future__ import annotations

from collections.abc import Iterable

from crowdwatch.capture.base import CameraState
from crowdwatch.sinks.runner import SinkStatus

__all__ = ["camera_health"]


def camera_health(
    states: Iterable[CameraState], sinks: Iterable[SinkStatus] = (), faults: Iterable[str] = ()
) -> tuple[bool, dict[str, object]]:
    """(every camera fresh and no sink failing, JSON-able details with the reasons when not).

    The body is ``{"status": "ok" | "stale" | "degraded", "cameras": {id: {"up", "age_s", "fresh"}},
    "sinks": {name: {"ok", "lost", "error"}}, "reason"}`` (``lost``: records lost since start, by reason),
    ``reason`` only when not ok, e.g.
    ``"lobby: camera down; door: no frame yet"`` or ``"csv sink failing: No space left on device (...)"``.
    ``faults`` are other reasons for ``degraded``, e.g. the inference pool of ``backend: triton`` not
    answering (its frames are dropped, not counted).
    """
    cameras: dict[str, object] = {}
    stale: list[str] = []
    for state in states:
        age = None if state.last_frame_age_s is None else round(state.last_frame_age_s, 3)
        if age is None:
            reason: str | None = "no frame yet"
        elif not state.up:
            reason = "camera down"
        else:
            reason = None
        cameras[state.camera] = {"up": state.up, "age_s": age, "fresh": reason is None}
        if reason is not None:
            stale.append(f"{state.camera}: {reason}")
    sink_states: dict[str, object] = {}
    failing: list[str] = []
    for sink in sinks:
        sink_states[sink.sink] = {"ok": sink.error is None, "lost": dict(sink.lost), "error": sink.error}
        if sink.error is not None:
            failing.append(f"{sink.sink} sink failing: {sink.error} ({sink.lost_total} lost so far)")
    failing += list(faults)
    status = "stale" if stale else "degraded" if failing else "ok"
    body: dict[str, object] = {"status": status, "cameras": cameras, "sinks": sink_states}
    if stale or failing:
        body["reason"] = "; ".join(stale + failing)
    return status == "ok", body
