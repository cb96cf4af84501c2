"""A synthetic gate scene with ground truth: who walked where, and every true crossing of a line.

People enter at the top or bottom edge and leave at either (most walk through, some turn back), at
walking speeds; some stop for a while on the way (lingering, a few of them close to the line), and a
few walk along the gate without crossing it. Arrivals are a Poisson stream whose rate keeps about
``people`` in view on average, and the scene is warmed up so the first frame is already as full.

Trajectories are piecewise linear in continuous time, so the true crossings of a line (the moments a
head's path cuts the segment, and from which side) are exact, whatever the frame rate they are
sampled at. :func:`gate_scene` makes the people; :meth:`GateScene.positions` samples them at any time;
:meth:`GateScene.crossings` lists the true crossings; :meth:`GateScene.render` draws one frame in the
style of the demo clip (:func:`crowdwatch.demo.draw_person`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crowdwatch.demo import _background, draw_person, write_clip
from crowdwatch.lines import CountingLine

__all__ = ["GATE_PATH", "GateScene", "Person", "TrueCrossing", "gate_scene", "make_gate_clip"]


@dataclass(frozen=True)
class Person:
    """Waypoints ``(t, x, y)`` (times increasing); absent before the first and after the last."""

    id: int
    times: np.ndarray  # (K,)
    xy: np.ndarray  # (K, 2)
    colour: tuple[int, int, int]

    def at(self, t: float) -> tuple[float, float] | None:
        if t < self.times[0] or t > self.times[-1]:
            return None
        return float(np.interp(t, self.times, self.xy[:, 0])), float(np.interp(t, self.times, self.xy[:, 1]))


@dataclass(frozen=True)
class TrueCrossing:
    person: int
    line: str
    direction: str  # "in" or "out" (crowdwatch.lines: in = from the left of A->B)
    at: float
    point: tuple[float, float]


@dataclass(frozen=True)
class GateScene:
    width: int
    height: int
    radius: int
    people: tuple[Person, ...]
    background: np.ndarray

    @property
    def line(self) -> CountingLine:
        """The gate: across the middle, left to right (``in`` = walking down the image)."""
        y = self.height / 2
        return CountingLine("gate", (0.1 * self.width, y), (0.9 * self.width, y))

    def positions(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(ids (N,), points (N, 2)) of the people in view at ``t`` (heads inside the frame)."""
        ids, points = [], []
        for person in self.people:
            p = person.at(t)
            if p is not None and 0 <= p[0] < self.width and 0 <= p[1] < self.height:
                ids.append(person.id)
                points.append(p)
        return np.array(ids, dtype=np.int64), np.array(points, dtype=np.float64).reshape(-1, 2)

    def crossings(self, line: CountingLine, start: float, end: float) -> list[TrueCrossing]:
        """Every crossing of ``line``'s segment in ``[start, end]``, in time order."""
        out = []
        for person in self.people:
            for k in range(len(person.times) - 1):
                p, q = tuple(person.xy[k]), tuple(person.xy[k + 1])
                dp, dq = line.offset(p), line.offset(q)
                if dp * dq >= 0 or not line.cuts(p, q):
                    continue
                f = dp / (dp - dq)
                at = float(person.times[k] + f * (person.times[k + 1] - person.times[k]))
                if start <= at <= end:
                    point = (p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1]))
                    out.append(TrueCrossing(person.id, line.id, "in" if dp < 0 else "out", at, point))
        return sorted(out, key=lambda c: c.at)

    def render(self, t: float) -> np.ndarray:
        frame = self.background.copy()
        drawn = [(p.at(t), p.colour) for p in self.people]
        for where, colour in sorted(((w, c) for w, c in drawn if w is not None), key=lambda item: item[0][1]):
            draw_person(frame, where[0], where[1], self.radius, colour)
        return frame

    def write_trajectories(self, path: str | Path, times: np.ndarray) -> None:
        """``person,t,x,y`` rows for every person in view at each of ``times``."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["person", "t", "x", "y"])
            for t in times:
                ids, points = self.positions(float(t))
                for pid, (x, y) in zip(ids, points, strict=True):
                    writer.writerow([int(pid), f"{t:.3f}", f"{x:.2f}", f"{y:.2f}"])

    def write_crossings(self, path: str | Path, line: CountingLine, start: float, end: float) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["person", "line", "direction", "t", "x", "y"])
            for c in self.crossings(line, start, end):
                writer.writerow(
                    [c.person, c.line, c.direction, f"{c.at:.3f}", f"{c.point[0]:.2f}", f"{c.point[1]:.2f}"]
                )


def gate_scene(
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 60.0,
    people: float = 30.0,
    speed_px_s: tuple[float, float] = (70.0, 130.0),
    linger: float = 0.25,
    radius: int | None = None,
    seed: int = 0,
) -> GateScene:
    """People crossing a gate across the middle of a ``width`` x ``height`` frame for ``seconds``.

    ``people``: how many are in view on average; ``speed_px_s``: walking speeds (a head is
    ``2 * radius`` px wide, by default radius = min(width, height) / 40); ``linger``: the share who stop
    for 3-25 s.
    """
    rng = np.random.default_rng(seed)
    radius = radius or max(3, round(min(width, height) / 40))
    made: list[Person] = []
    mean_life = 0.0
    for _ in range(200):  # estimate the mean time in view, to set the arrival rate
        mean_life += _walk(rng, width, height, speed_px_s, linger, 0.0)[0][-1] / 200
    rate = people / max(mean_life, 1e-6)
    t = -mean_life * 2.0  # warm-up: the first frame is already as full as the rest
    pid = 0
    while True:
        t += float(rng.exponential(1.0 / rate))
        if t > seconds:
            break
        times, xy = _walk(rng, width, height, speed_px_s, linger, t)
        colour = tuple(int(c) for c in rng.integers(40, 220, size=3))
        made.append(Person(pid, times, xy, (colour[0], colour[1], colour[2])))
        pid += 1
    background = _background(width, height, np.random.default_rng(seed + 1))
    return GateScene(width, height, radius, tuple(made), background)


def _walk(
    rng: np.random.Generator,
    width: int,
    height: int,
    speed_px_s: tuple[float, float],
    linger: float,
    t0: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One person's waypoints: enter at an edge, maybe stop, leave at an edge."""
    speed = float(rng.uniform(*speed_px_s))
    margin = 0.12 * height  # heads start and end just outside the frame
    kind = rng.random()
    if kind < 0.1:  # along the gate, on one side of it, never crossing
        y = height / 2 + float(rng.choice([-1, 1])) * rng.uniform(0.1, 0.4) * height
        x0, x1 = (-margin, width + margin) if rng.random() < 0.5 else (width + margin, -margin)
        points = [(x0, y), (x1, y + rng.uniform(-0.05, 0.05) * height)]
    else:
        down = rng.random() < 0.5
        y0, y1 = (-margin, height + margin) if down else (height + margin, -margin)
        x0 = float(rng.uniform(0.15, 0.85) * width)
        x1 = float(np.clip(x0 + rng.normal(0, 0.15) * width, 0.05 * width, 0.95 * width))
        points = [(x0, y0)]
        if rng.random() < linger:
            # stop somewhere on the way (a third of them within 5-40 px of the line, not on it)
            if rng.random() < 1 / 3:
                ys = height / 2 + float(rng.choice([-1, 1])) * rng.uniform(5 + min(width, height) / 40, 40)
            else:
                ys = float(rng.uniform(0.15, 0.85) * height)
            xs = float(x0 + (x1 - x0) * (ys - y0) / (y1 - y0))
            points += [(xs, ys), (xs, ys)]  # arrive, then stay (duration set below)
            if rng.random() < 0.3:  # turn back
                y1 = y0
        points.append((x1, y1))
    times = [t0]
    stay = float(rng.uniform(3, 25))
    for k in range(1, len(points)):
        (xa, ya), (xb, yb) = points[k - 1], points[k]
        step = float(np.hypot(xb - xa, yb - ya)) / speed
        times.append(times[-1] + (stay if step == 0 else step))
    return np.array(times), np.array(points, dtype=np.float64)


#: Where configs/demo.yaml expects the gate clip (relative to the repository root).
GATE_PATH = Path("configs/demo/gate.mp4")


def make_gate_clip(
    path: str | Path = GATE_PATH,
    *,
    width: int = 320,
    height: int = 180,
    seconds: float = 60.0,
    fps: float = 10.0,
    people: float = 8.0,
    speed_px_s: tuple[float, float] = (12.0, 25.0),
    radius: int = 7,
    seed: int = 0,
    truth: bool = False,
) -> Path:
    """Write a gate scene as a clip (``mp4v``) and return its path; with ``truth``, also
    ``<path>.crossings.csv`` (the true crossings of :attr:`GateScene.line`) and ``<path>.tracks.csv``
    (every person's position on every frame).

    The demo's defaults: a small frame and strolling people (12-25 px/s, about one to two head widths a
    second), so that tracks link even at the 0.5-2 frames/s a CPU gives the demo's cameras.
    """
    path = Path(path)
    scene = gate_scene(
        width=width,
        height=height,
        seconds=seconds,
        people=people,
        speed_px_s=speed_px_s,
        radius=radius,
        seed=seed,
    )
    times = np.arange(0, max(1, round(seconds * fps))) / fps
    write_clip(path, (scene.render(float(t)) for t in times), fps=fps, size=(width, height))
    if truth:
        scene.write_crossings(path.with_suffix(".crossings.csv"), scene.line, 0.0, float(times[-1]))
        scene.write_trajectories(path.with_suffix(".tracks.csv"), times)
    return path
