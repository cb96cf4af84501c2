"""Dynamic batching across cameras, without threads or a clock of its own (``now`` is passed in).

The worker takes at most one frame per camera; frames are grouped by their size (H, W), and a group
becomes a batch when it is full (``max_batch``), when its oldest frame has waited ``max_wait_s``, or
when every camera already has a frame waiting (no more could join).

Why group by size: the preprocessor pads every frame of a batch to the batch's largest size, and
padding changes the network's activations near the border. Batching only equal-sized frames keeps
every frame's padding exactly what it gets alone, so a camera's count equals what
``crowdwatch count`` gives on the same frame. Cameras of different resolutions simply form
different batches.
"""

from __future__ import annotations

from crowdwatch.frames import Frame

__all__ = ["Batcher"]


class Batcher:
    """Groups frames into batches (no threads, no clock of its own: ``now`` is passed in).

    Args:
        max_batch: a group with this many frames is a batch at once.
        max_wait_s: a group whose oldest frame arrived this long ago is a batch.
        cameras: how many cameras exist; once each has a frame waiting, every group is a batch.
    """

    def __init__(self, max_batch: int, max_wait_s: float, cameras: int | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, but got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, but got {max_wait_s}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.cameras = cameras
        # (H, W) -> [(arrival, frame)], oldest first; dicts keep insertion order.
        self._groups: dict[tuple[int, int], list[tuple[float, Frame]]] = {}

    @property
    def pending_cameras(self) -> set[str]:
        return {frame.camera for group in self._groups.values() for _, frame in group}

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def add(self, frame: Frame, now: float) -> Frame | None:
        """Queue ``frame``; returns the older frame of the same camera it replaced, if any."""
        replaced = self._remove_camera(frame.camera)
        key = (frame.height, frame.width)
        self._groups.setdefault(key, []).append((now, frame))
        return replaced

    def pop_ready(self, now: float) -> list[list[Frame]]:
        """Batches that are due at ``now``, oldest group first (each at most ``max_batch`` frames)."""
        everyone_waiting = self.cameras is not None and len(self.pending_cameras) >= self.cameras
        ready = []
        for key in list(self._groups):
            group = self._groups[key]
            while group and (
                len(group) >= self.max_batch or now - group[0][0] >= self.max_wait_s or everyone_waiting
            ):
                ready.append([frame for _, frame in group[: self.max_batch]])
                del group[: self.max_batch]
            if not group:
                del self._groups[key]
        return ready

    def pop_all(self) -> list[list[Frame]]:
        """Every waiting frame, as batches (used on shutdown)."""
        batches = []
        for group in self._groups.values():
            frames = [frame for _, frame in group]
            batches += [frames[i : i + self.max_batch] for i in range(0, len(frames), self.max_batch)]
        self._groups.clear()
        return batches

    def next_deadline(self) -> float | None:
        """When the oldest waiting frame's group falls due (``None`` when nothing waits)."""
        arrivals = [group[0][0] for group in self._groups.values() if group]
        return min(arrivals) + self.max_wait_s if arrivals else None

    def _remove_camera(self, camera: str) -> Frame | None:
        for key, group in self._groups.items():
            for i, (_, frame) in enumerate(group):
                if frame.camera == camera:
                    del group[i]
                    if not group:
                        del self._groups[key]
                    return frame
        return None
