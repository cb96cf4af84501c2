"""Accuracy of line crossings and tracks on the synthetic gate scene, against its ground truth.

    PYTHONPATH=$PWD python scripts/flow_accuracy.py                  # packaged weights + noisy truth
    PYTHONPATH=$PWD python scripts/flow_accuracy.py --source truth   # tracker alone (no model)
    PYTHONPATH=$PWD python scripts/flow_accuracy.py --tracker norfair  # the same table with norfair

Each density (people in view on average) gets one scene of ``--seconds``, rendered at ``--base-fps``
(10 frames/s); the model's points on those frames are cached (``--cache``), and each sampling rate
(1, 2, 5, 10 frames/s) takes every base/fps-th frame of them (rates that are no whole step are left
out). ``truth`` points are the true head positions with Gaussian jitter (``--jitter`` px), each missed
with probability ``--miss`` and a few false points added per frame (``--false-points``): the
tracker's own error, apart from the detector's.

Columns: true crossings of the gate (both directions; those after the first 2 and before the last 2
frames, which a tracker can see whole), counted = those matched by a counted crossing of
the same direction (seen at most 1 s + 4 frame intervals later, within 60 px along the line), false =
counted crossings matched to none, ID switches = times a true person's confirmed track (matched within 2
head radii) differs from the one it had when last seen apart from everyone else (more than 2 head widths
from any other head: heads drawn on top of each other are one point even in the truth, so a switch is
judged once the two are apart again). Persons = true people seen apart and matched at least once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from crowdwatch.demo.gate import GateScene, TrueCrossing, gate_scene
from crowdwatch.flow import CameraFlow
from crowdwatch.lines import CountingLine, Crossing, LineCounter
from crowdwatch.tracking import TrackerSettings


@dataclass
class Row:
    source: str
    people: int
    fps: float
    true: int
    counted: int
    false: int
    switches: int
    true_tracks: int

    def cells(self) -> list[str]:
        recall = 100.0 * self.counted / self.true if self.true else float("nan")
        false = 100.0 * self.false / self.true if self.true else float("nan")
        return [
            self.source,
            str(self.people),
            f"{self.fps:g}",
            str(self.true),
            f"{self.counted} ({recall:.1f}%)",
            f"{self.false} ({false:.1f}%)",
            f"{self.switches} / {self.true_tracks}",
        ]


def detections(
    scene: GateScene, times: np.ndarray, source: str, args: argparse.Namespace, seed: int
) -> list[np.ndarray]:
    """Points per frame: the model's on the rendered frames (cached), or jittered truth."""
    if source == "truth":
        rng = np.random.default_rng(seed)
        out = []
        for t in times:
            _, points = scene.positions(float(t))
            keep = rng.random(len(points)) >= args.miss
            noisy = points[keep] + rng.normal(0, args.jitter, size=(int(keep.sum()), 2))
            extra = rng.uniform([0, 0], [scene.width, scene.height], size=(rng.poisson(args.false_points), 2))
            out.append(np.concatenate([noisy, extra]))
        return out
    name = f"model-{scene.width}x{scene.height}-r{scene.radius}-p{seed}-s{args.seconds:g}"
    cache = Path(args.cache) / f"{name}-b{args.base_fps:g}-{args.backend}.npz"
    if cache.exists():
        data = np.load(cache)
        return [data[f"f{i}"] for i in range(len(times))]
    from crowdwatch.model import Predictor

    predictor = Predictor.from_checkpoint(args.weights, backend=args.backend)
    out = []
    for i, t in enumerate(times):
        out.append(np.asarray(predictor.predict([scene.render(float(t))])[0].points, dtype=np.float64))
        if i % 10 == 0:
            print(f"  model: frame {i}/{len(times)}", file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {f"f{i}": p for i, p in enumerate(out)}
    np.savez_compressed(cache, **arrays)
    return out


def detector_quality(scene: GateScene, times: np.ndarray, points: list[np.ndarray]) -> str:
    """Recall, precision and median distance of the points against the true heads (within 2 radii)."""
    found = truth_n = points_n = 0
    errors: list[float] = []
    for t, pts in zip(times, points, strict=True):
        _, truth = scene.positions(float(t))
        truth_n, points_n = truth_n + len(truth), points_n + len(pts)
        if not len(truth) or not len(pts):
            continue
        dist = np.linalg.norm(truth[:, None, :] - pts[None, :, :], axis=2)
        rows, cols = linear_sum_assignment(dist)
        ok = dist[rows, cols] <= 2 * scene.radius
        found += int(ok.sum())
        errors += dist[rows, cols][ok].tolist()
    median = float(np.median(errors)) if errors else float("nan")
    return (
        f"recall {found / max(truth_n, 1):.3f}, precision {found / max(points_n, 1):.3f}, "
        f"median error {median:.1f} px"
    )


def ours(
    settings: TrackerSettings, line: CountingLine
) -> Callable[[np.ndarray, float], tuple[list[Crossing], dict[int, np.ndarray]]]:
    flow = CameraFlow([line], tracker=settings)

    def step(points: np.ndarray, t: float) -> tuple[list[Crossing], dict[int, np.ndarray]]:
        reading = flow.update(points, t)
        tracker = flow.tracker
        here = tracker.confirmed & (tracker.seen_at == t)
        seen = dict(zip(tracker.ids[here].tolist(), tracker.position[here], strict=True))
        return list(reading.crossings), seen

    return step


def norfair_tracker(
    settings: TrackerSettings, line: CountingLine, fps: float
) -> Callable[[np.ndarray, float], tuple[list[Crossing], dict[int, np.ndarray]]]:
    """norfair's Tracker (Kalman filter, euclidean distance) with the same gates per frame interval."""
    from norfair import Detection, Tracker

    tracker = Tracker(
        distance_function="euclidean",
        distance_threshold=settings.radius_px + settings.max_speed_px_s / fps,
        hit_counter_max=settings.max_missed + 1,
        initialization_delay=settings.min_hits - 1,
    )
    counter = LineCounter(line)
    last: dict[int, tuple[float, float]] = {}

    def step(points: np.ndarray, t: float) -> tuple[list[Crossing], dict[int, np.ndarray]]:
        detections = [Detection(points=p.reshape(1, 2)) for p in points]
        this_frame = {id(d) for d in detections}
        objects = tracker.update(detections)
        crossings, seen = [], {}
        for obj in objects:
            if obj.last_detection is None or id(obj.last_detection) not in this_frame:
                continue  # predicted only: judged from observed positions, as ours is
            where = obj.last_detection.points[0].astype(float)
            pos = (float(where[0]), float(where[1]))
            prev = last.get(obj.id, pos)
            crossing = counter.step(int(obj.id), prev, pos, t)
            if crossing is not None:
                crossings.append(crossing)
            last[obj.id] = pos
            seen[obj.id] = where
        return crossings, seen

    return step


def score(
    scene: GateScene,
    line: CountingLine,
    times: np.ndarray,
    points: list[np.ndarray],
    make: Callable[[], Callable[[np.ndarray, float], tuple[list[Crossing], dict[int, np.ndarray]]]],
) -> tuple[int, int, int, int, int]:
    step = make()
    counted: list[Crossing] = []
    owner: dict[int, int] = {}
    switches = 0
    for t, pts in zip(times, points, strict=True):
        crossings, seen = step(pts, float(t))
        counted += crossings
        ids, truth = scene.positions(float(t))
        if seen and len(truth):
            track_ids = list(seen)
            where = np.array([seen[i] for i in track_ids])
            dist = np.linalg.norm(truth[:, None, :] - where[None, :, :], axis=2)
            rows, cols = linear_sum_assignment(dist)
            apart = np.linalg.norm(truth[:, None, :] - truth[None, :, :], axis=2)
            np.fill_diagonal(apart, np.inf)
            isolated = apart.min(axis=1) > 4 * scene.radius
            for r, c in zip(rows, cols, strict=True):
                if dist[r, c] <= 2 * scene.radius and isolated[r]:
                    person, track = int(ids[r]), track_ids[c]
                    if person in owner and owner[person] != track:
                        switches += 1
                    owner[person] = track
    # Every counted crossing is matched against every true one; recall is judged on the true crossings
    # that a tracker can see whole: after its first 2 frames and before its last 2 (a track needs
    # frames on both sides, and confirming takes a frame).
    truth_crossings = scene.crossings(line, float(times[0]), float(times[-1]))
    interval = float(times[1] - times[0]) if len(times) > 1 else 1.0
    pairs = match(truth_crossings, counted, line, late_s=1.0 + 4 * interval)
    start, end = float(times[0]) + 2 * interval, float(times[-1]) - 2 * interval
    judged = [i for i, c in enumerate(truth_crossings) if start <= c.at <= end]
    found = sum(1 for i in judged if i in pairs)
    return len(judged), found, len(counted) - len(pairs), switches, len(owner)


def match(truth: list[TrueCrossing], counted: list[Crossing], line: CountingLine, late_s: float) -> set[int]:
    """Indices of the true crossings paired 1:1 with a counted one of the same direction, counted 0 to
    ``late_s`` after it, within 60 px along the line (least time + distance first)."""
    if not truth or not counted:
        return set()
    ux, uy = (line.b[0] - line.a[0]) / line.length, (line.b[1] - line.a[1]) / line.length
    cost = np.full((len(truth), len(counted)), 1e9)
    for i, tc in enumerate(truth):
        for j, c in enumerate(counted):
            dt = c.at - tc.at
            along = abs((c.point[0] - tc.point[0]) * ux + (c.point[1] - tc.point[1]) * uy)
            if c.direction == tc.direction and -0.05 <= dt <= late_s and along <= 60:
                cost[i, j] = dt + along / 60
    rows, cols = linear_sum_assignment(cost)
    return {int(r) for r, c in zip(rows, cols, strict=True) if cost[r, c] < 1e9}


def rows(args: argparse.Namespace) -> Iterator[Row]:
    settings = TrackerSettings(max_speed_px_s=args.max_speed, max_missed=args.max_missed)
    for people in args.people:
        scene = gate_scene(
            width=args.width,
            height=args.height,
            seconds=args.seconds,
            people=people,
            speed_px_s=(args.speed[0], args.speed[1]),
            radius=args.radius,
            seed=people,
        )
        line = scene.line
        times = np.arange(0, args.seconds, 1 / args.base_fps)
        for source in args.source:
            points = detections(scene, times, source, args, people)
            print(
                f"  {source} points, {people} people: {detector_quality(scene, times, points)}",
                file=sys.stderr,
            )
            for fps in args.fps:
                every = round(args.base_fps / fps)
                if every < 1 or abs(every * fps - args.base_fps) > 1e-6:
                    continue  # not a whole step of the rendered frames
                sub_t, sub_p = times[::every], points[::every]
                if args.tracker == "norfair":
                    make = lambda: norfair_tracker(settings, line, fps)  # noqa: E731, B023
                else:
                    make = lambda: ours(settings, line)  # noqa: E731, B023
                true, counted, false, switches, tracks = score(scene, line, sub_t, sub_p, make)
                yield Row(source, people, fps, true, counted, false, switches, tracks)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", nargs="+", choices=("truth", "model"), default=["truth", "model"])
    parser.add_argument("--tracker", choices=("crowdwatch", "norfair"), default="crowdwatch")
    parser.add_argument("--people", nargs="+", type=int, default=[10, 30, 60])
    parser.add_argument("--fps", nargs="+", type=float, default=[1, 2, 5, 10])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--base-fps", type=float, default=10.0, help="rate the frames are rendered at")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--radius", type=int, default=7, help="head radius in px")
    parser.add_argument("--speed", nargs=2, type=float, default=[70.0, 130.0], help="walking speeds, px/s")
    parser.add_argument("--max-speed", type=float, default=150.0, help="tracking.max_speed_px_s")
    parser.add_argument("--max-missed", type=int, default=3, help="tracking.max_missed")
    parser.add_argument("--jitter", type=float, default=1.0, help="truth: px of Gaussian jitter")
    parser.add_argument("--miss", type=float, default=0.2, help="truth: chance a head is missed")
    parser.add_argument("--false-points", type=float, default=0.2, help="truth: false points per frame")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--cache", default="runs/flow_accuracy")
    args = parser.parse_args()
    header = ["source", "people", "fps", "true crossings", "counted", "false", "ID switches / persons"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows(args):
        print("| " + " | ".join(row.cells()) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
