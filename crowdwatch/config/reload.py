"""What a reload of the config file changes: :func:`plan_reload` compares the running config with the
newly loaded one and sorts every difference.

Only the cameras (their own keys and the ``defaults`` they inherit) change while running. Every other
section needs a restart: ``site`` (names MQTT topics and the build info), ``model`` (loaded once),
``output`` (the sinks, whose files and windows span a reload: a heatmap's 15-minute window would be
thrown away), ``metrics`` and ``web`` (their bound ports, the page's token),
``mqtt`` (the connection and its outbox) and ``systemd``.
A plan that touches any of them is refused as a whole (:attr:`ReloadPlan.needs_restart`).

Per camera, by id: a new id is *added*, a missing one *removed*; a change to how the camera is read
(:data:`READER_KEYS`) *restarts* its reader; any other change (zones, exclusions, smoothing, scale)
*retunes* its analytics at its next frame, keeping the state of the zones that did not change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crowdwatch.config.schema import CameraConfig, Config

__all__ = ["READER_KEYS", "RESTART_SECTIONS", "ReloadPlan", "plan_reload"]

#: Top-level sections that need a restart when they change.
RESTART_SECTIONS = ("site", "model", "output", "metrics", "web", "mqtt", "systemd")
#: A camera's keys that its reader holds: changing one restarts that camera's reader alone.
READER_KEYS = (
    "url",
    "fps",
    "open_timeout_s",
    "read_timeout_s",
    "stale_after_s",
    "reconnect",
    "rtsp_transport",
    "loop",
    "max_pixels",
)


@dataclass(frozen=True)
class ReloadPlan:
    """The differences between two configs: camera ids by what happens to them, in the new config's
    order (``removed`` in the old one's), and the key paths that need a restart."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    retuned: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to do: the file says what is already running."""
        return not (self.added or self.removed or self.restarted or self.retuned or self.needs_restart)

    def summary(self) -> str:
        """``added [door]; removed [yard]; restarted [lobby]; retuned [hall]`` (or ``no change``)."""
        parts = [
            f"{what} [{', '.join(ids)}]"
            for what, ids in (
                ("added", self.added),
                ("removed", self.removed),
                ("restarted", self.restarted),
                ("retuned", self.retuned),
            )
            if ids
        ]
        return "; ".join(parts) or "no change"


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    """Sort the differences between the running ``old`` config and the reloaded ``new`` one."""
    needs_restart = [
        path
        for section in RESTART_SECTIONS
        for path in _differences(section, _dump(getattr(old, section)), _dump(getattr(new, section)))
    ]
    before = {camera.id: camera for camera in old.cameras}
    after = {camera.id: camera for camera in new.cameras}
    restarted, retuned = [], []
    for camera_id, camera in after.items():
        previous = before.get(camera_id)
        if previous is None:
            continue
        if _changed(previous, camera, READER_KEYS):
            restarted.append(camera_id)
        elif _changed(previous, camera, _analytics_keys(camera)):
            retuned.append(camera_id)
    return ReloadPlan(
        added=tuple(camera_id for camera_id in after if camera_id not in before),
        removed=tuple(camera_id for camera_id in before if camera_id not in after),
        restarted=tuple(restarted),
        retuned=tuple(retuned),
        needs_restart=tuple(needs_restart),
    )


def _analytics_keys(camera: CameraConfig) -> tuple[str, ...]:
    """Every camera key that is not the reader's (zones, exclude, smoothing, pixels_per_metre, ...)."""
    return tuple(key for key in type(camera).model_fields if key not in READER_KEYS and key != "id")


def _changed(old: CameraConfig, new: CameraConfig, keys: tuple[str, ...]) -> bool:
    return any(_dump(getattr(old, key)) != _dump(getattr(new, key)) for key in keys)


def _dump(value: Any) -> Any:
    """A section as plain values (secrets and URLs compare by value, never printed)."""
    return value.model_dump() if hasattr(value, "model_dump") else value


def _differences(path: str, old: Any, new: Any) -> Iterator[str]:
    """The key paths under ``path`` whose values differ (``model.weights``, ``mqtt.tls.ca_file``)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in dict.fromkeys([*old, *new]):
            yield from _differences(f"{path}.{key}", old.get(key), new.get(key))
    elif old != new:
        yield path
