"""The /healthz decision: healthy when every camera is up and has delivered a frame.

It judges nothing itself: each camera's reader decides whether its camera is up (its watchdog declares
a camera down once no frame arrived for ``stale_after_s``), and reports the age of its last frame on
its own clock (:class:`~crowdwatch.capture.base.CameraState`). This module only turns those states into
the HTTP status and the JSON body.
"""

from __future__ import annotations

from collections.abc import Iterable

from crowdwatch.capture.base import CameraState

__all__ = ["camera_health"]


def camera_health(states: Iterable[CameraState]) -> tuple[bool, dict[str, object]]:
    """(every camera fresh, JSON-able details with a ``reason`` per camera that is not).

    The body is ``{"status": "ok" | "stale", "cameras": {id: {"up", "age_s", "fresh"}}, "reason"}``,
    ``reason`` only when some camera is not fresh, e.g. ``"lobby: camera down; door: no frame yet"``.
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
    body: dict[str, object] = {"status": "ok" if not stale else "stale", "cameras": cameras}
    if stale:
        body["reason"] = "; ".join(stale)
    return not stale, body
